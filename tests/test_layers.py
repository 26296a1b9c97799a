"""Layer tests: the generic Keras contract (layer_testing.check_layer) plus semantics
against NumPy references written here and in helpers.py, independently of tf_stylegan.nn.ops.

References follow the official StyleGAN code (NCHW; ours is NHWC), see
../shared/official_ref/README.md, "Conventions".
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import box_down, nchw, nhwc, normal, upsample
from layer_testing import check_layer

from tf_stylegan.nn.layers import (
    Blur,
    EqualizedConv2D,
    STRIDED_DOWN_MIN_INPUT,
    TRANSPOSED_UP_MIN_INPUT,
    EqualizedDense,
    FromRGB,
    MinibatchStddev,
    PixelNorm,
    ToRGB,
)
from tf_stylegan.nn.style_layers import (
    AdaIN,
    ConstantInput,
    LayerEpilogue,
    NoiseInjection,
)

SQRT2 = np.sqrt(2.0)
EPS = 1e-8


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


# ---------------------------------------------------------------- NumPy references (NHWC, float64)

def np_lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def np_correlate_same(x, kernel):
    """TF-style SAME (zero padding, extra pad after) stride-1 cross-correlation.

    ``kernel`` is [kh, kw, in, out] for a full conv, or [kh, kw] for a per-channel filter.
    """
    x = np.asarray(x, np.float64)
    kh, kw = kernel.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, [(0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)])
    height, width = x.shape[1:3]
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + height, j:j + width, :]
            out = out + (patch @ kernel[i, j] if kernel.ndim == 4 else patch * kernel[i, j])
    return out


def np_instance_norm(x):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + EPS)


def np_style(w, weight, bias):
    """Official style_mod affine (gain 1, lrmul 1): [N, 2C] -> (scale + 1, shift), each [N, 1, 1, C]."""
    style = w.astype(np.float64) @ (weight / np.sqrt(weight.shape[0])) + bias
    channels = weight.shape[1] // 2
    return (style[:, None, None, :channels] + 1.0), style[:, None, None, channels:]


def np_minibatch_stddev_nchw(x, group_size=4, num_new_features=1):
    """Port of the official ``minibatch_stddev_layer`` (NCHW)."""
    s = x.shape
    group = min(group_size, s[0])
    y = x.astype(np.float64).reshape(group, -1, num_new_features, s[1] // num_new_features, s[2], s[3])
    y = y - y.mean(axis=0, keepdims=True)
    y = (y ** 2).mean(axis=0)
    y = np.sqrt(y + EPS)
    y = y.mean(axis=(2, 3, 4), keepdims=True)  # [M, n, 1, 1, 1]
    y = y.mean(axis=2)  # [M, n, 1, 1]
    y = np.tile(y, [group, 1, s[2], s[3]])  # [N, n, H, W]
    return np.concatenate([x, y], axis=1)


def assign(variable, value):
    variable.assign(np.asarray(value, np.float32))
    return np.asarray(value, np.float64)


def mean_abs_diff(a, b):
    return float(np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def close(actual, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=tol, atol=tol)


# ---------------------------------------------------------------- EqualizedDense

@pytest.mark.parametrize("kwargs", [
    {}, {"lr_multiplier": 0.01, "activation": "lrelu", "gain": 0.5},
    {"use_bias": False, "activation": "relu", "use_wscale": False},
])
def test_equalized_dense_contract(kwargs):
    names = ["weight", "bias"] if kwargs.get("use_bias", True) else ["weight"]
    layer, _, out = check_layer(lambda: EqualizedDense(6, **kwargs), [(3, 5)], weight_names=names)
    assert out.shape == (3, 6)
    assert layer.weight.shape == (5, 6)


@pytest.mark.parametrize("activation", ["linear", "lrelu", "relu"])
@pytest.mark.parametrize("gain, lrmul", [(SQRT2, 1.0), (SQRT2, 0.01), (1.0, 0.3)])
def test_equalized_dense_runtime_scale(rng, gain, lrmul, activation):
    fan_in = 7
    layer = EqualizedDense(5, gain=gain, lr_multiplier=lrmul, activation=activation)
    layer.build((None, fan_in))
    weight = assign(layer.weight, normal(rng, fan_in, 5) / lrmul)
    bias = assign(layer.bias, normal(rng, 5) / lrmul)
    x = normal(rng, 4, fan_in)
    expected = x @ (weight * gain / np.sqrt(fan_in) * lrmul) + bias * lrmul
    expected = {"linear": expected, "lrelu": np_lrelu(expected), "relu": np.maximum(expected, 0)}[activation]
    close(layer(x), expected)


def test_equalized_dense_without_wscale(rng):
    """use_wscale=False: the runtime coefficient is lrmul alone (he std goes into the init)."""
    layer = EqualizedDense(3, lr_multiplier=0.5, use_wscale=False)
    layer.build((None, 4))
    weight = assign(layer.weight, normal(rng, 4, 3))
    bias = assign(layer.bias, normal(rng, 3))
    x = normal(rng, 2, 4)
    close(layer(x), x @ (weight * 0.5) + bias * 0.5)


@pytest.mark.parametrize("lrmul", [1.0, 0.01])
def test_equalized_dense_init_std_is_one_over_lrmul(lrmul):
    """Stored weights are N(0, 1/lrmul^2) (262144 samples: std error ~0.14%), biases zero."""
    layer = EqualizedDense(512, lr_multiplier=lrmul)
    layer.build((None, 512))
    weight = np.asarray(layer.weight)
    assert abs(weight.std() * lrmul - 1.0) < 0.02
    assert abs(weight.mean() * lrmul) < 0.01
    np.testing.assert_array_equal(np.asarray(layer.bias), 0.0)


def test_init_std_without_wscale_and_for_convs():
    dense = EqualizedDense(512, lr_multiplier=0.1, use_wscale=False)
    dense.build((None, 512))
    he_std = SQRT2 / np.sqrt(512)
    assert abs(np.asarray(dense.weight).std() / (he_std / 0.1) - 1.0) < 0.02
    conv = EqualizedConv2D(64, lr_multiplier=0.5)
    conv.build((None, 8, 8, 64))  # 36864 samples
    assert abs(np.asarray(conv.weight).std() * 0.5 - 1.0) < 0.03


# ---------------------------------------------------------------- EqualizedConv2D

CONV_MODES = [(None, False), ("up", False), ("up", True), ("down", False), ("down", True)]


@pytest.mark.parametrize("resample, fused", CONV_MODES)
def test_equalized_conv_contract(resample, fused):
    layer, _, out = check_layer(
        lambda: EqualizedConv2D(3, resample=resample, fused=fused, activation="lrelu", gain=0.7,
                                lr_multiplier=0.5),
        [(2, 6, 6, 4)], weight_names=["weight", "bias"], atol=1e-5,
    )
    size = {None: 6, "up": 12, "down": 3}[resample]
    assert out.shape == (2, size, size, 3)
    assert layer.weight.shape == (3, 3, 4, 3)  # stored [k, k, in, out] in every form


def test_equalized_conv_contract_other_options():
    layer, _, out = check_layer(
        lambda: EqualizedConv2D(2, kernel_size=1, use_wscale=False, use_bias=False, activation="relu"),
        [(2, 3, 3, 4)], weight_names=["weight"],
    )
    assert layer.weight.shape == (1, 1, 4, 2) and out.min() >= 0


@pytest.mark.parametrize("resample, fused", CONV_MODES)
def test_equalized_conv_matches_numpy(rng, resample, fused):
    """up: nearest x2 then 3x3 SAME conv; down: conv then 2x2 box average.

    The official fused up-conv is a conv2d_transpose, which applies its kernel rotated by
    180 degrees: it equals nearest x2 followed by the conv with the *flipped* stored
    kernel (checked against the official fused reference images: the generator imported
    from network-small_fused.pkl reproduces them with fused up-convs, and with non-fused
    up-convs only once their weights are flipped). Fused down is exactly conv + box.
    """
    in_ch, out_ch = 3, 5
    layer = EqualizedConv2D(out_ch, resample=resample, fused=fused, activation="lrelu")
    layer.build((None, 8, 8, in_ch))
    weight = assign(layer.weight, normal(rng, 3, 3, in_ch, out_ch))
    bias = assign(layer.bias, normal(rng, out_ch))
    x = normal(rng, 2, 8, 8, in_ch)
    kernel = weight * SQRT2 / np.sqrt(9 * in_ch)
    if resample == "up" and fused:
        kernel = kernel[::-1, ::-1]
    y = upsample(x) if resample == "up" else x
    y = np_correlate_same(y, kernel)
    if resample == "down":
        y = box_down(y)
    close(layer(x), np_lrelu(y + bias))


def _resampling_conv_at_threshold(rng, resample, size, in_ch=3, out_ch=4):
    """A lrelu EqualizedConv2D resampling ``size`` px inputs in its fused form, with random weights:
    (layer, input x, runtime kernel, bias)."""
    layer = EqualizedConv2D(out_ch, resample=resample, activation="lrelu")
    layer.build((None, size, size, in_ch))
    assert layer.computes_as_fused(size) and not layer.computes_as_fused(size // 2)
    weight = assign(layer.weight, normal(rng, 3, 3, in_ch, out_ch))
    bias = assign(layer.bias, normal(rng, out_ch))
    x = tf.constant(normal(rng, 2, size, size, in_ch))
    return layer, x, weight * SQRT2 / np.sqrt(9 * in_ch), bias


def test_non_fused_up_conv_from_large_inputs_runs_as_the_equal_transposed_conv(rng):
    """From TRANSPOSED_UP_MIN_INPUT px on, a non-fused up-conv computes as a 4-tap transposed conv:
    the same values and gradients as nearest x2 then the 3x3 conv (NumPy and TensorFlow references)."""
    size = TRANSPOSED_UP_MIN_INPUT
    layer, x, kernel, bias = _resampling_conv_at_threshold(rng, "up", size)
    close(layer(x), np_lrelu(np_correlate_same(upsample(x.numpy()), kernel) + bias))
    # Gradients against TensorFlow's own ops on the plain form.
    upstream = tf.constant(normal(rng, 2, 2 * size, 2 * size, layer.filters))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(layer(x) * upstream)
        up = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
        plain = tf.nn.conv2d(up, layer.weight * layer.runtime_coef, 1, "SAME") + layer.bias
        theirs = tf.reduce_sum(tf.nn.leaky_relu(plain, 0.2) * upstream)
    for ours_grad, their_grad in zip(tape.gradient(ours, [x, layer.weight]),
                                     tape.gradient(theirs, [x, layer.weight])):
        np.testing.assert_allclose(ours_grad, their_grad, rtol=1e-4, atol=1e-4)


def test_non_fused_down_conv_from_large_inputs_runs_as_the_equal_strided_conv(rng):
    """From STRIDED_DOWN_MIN_INPUT px on, a non-fused down-conv computes as a stride-2 4x4 conv: the same
    values as the conv then the box average, and the same R1-style second-order weight gradient."""
    size = STRIDED_DOWN_MIN_INPUT
    layer, x, kernel, bias = _resampling_conv_at_threshold(rng, "down", size)
    close(layer(x), np_lrelu(box_down(np_correlate_same(x.numpy(), kernel)) + bias))

    def r1_weight_gradient(forward):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(forward(x) ** 2)
            penalty = tf.reduce_sum(inner.gradient(score, x) ** 2)
        return outer.gradient(penalty, layer.weight)

    def plain(images):  # TensorFlow's own ops on the plain form
        y = tf.nn.conv2d(images, layer.weight * layer.runtime_coef, 1, "SAME")
        return tf.nn.leaky_relu(tf.nn.avg_pool2d(y, 2, 2, "VALID") + layer.bias, 0.2)

    np.testing.assert_allclose(r1_weight_gradient(layer), r1_weight_gradient(plain), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("resample", ["up", "down"])
def test_fused_conv_equals_nonfused(rng, resample):
    """Fused down == non-fused down with the same weight; fused up == non-fused up with the
    spatially flipped weight (and differs from it with the same weight)."""
    x = normal(rng, 2, 6, 6, 4)
    fused, plain = EqualizedConv2D(3, resample=resample, fused=True), EqualizedConv2D(3, resample=resample)
    fused.build(x.shape)
    plain.build(x.shape)
    weight, bias = normal(rng, 3, 3, 4, 3), normal(rng, 3)
    fused.set_weights([weight, bias])
    plain.set_weights([weight[::-1, ::-1] if resample == "up" else weight, bias])
    expected = np.asarray(plain(x), np.float64)
    close(fused(x), expected)
    if resample == "up":
        plain.set_weights([weight, bias])
        assert np.abs(np.asarray(plain(x)) - expected).max() > 0.1


def test_equalized_conv_kernel_size_1_and_5(rng):
    for k in (1, 5):
        layer = EqualizedConv2D(2, kernel_size=k, gain=1.0, use_bias=False)
        layer.build((None, 7, 7, 3))
        weight = assign(layer.weight, normal(rng, k, k, 3, 2))
        x = normal(rng, 1, 7, 7, 3)
        close(layer(x), np_correlate_same(x, weight / np.sqrt(k * k * 3)))


@pytest.mark.parametrize("kwargs", [
    {"resample": "sideways"}, {"fused": True}, {"fused": True, "resample": "up", "kernel_size": 1},
])
def test_equalized_conv_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EqualizedConv2D(4, **kwargs)


# ---------------------------------------------------------------- ToRGB / FromRGB

@pytest.mark.parametrize("filters", [3, 1])
def test_to_rgb(rng, filters):
    layer, x, out = check_layer(lambda: ToRGB(filters), [(2, 4, 4, 6)], weight_names=["weight", "bias"])
    weight, bias = (np.asarray(v, np.float64) for v in layer.get_weights())
    assert weight.shape == (1, 1, 6, filters)
    # gain 1, linear (negative values survive), bias after the 1x1 conv.
    expected = x[0] @ (weight[0, 0] / np.sqrt(6)) + bias
    assert (expected < 0).any()
    close(out, expected)


@pytest.mark.parametrize("activation", ["lrelu", "relu"])
def test_from_rgb(rng, activation):
    layer, x, out = check_layer(lambda: FromRGB(5, activation=activation), [(2, 4, 4, 3)],
                                weight_names=["weight", "bias"])
    weight, bias = (np.asarray(v, np.float64) for v in layer.get_weights())
    assert weight.shape == (1, 1, 3, 5)
    y = x[0] @ (weight[0, 0] * SQRT2 / np.sqrt(3)) + bias
    close(out, np_lrelu(y) if activation == "lrelu" else np.maximum(y, 0))


def test_to_rgb_from_rgb_ignore_conflicting_config_keys():
    """Base-class keys in a config (as get_config writes them) cannot change the fixed form."""
    layer = ToRGB(3, kernel_size=3, gain=2.0, activation="lrelu", resample="up")
    assert (layer.kernel_size, layer.gain, layer.activation, layer.resample) == (1, 1.0, "linear", None)
    layer = FromRGB(8, activation="relu", kernel_size=3, use_bias=False)
    assert (layer.kernel_size, layer.gain, layer.use_bias) == (1, float(SQRT2), True)


# ---------------------------------------------------------------- PixelNorm

def test_pixel_norm(rng):
    x = normal(rng, 2, 3, 3, 8) * rng.uniform(0.01, 50.0, (2, 3, 3, 1)).astype(np.float32)
    _, _, out = check_layer(PixelNorm, [x])
    np.testing.assert_allclose(np.mean(out.astype(np.float64) ** 2, axis=-1), 1.0, rtol=1e-5)
    close(out, x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + EPS))
    # A large epsilon survives config and saving, and damps small vectors.
    _, _, damped = check_layer(lambda: PixelNorm(epsilon=4.0), [x])
    close(damped, x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 4.0))


# ---------------------------------------------------------------- Blur

def official_blur_kernel(taps, normalize=True):
    """The official forward ``_blur2d(x, f, normalize)`` (flip=False) correlates with this."""
    kernel = np.outer(taps, taps).astype(np.float64)
    return kernel / kernel.sum() if normalize else kernel


def test_blur_121(rng):
    x = normal(rng, 2, 6, 5, 3)
    _, _, out = check_layer(Blur, [x])
    kernel = official_blur_kernel([1, 2, 1])
    np.testing.assert_allclose(kernel * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    close(out, np_correlate_same(x, kernel))
    # Zero padding: a constant image keeps its value inside and loses a quarter on an edge.
    flat = np.asarray(Blur()(np.ones((1, 5, 5, 1), np.float32)))[0, :, :, 0]
    assert flat[2, 2] == pytest.approx(1.0) and flat[0, 2] == pytest.approx(0.75)
    assert flat[0, 0] == pytest.approx(0.75 * 0.75)


def test_blur_unnormalized_wider_taps(rng):
    x = normal(rng, 1, 6, 6, 2)
    _, _, out = check_layer(lambda: Blur((1, 3, 3, 1), normalize=False), [x])
    close(out, np_correlate_same(x, official_blur_kernel([1, 3, 3, 1], False)), tol=1e-4)


@pytest.mark.parametrize("taps", [(1, 3), (1, 2, 4)])
def test_blur_asymmetric_taps_follow_official(rng, taps):
    """The official forward blur correlates with the unflipped filter (only its gradient flips)."""
    x = normal(rng, 1, 6, 6, 2)
    close(Blur(taps)(x), np_correlate_same(x, official_blur_kernel(taps)))


# ---------------------------------------------------------------- NoiseInjection

def test_noise_injection_contract():
    layer, _, _ = check_layer(lambda: NoiseInjection(seed=3), [(2, 4, 5, 3)],
                              call_kwargs={"randomize_noise": False},
                              weight_names=["strength", "noise_map"])
    assert layer.strength.shape == (3,) and layer.strength.trainable
    assert layer.noise_map.shape == (1, 4, 5, 1) and not layer.noise_map.trainable


def test_noise_injection_is_identity_at_init(rng):
    x = normal(rng, 2, 4, 4, 3)
    layer = NoiseInjection(seed=0)
    for randomize in (True, False):
        np.testing.assert_array_equal(np.asarray(layer(x, randomize_noise=randomize)), x)
    np.testing.assert_array_equal(np.asarray(layer.strength), 0.0)
    assert np.asarray(layer.noise_map).std() > 0.3  # N(0, 1) init, not zeros


def test_noise_injection_stored_noise_is_deterministic(rng):
    x = normal(rng, 2, 4, 4, 3)
    layer = NoiseInjection()
    layer.build(x.shape)
    strength = assign(layer.strength, [0.5, -2.0, 3.0])
    noise_map = assign(layer.noise_map, normal(rng, 1, 4, 4, 1))
    out1, out2 = layer(x, randomize_noise=False), layer(x, randomize_noise=False)
    np.testing.assert_array_equal(np.asarray(out1), np.asarray(out2))
    close(out1, x + noise_map * strength)  # same map for both samples


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_noise_injection_fresh_noise(rng, graph):
    x = normal(rng, 4, 32, 32, 3)
    layer = NoiseInjection(seed=7)
    layer.build(x.shape)
    strength = assign(layer.strength, [0.5, -2.0, 3.0])
    call = tf.function(lambda t: layer(t, randomize_noise=True)) if graph else layer
    noise1 = (np.asarray(call(x), np.float64) - x) / strength
    noise2 = (np.asarray(call(x), np.float64) - x) / strength
    # One map per sample, shared over channels.
    np.testing.assert_allclose(noise1, np.repeat(noise1[..., :1], 3, axis=-1), atol=1e-5)
    # Independent N(0, 1) maps differ by E|a - b| = 2/sqrt(pi) ~ 1.13 (float32 rounding: ~1e-6).
    assert mean_abs_diff(noise1[0], noise1[1]) > 0.5  # per sample
    assert mean_abs_diff(noise1, noise2) > 0.5  # fresh on every call
    assert mean_abs_diff(noise1[..., 0], np.asarray(layer.noise_map)[..., 0]) > 0.5  # not the stored map
    assert abs(noise1[..., 0].std() - 1.0) < 0.1 and abs(noise1[..., 0].mean()) < 0.1


def test_noise_injection_seed_reproducible(rng):
    x = normal(rng, 2, 4, 4, 2)
    a, b, c = NoiseInjection(seed=11), NoiseInjection(seed=11), NoiseInjection(seed=12)
    for layer in (a, b, c):
        layer.build(x.shape)
        layer.strength.assign([1.0, 1.0])
    out_a, out_b, out_c = (np.asarray(layer(x)) for layer in (a, b, c))
    np.testing.assert_array_equal(out_a, out_b)
    assert mean_abs_diff(out_a, out_c) > 0.5


# ---------------------------------------------------------------- AdaIN

def test_adain_contract():
    _, _, out = check_layer(AdaIN, [(2, 4, 4, 3), (2, 6)], weight_names=["style/weight", "style/bias"])
    assert out.shape == (2, 4, 4, 3)
    check_layer(lambda: AdaIN(use_instance_norm=False, epsilon=1e-3), [(2, 4, 4, 3), (2, 6)],
                weight_names=["style/weight", "style/bias"])
    check_layer(lambda: AdaIN(use_styles=False), [(2, 4, 4, 3), (2, 6)])


def test_adain_matches_numpy(rng):
    x = normal(rng, 3, 5, 4, 6) * 3.0 + 1.5
    w = normal(rng, 3, 10)
    layer = AdaIN()
    layer.build(x.shape, w.shape)
    assert layer.style.weight.shape == (10, 12)
    weight = assign(layer.style.weight, normal(rng, 10, 12))
    bias = assign(layer.style.bias, normal(rng, 12))
    scale, shift = np_style(w, weight, bias)
    close(layer(x, w), np_instance_norm(x.astype(np.float64)) * scale + shift)


def test_adain_epsilon_inside_rsqrt(rng):
    """A constant channel normalises to 0 (not NaN); a tiny variance is damped by eps."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[..., 0] = 5.0
    x[0, 0, 0, 1] = 1e-4  # variance ~ 5.9e-10 << 1e-8
    out = np.asarray(AdaIN(use_styles=False)(x, np.zeros((1, 3), np.float32)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[..., 0], 0.0, atol=1e-6)
    close(out, np_instance_norm(x.astype(np.float64)), tol=1e-4)
    assert 0.8 < np.abs(out[..., 1]).max() < 1.0  # 0.91 with eps inside; ~3.9 without eps


def test_adain_without_instance_norm_or_styles(rng):
    x, w = normal(rng, 2, 3, 3, 4), normal(rng, 2, 5)
    layer = AdaIN(use_instance_norm=False)
    layer.build(x.shape, w.shape)
    weight, bias = assign(layer.style.weight, normal(rng, 5, 8)), assign(layer.style.bias, normal(rng, 8))
    scale, shift = np_style(w, weight, bias)
    close(layer(x, w), x * scale + shift)
    plain = AdaIN(use_instance_norm=False, use_styles=False)
    np.testing.assert_array_equal(np.asarray(plain(x, w)), x)
    assert plain.weights == []


# ---------------------------------------------------------------- LayerEpilogue

EPILOGUE_NAMES = ["bias", "noise/strength", "noise/noise_map", "adain/style/weight", "adain/style/bias"]


def test_layer_epilogue_contract():
    check_layer(lambda: LayerEpilogue(seed=5), [(2, 4, 4, 3), (2, 6)],
                call_kwargs={"randomize_noise": False}, weight_names=EPILOGUE_NAMES)
    check_layer(lambda: LayerEpilogue(use_noise=False, use_styles=False, use_pixel_norm=True,
                                      nonlinearity="relu"),
                [(2, 4, 4, 3), (2, 6)], weight_names=["bias"])
    check_layer(lambda: LayerEpilogue(use_instance_norm=False, use_wscale=False, seed=1),
                [(2, 4, 4, 3), (2, 6)], call_kwargs={"randomize_noise": False}, weight_names=EPILOGUE_NAMES)


@pytest.mark.parametrize("kwargs", [
    {}, {"use_pixel_norm": True, "nonlinearity": "relu"}, {"use_instance_norm": False},
    {"use_noise": False, "use_styles": False},
])
def test_layer_epilogue_matches_numpy(rng, kwargs):
    """noise -> bias -> act -> [pixel norm] -> [instance norm] -> style, as the official epilogue."""
    x, w = normal(rng, 2, 4, 4, 3), normal(rng, 2, 6)
    layer = LayerEpilogue(**kwargs)
    layer.build(x.shape, w.shape)
    y = x.astype(np.float64)
    if layer.noise is not None:
        noise_map = assign(layer.noise.noise_map, normal(rng, 1, 4, 4, 1))
        y = y + noise_map * assign(layer.noise.strength, normal(rng, 3))
    y = y + assign(layer.bias, normal(rng, 3))
    y = np.maximum(y, 0) if kwargs.get("nonlinearity") == "relu" else np_lrelu(y)
    if kwargs.get("use_pixel_norm"):
        y = y / np.sqrt(np.mean(y ** 2, axis=-1, keepdims=True) + EPS)
    if kwargs.get("use_instance_norm", True):
        y = np_instance_norm(y)
    if kwargs.get("use_styles", True):
        weight = assign(layer.adain.style.weight, normal(rng, 6, 6))
        scale, shift = np_style(w, weight, assign(layer.adain.style.bias, normal(rng, 6)))
        y = y * scale + shift
    close(layer(x, w, randomize_noise=False), y, tol=2e-5)


def test_layer_epilogue_fresh_noise_changes_output(rng):
    x, w = normal(rng, 2, 4, 4, 3), normal(rng, 2, 6)
    layer = LayerEpilogue(use_instance_norm=False, use_styles=False, seed=1)
    layer.build(x.shape, w.shape)
    layer.noise.strength.assign([1.0, 1.0, 1.0])
    a, b = np.asarray(layer(x, w)), np.asarray(layer(x, w))
    assert mean_abs_diff(a, b) > 0.1
    np.testing.assert_array_equal(np.asarray(layer(x, w, randomize_noise=False)),
                                  np.asarray(layer(x, w, randomize_noise=False)))


# ---------------------------------------------------------------- ConstantInput

def test_constant_input(rng):
    fresh = ConstantInput(5, size=4)
    fresh.build()
    np.testing.assert_array_equal(np.asarray(fresh.const), np.ones((1, 4, 4, 5)))
    layer, _, out = check_layer(lambda: ConstantInput(5, size=3), [(3, 7)], weight_names=["const"])
    const = np.asarray(layer.const)
    assert const.shape == (1, 3, 3, 5) and out.shape == (3, 3, 3, 5)
    np.testing.assert_array_equal(out, np.repeat(const, 3, axis=0))


# ---------------------------------------------------------------- MinibatchStddev

@pytest.mark.parametrize("batch, group_size, num_features", [(8, 4, 1), (8, 4, 2), (2, 4, 1), (6, 2, 2)])
def test_minibatch_stddev_matches_official(rng, batch, group_size, num_features):
    x = normal(rng, batch, 4, 4, 6) * rng.uniform(0.5, 2.0, (batch, 1, 1, 6)).astype(np.float32)
    _, _, out = check_layer(lambda: MinibatchStddev(group_size, num_features), [x])
    assert out.shape == (batch, 4, 4, 6 + num_features)
    np.testing.assert_array_equal(out[..., :6], x)
    close(out, nhwc(np_minibatch_stddev_nchw(nchw(x), group_size, num_features)))


def test_minibatch_stddev_groups_are_strided(rng):
    """Batch 8, group 4: M = 2 groups, sample i in group i % 2. Make group 0 constant."""
    x = normal(rng, 8, 2, 2, 3)
    x[0::2] = x[0]
    out = np.asarray(MinibatchStddev()(x))[..., -1]
    np.testing.assert_allclose(out[0::2], np.sqrt(EPS), rtol=1e-3)  # std of identical samples
    assert out[1::2].min() > 0.1
