"""The layers of a synthesis layer's epilogue: noise injection, AdaIN (instance norm and the style
from w), the epilogue that chains them, and the learned constant 4x4 input."""

import keras
from keras import ops

from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import EqualizedDense, register


@register
class NoiseInjection(keras.layers.Layer):
    """``x + noise * strength``: one noise map per sample shared over channels, per-channel strength.

    ``randomize_noise=True`` (the default, as official) draws fresh N(0, 1) noise on every
    call from this layer's seed generator; ``False`` uses the stored ``noise_map``
    (non-trainable), for deterministic output.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        _, height, width, channels = input_shape
        # Created here so that its state variable is named under this layer (checkpoints).
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="noise_seed")
        self.strength = self.add_weight(name="strength", shape=(channels,), initializer="zeros")
        self.noise_map = self.add_weight(
            name="noise_map", shape=(1, height, width, 1),
            initializer=keras.initializers.RandomNormal(stddev=1.0), trainable=False,
        )

    def noise(self, x, randomize_noise=True):
        """The noise this layer adds to ``x``: [N, H, W, 1] fresh, or the stored [1, H, W, 1]."""
        if randomize_noise:
            shape = ops.shape(x)
            return keras.random.normal((shape[0], shape[1], shape[2], 1), dtype=x.dtype,
                                       seed=self.seed_generator)
        return ops.cast(self.noise_map, x.dtype)

    def call(self, x, randomize_noise=True):
        return x + sg_ops.scaled_noise(self.noise(x, randomize_noise), ops.cast(self.strength, x.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@register
class AdaIN(keras.layers.Layer):
    """Adaptive instance norm: instance norm, then ``x * (scale + 1) + shift`` from an affine of w.

    The style affine is an :class:`EqualizedDense` w -> [scale (C), shift (C)] with gain 1.
    Normalisation and modulation are applied as one per-channel scale and shift.
    """

    def __init__(self, use_instance_norm=True, use_styles=True, use_wscale=True,
                 epsilon=sg_ops.NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.use_instance_norm = use_instance_norm
        self.use_styles = use_styles
        self.use_wscale = use_wscale
        self.epsilon = float(epsilon)
        self.style = None

    def build(self, x_shape, w_shape=None):
        channels = int(x_shape[-1])
        if self.use_styles:
            self.style = EqualizedDense(2 * channels, gain=1.0, use_wscale=self.use_wscale, name="style")
            self.style.build(w_shape)

    def modulation(self, w, dtype):
        """(scale + 1, shift), each [N, 1, 1, C], from w; (None, None) without styles."""
        if not self.use_styles:
            return None, None
        channels = self.style.units // 2
        style = ops.cast(self.style(w), dtype)  # [N, 2C]
        scale = ops.reshape(style[:, :channels] + 1.0, [-1, 1, 1, channels])
        shift = ops.reshape(style[:, channels:], [-1, 1, 1, channels])
        return scale, shift

    def call(self, x, w):
        scale, shift = self.modulation(w, x.dtype)
        return sg_ops.adaptive_instance_norm(x, scale, shift, self.use_instance_norm, self.epsilon)

    def compute_output_shape(self, x_shape, w_shape=None):
        return x_shape

    def get_config(self):
        return {
            **super().get_config(), "use_instance_norm": self.use_instance_norm,
            "use_styles": self.use_styles, "use_wscale": self.use_wscale, "epsilon": self.epsilon,
        }


@register
class LayerEpilogue(keras.layers.Layer):
    """The official per-layer epilogue: noise -> bias -> activation -> [pixel norm] -> AdaIN(w).

    Normalisation and modulation are applied as one scale and shift
    (:func:`tf_stylegan.nn.ops.modulated_epilogue`).
    """

    def __init__(self, use_noise=True, use_pixel_norm=False, use_instance_norm=True, use_styles=True,
                 nonlinearity="lrelu", use_wscale=True, seed=None, after_conv=False, **kwargs):
        super().__init__(**kwargs)
        self.after_conv = bool(after_conv)  # the input comes straight from a conv (see modulated_epilogue)
        self.use_noise = use_noise
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        self.use_styles = use_styles
        self.nonlinearity = nonlinearity
        self.use_wscale = use_wscale
        self.seed = seed
        self.noise = NoiseInjection(seed=seed, name="noise") if use_noise else None
        self.adain = AdaIN(use_instance_norm, use_styles, use_wscale, name="adain")

    def build(self, x_shape, w_shape=None):
        if self.noise is not None:
            self.noise.build(x_shape)
        self.bias = self.add_weight(name="bias", shape=(int(x_shape[-1]),), initializer="zeros")
        self.adain.build(x_shape, w_shape)

    def call(self, x, w, randomize_noise=True, noise=None):
        """``noise``: explicit [N, H, W, 1] noise; by default drawn or stored per ``randomize_noise``."""
        strength = None
        if self.noise is None:
            noise = None
        else:
            noise = ops.cast(self.noise.noise(x, randomize_noise) if noise is None else noise, x.dtype)
            strength = ops.cast(self.noise.strength, x.dtype)
        scale, shift = self.adain.modulation(w, x.dtype)
        return sg_ops.modulated_epilogue(
            x, noise, strength, ops.cast(self.bias, x.dtype), scale, shift, self.nonlinearity,
            self.use_pixel_norm, self.use_instance_norm, self.adain.epsilon, self.after_conv,
        )

    def compute_output_shape(self, x_shape, w_shape=None):
        return x_shape

    def get_config(self):
        return {
            **super().get_config(), "use_noise": self.use_noise, "use_pixel_norm": self.use_pixel_norm,
            "use_instance_norm": self.use_instance_norm, "use_styles": self.use_styles,
            "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale, "seed": self.seed,
            "after_conv": self.after_conv,
        }


@register
class ConstantInput(keras.layers.Layer):
    """Learned constant [1, size, size, C] (initialised to ones), tiled over the batch."""

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.size = int(size)

    def build(self, input_shape=None):
        self.const = self.add_weight(
            name="const", shape=(1, self.size, self.size, self.channels), initializer="ones",
        )

    def call(self, batch_like):
        """Returns the constant repeated for every row of ``batch_like``."""
        batch = ops.shape(batch_like)[0]
        return ops.tile(self.const, [batch, 1, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size}
