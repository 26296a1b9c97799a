"""Behaviour of the Generator and Discriminator: shapes, sizes, truncation, mixing, training, noise, lod."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    LATENT,
    box_down,
    latents,
    perturb,
    small_discriminator,
    small_generator,
    upsample,
)

from tf_stylegan.deploy.signatures import GeneratorModule
from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.nn.synthesis import SynthesisNetwork

RESOLUTIONS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def block_spread(images):
    """max - min within every 2x2 block of NHWC images (0 where a block is constant)."""
    n, h, w, c = images.shape
    blocks = np.asarray(images).reshape(n, h // 2, 2, w // 2, 2, c)
    return blocks.max(axis=(2, 4)) - blocks.min(axis=(2, 4))


def copy_variables(sources, targets):
    """Assigns the variables of each source layer to the matching target layer."""
    for source, target in zip(sources, targets, strict=True):
        assert len(source.weights) == len(target.weights)
        for src, dst in zip(source.weights, target.weights):
            assert tuple(src.shape) == tuple(dst.shape), (src.path, dst.path)
            dst.assign(src)


# ------------------------------------------------------------------------------------------------
# Shapes and sizes


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_output_shapes(resolution):
    generator = small_generator(resolution, mapping_layers=2)
    discriminator = small_discriminator(resolution, mbstd_group_size=2)
    num_layers = 2 * int(np.log2(resolution)) - 2
    assert generator.num_layers == num_layers
    images, dlatents = generator(latents(2), return_dlatents=True)
    assert tuple(images.shape) == (2, resolution, resolution, 3)
    assert tuple(dlatents.shape) == (2, num_layers, LATENT)
    assert tuple(generator(latents(2)).shape) == (2, resolution, resolution, 3)
    scores = discriminator(images)
    assert tuple(scores.shape) == (2, 1)
    assert np.all(np.isfinite(images)) and np.all(np.isfinite(scores))


def test_paper_default_parameter_counts():
    generator = Generator()
    generator.build()
    assert generator.num_layers == 18
    assert count(generator.mapping.trainable_weights) == 2_101_248
    assert count(generator.synthesis.trainable_weights) == 24_118_379
    assert count(generator.trainable_weights) == 26_219_627
    discriminator = Discriminator()
    discriminator.build()
    assert count(discriminator.trainable_weights) == 23_087_249


# ------------------------------------------------------------------------------------------------
# Truncation


@pytest.fixture(scope="module")
def generator64():
    """64x64 (10 dlatent layers, so cutoff 8 leaves two layers alone), with a known w_avg."""
    generator = perturb(small_generator(64, mapping_layers=3))
    generator.w_avg.assign(np.random.default_rng(1).normal(0.0, 1.0, LATENT).astype(np.float32))
    return generator


def truncated(w, w_avg, psi, cutoff):
    w = np.asarray(w)
    out = w.copy()
    out[:, :cutoff] = w_avg + np.float32(psi) * (w[:, :cutoff] - w_avg)
    return out


@pytest.mark.parametrize("psi, cutoff", [(0.7, 8), (0.5, 3), (0.0, 1), (-0.4, 10), (1.5, 5)])
def test_truncation_lerps_layers_below_cutoff(generator64, psi, cutoff):
    z = latents(3, seed=2)
    w = np.asarray(generator64.mapping(z))
    w_avg = np.asarray(generator64.w_avg)
    _, dlatents = generator64(z, truncation_psi=psi, truncation_cutoff=cutoff, return_dlatents=True)
    dlatents = np.asarray(dlatents)
    expected = truncated(w, w_avg, psi, cutoff)
    np.testing.assert_allclose(dlatents, expected, rtol=0, atol=1e-6)
    # Layers at and above the cutoff are w itself.
    np.testing.assert_allclose(dlatents[:, cutoff:], w[:, cutoff:], rtol=0, atol=1e-6)
    if psi != 1:
        assert np.abs(dlatents[:, :cutoff] - w[:, :cutoff]).max() > 1e-3


@pytest.mark.parametrize("psi, cutoff", [(1.0, 8), (1, 3), (0.5, 0), (0.7, -2)])
def test_truncation_disabled(generator64, psi, cutoff):
    z = latents(3, seed=3)
    _, dlatents = generator64(z, truncation_psi=psi, truncation_cutoff=cutoff, return_dlatents=True)
    np.testing.assert_array_equal(np.asarray(dlatents), np.asarray(generator64.mapping(z)))


def test_truncation_defaults_from_constructor(generator64):
    z = latents(3, seed=4)
    w = np.asarray(generator64.mapping(z))
    w_avg = np.asarray(generator64.w_avg)
    assert (generator64.truncation_psi, generator64.truncation_cutoff) == (0.7, 8)
    _, dlatents = generator64(z, return_dlatents=True)
    np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, 0.7, 8), rtol=0, atol=1e-6)
    # Only psi given: the constructor's cutoff applies, and vice versa.
    _, dlatents = generator64(z, truncation_psi=0.3, return_dlatents=True)
    np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, 0.3, 8), rtol=0, atol=1e-6)
    _, dlatents = generator64(z, truncation_cutoff=2, return_dlatents=True)
    np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, 0.7, 2), rtol=0, atol=1e-6)

    other = small_generator(64, mapping_layers=3, truncation_psi=0.25, truncation_cutoff=3)
    other.w_avg.assign(w_avg)
    w = np.asarray(other.mapping(z))
    _, dlatents = other(z, return_dlatents=True)
    np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, 0.25, 3), rtol=0, atol=1e-6)


def test_truncation_tensor_psi_in_tf_function(generator64):
    z = latents(3, seed=5)
    w = np.asarray(generator64.mapping(z))
    w_avg = np.asarray(generator64.w_avg)

    @tf.function
    def run(z, psi, cutoff):
        return generator64(z, truncation_psi=psi, truncation_cutoff=cutoff, return_dlatents=True)[1]

    for psi, cutoff in [(0.5, 3), (1.0, 8), (0.8, 10), (0.2, 0)]:
        dlatents = run(tf.constant(z), tf.constant(psi, tf.float32), tf.constant(cutoff, tf.int32))
        np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, psi, cutoff), rtol=0, atol=1e-6)

    @tf.function
    def run_python_cutoff(z, psi):
        return generator64(z, truncation_psi=psi, truncation_cutoff=4, return_dlatents=True)[1]

    dlatents = run_python_cutoff(tf.constant(z), tf.constant(0.6))
    np.testing.assert_allclose(np.asarray(dlatents), truncated(w, w_avg, 0.6, 4), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Style mixing


@pytest.fixture(scope="module")
def generator16():
    generator = perturb(small_generator(16, mapping_layers=3))
    generator.w_avg.assign(np.random.default_rng(2).normal(0.0, 1.0, LATENT).astype(np.float32))
    return generator


def test_mix_selects_layers(generator16):
    rng = np.random.default_rng(6)
    num_layers = generator16.num_layers
    a = rng.standard_normal((2, num_layers, LATENT)).astype(np.float32)
    b = rng.standard_normal((2, num_layers, LATENT)).astype(np.float32)
    for k in range(num_layers + 1):
        mixed = np.asarray(generator16.mix(a, b, k))
        np.testing.assert_array_equal(mixed[:, :k], a[:, :k])
        np.testing.assert_array_equal(mixed[:, k:], b[:, k:])


def test_mixed_synthesis(generator16):
    dl_a = np.asarray(generator16.mapping(latents(2, seed=7)))
    dl_b = np.asarray(generator16.mapping(latents(2, seed=8)))
    k = 3
    synth = lambda dl: np.asarray(generator16.synthesis(dl, randomize_noise=False))
    img_a, img_b = synth(dl_a), synth(dl_b)
    img_mix = synth(generator16.mix(dl_a, dl_b, k))
    img_hand = synth(np.concatenate([dl_a[:, :k], dl_b[:, k:]], axis=1))
    assert np.abs(img_mix - img_a).max() > 1e-3
    assert np.abs(img_mix - img_b).max() > 1e-3
    np.testing.assert_allclose(img_mix, img_hand, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Training-mode semantics


@pytest.mark.parametrize("beta", [None, 0.9])
def test_training_call_updates_w_avg(beta):
    kwargs = {} if beta is None else dict(dlatent_avg_beta=beta)
    generator = small_generator(8, mapping_layers=3, seed=11, **kwargs)
    beta = 0.995 if beta is None else beta
    w_avg = (3.0 + np.random.default_rng(9).standard_normal(LATENT)).astype(np.float32)
    generator.w_avg.assign(w_avg)
    for seed in (10, 11):
        z = latents(4, seed=seed)
        batch_mean = np.asarray(generator.mapping(z))[:, 0].mean(axis=0)
        expected = batch_mean + (w_avg - batch_mean) * beta
        generator(z, training=True)
        updated = np.asarray(generator.w_avg)
        np.testing.assert_allclose(updated, expected, rtol=0, atol=1e-6)
        assert np.abs(updated - w_avg).max() > 1e-3
        w_avg = updated
    # Inference calls leave it alone.
    generator(latents(4, seed=12))
    generator(latents(4, seed=13), training=False, truncation_psi=0.5)
    np.testing.assert_array_equal(np.asarray(generator.w_avg), w_avg)


def test_style_mixing_regularization_crossover():
    generator = perturb(small_generator(16, mapping_layers=3, style_mixing_prob=1.0, seed=21))
    num_layers = generator.num_layers
    z = latents(3, seed=14)
    w = np.asarray(generator.mapping(z))
    crossovers, seconds = [], []
    for _ in range(12):
        _, dlatents = generator(z, training=True, return_dlatents=True)
        dlatents = np.asarray(dlatents)
        differs = [not np.array_equal(dlatents[:, i], w[:, i]) for i in range(num_layers)]
        k = differs.index(True) if any(differs) else num_layers
        assert 1 <= k < num_layers, f"no crossover in [1, {num_layers}): k = {k}"
        np.testing.assert_array_equal(dlatents[:, :k], w[:, :k])
        for i in range(k, num_layers):
            np.testing.assert_array_equal(dlatents[:, i], dlatents[:, k])
        assert np.abs(dlatents[:, k] - w[:, k]).max(axis=-1).min() > 1e-3  # every sample mixed
        crossovers.append(k)
        seconds.append(dlatents[:, k])
    assert len(set(crossovers)) > 1, f"crossover never varies: {crossovers}"
    assert np.abs(seconds[0] - seconds[1]).max() > 1e-3  # a fresh second latent per call


def test_no_style_mixing_with_probability_zero():
    generator = small_generator(16, mapping_layers=3, style_mixing_prob=0.0, seed=22)
    generator.w_avg.assign(np.full(LATENT, 2.0, np.float32))  # truncation would show
    z = latents(3, seed=15)
    w = np.asarray(generator.mapping(z))
    for _ in range(5):
        _, dlatents = generator(z, training=True, return_dlatents=True)
        np.testing.assert_array_equal(np.asarray(dlatents), w)


# ------------------------------------------------------------------------------------------------
# Noise


def test_fresh_noise(generator16):
    z = latents(2, seed=16)
    first = np.asarray(generator16(z))
    second = np.asarray(generator16(z))
    assert np.abs(first - second).max() > 1e-3
    fixed1 = np.asarray(generator16(z, randomize_noise=False))
    fixed2 = np.asarray(generator16(z, randomize_noise=False))
    np.testing.assert_array_equal(fixed1, fixed2)
    assert np.abs(fixed1 - first).max() > 1e-3
    # Fresh noise is drawn per sample: two equal latents give two different images.
    same = np.repeat(z[:1], 2, axis=0)
    images = np.asarray(generator16(same))
    assert np.abs(images[0] - images[1]).max() > 1e-3
    images = np.asarray(generator16(same, randomize_noise=False))
    np.testing.assert_allclose(images[0], images[1], rtol=0, atol=1e-5)  # batched kernels: not bitwise


def test_seeded_fresh_noise_is_reproducible():
    z = latents(2, seed=17)
    reference = perturb(small_generator(16, mapping_layers=3, seed=1234))
    twin = small_generator(16, mapping_layers=3, seed=1234)
    other_seed = small_generator(16, mapping_layers=3, seed=98765)
    twin.set_weights(reference.get_weights())
    other_seed.set_weights(reference.get_weights())
    calls = [np.asarray(reference(z)), np.asarray(reference(z))]
    twin_calls = [np.asarray(twin(z)), np.asarray(twin(z))]
    assert np.abs(calls[0] - calls[1]).max() > 1e-3  # still fresh noise on every call
    np.testing.assert_array_equal(calls[0], twin_calls[0])
    np.testing.assert_array_equal(calls[1], twin_calls[1])
    assert np.abs(np.asarray(other_seed(z)) - calls[0]).max() > 1e-3


# ------------------------------------------------------------------------------------------------
# Level of detail


def test_lod_is_non_trainable(generator16):
    discriminator = small_discriminator(16)
    for network in (generator16, discriminator):
        assert tuple(network.lod.shape) == ()
        assert not network.lod.trainable
        assert any(v is network.lod for v in network.non_trainable_weights)
        assert not any(v is network.lod for v in network.trainable_weights)


def test_generator_lod1_is_upsampled_half_resolution():
    generator = perturb(small_generator(16, mapping_layers=3), seed=3)
    half = small_generator(8, mapping_layers=3)
    copy_variables(generator.synthesis.blocks[:-1], half.synthesis.blocks)
    copy_variables(generator.synthesis.to_rgb[:-1], half.synthesis.to_rgb)
    dlatents = np.random.default_rng(18).standard_normal((2, generator.num_layers, LATENT)).astype(np.float32)
    synth = lambda g, dl: np.asarray(g.synthesis(dl, randomize_noise=False))
    low = synth(half, dlatents[:, :half.num_layers])
    full = synth(generator, dlatents)
    assert block_spread(full).max() > 1e-2  # lod 0 has detail below 2x2
    try:
        generator.lod.assign(1.0)
        at_lod1 = synth(generator, dlatents)
        np.testing.assert_allclose(at_lod1, upsample(low), rtol=0, atol=1e-5)
        assert block_spread(at_lod1).max() < 1e-5
        # The whole generator, with fresh noise, too.
        assert block_spread(np.asarray(generator(latents(2, seed=19)))).max() < 1e-5
        generator.lod.assign(0.5)
        np.testing.assert_allclose(synth(generator, dlatents), 0.5 * (full + upsample(low)), rtol=0,
                                   atol=1e-5)
    finally:
        generator.lod.assign(0.0)
    np.testing.assert_array_equal(synth(generator, dlatents), full)


@pytest.mark.parametrize("lod", [0.0, 0.25, 1.0, 1.5, 2.0, 2.7])
def test_fixed_lod_equals_the_lod_variable(lod):
    generator = perturb(small_generator(32, mapping_layers=3), seed=5)
    dlatents = np.random.default_rng(21).standard_normal((2, generator.num_layers, LATENT)).astype(np.float32)
    try:
        generator.lod.assign(lod)
        from_variable = np.asarray(generator.synthesis(dlatents, randomize_noise=False))
    finally:
        generator.lod.assign(0.0)
    fixed = np.asarray(generator.synthesis(dlatents, randomize_noise=False, lod=lod))
    # Equal up to rounding: the variable's blend of weight 1 is a + (b - a), the fixed lod's is b.
    np.testing.assert_allclose(fixed, from_variable, rtol=0, atol=1e-5)


def test_fixed_lod0_computes_only_the_top_to_rgb():
    generator = small_generator(32, mapping_layers=3)
    dlatents = tf.zeros((1, generator.num_layers, LATENT))

    def to_rgb_sizes(**kwargs):
        graph = tf.function(lambda w: generator.synthesis(w, **kwargs)).get_concrete_function(dlatents).graph
        return {int(match.group(1)) for op in graph.get_operations()
                for match in [re.search(r"/to_rgb(\d+)", op.name)] if match}

    assert to_rgb_sizes(lod=0.0) == {32}
    assert to_rgb_sizes(lod=1.5) == {8, 16}  # 32 px: all upsampled 16 px; 8 px: half of the 16 px blend
    assert to_rgb_sizes() == {4, 8, 16, 32}


@pytest.mark.parametrize("growing", [False, True])
def test_signatures_of_a_growing_network_follow_its_lod(growing):
    generator = perturb(small_generator(16, mapping_layers=3), seed=6)
    module = GeneratorModule(generator, growing=growing)  # made at lod 0
    dlatents = np.random.default_rng(22).standard_normal((2, generator.num_layers, LATENT)).astype(np.float32)
    at_lod0 = np.asarray(module.synthesis_stored_noise(dlatents)["raw_images"])
    try:
        generator.lod.assign(1.0)
        at_lod1 = np.asarray(module.synthesis_stored_noise(dlatents)["raw_images"])
    finally:
        generator.lod.assign(0.0)
    assert block_spread(at_lod0).max() > 1e-2
    if growing:  # the lod variable is read: at lod 1 the images are upsampled 8 px ones
        assert block_spread(at_lod1).max() < 1e-5
    else:  # traced at a fixed lod 0, as a finished network
        np.testing.assert_array_equal(at_lod1, at_lod0)


def test_discriminator_lod1_ignores_finest_details():
    discriminator = perturb(small_discriminator(16, mbstd_group_size=4), seed=4)
    half = small_discriminator(8, mbstd_group_size=4)
    copy_variables(discriminator.blocks[1:], half.blocks)
    copy_variables(discriminator.from_rgb[1:], half.from_rgb)
    rng = np.random.default_rng(20)
    images = rng.standard_normal((4, 16, 16, 3)).astype(np.float32)
    checker = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)
    pattern = np.tile(checker, (8, 8))[None, :, :, None] * rng.uniform(0.5, 2.0, (1, 1, 1, 3))
    pattern = pattern.astype(np.float32)  # zero mean over every 2x2 block
    np.testing.assert_allclose(box_down(pattern), 0.0, atol=1e-7)
    score = lambda x: np.asarray(discriminator(x))
    assert np.abs(score(images) - score(images + pattern)).max() > 1e-3  # lod 0 sees the pattern
    try:
        discriminator.lod.assign(1.0)
        np.testing.assert_allclose(score(images + pattern), score(images), rtol=0, atol=1e-5)
        np.testing.assert_allclose(score(images), np.asarray(half(box_down(images))), rtol=0, atol=1e-5)
    finally:
        discriminator.lod.assign(0.0)


# ------------------------------------------------------------------------------------------------
# Bad inputs


def test_generator_rejects_wrong_latent_width(generator16):
    with pytest.raises(ValueError, match=rf"z must have shape \[N, {LATENT}\]"):
        generator16(latents(2, size=LATENT + 1))


def test_generator_rejects_unbatched_latent(generator16):
    with pytest.raises(ValueError, match=rf"z must have shape \[N, {LATENT}\]"):
        generator16(latents(1)[0])


@pytest.mark.parametrize("network", [Generator, Discriminator])
def test_widths_that_leave_no_feature_maps_are_refused(network):
    with pytest.raises(ValueError, match="no feature maps at stage 9"):
        network(resolution=1024, fmap_base=256, fmap_max=32)


def test_discriminator_batch_must_fill_the_stddev_groups():
    discriminator = small_discriminator(16)
    with pytest.raises(ValueError, match="batch 6 is not a multiple of the group size 4"):
        discriminator(np.zeros((6, 16, 16, 3), np.float32))
    assert discriminator(np.zeros((3, 16, 16, 3), np.float32)).shape == (3, 1)  # one group of 3


@pytest.mark.parametrize("key", ["truncation_psi", "truncation_cutoff"])
def test_none_in_truncation_settings_means_off_as_official(key):
    generator = small_generator(8, **{key: None})
    generator.w_avg.assign(np.ones(LATENT, np.float32))
    z = latents(2)
    _, dlatents = generator(z, return_dlatents=True)
    np.testing.assert_array_equal(np.asarray(dlatents), np.asarray(generator.mapping(z)))


@pytest.mark.parametrize("shape", [(2, 5, LATENT), (2, 7, LATENT), (2, 6, LATENT + 1), (2, LATENT)])
def test_synthesis_rejects_wrong_dlatents(generator16, shape):
    with pytest.raises(ValueError, match=rf"dlatents must have shape \[N, 6, {LATENT}\]"):
        generator16.synthesis(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(4, 12, 12, 3), (4, 3, 16, 16), (4, 16, 16, 1), (4, 32, 32, 3),
                                   (4, 16, 8, 3), (4, 2, 2, 3)])
def test_discriminator_rejects_wrong_images(shape):
    discriminator = small_discriminator(16)
    with pytest.raises(ValueError, match=r"images must have shape \[N, r, r, 3\] \(NHWC\) "
                                         r"with r a power of two from 4 to 16"):
        discriminator(np.zeros(shape, np.float32))


# ------------------------------------------------------------------------------------------------
# Training at a lower resolution: only the blocks up to it run


@pytest.mark.parametrize("lod", [1.0, 1.5, 2.0])
def test_generator_at_lower_resolution_equals_the_full_output_downsampled(lod):
    generator = perturb(small_generator(16))
    generator.lod.assign(lod)
    z = latents(2)
    full = np.asarray(generator(z, truncation_psi=1.0, randomize_noise=False))
    size = 16 // 2 ** int(lod)
    low = np.asarray(generator(z, truncation_psi=1.0, randomize_noise=False, resolution=size))
    assert low.shape == (2, size, size, 3)
    np.testing.assert_allclose(low, box_down(full, 16 // size), atol=1e-5)


@pytest.mark.parametrize("lod", [1.0, 1.5, 2.0])
def test_discriminator_at_lower_resolution_equals_the_full_network_on_upsampled_images(lod):
    discriminator = perturb(small_discriminator(16))
    discriminator.lod.assign(lod)
    size = 16 // 2 ** int(lod)
    images = np.random.default_rng(3).normal(size=(4, size, size, 3)).astype(np.float32)
    upsampled = upsample(images, 16 // size)
    np.testing.assert_allclose(np.asarray(discriminator(images)), np.asarray(discriminator(upsampled)),
                               atol=1e-5)


def test_explicit_noise_and_mixing_inputs(generator16):
    z, z2 = latents(2, seed=1), latents(2, seed=2)
    synthesis = generator16.synthesis
    stored = [np.tile(np.asarray(e.noise.noise_map), [2, 1, 1, 1])
              for block in synthesis.blocks for e in (block.epilogue0, block.epilogue1)]
    assert [m.shape[1] for m in stored] == synthesis.noise_sizes()
    w_avg = np.asarray(generator16.w_avg).copy()
    mixed, dlatents = generator16(z, training=True, noise=stored, mixing_latents=z2, mixing_cutoff=2,
                                  return_dlatents=True)
    generator16.w_avg.assign(w_avg)
    expected = generator16.mix(generator16.mapping(z), generator16.mapping(z2), 2)
    np.testing.assert_allclose(np.asarray(dlatents), np.asarray(expected), atol=1e-6)
    reference = synthesis(expected, randomize_noise=False)
    np.testing.assert_allclose(np.asarray(mixed), np.asarray(reference), atol=1e-5)
    with pytest.raises(ValueError, match="noise must hold 6 maps"):
        synthesis(expected, noise=stored[:4])


@pytest.mark.parametrize("resolution", [0, 2, 3, 6, 48, 100, 1000])
@pytest.mark.parametrize("network", [Generator, Discriminator, SynthesisNetwork])
def test_resolution_must_be_power_of_two(network, resolution):
    with pytest.raises(ValueError, match="power of two"):
        network(resolution=resolution)


# ------------------------------------------------------------------------------------------------
# Config round trip


def variable_signature(layer):
    return [(v.path, tuple(v.shape), v.trainable) for v in layer.weights]


def test_generator_config_round_trip():
    generator = small_generator(
        32, mapping_layers=3, mapping_fmaps=24, num_channels=1, fused_scale=True, truncation_psi=0.5,
        truncation_cutoff=3, style_mixing_prob=0.25, dlatent_avg_beta=0.9, seed=7, name="g_custom")
    config = generator.get_config()
    rebuilt = Generator.from_config(config)
    rebuilt.build()
    assert variable_signature(rebuilt) == variable_signature(generator)
    assert rebuilt.get_config() == config
    assert (rebuilt.truncation_psi, rebuilt.truncation_cutoff, rebuilt.style_mixing_prob,
            rebuilt.dlatent_avg_beta, rebuilt.seed) == (0.5, 3, 0.25, 0.9, 7)
    assert all(block.fused for block in rebuilt.synthesis.blocks[1:])
    # Through Keras serialization as well.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(generator))
    assert restored.built  # from its build_config
    assert variable_signature(restored) == variable_signature(generator)
    # Equal weights give equal output.
    rebuilt.set_weights(generator.get_weights())
    z = latents(2, size=LATENT)
    np.testing.assert_array_equal(np.asarray(rebuilt(z, randomize_noise=False)),
                                  np.asarray(generator(z, randomize_noise=False)))


def test_discriminator_config_round_trip():
    discriminator = small_discriminator(32, num_channels=1, mbstd_group_size=2, fused_scale=True,
                                        fmap_max=16, name="d_custom")
    config = discriminator.get_config()
    rebuilt = Discriminator.from_config(config)
    rebuilt.build()
    assert variable_signature(rebuilt) == variable_signature(discriminator)
    assert rebuilt.get_config() == config
    assert all(block.fused for block in rebuilt.blocks[:-1])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(discriminator))
    assert restored.built  # from its build_config
    assert variable_signature(restored) == variable_signature(discriminator)
