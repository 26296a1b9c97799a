"""``tf-stylegan bench``: speed figures, not tests.

``bench generator``: images/s of generator inference (eager call and ``tf.function``), the
GFLOP/s achieved (conv and dense multiply-accumulates x 2, counted from the network's own
layers), peak memory, and, in the same run, the GFLOP/s of plain 3x3 convolutions as the
roofline the generator is compared with.

``bench train``: training images/s of the trainer's own step (D update with R1, Gs update,
G update, style mixing, fresh noise) alone and inside the trainer's loop (input pipeline, host
work), with the share of the loop's time spent outside the step function: in the stable phase of
each given resolution inside networks of each given full resolution, or in every phase of a gin
config's schedule.

``bench export``: sizes and per-image latency of a generator as Keras, SavedModel and TFLite.

``bench fid``: seconds per 1,000 images of FID's Inception-v3 feature extraction.

``bench quality``: trains a gin config for a wall-time budget, then prints the emoji Fréchet distance
of G and Gs, the kimg reached and the images/s; or, with ``--calibrate``, the meter's calibration.
"""

import collections
import contextlib
import dataclasses
import functools
import glob
import itertools
import json
import math
import os
import resource
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_stylegan import data
from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.training import schedule
from tf_stylegan.training.losses import LogisticR1

# (channels, size): the plain 3x3 convs, batch 4, whose higher GFLOP/s is the roofline.
ROOFLINE_CONVS = ((512, 32), (128, 128))


@dataclasses.dataclass
class Measurement:
    name: str
    seconds: float  # median seconds per call
    gflop: float  # GFLOP per call

    @property
    def gflops(self):
        return self.gflop / self.seconds


def peak_rss_mib():
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_call(fn, repeats, warmup=2):
    """Median wall time of ``fn()`` (outputs fetched), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        np.asarray(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def roofline(batch=4, repeats=10):
    """GFLOP/s of the plain convs in :data:`ROOFLINE_CONVS` (a list of Measurement)."""
    results = []
    for channels, size in ROOFLINE_CONVS:
        x = tf.random.normal([batch, size, size, channels])
        kernel = tf.random.normal([3, 3, channels, channels])
        conv = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME"))
        seconds = time_call(conv, repeats)
        gflop = 2 * batch * size * size * 9 * channels * channels / 1e9
        results.append(Measurement(f"conv3x3 {channels}->{channels} @{size}x{size}, batch {batch}", seconds, gflop))
    return results


def generator_inference(resolution, batch=4, repeats=5, truncation_psi=0.7, **generator_kwargs):
    """(Measurement eager, Measurement tf.function, peak RSS MiB) of generator inference."""
    generator = Generator(resolution=resolution, **generator_kwargs)
    generator.build()
    z = tf.random.normal([batch, generator.latent_size])
    gflop = 2 * batch * generator.macs_per_sample() / 1e9

    def eager():
        return generator(z, truncation_psi=truncation_psi)

    compiled = tf.function(eager)
    measurements = [
        Measurement("eager", time_call(eager, repeats), gflop),
        Measurement("tf.function", time_call(compiled, repeats), gflop),
    ]
    return measurements, peak_rss_mib()


def run(resolutions=(256, 1024), batch=4, repeats=5, truncation_psi=0.7, print_fn=print, **generator_kwargs):
    """Runs the benchmark, prints the table and returns its rows as dicts."""
    print_fn(f"tf-stylegan bench: generator inference, batch {batch}, truncation psi {truncation_psi}, "
             f"fresh noise; TensorFlow {tf.__version__}")
    convs = roofline(batch)
    best = max(conv.gflops for conv in convs)
    for conv in convs:
        print_fn(f"  roofline  {conv.name:38s} {conv.gflops:7.1f} GFLOP/s")
    print_fn(f"  roofline = {best:.1f} GFLOP/s (the higher)")
    header = (f"{'resolution':>10} {'call':>12} {'images/s':>9} {'ms/batch':>9} {'GFLOP/img':>10} "
              f"{'GFLOP/s':>8} {'% roofline':>10} {'peak RSS MiB':>13}")
    print_fn(header)
    rows = []
    for resolution in resolutions:
        measurements, peak = generator_inference(resolution, batch, repeats, truncation_psi, **generator_kwargs)
        for m in measurements:
            row = dict(resolution=resolution, call=m.name, images_per_s=batch / m.seconds,
                       ms_per_batch=1000 * m.seconds, gflop_per_image=m.gflop / batch, gflops=m.gflops,
                       roofline_fraction=m.gflops / best, peak_rss_mib=peak, roofline_gflops=best)
            rows.append(row)
            print_fn(f"{resolution:>10} {m.name:>12} {row['images_per_s']:9.2f} {row['ms_per_batch']:9.0f} "
                     f"{row['gflop_per_image']:10.1f} {m.gflops:8.1f} {100 * row['roofline_fraction']:9.1f}% "
                     f"{peak:13.0f}")
    return rows


def schedule_phases(schedule_fn, resolution_log2):
    """The distinct phases of a schedule up to the full resolution, in order: each level's fade-in
    (where the schedule has one) and stable part, as the :class:`~tf_stylegan.training.schedule.Phase` at the
    middle of that stretch (the last one, which never ends, at its start)."""
    def key(nimg):
        phase = schedule_fn(nimg, resolution_log2)
        return phase.resolution, phase.stable

    final = (2 ** resolution_log2, True)
    starts, nimg = [0], 0
    while key(starts[-1]) != final:
        current = key(starts[-1])
        stride = schedule_fn(nimg, resolution_log2).minibatch * 256
        while key(nimg + stride) == current:  # walk ahead, then bisect to the first image of the next stretch
            nimg += stride
        low, high = nimg, nimg + stride
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if key(middle) == current else (low, middle)
        starts.append(nimg := high)
    middles = [(first + next_first - 1) // 2 for first, next_first in itertools.pairwise(starts)] + [starts[-1]]
    return [schedule_fn(nimg, resolution_log2) for nimg in middles]


def phase_label(phase):
    return f"{phase.resolution}²" + ("" if phase.stable else " fade")


def _synthetic_dataset(network_resolution, channels=3, count=16):
    rng = np.random.default_rng(0)
    levels = {2 ** k: rng.integers(0, 256, (count, 2 ** k, 2 ** k, channels), dtype=np.uint8)
              for k in range(2, int(math.log2(network_resolution)) + 1)}
    return data.ImageDataset("synthetic", network_resolution, channels, levels)


# Executor events that enclose the kernels they run: counting them would count those twice.
_ENCLOSING_EVENTS = ("Process", "ParallelFor", "ExecutorState::Process")


def op_profile(run, calls):
    """Kernel time per call of ``run`` by op type, from TensorFlow's profiler: a list of
    (op type, milliseconds per call), longest first (``calls`` calls traced after one untraced)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    run()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(calls):
                run()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
            with open(path, "rb") as file:
                space.MergeFromString(file.read())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op_type = names.get(event.metadata_id, "?").split(":")[-1]
                if op_type not in _ENCLOSING_EVENTS:
                    totals[op_type] += event.duration_ps / 1e9 / calls
    return totals.most_common()


