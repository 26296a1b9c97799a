"""tf_stylegan.nn.ops against hand-computed values and NumPy references (the parts the
layer tests in test_layers.py do not already pin down)."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import box_down, normal, upsample

from tf_stylegan.nn import ops as sg


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ---------------------------------------------------------------- feature-map rule

def test_fmaps_official_values():
    assert [sg.fmaps(stage) for stage in range(1, 10)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert [sg.fmaps(s, fmap_base=256, fmap_max=32) for s in range(1, 6)] == [32, 32, 32, 16, 8]
    assert sg.fmaps(3, fmap_base=8192, fmap_decay=0.5, fmap_max=10_000) == 2896  # int(8192 / 2**1.5)
    assert all(isinstance(sg.fmaps(s), int) for s in range(1, 10))


# ---------------------------------------------------------------- activations

def test_activation_values():
    x = np.array([-10.0, -1.0, 0.0, 2.5], np.float32)
    np.testing.assert_allclose(np.asarray(sg.activation(x, "lrelu")), [-2.0, -0.2, 0.0, 2.5], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(sg.activation(x, "relu")), [0.0, 0.0, 0.0, 2.5])
    assert sg.activation_gain("lrelu") == sg.activation_gain("relu") == pytest.approx(2 ** 0.5)
    with pytest.raises(ValueError):
        sg.activation(x, "tanh")
    with pytest.raises(ValueError):
        sg.activation_gain("linear")


# ---------------------------------------------------------------- ops with their own gradients

def _gradients_to_second_order(function, x):
    """(f(x²), d/dx of sum(f(x²) * w), d/dx of the squared first gradient): first and second order, as R1."""
    weights = tf.constant(np.random.default_rng(1).normal(size=function(x).shape))
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = function(x * x)
            loss = tf.reduce_sum(y * weights)
        gradient = inner.gradient(loss, x)
        penalty = tf.reduce_sum(gradient * gradient)
    return [value.numpy() for value in (y, gradient, outer.gradient(penalty, x))]


def _assert_same_to_second_order(function, reference, x):
    expected = _gradients_to_second_order(reference, x)
    for ours, theirs in zip(_gradients_to_second_order(function, x), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_leaky_relu_matches_tensorflow_to_second_order(rng):
    x = tf.constant(rng.normal(size=(3, 5, 5, 4)) - 0.3)
    _assert_same_to_second_order(lambda v: sg.activation(v - 0.4, "lrelu"),
                                 lambda v: tf.nn.leaky_relu(v - 0.4, alpha=0.2), x)


@pytest.mark.parametrize("taps", [(1, 2, 1), (1, 2, 5), (1, 4, 6, 4, 1), (1, 3, 3, 1)])
def test_blur_matches_tensorflow_to_second_order(rng, taps):
    kernel = sg.blur_kernel(taps, channels=3).astype(np.float64)  # (1, 2, 5): not symmetric
    x = tf.constant(rng.normal(size=(2, 7, 7, 3)))
    _assert_same_to_second_order(
        lambda v: sg.blur(v, kernel),
        lambda v: tf.nn.depthwise_conv2d(v, kernel, strides=[1, 1, 1, 1], padding="SAME"), x)


@pytest.mark.parametrize("size", [1, 3])
def test_conv2d_same_matches_tensorflow_to_second_order(rng, size):
    kernel = tf.constant(rng.normal(size=(size, size, 3, 4)))
    x = tf.constant(rng.normal(size=(2, 6, 6, 3)))
    _assert_same_to_second_order(lambda v: sg.conv2d_same(v, kernel),
                                 lambda v: tf.nn.conv2d(v, kernel, strides=1, padding="SAME"), x)


# ---------------------------------------------------------------- lerp

def test_lerp_and_lerp_clip():
    a, b = np.array([1.0, -2.0], np.float32), np.array([3.0, 6.0], np.float32)
    t = np.float32  # t is a tensor in the package (lod - level); keras' clip rejects a bare Python float
    np.testing.assert_allclose(np.asarray(sg.lerp(a, b, 0.25)), [1.5, 0.0])
    np.testing.assert_allclose(np.asarray(sg.lerp(a, b, 1.5)), [4.0, 10.0])  # no clipping
    np.testing.assert_allclose(np.asarray(sg.lerp_clip(a, b, t(0.25))), [1.5, 0.0])
    np.testing.assert_allclose(np.asarray(sg.lerp_clip(a, b, t(1.5))), b)
    np.testing.assert_allclose(np.asarray(sg.lerp_clip(a, b, t(-0.5))), a)
    np.testing.assert_allclose(np.asarray(sg.lerp_clip(a, b, tf.constant(3.0))), b)
    per_element = np.array([-1.0, 2.0], np.float32)  # clipped element-wise
    np.testing.assert_allclose(np.asarray(sg.lerp_clip(a, b, per_element)), [1.0, 6.0])


# ---------------------------------------------------------------- resampling

@pytest.mark.parametrize("factor", [1, 2, 3])
def test_upsample_nearest(rng, factor):
    x = normal(rng, 2, 3, 4, 5)
    np.testing.assert_array_equal(np.asarray(sg.upsample_nearest(x, factor)), upsample(x, factor))


def test_upsample_nearest_unknown_batch(rng):
    x = normal(rng, 3, 2, 2, 4)
    fn = tf.function(sg.upsample_nearest, input_signature=[tf.TensorSpec([None, 2, 2, 4])])
    np.testing.assert_array_equal(np.asarray(fn(x)), upsample(x))


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_downsample_box(rng, factor):
    x = normal(rng, 2, 8, 8, 3)
    np.testing.assert_allclose(np.asarray(sg.downsample_box(x, factor)), box_down(x, factor), atol=1e-6)


# ---------------------------------------------------------------- fused kernels

def np_sum_2x2(w):
    """Full 2-D convolution of each [3, 3] slice with a 2x2 box of ones: [4, 4, ...]."""
    out = np.zeros((4, 4) + w.shape[2:])
    for i in range(3):
        for j in range(3):
            out[i:i + 2, j:j + 2] += w[i, j]
    return out


def test_fused_up_kernel(rng):
    w = normal(rng, 3, 3, 2, 5)  # [k, k, in, out]
    kernel = np.asarray(sg.fused_up_kernel(w))
    assert kernel.shape == (4, 4, 5, 2)  # [k, k, out, in] for conv_transpose
    np.testing.assert_allclose(kernel, np_sum_2x2(w.transpose(0, 1, 3, 2)), atol=1e-6)
    # Each output phase of the stride-2 transposed conv sees all 9 taps exactly once.
    np.testing.assert_allclose(kernel.sum(axis=(0, 1)), 4 * w.sum(axis=(0, 1)).T, rtol=1e-5, atol=1e-5)


def test_fused_down_kernel(rng):
    w = normal(rng, 3, 3, 4, 2)
    kernel = np.asarray(sg.fused_down_kernel(w))
    assert kernel.shape == (4, 4, 4, 2)
    np.testing.assert_allclose(kernel, 0.25 * np_sum_2x2(w), atol=1e-6)


def test_fused_kernels_scale_and_rotate(rng):
    w = normal(rng, 3, 3, 3, 2)
    up = np.asarray(sg.fused_up_kernel(w, scale=0.5, rotate=True))
    np.testing.assert_allclose(up, 0.5 * np_sum_2x2(w[::-1, ::-1].transpose(0, 1, 3, 2)), atol=1e-6)
    down = np.asarray(sg.fused_down_kernel(w, scale=3.0))
    np.testing.assert_allclose(down, 0.75 * np_sum_2x2(w), atol=1e-5)


def test_fused_kernel_gradient_is_the_box_sums_adjoint(rng):
    w = tf.constant(normal(rng, 3, 3, 2, 3))
    upstream = normal(rng, 4, 4, 2, 3)
    with tf.GradientTape() as tape:
        tape.watch(w)
        loss = tf.reduce_sum(sg.fused_down_kernel(w, scale=2.0) * upstream)
    # d/dw[i, j] of sum(0.5 * box(w) * g) = 0.5 * sum of g over the 2x2 window at (i, j).
    expected = 0.5 * (upstream[:-1, :-1] + upstream[1:, :-1] + upstream[:-1, 1:] + upstream[1:, 1:])
    np.testing.assert_allclose(tape.gradient(loss, w), expected, atol=1e-5)


# ---------------------------------------------------------------- blur kernel

def test_blur_kernel_shape_and_normalisation():
    kernel = sg.blur_kernel([1, 2, 1], channels=3)
    assert kernel.shape == (3, 3, 3, 1) and kernel.dtype == np.float32
    expected = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0
    for c in range(3):
        np.testing.assert_allclose(kernel[:, :, c, 0], expected)
    raw = sg.blur_kernel([1, 3, 3, 1], channels=2, normalize=False)
    assert raw.shape == (4, 4, 2, 1)
    np.testing.assert_allclose(raw.sum(axis=(0, 1)), 64.0)


# ---------------------------------------------------------------- normalisation

def test_pixel_norm_other_axis(rng):
    x = normal(rng, 2, 6, 3)
    out = np.asarray(sg.pixel_norm(x, axis=1), np.float64)
    np.testing.assert_allclose(np.mean(out ** 2, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out * np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1, keepdims=True)), x,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("height, width", [(5, 3), (64, 64), (128, 64)],
                         ids=["moments", "matmul", "matmul-wide"])
def test_instance_norm_and_stats(rng, height, width):
    x = normal(rng, 2, height, width, 4) * 4.0 - 1.0
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(1, 2), keepdims=True)
    var = x64.var(axis=(1, 2), keepdims=True)  # biased
    got_mean, got_inv_std = (np.asarray(t) for t in sg.instance_norm_stats(x))
    assert got_mean.shape == got_inv_std.shape == (2, 1, 1, 4)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_inv_std, 1.0 / np.sqrt(var + 1e-8), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_instance_norm_stats_keep_the_input_dtype_on_the_matmul_path(rng, dtype):
    x = tf.cast(normal(rng, 2, 64, 64, 3) * 2.0 + 1.0, dtype)
    mean, inv_std = sg.instance_norm_stats(x)
    assert mean.dtype == inv_std.dtype == x.dtype
    np.testing.assert_allclose(np.asarray(tf.cast(inv_std, tf.float64)), 0.5, rtol=0.05)


def test_adaptive_instance_norm_without_scale(rng):
    x = normal(rng, 2, 3, 3, 2)
    np.testing.assert_array_equal(
        np.asarray(sg.adaptive_instance_norm(x, None, None, use_instance_norm=False)), x)
    x64 = x.astype(np.float64)
    normalized = ((x64 - x64.mean(axis=(1, 2), keepdims=True))
                  / np.sqrt(x64.var(axis=(1, 2), keepdims=True) + 1e-8))
    np.testing.assert_allclose(np.asarray(sg.adaptive_instance_norm(x, None, None)), normalized,
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- minibatch stddev

@pytest.mark.parametrize("batch", [8, 2])
def test_minibatch_stddev_unknown_batch(rng, batch):
    """With a dynamic batch (exported graphs), G = min(group_size, N) still holds."""
    x = normal(rng, batch, 4, 4, 6)
    fn = tf.function(lambda t: sg.minibatch_stddev(t, 4, 2),
                     input_signature=[tf.TensorSpec([None, 4, 4, 6])])
    out = np.asarray(fn(x))
    assert out.shape == (batch, 4, 4, 8)
    group = min(4, batch)
    y = x.astype(np.float64).reshape(group, -1, 4, 4, 2, 3)
    feature = np.sqrt(y.var(axis=0) + 1e-8).mean(axis=(1, 2, 4))  # [M, 2]
    expected = np.tile(feature, [group, 1])[:, None, None, :]
    np.testing.assert_allclose(out[..., 6:], np.broadcast_to(expected, (batch, 4, 4, 2)), rtol=1e-5)
