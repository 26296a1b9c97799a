"""Pure tensor math shared by the layers and networks.

Every function takes and returns NHWC tensors (the official code is NCHW; the
importer converts at the boundary). Nothing here owns state.
"""

import numpy as np
import tensorflow as tf
from keras import ops

LRELU_SLOPE = 0.2
NORM_EPSILON = 1e-8


def fmaps(stage, fmap_base=8192, fmap_decay=1.0, fmap_max=512):
    """Feature maps at a stage: ``min(fmap_base / 2**(stage * fmap_decay), fmap_max)``."""
    count = min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)
    if count < 1:
        raise ValueError(f"fmap_base={fmap_base} (decay {fmap_decay}) leaves no feature maps at stage "
                         f"{stage}: raise fmap_base to at least 2**{stage} or lower the resolution")
    return count


def activation(x, nonlinearity="lrelu"):
    """The official nonlinearities: leaky ReLU (slope 0.2) or ReLU."""
    if nonlinearity == "lrelu":
        return leaky_relu(x)
    if nonlinearity == "relu":
        return ops.relu(x)
    raise ValueError(f"Unknown nonlinearity {nonlinearity!r}: use 'lrelu' or 'relu'.")


@tf.custom_gradient
def leaky_relu(x):
    """Leaky ReLU (slope :data:`LRELU_SLOPE`) whose gradient reads its output, not its input (the two
    have the same sign). TensorFlow's own reads the input, which oneDNN's graph rewrite removes when it
    fuses a conv, its bias and the activation ("remapper failed" errors, the fusion lost)."""
    y = tf.nn.leaky_relu(x, alpha=LRELU_SLOPE)

    def gradient(dy):
        # The mask is piecewise constant: no second-order term flows back through y.
        return tf.raw_ops.LeakyReluGrad(gradients=dy, features=tf.stop_gradient(y), alpha=LRELU_SLOPE)

    return y, gradient


def activation_gain(nonlinearity="lrelu"):
    """He gain of the official code: sqrt(2) for both ReLU variants."""
    if nonlinearity not in ("lrelu", "relu"):
        raise ValueError(f"Unknown nonlinearity {nonlinearity!r}: use 'lrelu' or 'relu'.")
    return float(np.sqrt(2.0))


def is_narrow_float(dtype):
    """True for float16 and bfloat16 (any dtype spelling)."""
    return tf.as_dtype(dtype) in (tf.float16, tf.bfloat16)


def in_float32(x):
    """float16 / bfloat16 ``x`` cast to float32: statistics (norms, moments) that would overflow or
    round away in 16 bits are taken in float32 under mixed precision."""
    return ops.cast(x, "float32") if is_narrow_float(x.dtype) else x


def pixel_norm(x, axis=-1, epsilon=NORM_EPSILON):
    """Normalise each feature vector to unit mean square along ``axis``."""
    inv_norm = ops.rsqrt(ops.mean(ops.square(in_float32(x)), axis=axis, keepdims=True) + epsilon)
    return x * ops.cast(inv_norm, x.dtype)


# Maps of at least this many pixels take their instance-norm statistics as matmuls.
MATMUL_STATS_MIN_PIXELS = 64 * 64


def instance_norm_stats(x, epsilon=NORM_EPSILON):
    """Per-sample, per-channel mean and 1/std over H and W (biased variance, eps inside; taken in
    float32 under mixed precision, returned in ``x``'s dtype).

    Returns two tensors of shape [N, 1, 1, C]. From ``MATMUL_STATS_MIN_PIXELS`` on, the averages over
    H and W are matrix products with a row of 1 / (H * W) (centred variance, as ``moments``): on the CPU
    oneDNN's matmul is faster than TensorFlow's mean over a large map and accumulates more exactly.
    Smaller maps keep ``moments``, and so the rounding of earlier releases where it matters most: the
    nearly constant 4x4 input, whose rounding noise the normalisation multiplies by up to 1e4.
    """
    _, height, width, channels = x.shape
    size = height * width
    if size < MATMUL_STATS_MIN_PIXELS:
        mean, variance = ops.moments(in_float32(x), axes=[1, 2], keepdims=True)
    else:
        flat = tf.reshape(in_float32(x), [-1, size, channels])  # [N, H*W, C]
        averaging = tf.fill([1, 1, size], tf.constant(1.0 / size, flat.dtype))  # [1, 1, H*W]
        mean = tf.matmul(averaging, flat)  # [N, 1, C]
        variance = tf.matmul(averaging, tf.math.squared_difference(flat, mean))
        mean, variance = (tf.reshape(stat, [-1, 1, 1, channels]) for stat in (mean, variance))
    return ops.cast(mean, x.dtype), ops.cast(ops.rsqrt(variance + epsilon), x.dtype)


def scaled_noise(noise, strength):
    """``noise * strength``: [N, H, W, 1] noise times per-channel strength [C] -> [N, H, W, C].

    Computed as a 1x1 conv from the single noise channel (the same one product per element):
    oneDNN fuses it with the adds that follow, where a broadcast multiply is a slow extra pass.
    """
    return ops.conv(noise, ops.reshape(strength, [1, 1, 1, -1]), strides=1, padding="same")