def train_speed(phase, network_resolution, repeats=5, loop_ticks=2, r1_gamma=10.0, r1_interval=1,
                generator=Generator, discriminator=Discriminator, channels=3, profile=False, **network_kwargs):
    """Speed of one training phase (a :class:`~tf_stylegan.training.schedule.Phase`) of a ``network_resolution``
    run, on synthetic images: a dict of ``step_seconds`` (the step function alone, median of
    ``repeats``; with lazy R1 the mean over ``r1_interval`` steps, one with the R1 update),
    ``loop_images_per_s`` and ``outside_graph`` (the trainer's own loop: its last of ``loop_ticks``
    progress ticks of 8 groups of steps, samples and checkpoints left out), ``peak_rss_mib``, and with
    ``profile`` ``op_ms``: :func:`op_profile` of one step (of ``r1_interval`` steps with lazy R1).

    ``generator`` / ``discriminator`` build the networks (e.g. gin-configured factories);
    ``network_kwargs`` are passed to both (the discriminator takes only the width arguments).
    """
    from tf_stylegan.training.trainer import Trainer

    minibatch_repeats = 4
    tick_kimg = 8 * minibatch_repeats * phase.minibatch / 1000
    fixed = dataclasses.replace(phase, tick_kimg=tick_kimg)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            run_dir, _synthetic_dataset(network_resolution, channels), generator=functools.partial(generator, **network_kwargs),
            discriminator=functools.partial(discriminator, **_discriminator_kwargs(network_kwargs)),
            loss=LogisticR1(r1_gamma, r1_interval), schedule=lambda *args, **kwargs: fixed,
            total_kimg=loop_ticks * tick_kimg, minibatch_repeats=minibatch_repeats, checkpoint_kimg=10 ** 9,
            image_snapshot_kimg=10 ** 9, strategy=tf.distribute.MirroredStrategy(["/cpu:0"]), print_fn=lambda *args: None)
        trainer._set_phase(fixed)
        batches = trainer.real_batches(phase.resolution, phase.minibatch, 0)
        step = trainer.train_step(phase.resolution, phase.minibatch)
        beta = tf.constant(schedule.gs_beta(phase.minibatch), tf.float32)
        counter = iter(range(10 ** 9))
        interval = trainer.loss.regularization_interval

        def run_steps():
            for index in range(interval):
                regularize = interval > 1 and index == 0
                metrics = step(next(batches), tf.constant([0, next(counter)], tf.int64), beta, regularize)
            return metrics["Loss/D"]

        step_seconds = time_call(run_steps, repeats) / interval
        op_ms = op_profile(run_steps, 3) if profile else None
        for variable in (trainer.cur_nimg, trainer.step_count):
            variable.assign(0)
        trainer.train()  # the same traced step, inside the trainer's loop
        return dict(step_seconds=step_seconds, loop_images_per_s=trainer.last_tick["images_per_s"],
                    outside_graph=trainer.last_tick["outside_graph"], peak_rss_mib=peak_rss_mib(), op_ms=op_ms)


