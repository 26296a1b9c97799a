"""The trainer's own loss and step code against the official training code (../shared/official_ref):
the gradient penalties at every level of progressive growing (loss_ref.npz) and three whole
training iterations from network-small.pkl (step_ref_lod*.npz / .pkl)."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    official_networks,
    official_ref_path,
    small_generator,
    trainer_from_official,
    upsample,
)

from tf_stylegan.formats import official
from tf_stylegan.training import step
from tf_stylegan.training.losses import WGANGP, LogisticR1

PENALTY_RTOL = 1e-4  # the bar for loss_ref.npz
STEP_RTOL = 1e-5  # losses, and each variable's largest difference relative to its largest magnitude
# Variables of G's first layer whose channels with a one-sign pre-activation are compared in units of the
# learning rate (see _linear_const_channels).
LINEAR_CHANNEL_VARIABLES = ("block4/epilogue0/bias", "block4/const/const", "block4/epilogue0/noise/strength")


# ------------------------------------------------------------------------------ penalties (loss_ref)

@pytest.mark.parametrize("index", range(4), ids=["lod0", "lod1", "lod1.5", "lod2"])
def test_penalties_and_scores_equal_the_official_ones_at_every_level(index):
    """R1 and WGAN-GP are gradients with respect to the full-resolution reals / mixed images, as
    official, while the step feeds D the level's r×r images: every key of loss_ref.npz through
    ``step.discriminator_loss``, the function the train step calls."""
    ref = np.load(official_ref_path("loss_ref.npz"))
    _, D, _ = official_networks("network-small.pkl")
    lod = float(ref["lod_values"][index])
    reals = ref[f"reals_{index}"]  # uint8 [4, r, r, 3]
    factor = D.resolution // reals.shape[1]
    # G at this lod emits r×r content nearest-upscaled to 16: the project's G emits the r×r images.
    fakes = ref[f"fakes_{index}"][:, ::factor, ::factor]
    np.testing.assert_array_equal(upsample(fakes, factor), ref[f"fakes_{index}"])
    mixing_factors = ref[f"mixing_factors_{index}"].reshape(-1, 1, 1, 1)
    D.lod.assign(lod)
    try:
        _, r1_metrics = step.discriminator_loss(LogisticR1(10.0), D, reals, fakes, None, lod, D.resolution)
        _, gp_metrics = step.discriminator_loss(WGANGP(), D, reals, fakes, mixing_factors, lod, D.resolution)
    finally:
        D.lod.assign(0.0)
    for ours, key in ((r1_metrics["D/real"], "real_scores"), (r1_metrics["D/r1"], "r1"),
                      (gp_metrics["D/real"], "real_scores"), (gp_metrics["D/mixed"], "mixed_scores"),
                      (gp_metrics["D/gp"], "gp")):
        np.testing.assert_allclose(np.asarray(ours), ref[f"{key}_{index}"], rtol=PENALTY_RTOL, atol=1e-7,
                                   err_msg=f"{key} at lod {lod}")


def test_r1_of_a_level_is_the_full_resolution_penalty_divided_by_the_squared_upscale():
    """The scale factor against the gradient of the upscaled tensor, computed directly by autodiff:
    D of the nearest-upscaled reals at 16² with lod 1 equals D of the 8² reals, and its input gradient's
    squared norm is the level's penalty."""
    _, D, _ = official_networks("network-small.pkl")
    rng = np.random.default_rng(3)
    reals = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    upscaled = tf.constant(upsample(reals))
    D.lod.assign(1.0)
    try:
        with tf.GradientTape() as tape:
            tape.watch(upscaled)
            scores = D(upscaled)
            total = tf.reduce_sum(scores)
        full = tf.reduce_sum(tf.square(tape.gradient(total, upscaled)), axis=[1, 2, 3])
        _, metrics = LogisticR1(10.0).discriminator_loss(D, reals, reals, upscale_factor=2)
    finally:
        D.lod.assign(0.0)
    np.testing.assert_allclose(np.asarray(metrics["D/real"]), np.asarray(scores)[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(metrics["D/r1"]), np.asarray(full), rtol=1e-4)
    _, unscaled = LogisticR1(10.0).discriminator_loss(D, reals, reals)
    np.testing.assert_allclose(np.asarray(unscaled["D/r1"]), 4 * np.asarray(full), rtol=1e-4)


def test_upscale_factor_must_be_a_power_of_two():
    _, D, _ = official_networks("network-small.pkl")
    images = np.zeros((2, 8, 8, 3), np.float32)
    for bad in (0, 3, 1.5):
        with pytest.raises(ValueError, match="upscale_factor"):
            LogisticR1().discriminator_loss(D, images, images, upscale_factor=bad)


# ------------------------------------------------------------------------ whole iterations (step_ref)

def _linear_const_channels(G):
    """Channels of the 4×4 const layer whose pre-activation (const + noise · strength + bias) keeps one
    sign: there lrelu is linear and instance norm removes the bias, so its gradient is zero but for
    float32 rounding, which Adam (dividing by the gradient's own scale) turns into lr-sized steps in
    any direction, in the official code as here. Where such a step moves a pre-activation across
    zero, the const and noise strength of the channel follow: their updates then differ by a
    fraction of the learning rate with the order of float32 sums (the project's convolution
    gradients are forward convolutions, the official ones TensorFlow's backprop kernels)."""
    values = {v.path.split("/", 1)[1]: np.asarray(v) for v in G.variables}
    pre = (values["synthesis/block4/const/const"]
           + values["synthesis/block4/epilogue0/noise/noise_map"]
           * values["synthesis/block4/epilogue0/noise/strength"]
           + values["synthesis/block4/epilogue0/bias"])  # [1, 4, 4, C]
    return np.all(pre > 0, axis=(0, 1, 2)) | np.all(pre < 0, axis=(0, 1, 2))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["0", "1.5"], ids=["lod0", "lod1.5"])