def modulated_epilogue(x, noise, strength, bias, scale, shift, nonlinearity, use_pixel_norm,
                       use_instance_norm, epsilon, after_conv=False):
    """The synthesis layer epilogue after the conv.

    ``x + noise * strength`` (noise [N, H, W, 1] or None) -> ``+ bias`` -> activation ->
    [pixel norm] -> [instance norm] -> ``x * scale + shift`` (scale and shift [N, 1, 1, C]
    or None). Normalisation and modulation are applied as a single scale and shift.
    ``after_conv``: ``x`` comes straight from a stride-1 conv; the bias is then added first (a
    ``BiasAdd``, equal up to float rounding), so that oneDNN fuses the conv, the bias, the noise's add
    and the activation into one kernel instead of three more passes over the maps. Otherwise (after
    the blur's depthwise filter, whose own ``BiasAdd`` makes TensorFlow 2.21's remapper fail on the whole
    graph) the bias is added to the scaled noise and then ``x``, so that oneDNN fuses the noise's 1x1
    conv, the bias, the add and the activation in the same way.
    """
    if after_conv:
        x = tf.nn.bias_add(x, bias)
        if noise is not None:
            x = x + scaled_noise(noise, strength)
    elif noise is not None:
        x = tf.nn.bias_add(scaled_noise(noise, strength), bias) + x
    else:
        x = x + bias
    x = activation(x, nonlinearity)
    if use_pixel_norm:
        x = pixel_norm(x, epsilon=epsilon)
    return adaptive_instance_norm(x, scale, shift, use_instance_norm, epsilon)


def adaptive_instance_norm(x, scale, shift, use_instance_norm=True, epsilon=NORM_EPSILON):
    """[instance norm] then ``x * scale + shift`` ([N, 1, 1, C] each, or None for identity),
    applied as one per-channel scale and shift.

    In float16 / bfloat16 the input is centred and normalised first instead: the folded shift
    ``shift - mean * scale`` cancels catastrophically where a channel is nearly constant (the
    const input starts at ones: std 0, 1/std 1e4).
    """
    if use_instance_norm and is_narrow_float(x.dtype):
        mean, inv_std = instance_norm_stats(x, epsilon)
        x = (x - mean) * inv_std
    elif use_instance_norm:
        mean, inv_std = instance_norm_stats(x, epsilon)
        scale = inv_std if scale is None else inv_std * scale
        shift = -mean * scale if shift is None else shift - mean * scale
    if scale is None:
        return x
    return x * scale + shift