def _discriminator_kwargs(network_kwargs):
    keys = ("fmap_base", "fmap_decay", "fmap_max")
    return {key: value for key, value in network_kwargs.items() if key in keys}


def run_train(resolutions=(32, 64), network_resolutions=(1024,), batch=8, repeats=5, r1_gamma=10.0,
              print_fn=print, generator=Generator, discriminator=Discriminator, r1_interval=1, phases=None,
              channels=3, profile_top=0, **network_kwargs):
    """Runs the training benchmark, prints the table and returns its rows as dicts; with
    ``profile_top`` each row is followed by the step's ``profile_top`` longest op types.

    ``phases``: {network resolution: [Phase, ...]} to measure (e.g. a gin schedule's
    :func:`schedule_phases`); default: the stable phase of each of ``resolutions`` with minibatch
    ``batch`` and the official learning rates, inside networks of each of ``network_resolutions``.
    """
    every = "every step" if r1_interval == 1 else f"every {r1_interval} steps (lazy)"
    print_fn(f"tf-stylegan bench train: R1 gamma {r1_gamma} {every}, style mixing 0.9, fresh noise, synthetic "
             f"images; step = the step function alone, loop = the trainer's loop; TensorFlow {tf.__version__}")
    print_fn(f"{'phase':>9} {'network':>8} {'batch':>6} {'step img/s':>11} {'loop img/s':>11} "
             f"{'outside graph':>14} {'peak RSS MiB':>13}")
    if phases is None:
        phases = {network: [schedule.Phase(0.0, math.log2(network // r), r, 0.0, batch, 0.001, 0.001, 1.0)
                            for r in resolutions if r <= network] for network in network_resolutions}
    rows = []
    for network_resolution, network_phases in phases.items():
        for phase in network_phases:
            figures = train_speed(phase, network_resolution, repeats, r1_gamma=r1_gamma, r1_interval=r1_interval,
                                  generator=generator, discriminator=discriminator, channels=channels,
                                  profile=profile_top > 0, **network_kwargs)
            row = dict(phase=phase_label(phase), resolution=phase.resolution, fade=phase.fade,
                       network_resolution=network_resolution, batch=phase.minibatch,
                       images_per_s=phase.minibatch / figures["step_seconds"],
                       ms_per_step=1000 * figures["step_seconds"], loop_images_per_s=figures["loop_images_per_s"],
                       outside_graph=figures["outside_graph"], peak_rss_mib=figures["peak_rss_mib"])
            rows.append(row)
            print_fn(f"{row['phase']:>9} {network_resolution:>7}² {phase.minibatch:>6} {row['images_per_s']:11.2f} "
                     f"{row['loop_images_per_s']:11.2f} {100 * row['outside_graph']:13.0f}% "
                     f"{row['peak_rss_mib']:13.0f}")
            if profile_top:
                row["op_ms"] = figures["op_ms"]
                total = sum(ms for _, ms in figures["op_ms"])
                print_fn(f"{'':>9} kernels {total:.1f} ms per step (both threads): " + ", ".join(
                    f"{op} {ms:.1f} ({100 * ms / total:.0f}%)" for op, ms in figures["op_ms"][:profile_top]))
    return rows


def as_if_trained(generator, seed=0):
    """Perturbs the weights a fresh network leaves at constants (the 4x4 input, noise strengths,
    biases), as training does: a fresh network's constant first layer has zero variance, which
    float16 arithmetic turns into NaN and would make the quantized rows meaningless."""
    rng = np.random.default_rng(seed)
    for variable in generator.trainable_variables:
        name = variable.path.split("/")[-1]
        if name in ("bias", "strength"):
            variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))
        elif name == "const":
            variable.assign(1 + 0.5 * rng.normal(size=variable.shape).astype(np.float32))


