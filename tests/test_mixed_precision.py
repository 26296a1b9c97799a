"""Mixed precision (``train.mixed_precision``), tested on the CPU: G and D compute in float16 /
bfloat16 with float32 variables, the mapping network and Gs stay float32, a step's losses stay
within a stated tolerance of float32's, float16 updates are loss-scaled (an overflow skips the
update and halves the scale) and a short run stays finite and resumes its loss scales."""

import re

import numpy as np
import pytest
import tensorflow as tf
from helpers import one_replica_trainer, train_in_process

from tf_stylegan.nn import layers, precision
from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import EqualizedConv2D
from tf_stylegan.training.losses import LogisticR1

NETWORK = dict(fmap_base=128, fmap_max=64, latent_size=32, dlatent_size=32, mapping_fmaps=32,
               mapping_layers=2)
BATCH = 8
# First-step values relative to float32's, measured on these networks: float16 2e-4 (D loss), 1.5e-3
# (G loss), 5e-3 (R1: a gradient's squared norm); bfloat16 (8 mantissa bits) 1.3e-3, 6e-3 and 1.8e-2.
# Mean D scores (near 0 at times) absolutely, to the loss tolerance. Asserted with headroom.
LOSS_RTOL = {"float16": 5e-3, "bfloat16": 2e-2}
R1_RTOL = {"float16": 2e-2, "bfloat16": 6e-2}


def _levels():
    rng = np.random.RandomState(0)
    return {size: rng.randint(0, 256, (BATCH, size, size, 3)).astype(np.uint8) for size in (4, 8, 16)}


def _trainer(run_dir, mixed_precision):
    trainer = one_replica_trainer(run_dir, _levels(), NETWORK, dict(fmap_base=128, fmap_max=64),
                                  LogisticR1(10.0), mixed_precision=mixed_precision)
    for variable in (trainer.G.lod, trainer.D.lod, trainer.Gs.lod):
        variable.assign(0.0)
    trainer.G_opt.learning_rate = trainer.D_opt.learning_rate = 0.001
    return trainer


def _first_step(trainer):
    latents = np.random.RandomState(1).randn(BATCH, NETWORK["latent_size"]).astype(np.float32)
    step = trainer.train_step(16, BATCH)
    return {name: float(value) for name, value in
            step.on_inputs(_levels()[16], latents, latents, tf.constant(0.99)).items()}


def test_an_unknown_precision_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision='float8'.*None, 'float16' or 'bfloat16'"):
        _trainer(tmp_path, "float8")


@pytest.mark.parametrize("mixed_precision", ["float16", "bfloat16"])
def test_g_and_d_compute_in_the_narrow_type_with_float32_variables(tmp_path, mixed_precision):
    trainer = _trainer(tmp_path, mixed_precision)
    assert trainer.G.synthesis.compute_dtype == mixed_precision
    assert trainer.D.compute_dtype == mixed_precision
    assert trainer.G.mapping.compute_dtype == "float32"  # W space and w_avg
    assert all(layer.compute_dtype == "float32" for layer in trainer.G.mapping.dense_layers)
    assert trainer.Gs.synthesis.compute_dtype == "float32"  # the network that is sampled and exported
    assert {v.dtype for n in (trainer.G, trainer.D, trainer.Gs) for v in n.trainable_variables} == {"float32"}
    assert bool(trainer.loss_scales) == (mixed_precision == "float16")
    latents = tf.random.normal([BATCH, NETWORK["latent_size"]])
    assert trainer.G(latents).dtype == mixed_precision
    assert trainer.Gs(latents).dtype == tf.float32


@pytest.mark.parametrize("mixed_precision", ["float16", "bfloat16"])
def test_first_step_losses_are_within_tolerance_of_float32(tmp_path, mixed_precision):
    reference = _first_step(_trainer(tmp_path / "float32", None))
    mixed = _first_step(_trainer(tmp_path / mixed_precision, mixed_precision))
    tolerance = LOSS_RTOL[mixed_precision]
    for name in ("Loss/D", "Loss/G"):
        np.testing.assert_allclose(mixed[name], reference[name], rtol=tolerance, err_msg=name)
    for name in ("D/real", "D/fake"):  # mean scores, O(1) but possibly near 0: absolute
        np.testing.assert_allclose(mixed[name], reference[name], atol=tolerance, err_msg=name)
    np.testing.assert_allclose(mixed["D/r1"], reference["D/r1"], rtol=R1_RTOL[mixed_precision])
    assert mixed["Train/D_skipped"] == 0