def flip_kernel(kernel):
    """[k, k, in, out] -> [k, k, out, in] rotated 180 degrees: the kernel of a conv's input gradient."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


@tf.custom_gradient
def conv2d_same(x, kernel):
    """Stride-1 SAME convolution of [N, H, W, in] with an odd-sized [k, k, in, out] kernel.

    Its input gradient is this same convolution of the output gradient with :func:`flip_kernel`,
    at every order of differentiation (R1's weight gradient is second order): TensorFlow's CPU
    ``Conv2DBackpropInput`` takes 3-10x the time of the equal forward convolution at the small
    images of low-resolution training phases, where it was half of a step's time.
    """
    y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

    def gradient(dy):
        dx = conv2d_same(dy, flip_kernel(kernel))
        dkernel = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                                                  strides=[1, 1, 1, 1], padding="SAME")
        return dx, dkernel

    return y, gradient


def blur_kernel(taps, channels, normalize=True):
    """The official blur as a depthwise kernel [k, k, channels, 1] (NumPy float32).

    ``outer(taps, taps)``, normalised to sum 1. Applied as a correlation, unflipped, as the
    official forward pass does (only its gradient flips the filter).
    """
    taps = np.asarray(taps, dtype=np.float32)
    kernel = np.outer(taps, taps)
    if normalize:
        kernel /= kernel.sum()
    return np.tile(kernel[:, :, None, None], [1, 1, channels, 1]).astype(np.float32)


def blur(x, kernel):
    """Per-channel filter with SAME zero padding (``kernel`` from :func:`blur_kernel`)."""
    kernel = ops.cast(kernel, x.dtype)
    if kernel.shape[0] % 2 and kernel.shape[1] % 2:
        return depthwise_same(x, kernel)
    return ops.depthwise_conv(x, kernel, strides=1, padding="same")


@tf.custom_gradient
def depthwise_same(x, kernel):
    """Stride-1 SAME depthwise convolution with an odd-sized constant kernel [k, k, C, 1].

    Its input gradient is the same convolution with the kernel rotated 180 degrees, at every order (as
    :func:`conv2d_same`): oneDNN's ``DepthwiseConv2dNativeBackpropInput`` took 10x the forward
    filter's time in a 64x64 training step. No gradient for the kernel (a fixed filter).
    """
    y = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")

    def gradient(dy):
        return depthwise_same(dy, tf.reverse(kernel, [0, 1])), None

    return y, gradient


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling by repeat and reshape (XLA-friendly, no resize op)."""
    if factor == 1:
        return x
    _, height, width, channels = ops.shape(x)
    x = ops.reshape(x, [-1, height, 1, width, 1, channels])
    x = ops.tile(x, [1, 1, factor, 1, factor, 1])  # [N, H, f, W, f, C]
    return ops.reshape(x, [-1, height * factor, width * factor, channels])


def downsample_box(x, factor=2):
    """Box average over ``factor`` x ``factor`` blocks (the official ``downscale2d``)."""
    if factor == 1:
        return x
    return ops.average_pool(x, pool_size=factor, strides=factor, padding="valid")


def _box_sum_matrix(rotate=False):
    """[16, 9] 0/1 matrix: tap (a, b) of a 4x4 kernel sums the taps (i, j) of a 3x3 kernel with
    i in {a - 1, a}, j in {b - 1, b} (its full 2-D convolution with a 2x2 box); ``rotate`` reads the
    3x3 kernel rotated 180 degrees."""
    matrix = np.zeros([4, 4, 3, 3], np.float32)
    for a in range(4):
        for b in range(4):
            matrix[a, b, max(a - 1, 0):min(a, 2) + 1, max(b - 1, 0):min(b, 2) + 1] = 1.0
    if rotate:
        matrix = matrix[:, :, ::-1, ::-1]
    return matrix.reshape(16, 9)


_BOX_SUM = {rotate: _box_sum_matrix(rotate) for rotate in (False, True)}


def _box_sum_kernel(weight, scale, rotate):
    """[3, 3, A, B] -> [4, 4, A, B]: ``scale`` times the 2x2 box sum of ``weight`` (rotated 180 degrees
    first if ``rotate``), as one [16, 9] x [9, A * B] matmul, whose gradient is one matmul too (the
    sum of four shifted slices had a gradient 27x slower at 512x512 channels)."""
    _, _, a, b = ops.shape(weight)
    matrix = ops.convert_to_tensor(_BOX_SUM[rotate] * np.float32(scale), dtype=weight.dtype)
    flat = ops.reshape(weight, [9, a * b])
    return ops.reshape(ops.matmul(matrix, flat), [4, 4, a, b])


def fused_up_kernel(weight, scale=1.0, rotate=False):
    """4x4 kernel of the official fused up-conv, for ``conv_transpose`` (stride 2, SAME).

    ``weight`` is the [3, 3, in, out] kernel, multiplied here by ``scale`` (the runtime coefficient);
    the result is [4, 4, out, in]. The transposed conv equals nearest x2 upsampling followed by the 3x3
    conv with ``weight`` rotated 180 degrees: the official fused and non-fused forms differ by that
    rotation, which ``rotate=True`` undoes (the non-fused form computed as the fused one).
    """
    return _box_sum_kernel(ops.transpose(weight, [0, 1, 3, 2]), scale, rotate)  # from [3, 3, out, in]


def fused_down_kernel(weight, scale=1.0):
    """4x4 stride-2 conv kernel equal to ``scale * weight`` followed by a 2x2 box average.

    ``weight`` is the [3, 3, in, out] kernel; returns [4, 4, in, out].
    """
    return _box_sum_kernel(weight, 0.25 * scale, rotate=False)


def minibatch_stddev(x, group_size=4, num_features=1, epsilon=NORM_EPSILON):
    """Append the official minibatch standard deviation feature(s) as last channel(s).

    Sample ``i`` joins group ``i % (N // G)`` with ``G = min(group_size, N)``; N must be
    a multiple of G, as in the official code.
    """
    batch = ops.shape(x)[0]
    _, height, width, channels = x.shape
    if isinstance(batch, int) and batch > 0 and batch % min(group_size, batch):
        raise ValueError(f"minibatch stddev: batch {batch} is not a multiple of the group size "
                         f"{min(group_size, batch)}; use a batch divisible by mbstd_group_size")
    group = group_size if batch is None else ops.minimum(group_size, batch)
    # [G, M, H, W, F, C/F]: sample n = g * M + m.
    y = ops.reshape(in_float32(x), [group, -1, height, width, num_features, channels // num_features])
    y = y - ops.mean(y, axis=0, keepdims=True)
    y = ops.sqrt(ops.mean(ops.square(y), axis=0) + epsilon)  # [M, H, W, F, C/F]
    y = ops.mean(y, axis=[1, 2, 4])  # [M, F]
    y = ops.reshape(y, [-1, 1, 1, num_features])
    y = ops.tile(y, [group, height, width, 1])  # [N, H, W, F]
    return ops.concatenate([x, ops.cast(y, x.dtype)], axis=-1)


def lerp(a, b, t):
    """``a + (b - a) * t``."""
    return a + (b - a) * t


def lerp_clip(a, b, t):
    """:func:`lerp` with ``t`` clipped to [0, 1] (the official progressive-growing blend)."""
    return a + (b - a) * ops.clip(ops.convert_to_tensor(t), 0.0, 1.0)
