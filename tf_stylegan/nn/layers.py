"""StyleGAN building blocks as Keras 3 layers (NHWC).

Weights keep the official storage layout and values (conv kernels [kh, kw, in, out],
dense kernels [in, out]) so that official networks import by plain assignment; the
equalized-learning-rate scale is applied at run time.
"""

import inspect

import keras
import numpy as np
from keras import ops

from tf_stylegan.nn import ops as sg_ops

register = keras.saving.register_keras_serializable(package="tf_stylegan")


def constructor_arguments(cls):
    """The names of the arguments of ``cls.__init__`` (not ``self``, not ``**kwargs``)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD}

SQRT2 = float(np.sqrt(2.0))
# Conv outputs computed in float16 are clamped to +-256, as StyleGAN2-ADA's float16 layers (conv_clamp):
# far from float16's overflow at 65504 where later sums and squares would reach it.
FLOAT16_CLAMP = 256.0
# Non-fused up- and down-convs from inputs of these sizes on run as the equal fused conv (4-tap transposed,
# stride-2 4x4), whose kernel is one small matmul (ops.fused_up_kernel / fused_down_kernel). Layer forward and
# gradients (down: with R1's second-order gradient), fused form against plain, 2-core AMD EPYC with AVX-512,
# also with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2): up 8->16 at 512 / 128 channels 1.20-1.37x /
# 1.86-2.26x faster, down at 8 px 1.12-1.20x / 1.57-1.61x, at 16 px 1.51-1.71x; up 4->8 at 512 channels
# 0.76x on AVX-512 (1.16x at AVX2), so up-convs start at 8 px.
TRANSPOSED_UP_MIN_INPUT = 8
STRIDED_DOWN_MIN_INPUT = 8


def _equalized_lr(fan_in, gain, lr_multiplier, use_wscale):
    """(initial std of the stored weight, runtime coefficient), as the official ``get_weight``."""
    he_std = gain / np.sqrt(fan_in)
    if use_wscale:
        return 1.0 / lr_multiplier, float(he_std * lr_multiplier)
    return float(he_std / lr_multiplier), float(lr_multiplier)


@register
class EqualizedDense(keras.layers.Layer):
    """Dense layer with equalized learning rate: ``act(x @ (W * c) + b * lr_multiplier)``."""

    def __init__(
        self,
        units,
        gain=SQRT2,  # He gain of the runtime weight scale
        lr_multiplier=1.0,  # scales the learning rate of weight and bias (0.01 in mapping)
        use_bias=True,
        activation="linear",  # 'linear', 'lrelu' or 'relu', applied after the bias
        use_wscale=True,  # equalized learning rate: scale at run time, not at init
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.gain = float(gain)
        self.lr_multiplier = float(lr_multiplier)
        self.use_bias = use_bias
        self.activation = activation
        self.use_wscale = use_wscale

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        init_std, self.runtime_coef = _equalized_lr(fan_in, self.gain, self.lr_multiplier, self.use_wscale)
        self.weight = self.add_weight(
            name="weight", shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(stddev=init_std),
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        x = ops.matmul(x, self.weight * self.runtime_coef)
        if self.use_bias:
            x = x + self.bias * self.lr_multiplier
        if self.activation != "linear":
            x = sg_ops.activation(x, self.activation)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(), "units": self.units, "gain": self.gain,
            "lr_multiplier": self.lr_multiplier, "use_bias": self.use_bias,
            "activation": self.activation, "use_wscale": self.use_wscale,
        }


@register
class EqualizedConv2D(keras.layers.Layer):
    """Square conv with equalized learning rate, optionally fused with 2x resampling.

    ``resample=None``: stride-1 SAME conv. ``'up'``: nearest x2 upsampling then the conv;
    with ``fused=True`` the official stride-2 transposed conv, which equals nearest x2 then
    the conv with the kernel rotated 180 degrees. ``'down'``: the conv then a 2x2 box
    average; fused, the equal stride-2 conv. The stored kernel is [k, k, in, out] in every
    form, as official. Bias and activation, if any, come after resampling.

    A non-fused 3x3 up-conv from inputs of at least ``TRANSPOSED_UP_MIN_INPUT`` px is computed as that
    equal transposed conv (of the kernel rotated back), and a non-fused down-conv from at least
    ``STRIDED_DOWN_MIN_INPUT`` px as the equal stride-2 conv: the same functions, up to float rounding,
    with 2.25x fewer multiply-accumulates.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        gain=SQRT2,
        lr_multiplier=1.0,
        use_bias=True,
        activation="linear",
        resample=None,  # None, 'up' or 'down'
        fused=False,  # resample inside the conv (transposed / strided)
        use_wscale=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if resample not in (None, "up", "down"):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        if fused and (resample is None or kernel_size != 3):
            raise ValueError("fused=True needs resample='up' or 'down' and kernel_size=3")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.gain = float(gain)
        self.lr_multiplier = float(lr_multiplier)
        self.use_bias = use_bias
        self.activation = activation
        self.resample = resample
        self.fused = bool(fused)
        self.use_wscale = use_wscale

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        fan_in = self.kernel_size * self.kernel_size * in_channels
        init_std, self.runtime_coef = _equalized_lr(fan_in, self.gain, self.lr_multiplier, self.use_wscale)
        self.weight = self.add_weight(
            name="weight", shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(stddev=init_std),
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x):
        as_fused = self.fused or self.computes_as_fused(x.shape[1])
        if self.resample == "up" and as_fused:
            kernel = sg_ops.fused_up_kernel(self.weight, self.runtime_coef, rotate=not self.fused)
            x = ops.conv_transpose(x, ops.cast(kernel, x.dtype), strides=2, padding="same")
        elif self.resample == "down" and as_fused:
            kernel = sg_ops.fused_down_kernel(self.weight, self.runtime_coef)
            x = ops.conv(x, ops.cast(kernel, x.dtype), strides=2, padding="same")
        else:
            if self.resample == "up":
                x = sg_ops.upsample_nearest(x)
            x = sg_ops.conv2d_same(x, ops.cast(self.weight * self.runtime_coef, x.dtype))
            if self.resample == "down":
                x = sg_ops.downsample_box(x)
        if self.use_bias:
            x = x + self.bias * self.lr_multiplier
        if self.activation != "linear":
            x = sg_ops.activation(x, self.activation)
        if keras.backend.standardize_dtype(x.dtype) == "float16":
            x = ops.clip(x, -FLOAT16_CLAMP, FLOAT16_CLAMP)
        return x

    def computes_as_fused(self, input_size):
        """True if this non-fused up- or down-conv is computed as the equal fused one for inputs of
        ``input_size`` px (see the class docstring)."""
        minimum = {"up": TRANSPOSED_UP_MIN_INPUT, "down": STRIDED_DOWN_MIN_INPUT}.get(self.resample)
        return (minimum is not None and not self.fused and self.kernel_size == 3
                and input_size is not None and input_size >= minimum)

    def output_size(self, input_size):
        """Spatial size of the output for an input of ``input_size`` pixels."""
        return {None: input_size, "up": input_size * 2, "down": input_size // 2}[self.resample]

    def macs_per_sample(self, input_size):
        """Multiply-accumulates of one call on one sample, as the official graph computes them (non-fused
        up- and down-convs with 9 taps, even where :meth:`computes_as_fused` computes them with 4)."""
        in_channels = int(self.weight.shape[2])
        taps = self.kernel_size ** 2
        if self.fused:
            taps = 16 if self.resample == "down" else 4  # strided 4x4, or 4 taps per output phase
            pixels = (input_size // 2) ** 2 if self.resample == "down" else (input_size * 2) ** 2
        else:
            pixels = (input_size * 2) ** 2 if self.resample == "up" else input_size ** 2
        return pixels * taps * in_channels * self.filters

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        size = lambda s: None if s is None else self.output_size(s)
        return (n, size(h), size(w), self.filters)

    def get_config(self):
        return {
            **super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
            "gain": self.gain, "lr_multiplier": self.lr_multiplier, "use_bias": self.use_bias,
            "activation": self.activation, "resample": self.resample, "fused": self.fused,
            "use_wscale": self.use_wscale,
        }


@register
class ToRGB(EqualizedConv2D):
    """1x1 conv to image channels, gain 1, bias, linear output."""

    def __init__(self, filters=3, use_wscale=True, **kwargs):
        for key in ("kernel_size", "gain", "activation", "use_bias", "resample", "fused", "lr_multiplier"):
            kwargs.pop(key, None)
        super().__init__(filters, kernel_size=1, gain=1.0, activation="linear", use_wscale=use_wscale,
                         **kwargs)


@register
class FromRGB(EqualizedConv2D):
    """1x1 conv from image channels to features, gain sqrt(2), bias, activation."""

    def __init__(self, filters, activation="lrelu", use_wscale=True, **kwargs):
        for key in ("kernel_size", "gain", "use_bias", "resample", "fused", "lr_multiplier"):
            kwargs.pop(key, None)
        super().__init__(
            filters, kernel_size=1, gain=sg_ops.activation_gain(activation), activation=activation,
            use_wscale=use_wscale, **kwargs,
        )


@register
class PixelNorm(keras.layers.Layer):
    """Normalise each feature vector to unit mean square (last axis)."""

    def __init__(self, epsilon=sg_ops.NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return sg_ops.pixel_norm(x, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class Blur(keras.layers.Layer):
    """Low-pass filter ``outer(taps, taps)`` (normalised), per channel, SAME zero padding."""

    def __init__(self, taps=(1, 2, 1), normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.taps = [float(t) for t in taps]
        self.normalize = bool(normalize)

    def build(self, input_shape):
        # A NumPy array, not a tf.constant: see "Traps found on this stack" in the design notes.
        self.kernel = sg_ops.blur_kernel(self.taps, int(input_shape[-1]), self.normalize)

    def call(self, x):
        return sg_ops.blur(x, self.kernel)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "taps": self.taps, "normalize": self.normalize}


@register
class MinibatchStddev(keras.layers.Layer):
    """Appends the minibatch standard deviation over groups of samples as extra channel(s)."""

    def __init__(self, group_size=4, num_features=1, **kwargs):
        super().__init__(**kwargs)
        self.group_size = int(group_size)
        self.num_features = int(num_features)

    def call(self, x):
        return sg_ops.minibatch_stddev(x, self.group_size, self.num_features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_features,)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "num_features": self.num_features}
