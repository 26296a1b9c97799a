"""Export of the moving-average generator: a SavedModel in TF Serving's layout (the signatures of
:mod:`tf_stylegan.deploy.signatures`), its self-check, and TFLite."""

import json
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from tf_stylegan.deploy.signatures import (
    METADATA_FILE,
    SIGNATURES,
    TFLITE_SIGNATURES,
    GeneratorModule,
)
from tf_stylegan.files import write_atomically
from tf_stylegan.nn import precision

TFLITE_QUANTIZATIONS = (None, "float16", "dynamic")


class ExportError(RuntimeError):
    """An export that could not be written or did not reproduce the Keras generator."""


def next_version(model_dir):
    """1 + the highest numeric version folder in ``model_dir`` (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(entry) for entry in os.listdir(model_dir) if entry.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(generator, out_dir, name="stylegan", version=None, verify=True, print_fn=print):
    """Writes ``out_dir/name/version/`` (TF Serving's layout) and returns its path. ``generator``:
    a Keras generator, or its :class:`GeneratorModule` (whose traced functions are then reused).

    The folder appears atomically (TF Serving never sees a half-written version). With
    ``verify`` the SavedModel is reloaded and every signature compared with the Keras
    generator; a mismatch deletes it and raises :class:`ExportError`.
    """
    module = generator if isinstance(generator, GeneratorModule) else GeneratorModule(generator)
    model_dir = os.path.join(out_dir, name)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise ExportError(f"{path} exists: choose another --version (TF Serving serves the highest)")
    os.makedirs(model_dir, exist_ok=True)
    staging = os.path.join(model_dir, f".staging-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, METADATA_FILE), "w") as file:
            json.dump(module.metadata(), file, indent=1)
        if verify:
            verify_saved_model(module, staging)
        os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if print_fn:
        print_fn(f"exported {path}")
        print_fn(signature_summary(path))
    return path


def example_inputs(module, batch=2, seed=0):
    """Deterministic inputs for every signature of ``module`` ({name: {input: array}}); a conditional
    module's take classes 0, 1, ... in turn."""
    rng = np.random.RandomState(seed)
    z = rng.randn(batch, module.latent_size).astype(np.float32)
    z_b = rng.randn(batch, module.latent_size).astype(np.float32)
    psi = np.linspace(1.0, 0.5, batch).astype(np.float32)
    classes = {}
    if module.label_size:
        classes = {"class_index": np.arange(batch, dtype=np.int64) % module.label_size}
    dlatents = module.mapping(z, np.ones(batch, np.float32), **classes)["dlatents"].numpy()
    noise_seeds = np.array([-1] + list(range(7, 6 + batch)), np.int64)[:batch]
    return {
        "serving_default": dict(z=z, truncation_psi=psi, **classes),
        "generate_from_seeds": dict(seeds=np.arange(batch, dtype=np.int64) + seed, truncation_psi=psi,
                                    **classes),
        "generate_png": dict(seeds=np.arange(batch, dtype=np.int64) + seed, truncation_psi=psi, **classes),
        "mapping": dict(z=z, truncation_psi=psi, **classes),
        "truncate": dict(dlatents=dlatents, truncation_psi=psi),
        "synthesis": dict(dlatents=dlatents, noise_seeds=noise_seeds,
                          noise_scale=np.ones((batch, module.num_layers), np.float32)),
        "synthesis_stored_noise": dict(dlatents=dlatents),
        "synthesis_with_noise": dict(dlatents=dlatents,
                                     noise=rng.randn(batch, module.noise_size).astype(np.float32)),
        "style_mix": dict(z_a=z, z_b=z_b, crossover=np.arange(batch, dtype=np.int32) % module.num_layers + 1,
                          truncation_psi=psi, **classes),
    }


def compare_outputs(expected, actual, float_atol=1e-4, uint8_atol=1, where=""):
    """Raises :class:`ExportError` unless float outputs agree within ``float_atol``, uint8 outputs
    within ``uint8_atol`` (a value on a rounding edge may round either way after float noise), and
    strings (PNG files) decode to images within ``uint8_atol``."""
    for key, want in expected.items():
        want, got = np.asarray(want), np.asarray(actual[key])
        if want.shape != got.shape:
            raise ExportError(f"{where}{key}: shape {got.shape}, expected {want.shape}")
        if want.dtype == object:  # encoded images
            want = np.stack([tf.io.decode_png(item).numpy() for item in want])
            got = np.stack([tf.io.decode_png(item).numpy() for item in got])
        tolerance = uint8_atol if want.dtype == np.uint8 else float_atol
        difference = np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))) if want.size else 0.0
        if not difference <= tolerance:  # also catches NaN
            raise ExportError(f"{where}{key}: max |difference| {difference:g} exceeds {tolerance:g}")


def verify_saved_model(module, path):
    """Reloads ``path`` and checks every signature against ``module`` (the Keras generator)."""
    loaded = tf.saved_model.load(path)
    missing = set(SIGNATURES) - set(loaded.signatures)
    if missing:
        raise ExportError(f"{path}: signatures {sorted(missing)} missing after reload")
    for name, inputs in example_inputs(module).items():
        expected = {key: value.numpy() for key, value in getattr(module, name)(**inputs).items()}
        actual = loaded.signatures[name](**{key: tf.constant(value) for key, value in inputs.items()})
        compare_outputs(expected, {key: value.numpy() for key, value in actual.items()},
                        where=f"exported signature '{name}': ")