def test_instance_norm_of_a_constant_channel_is_exact_in_float16():
    # The const input starts at ones: a channel with std 0, normalised by 1/sqrt(1e-8) = 1e4. The folded
    # shift (shift - mean * scale) would cancel to an error of several units in float16.
    x = tf.ones([2, 4, 4, 8], tf.float16)
    scale = tf.fill([2, 1, 1, 8], tf.constant(1.5, tf.float16))
    shift = tf.fill([2, 1, 1, 8], tf.constant(0.25, tf.float16))
    np.testing.assert_array_equal(sg_ops.adaptive_instance_norm(x, scale, shift).numpy(), 0.25)


def test_float16_conv_outputs_are_clamped_and_float32_ones_are_not():
    conv = EqualizedConv2D(4, 3, use_bias=False, dtype="mixed_float16")
    conv.build((None, 8, 8, 4))
    conv.weight.assign(np.full((3, 3, 4, 4), 1000.0, np.float32))  # outputs ~1e4 after the He scale
    x = tf.ones([1, 8, 8, 4])
    assert float(tf.reduce_max(conv(x))) == layers.FLOAT16_CLAMP
    reference = EqualizedConv2D(4, 3, use_bias=False)
    reference.build((None, 8, 8, 4))
    reference.weight.assign(conv.weight)
    assert float(tf.reduce_max(reference(x))) > 1000


def test_an_overflow_skips_the_update_and_halves_the_loss_scale(tmp_path):
    trainer = _trainer(tmp_path, "float16")
    trainer.loss_scales["D"].log2_scale.assign(100.0)  # 2**100: every float16 gradient overflows
    before = [np.asarray(v) for v in trainer.D.trainable_variables]
    metrics = _first_step(trainer)
    assert metrics["Train/D_skipped"] == 1
    assert metrics["Train/D_loss_scale_log2"] == pytest.approx(99.0)
    for old, variable in zip(before, trainer.D.trainable_variables):
        np.testing.assert_array_equal(np.asarray(variable), old)
    assert int(trainer.D_opt.iterations.numpy()) == 0
    metrics = _first_step(trainer)  # 2**99 still overflows; a scale that fits gives finite updates
    assert metrics["Train/D_skipped"] == 1
    trainer.loss_scales["D"].log2_scale.assign(6.0)
    metrics = _first_step(trainer)
    assert metrics["Train/D_skipped"] == 0
    assert metrics["Train/D_loss_scale_log2"] == pytest.approx(6.0005)


def test_loss_scale_follows_the_official_rule():
    scale = precision.DynamicLossScale("test")
    assert float(scale.scale(tf.constant(1.0))) == 64.0  # 2**6
    scale.update(tf.constant(0.0))
    assert float(scale.log2_scale) == pytest.approx(6.0005)
    scale.update(tf.constant(1.0))
    assert float(scale.log2_scale) == pytest.approx(5.0005)
    gradients = scale.unscale([tf.constant([64.0], tf.float32), None])
    np.testing.assert_allclose(gradients[0].numpy(), [64.0 / 2 ** 5.0005], rtol=1e-6)
    assert gradients[1] is None


@pytest.mark.slow
def test_a_float16_run_stays_finite_and_resumes_its_loss_scales(tmp_path):
    bindings = ["train.mixed_precision = 'float16'"]
    trainer, lines = train_in_process(tmp_path, bindings)
    progress = [line for line in lines if line.startswith("kimg")]
    assert progress and not any(re.search(r"\b(nan|inf)\b", line) for line in progress), progress
    assert trainer.skipped.counts["D"] + trainer.skipped.counts["G"] <= 4  # the first G steps may overflow
    assert bool(trainer._weights_finite())
    scales = {name: float(scale.log2_scale.numpy()) for name, scale in trainer.loss_scales.items()}
    assert set(scales) == {"G", "D"} and all(value != 6.0 for value in scales.values())
    resumed, _ = train_in_process(tmp_path, ["train.total_kimg = 0.256"], resume=True)
    assert {name: float(scale.log2_scale.numpy()) for name, scale in resumed.loss_scales.items()} == scales
    assert resumed.G.synthesis.compute_dtype == "float16"  # config.gin of the run keeps the policy
