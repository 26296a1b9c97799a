"""``bench generator`` and ``bench export``: images/s of generator inference against the roofline, and
the sizes and latency of a generator as Keras, SavedModel and TFLite."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from tf_stylegan.bench.measure import Measurement, peak_rss_mib, roofline, time_call
from tf_stylegan.nn.generator import Generator


def generator_inference(resolution, batch=4, repeats=5, truncation_psi=0.7, **generator_kwargs):
    """(Measurement eager, Measurement tf.function, peak RSS MiB) of generator inference."""
    generator = Generator(resolution=resolution, **generator_kwargs)
    generator.build()
    z = tf.random.normal([batch, generator.latent_size])
    gflop = 2 * batch * generator.macs_per_sample() / 1e9

    def eager():  # at a fixed lod 0, as the inference of a trained network (deploy.signatures)
        return generator(z, truncation_psi=truncation_psi, lod=0.0)

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
        measurements, peak = generator_inference(resolution, batch, repeats, truncation_psi,
                                                 **generator_kwargs)
        for m in measurements:
            row = dict(resolution=resolution, call=m.name, images_per_s=batch / m.seconds,
                       ms_per_batch=1000 * m.seconds, gflop_per_image=m.gflop / batch, gflops=m.gflops,
                       roofline_fraction=m.gflops / best, peak_rss_mib=peak, roofline_gflops=best)
            rows.append(row)
            print_fn(f"{resolution:>10} {m.name:>12} {row['images_per_s']:9.2f} {row['ms_per_batch']:9.0f} "
                     f"{row['gflop_per_image']:10.1f} {m.gflops:8.1f} {100 * row['roofline_fraction']:9.1f}% "
                     f"{peak:13.0f}")
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
