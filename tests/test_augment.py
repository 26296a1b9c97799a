"""Adaptive discriminator augmentation: the transforms' invariants and p's adjustment in training."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import small_generator, train_in_process
from PIL import Image

from tf_stylegan.training.augment import NORMALS, UNIFORMS, Augmentation, AugmentPipe
from tf_stylegan.training.step import draw_inputs

ONLY = {name: 0.0 for name in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                               "contrast", "lumaflip", "hue", "saturation")}


def _images(n=4, size=16, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)), tf.float32)


def _draws(n=4, seed=1, **fixed):
    """Random draws, with the named uniforms set to the given values."""
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(size=(n, len(UNIFORMS)))
    for name, value in fixed.items():
        uniform[:, UNIFORMS.index(name)] = value
    return tf.constant(uniform, tf.float32), tf.constant(rng.normal(size=(n, len(NORMALS))), tf.float32)


def _only(*names):
    return AugmentPipe(**{**ONLY, **{name: 1.0 for name in names}})


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_identity(channels):
    images = _images(channels=channels)
    np.testing.assert_array_equal(AugmentPipe()(images, 0.0, *_draws()), images)


def test_blits_land_on_pixel_centres():
    images = _images()
    # x-flip (uniform 0.9 -> flip 1), applied (gate 0 < p): the mirror image, and twice the identity.
    flip = _only("xflip")
    draws = _draws(xflip=0.9, xflip_gate=0.0)
    flipped = flip(images, 1.0, *draws)
    np.testing.assert_array_equal(flipped, images.numpy()[:, :, ::-1])
    np.testing.assert_array_equal(flip(flipped, 1.0, *draws), images)
    # A quarter turn (uniform 0.3 -> 1 quarter): numpy's rot90 of the height and width axes.
    turned = _only("rotate90")(images, 1.0, *_draws(rotate90=0.3, rotate90_gate=0.0))
    np.testing.assert_array_equal(turned, np.rot90(images.numpy(), k=1, axes=(1, 2)))
    # Integer translation: whole pixels, the border mirrored.
    shifted = _only("xint")(images, 1.0, *_draws(xint_x=1.0, xint_y=0.5, xint_gate=0.0))
    # (1.0 * 2 - 1) * xint_max * 16 = 2 pixels right; the two new columns mirror columns 2 and 1.
    np.testing.assert_array_equal(shifted[:, :, 2:], images.numpy()[:, :, :-2])
    np.testing.assert_array_equal(shifted[:, :, :2], images.numpy()[:, :, 2:0:-1])


def test_gates_follow_p_and_colour_keeps_the_grey_axis():
    images = _images(n=256)
    changed = tf.reduce_any(tf.not_equal(_only("xflip")(images, 0.5, *_draws(n=256, xflip=0.9)), images),
                            axis=[1, 2, 3])
    assert 0.4 < float(tf.reduce_mean(tf.cast(changed, tf.float32))) < 0.6  # flipped with probability p
    grey = tf.tile(_images(n=8, channels=1), [1, 1, 1, 3])
    hue = _only("hue")(grey, 1.0, *_draws(n=8, hue_gate=0.0))
    np.testing.assert_allclose(hue, grey, atol=1e-5)  # a hue rotation turns about the grey axis
    saturated = _only("saturation")(grey, 1.0, *_draws(n=8, saturation_gate=0.0))
    np.testing.assert_allclose(saturated, grey, atol=1e-5)
    flip_twice = _only("lumaflip")
    draws = _draws(n=8, lumaflip=0.9, lumaflip_gate=0.0)
    np.testing.assert_allclose(flip_twice(flip_twice(_images(n=8), 1.0, *draws), 1.0, *draws), _images(n=8),
                               atol=1e-5)


def test_gradients_flow_through_every_transform_to_the_input_and_twice():
    images = _images()
    draws = _draws()
    with tf.GradientTape() as outer:
        outer.watch(images)
        with tf.GradientTape() as inner:
            inner.watch(images)
            score = tf.reduce_sum(AugmentPipe()(images, 1.0, *draws) ** 3)
        gradient = inner.gradient(score, images)
        penalty = tf.reduce_sum(gradient ** 2)  # as R1 through the augmentation
    second = outer.gradient(penalty, images)
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    assert np.isfinite(second).all() and np.abs(second).sum() > 0


def test_adjustment_moves_p_toward_the_target_every_interval():
    ada = Augmentation("ada", p=0.5, target=0.6, speed_kimg=1.0, interval=2)
    ada.adjust(1.0, 16, step=0)  # mid-interval: p unchanged
    assert float(ada.p) == 0.5
    ada.adjust(0.5, 16, step=1)  # r_t = 0.75 > 0.6 over 32 images: p + 32 / 1000
    assert float(ada.p) == pytest.approx(0.532) and float(ada.image_count) == 0
    ada.adjust(-1.0, 16, step=2)
    ada.adjust(-1.0, 16, step=3)
    assert float(ada.p) == pytest.approx(0.5)
    fixed = Augmentation("fixed", p=0.3)
    fixed.adjust(1.0, 16, step=3)
    assert float(fixed.p) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="augment='adaptive': must be one of 'ada', 'fixed'"):
        Augmentation("adaptive")


def test_a_replica_slice_of_the_draws_equals_the_slice_of_the_whole():
    G = small_generator(8)
    seed = tf.constant([3, 7], tf.int64)
    whole = draw_inputs(G, seed, 0, 8, 8, augment_calls={"d": 2, "g": 1})["augment"]
    part = draw_inputs(G, seed, 4, 4, 8, augment_calls={"d": 2, "g": 1})["augment"]
    for name in ("d", "g"):
        for (u_whole, n_whole), (u_part, n_part) in zip(whole[name], part[name]):
            np.testing.assert_array_equal(u_whole[4:], u_part)
            np.testing.assert_array_equal(n_whole[4:], n_part)
    assert not np.array_equal(whole["d"][0][0], whole["d"][1][0])  # reals and fakes drawn apart


@pytest.mark.slow
def test_p_rises_when_d_overfits_a_tiny_dataset_and_resumes_exactly(tmp_path):
    folder = tmp_path / "four"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    bindings = [f"train.dataset = '{folder}'", "train.resolution = 8", "train.augment = 'ada'",
                "Augmentation.speed_kimg = 1", "train.mirror_augment = False", "train.tick_kimg = 0.128",
                "training_schedule.lod_initial_resolution = 8", "train.checkpoint_kimg = 0.512"]
    trainer, lines = train_in_process(tmp_path / "run", bindings + ["train.total_kimg = 1.024"])
    p = [float(value) for value in
         [line.split(" p ")[1].split()[0] for line in lines if line.startswith("kimg") and " p " in line]]
    assert p[0] == 0.0 and p[-1] > 0.2 and p[-1] == pytest.approx(float(trainer.augmentation.p.numpy()))
    # Resumed from the checkpoint at 0.512 kimg: p and the interval's sums come back, the run ends alike.
    train_in_process(tmp_path / "half", bindings + ["train.total_kimg = 0.512"])
    resumed, _ = train_in_process(tmp_path / "half", ["train.total_kimg = 1.024"], resume=True)
    assert float(resumed.augmentation.p.numpy()) == float(trainer.augmentation.p.numpy())
    np.testing.assert_array_equal(resumed.D.variables[0], trainer.D.variables[0])