def test_three_training_iterations_equal_the_official_ones(case, tmp_path):
    """The trainer's own step (Gs average and D step with R1, then G step; fresh Adam) on the stored
    inputs of step_ref: every loss and every variable of G, D and Gs after three iterations."""
    ref = np.load(official_ref_path(f"step_ref_lod{case}.npz"))
    trainer = trainer_from_official(tmp_path, LogisticR1(float(ref["r1_gamma"])))
    linear_channels = _linear_const_channels(trainer.G)
    lod = float(ref["lod"])
    for network in (trainer.G, trainer.D, trainer.Gs):
        network.lod.assign(lod)
    trainer.G_opt.learning_rate = trainer.D_opt.learning_rate = float(ref["learning_rate"])
    train_step = trainer.train_step(ref["reals_0"].shape[1], 4)
    beta = tf.constant(float(ref["gs_beta"]), tf.float32)
    for i in range(3):
        metrics = train_step.on_inputs(ref[f"reals_{i}"], ref[f"latents_d_{i}"], ref[f"latents_g_{i}"], beta)
        np.testing.assert_allclose(float(metrics["Loss/D"]), ref[f"d_loss_{i}"], rtol=STEP_RTOL,
                                   err_msg=f"D loss {i}")
        np.testing.assert_allclose(float(metrics["Loss/G"]), ref[f"g_loss_{i}"], rtol=STEP_RTOL,
                                   err_msg=f"G loss {i}")
        assert float(metrics["Train/D_skipped"]) == 0 and float(metrics["Train/G_skipped"]) == 0

    G1, D1, Gs1 = official.load_official_pickle(official_ref_path(f"step_ref_lod{case}.pkl"))
    learning_rate = float(ref["learning_rate"])
    compared, failures = 0, []
    for ours, theirs in ((trainer.G, G1), (trainer.D, D1), (trainer.Gs, Gs1)):
        for mine, official_variable in zip(ours.variables, theirs.variables):
            if "seed_generator" in official_variable.path:
                continue  # the project's own random-number state, not an official variable
            a = np.asarray(mine, np.float64)
            b = np.asarray(official_variable, np.float64)
            compared += 1
            if official_variable.path.endswith(LINEAR_CHANNEL_VARIABLES):
                # Linear channels: the bias moves by rounding-driven ~lr steps; the const and noise
                # strength of those channels follow where it shifts a pre-activation across zero.
                assert np.max(np.abs(a - b)[..., linear_channels], initial=0) < 3 * learning_rate, (
                    official_variable.path)
                a, b = a[..., ~linear_channels], b[..., ~linear_channels]
            relative = np.max(np.abs(a - b), initial=0) / max(np.max(np.abs(b), initial=0), 1e-12)
            if relative > STEP_RTOL:
                failures.append((official_variable.path, relative))
    assert compared == 60 + 21 + 60  # every float variable of G, D and Gs
    assert not failures, failures


def test_on_inputs_refuses_wgan_gp(tmp_path):
    trainer = trainer_from_official(tmp_path, WGANGP())
    with pytest.raises(ValueError, match="R1"):
        trainer.train_step(16, 4).on_inputs(np.zeros((4, 16, 16, 3), np.uint8), np.zeros((4, 32), np.float32),
                                            np.zeros((4, 32), np.float32), tf.constant(0.5))


# ------------------------------------------------------------------------------ per-sample randomness

def test_each_replicas_slice_of_the_step_inputs_equals_the_same_slice_of_the_whole_minibatch():
    """Per-sample keys: drawing samples 3..5 alone gives rows 3..5 of the draw of all 8, so replicas
    draw only their own samples and the result does not depend on their number."""
    G = small_generator(16, latent=8, mapping_layers=2, fmap_base=32, fmap_max=8, style_mixing_prob=0.9)
    seed = tf.constant([5, 11], tf.int64)
    whole = step.draw_inputs(G, seed, 0, 8, 16)
    part = step.draw_inputs(G, seed, 3, 3, 16)
    for name in ("d", "g"):
        np.testing.assert_array_equal(part[name]["z"], whole[name]["z"][3:6])
        np.testing.assert_array_equal(part[name]["mixing_latents"], whole[name]["mixing_latents"][3:6])
        assert int(part[name]["mixing_cutoff"]) == int(whole[name]["mixing_cutoff"])
        assert len(part[name]["noise"]) == len(G.synthesis.noise_sizes(16)) == 6
        for ours, theirs in zip(part[name]["noise"], whole[name]["noise"]):
            np.testing.assert_array_equal(ours, theirs[3:6])
    np.testing.assert_array_equal(part["mixing_factors"], whole["mixing_factors"][3:6])
    # Independent streams: D and G latents differ, and another step draws other values.
    assert not np.allclose(whole["d"]["z"], whole["g"]["z"])
    other = step.draw_inputs(G, tf.constant([5, 12], tf.int64), 0, 8, 16)
    assert not np.allclose(other["d"]["z"], whole["d"]["z"])
    assert np.all((whole["mixing_factors"] >= 0) & (whole["mixing_factors"] < 1))
