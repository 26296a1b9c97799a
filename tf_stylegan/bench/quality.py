"""``bench quality`` and ``bench fid``: the emoji Fréchet distance of G and Gs after a wall-time budget
of training, and the time of FID's Inception feature extraction."""

import contextlib
import json
import os
import tempfile
import time

import numpy as np

from tf_stylegan.bench.measure import peak_rss_mib, time_call


def run_fid_features(resolution=256, num_images=128, batch=32, repeats=3, print_fn=print):
    """Seconds per 1,000 images of FID's Inception-v3 feature extraction (resize to 299 included;
    random weights: the same arithmetic as ImageNet's); prints and returns one row."""
    from tf_stylegan.metrics import InceptionFeatures

    extractor = InceptionFeatures(weights=None, batch_size=batch)
    images = np.random.default_rng(0).integers(0, 256, (num_images, resolution, resolution, 3),
                                               dtype=np.uint8)
    seconds = time_call(lambda: extractor(images), repeats, warmup=1)
    row = dict(resolution=resolution, batch=batch, seconds_per_1000_images=1000 * seconds / num_images,
               peak_rss_mib=peak_rss_mib())
    print_fn(f"tf-stylegan bench fid: Inception-v3 pool features of {resolution}x{resolution} images, "
             f"batch {batch}: {row['seconds_per_1000_images']:.1f} s per 1,000 images (fid50k: "
             f"{row['seconds_per_1000_images'] * 100 / 60:.0f} min for 50k real + 50k generated); "
             f"peak RSS {row['peak_rss_mib']:.0f} MiB")
    return row


def _last_logged(run_dir, name, kimg):
    """The value of metric ``name`` the run logged at ``kimg`` as its last metrics.jsonl line, or None."""
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as file:
            last = json.loads(file.readlines()[-1])
    except (OSError, IndexError, ValueError):
        return None
    return last.get(name) if last.get("kimg") == kimg else None


def run_quality(minutes, seed=None, run_dir=None, metrics_every_kimg=None, num_images=2000, print_fn=print):
    """Trains the configuration gin holds (parse it first: :func:`configurables.parse`), as ``tf-stylegan
    train`` does (:func:`configurables.train`), for ``minutes`` of wall time; then prints the emoji
    Fréchet distance (:class:`~tf_stylegan.metrics.EmojiFD`, ``num_images`` generated) of G and of Gs,
    measured alike (no truncation, fresh noise, the same seeds), the kimg reached and the images/s over the
    run's wall time (setup, tracing, samples and checkpoints included, and the meter itself with
    ``metrics_every_kimg``, which also measures Gs, and logs it to the run, every that many kimg).

    ``seed`` overrides ``train.seed``; ``run_dir`` keeps the run (default: a temporary folder, deleted).
    Returns the summary dict, also printed as the last line, in JSON.
    """
    from tf_stylegan.deploy import inference
    from tf_stylegan.metrics import EmojiFD
    from tf_stylegan.training import configurables

    metric = EmojiFD(num_images)
    metric.prepare()  # the classifier before the clock starts
    overrides = dict(metrics=[metric] if metrics_every_kimg else [], metrics_kimg=metrics_every_kimg)
    if seed is not None:
        overrides["seed"] = seed
    folder = (contextlib.nullcontext(run_dir) if run_dir
              else tempfile.TemporaryDirectory(prefix="bench-quality-"))
    with folder as run_dir:
        start = time.time()
        trainer = configurables.train(run_dir=run_dir, max_seconds=60 * minutes, print_fn=print_fn,
                                      **overrides)
        seconds = time.time() - start
        nimg = int(trainer.cur_nimg.numpy())
        values = {}
        for label, network in (("G", trainer.G), ("Gs", trainer.Gs)):
            logged = (_last_logged(run_dir, metric.name, nimg / 1000)
                      if label == "Gs" and metrics_every_kimg else None)
            values[label] = logged if logged is not None else metric(
                inference.from_generator(network), trainer.dataset, print_fn)[metric.name]
    summary = dict(dataset=trainer.dataset.name, resolution=trainer.dataset.resolution, seed=trainer.seed,
                   minutes=minutes, kimg=nimg / 1000, total_kimg=trainer.total_nimg / 1000,
                   seconds=round(seconds, 1), images_per_s=round(nimg / seconds, 2), metric=metric.name,
                   G=values["G"], Gs=values["Gs"])
    print_fn(f"tf-stylegan bench quality: {minutes:g} min budget: {nimg / 1000:.3f} kimg in {seconds:.0f} s "
             f"({summary['images_per_s']:.2f} images/s over the whole run)")
    print_fn(f"  {metric.name} G  {values['G']:10.3f}")
    print_fn(f"  {metric.name} Gs {values['Gs']:10.3f}")
    print_fn(json.dumps(summary))
    return summary