def run_export(resolution=256, repeats=5, print_fn=print, **generator_kwargs):
    """Sizes and per-image latency (batch 1, ψ 0.7, stored noise) of a generator as Keras, as an
    exported SavedModel and as TFLite float32 / float16 / dynamic-range; prints and returns the rows.

    Quantized rows also give the mean |difference| of their uint8 images from the Keras ones.
    """
    from tf_stylegan.deploy import export

    print_fn(f"tf-stylegan bench export: {resolution}x{resolution} generator, batch 1, psi 0.7; "
             f"TensorFlow {tf.__version__}")
    generator = Generator(resolution=resolution, **generator_kwargs)
    generator.build()
    as_if_trained(generator)
    module = export.GeneratorModule(generator)
    z = tf.random.stateless_normal([1, generator.latent_size], [0, 0])
    psi = tf.constant([0.7])
    reference = module.serving_default(z, psi)["images"].numpy()
    rows = []

    def add(name, size_bytes, call, images=None):
        seconds = time_call(call, repeats, warmup=1)
        error = None if images is None else float(np.mean(np.abs(images.astype(np.float64) - reference)))
        rows.append(dict(format=name, size_mb=size_bytes / 1e6, ms_per_image=1000 * seconds,
                         mean_abs_uint8_difference=error))
        print_fn(f"{name:>18} {size_bytes / 1e6:9.1f} {1000 * seconds:12.1f}"
                 + ("" if error is None else f" {error:12.3f}"))

    print_fn(f"{'format':>18} {'size MB':>9} {'ms / image':>12} {'mean |Δ| u8':>12}")
    with tempfile.TemporaryDirectory() as out:
        weights = sum(v.numpy().nbytes for v in generator.variables)
        add("Keras (tf.function)", weights, lambda: module.serving_default(z, psi)["images"])
        path = export.export_saved_model(generator, out, print_fn=None)
        serving = tf.saved_model.load(path).signatures["serving_default"]
        add("SavedModel", export.folder_bytes(path), lambda: serving(z=z, truncation_psi=psi)["images"])
        for quantize in export.TFLITE_QUANTIZATIONS:
            tflite_path = export.export_tflite(path, os.path.join(out, f"{quantize or 'float32'}.tflite"),
                                               quantize=quantize)
            runner = export.tflite_runner(tflite_path)
            inputs = dict(z=z.numpy(), truncation_psi=psi.numpy())
            images = runner(**inputs)["images"]
            add(f"TFLite {quantize or 'float32'}", os.path.getsize(tflite_path),
                lambda: runner(**inputs)["images"], images)
    return rows


def run_fid_features(resolution=256, num_images=128, batch=32, repeats=3, print_fn=print):
    """Seconds per 1,000 images of FID's Inception-v3 feature extraction (resize to 299 included;
    random weights: the same arithmetic as ImageNet's); prints and returns one row."""
    from tf_stylegan.metrics import InceptionFeatures

    extractor = InceptionFeatures(weights=None, batch_size=batch)
    images = np.random.default_rng(0).integers(0, 256, (num_images, resolution, resolution, 3), dtype=np.uint8)
    seconds = time_call(lambda: extractor(images), repeats, warmup=1)
    row = dict(resolution=resolution, batch=batch, seconds_per_1000_images=1000 * seconds / num_images,
               peak_rss_mib=peak_rss_mib())
    print_fn(f"tf-stylegan bench fid: Inception-v3 pool features of {resolution}x{resolution} images, batch {batch}: "
             f"{row['seconds_per_1000_images']:.1f} s per 1,000 images (fid50k: "
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
    folder = contextlib.nullcontext(run_dir) if run_dir else tempfile.TemporaryDirectory(prefix="bench-quality-")
    with folder as run_dir:
        start = time.time()
        trainer = configurables.train(run_dir=run_dir, max_seconds=60 * minutes, print_fn=print_fn, **overrides)
        seconds = time.time() - start
        nimg = int(trainer.cur_nimg.numpy())
        values = {}
        for label, network in (("G", trainer.G), ("Gs", trainer.Gs)):
            logged = _last_logged(run_dir, metric.name, nimg / 1000) if label == "Gs" and metrics_every_kimg else None
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