def signature_summary(path):
    """``saved_model_cli show --all``-style text of the signatures of a SavedModel."""
    loaded = tf.saved_model.load(path)
    lines = []
    for name in sorted(loaded.signatures):
        function = loaded.signatures[name]
        lines.append(f"signature_def['{name}']:")
        lines.append("  inputs:")
        for key, spec in sorted(function.structured_input_signature[1].items()):
            lines.append(f"    {key}: {spec.dtype.name} {_shape(spec.shape)}")
        lines.append("  outputs:")
        for key, spec in sorted(function.structured_outputs.items()):
            lines.append(f"    {key}: {spec.dtype.name} {_shape(spec.shape)}")
    return "\n".join(lines)


def _shape(shape):
    return "(" + ", ".join("-1" if size is None else str(size) for size in shape.as_list()) + ")"


def export_tflite(saved_model_path, out_path, quantize=None, signature_keys=TFLITE_SIGNATURES):
    """Converts an export to TFLite (float32, or ``quantize`` 'float16' / 'dynamic' range)."""
    if quantize not in TFLITE_QUANTIZATIONS:
        raise ExportError(f"quantize must be one of {TFLITE_QUANTIZATIONS[1:]} or None, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_path,
                                                         signature_keys=list(signature_keys))
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    write_atomically(out_path, flatbuffer)
    return out_path


def tflite_runner(tflite_path, signature="serving_default"):
    """A callable ``runner(**inputs) -> {output: array}`` for one signature of a TFLite file
    (ai-edge-litert, one thread per CPU core)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ExportError("running TFLite models needs ai-edge-litert: pip install ai-edge-litert") from None
    interpreter = Interpreter(model_path=tflite_path, num_threads=os.cpu_count())
    return interpreter.get_signature_runner(signature)


def generator_copy(generator, policy):
    """A copy of ``generator`` with its weights whose layers compute under the Keras dtype
    ``policy`` (e.g. 'mixed_float16', 'float64')."""
    from tf_stylegan.nn.generator import Generator

    with precision.dtype_policy(policy):  # the sublayers take the global policy
        copy = Generator.from_config({**generator.get_config(), "dtype": policy})
        copy.build()
    for target, source in zip(copy.variables, generator.variables):
        target.assign(tf.cast(source, target.dtype))
    return copy


def float32_rounding_error(generator, dlatents):
    """Max |float32 - float64| of the generator's images of ``dlatents`` (stored noise): how far
    float32 arithmetic itself lands from exact in this network. Instance norm of a layer with little
    variance amplifies rounding, so a trained network may be far less precise than 1e-3."""
    exact = generator_copy(generator, "float64")
    images64 = exact.synthesis(tf.constant(dlatents, tf.float64), randomize_noise=False).numpy()
    images32 = generator.synthesis(tf.constant(dlatents, tf.float32), randomize_noise=False).numpy()
    return float(np.max(np.abs(images32 - images64)))


def verify_tflite(module, tflite_path, float_atol=1e-3, batch=2):
    """Runs each TFLite signature on example inputs (several samples, per-sample psi and crossover);
    returns {signature: {output: max |difference| from the Keras generator}} (uint8 outputs in levels).

    Raises :class:`ExportError` when a float32 model's float outputs differ by more than
    ``float_atol``, or any model outputs NaN or infinity (quantized models are otherwise
    measured, not judged). Where the network's own float32 rounding error (against float64,
    :func:`float32_rounding_error`) exceeds ``float_atol``, the tolerance is 4 times that error:
    TFLite's float32 cannot be asked to be more exact than float32 is.
    """
    examples = example_inputs(module, batch=batch)
    if float_atol is not None:
        float_atol = max(float_atol, 4 * float32_rounding_error(
            module.generator, examples["synthesis_stored_noise"]["dlatents"]))
    differences = {}
    for signature in TFLITE_SIGNATURES:
        inputs = examples[signature]
        expected = {key: value.numpy() for key, value in getattr(module, signature)(**inputs).items()}
        actual = tflite_runner(tflite_path, signature)(**inputs)
        if not all(np.all(np.isfinite(value)) for value in actual.values()):
            raise ExportError(f"TFLite signature '{signature}' outputs NaN or infinity (a float16 model of a "
                              "network with a zero-variance layer, such as an untrained one, does)")
        differences[signature] = {
            key: float(np.max(np.abs(value.astype(np.float64) - actual[key])))
            for key, value in expected.items()}
        if float_atol is not None:
            compare_outputs(expected, actual, float_atol=float_atol,
                            uint8_atol=1 + int(np.ceil(127.5 * float_atol)),
                            where=f"TFLite signature '{signature}': ")
    return differences


def folder_bytes(path):
    """Total size of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def tflite_latency(tflite_path, latent_size, repeats=3, label_size=0):
    """Median seconds per image of the TFLite ``serving_default`` signature (batch 1; class 0 of a
    conditional model)."""
    runner = tflite_runner(tflite_path)
    inputs = dict(z=np.random.RandomState(0).randn(1, latent_size).astype(np.float32),
                  truncation_psi=np.ones(1, np.float32))
    if label_size:
        inputs["class_index"] = np.zeros(1, np.int64)
    runner(**inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(**inputs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))

