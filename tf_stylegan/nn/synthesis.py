"""The synthesis network g: per-layer dlatents -> image, with progressive-growing ``lod``."""

import math

import keras
from keras import ops

from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import Blur, EqualizedConv2D, EqualizedDense, ToRGB, register
from tf_stylegan.nn.style_layers import ConstantInput, LayerEpilogue


def resolution_log2(resolution):
    """log2 of a power-of-two resolution >= 4, with a clear error otherwise."""
    log2 = int(math.log2(resolution)) if resolution >= 1 else -1
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return log2


def use_fused_scale(fused_scale, resolution):
    """The official rule: ``'auto'`` fuses resampling when the larger side is >= 128 px."""
    if fused_scale == "auto":
        return resolution >= 128
    if not isinstance(fused_scale, bool):
        raise ValueError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")
    return fused_scale


@register
class SynthesisBlock(keras.layers.Layer):
    """Two style-modulated layers at one resolution.

    4x4: constant input (or a dense from w) -> epilogue; conv 3x3 -> epilogue.
    Above: up-conv 3x3 -> blur -> epilogue; conv 3x3 -> epilogue.
    """

    def __init__(self, resolution, filters, fused=False, blur_filter=(1, 2, 1), const_input_layer=True,
                 use_noise=True, use_pixel_norm=False, use_instance_norm=True, use_styles=True,
                 nonlinearity="lrelu", use_wscale=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.filters = int(filters)
        self.fused = bool(fused)
        self.blur_filter = None if blur_filter is None else [float(t) for t in blur_filter]
        self.const_input_layer = const_input_layer
        self.use_noise = use_noise
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        self.use_styles = use_styles
        self.nonlinearity = nonlinearity
        self.use_wscale = use_wscale
        self.seed = seed
        gain = sg_ops.activation_gain(nonlinearity)
        epilogue_args = dict(use_noise=use_noise, use_pixel_norm=use_pixel_norm,
                             use_instance_norm=use_instance_norm, use_styles=use_styles,
                             nonlinearity=nonlinearity, use_wscale=use_wscale)
        self.const = self.dense = self.blur = None
        if self.resolution == 4:
            if const_input_layer:
                self.const = ConstantInput(filters, 4, name="const")
            else:  # ProGAN-style input; gain / 4 as official
                self.dense = EqualizedDense(filters * 16, gain=gain / 4, use_bias=False,
                                            use_wscale=use_wscale, name="dense")
            self.conv0 = None
        else:
            self.conv0 = EqualizedConv2D(filters, 3, gain=gain, use_bias=False, resample="up", fused=fused,
                                         use_wscale=use_wscale, name="conv0_up")
            if blur_filter is not None:
                self.blur = Blur(blur_filter, name="blur")
        self.epilogue0 = LayerEpilogue(seed=seed, after_conv=self.conv0 is not None and self.blur is None
                                       and not fused, name="epilogue0", **epilogue_args)
        self.conv1 = EqualizedConv2D(filters, 3, gain=gain, use_bias=False, use_wscale=use_wscale,
                                     name="conv1")
        self.epilogue1 = LayerEpilogue(seed=None if seed is None else seed + 1, after_conv=True,
                                       name="epilogue1", **epilogue_args)

    def build(self, x_shape, w_shape=None):
        size, filters = self.resolution, self.filters
        feature_shape = (None, size, size, filters)
        if self.const is not None:
            self.const.build()
        elif self.dense is not None:
            self.dense.build(w_shape)
        else:
            self.conv0.build(x_shape)
            if self.blur is not None:
                self.blur.build(feature_shape)
        self.epilogue0.build(feature_shape, w_shape)
        self.conv1.build(feature_shape)
        self.epilogue1.build(feature_shape, w_shape)

    def call(self, x, w0, w1, randomize_noise=True, noise=(None, None)):
        """``x``: features of the previous block (ignored at 4x4); ``w0``, ``w1``: [N, dlatent_size].

        ``noise``: optional explicit noise [N, r, r, 1] for each of the two layers.
        """
        if self.const is not None:
            x = ops.cast(self.const(w0), w0.dtype)
        elif self.dense is not None:
            x = ops.reshape(self.dense(w0), [-1, self.filters, 4, 4])  # official NCHW order
            x = ops.transpose(x, [0, 2, 3, 1])  # [N, 4, 4, C]
        else:
            x = self.conv0(x)
            if self.blur is not None:
                x = self.blur(x)
        x = self.epilogue0(x, w0, randomize_noise=randomize_noise, noise=noise[0])
        x = self.conv1(x)
        return self.epilogue1(x, w1, randomize_noise=randomize_noise, noise=noise[1])

    def compute_output_shape(self, x_shape, w_shape=None):
        return (w_shape[0] if w_shape else None, self.resolution, self.resolution, self.filters)

    def macs_per_sample(self):
        """Multiply-accumulates of one call on one sample (convs and dense layers)."""
        macs = self.conv1.macs_per_sample(self.resolution)
        if self.conv0 is not None:
            macs += self.conv0.macs_per_sample(self.resolution // 2)
        if self.dense is not None:
            macs += int(self.dense.weight.shape[0]) * self.dense.units
        for epilogue in (self.epilogue0, self.epilogue1):
            if self.use_styles:
                style = epilogue.adain.style
                macs += int(style.weight.shape[0]) * style.units
        return macs

    def get_config(self):
        return {
            **super().get_config(), "resolution": self.resolution, "filters": self.filters,
            "fused": self.fused, "blur_filter": self.blur_filter, "const_input_layer": self.const_input_layer,
            "use_noise": self.use_noise, "use_pixel_norm": self.use_pixel_norm,
            "use_instance_norm": self.use_instance_norm, "use_styles": self.use_styles,
            "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale, "seed": self.seed,
        }


@register
class SynthesisNetwork(keras.layers.Layer):
    """dlatents [N, num_layers, dlatent_size] -> images [N, resolution, resolution, num_channels].

    ``num_layers = 2 * log2(resolution) - 2``; layer ``i`` runs at ``2 ** (i // 2 + 2)`` px.
    The non-trainable ``lod`` selects the level of detail with the official blend:
    ``img = lerp(ToRGB(x_r), upsample(img), clip(lod - (log2(resolution) - r), 0, 1))``.
    """

    def __init__(
        self,
        dlatent_size=512,  # dimensionality of w
        num_channels=3,  # image channels
        resolution=1024,  # output resolution, a power of two
        fmap_base=8192,  # feature maps: min(fmap_base / 2 ** (stage * fmap_decay), fmap_max)
        fmap_decay=1.0,
        fmap_max=512,
        use_styles=True,  # AdaIN style modulation
        const_input_layer=True,  # learned constant input (else a dense layer from w)
        use_noise=True,  # per-layer noise inputs
        nonlinearity="lrelu",  # 'lrelu' or 'relu'
        use_wscale=True,  # equalized learning rate
        use_pixel_norm=False,  # pixel norm in each epilogue
        use_instance_norm=True,  # instance norm in each epilogue
        fused_scale="auto",  # fused up-conv: True, False or 'auto' (from 128 px)
        blur_filter=(1, 2, 1),  # low-pass taps after each up-conv; None disables
        seed=None,  # seed of the fresh-noise generators (None: random)
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resolution_log2 = resolution_log2(resolution)
        self.dlatent_size = int(dlatent_size)
        self.num_channels = int(num_channels)
        self.resolution = int(resolution)
        self.fmap_base, self.fmap_decay, self.fmap_max = int(fmap_base), float(fmap_decay), int(fmap_max)
        self.use_styles = use_styles
        self.const_input_layer = const_input_layer
        self.use_noise = use_noise
        self.nonlinearity = nonlinearity
        self.use_wscale = use_wscale
        self.use_pixel_norm = use_pixel_norm
        self.use_instance_norm = use_instance_norm
        self.fused_scale = fused_scale
        self.blur_filter = None if blur_filter is None else [float(t) for t in blur_filter]
        self.seed = seed
        self.num_layers = 2 * self.resolution_log2 - 2
        self.blocks, self.to_rgb = [], []
        for res_log2 in range(2, self.resolution_log2 + 1):
            size = 2 ** res_log2
            self.blocks.append(SynthesisBlock(
                size, self.fmaps(res_log2 - 1), fused=use_fused_scale(fused_scale, size),
                blur_filter=blur_filter, const_input_layer=const_input_layer, use_noise=use_noise,
                use_pixel_norm=use_pixel_norm, use_instance_norm=use_instance_norm, use_styles=use_styles,
                nonlinearity=nonlinearity, use_wscale=use_wscale,
                seed=None if seed is None else seed + 2 * res_log2, name=f"block{size}",
            ))
            self.to_rgb.append(ToRGB(num_channels, use_wscale=use_wscale, name=f"to_rgb{size}"))

    def fmaps(self, stage):
        """Feature maps at ``stage`` (the block at 2**r px has ``fmaps(r - 1)``)."""
        return sg_ops.fmaps(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def build(self, input_shape=None):
        w_shape = (None, self.dlatent_size)
        x_shape = None
        for block, to_rgb in zip(self.blocks, self.to_rgb):
            block.build(x_shape, w_shape)
            x_shape = (None, block.resolution, block.resolution, block.filters)
            to_rgb.build(x_shape)
        self.lod = self.add_weight(name="lod", shape=(), initializer="zeros", trainable=False)

    def noise_sizes(self, resolution=None):
        """Spatial size of the noise map of each layer computed up to ``resolution``."""
        top = resolution_log2(resolution or self.resolution)
        return [2 ** (i // 2 + 2) for i in range(2 * top - 2)]

    def call(self, dlatents, randomize_noise=True, resolution=None, noise=None, lod=None):
        """Images [N, resolution, resolution, C] from dlatents [N, num_layers, dlatent_size].

        ``resolution`` (default: the full one) computes only the blocks up to it: the
        result equals the full network's output box-downsampled to that size whenever
        ``lod >= log2(self.resolution / resolution)`` (progressive growing never asks for
        less detail than the lod allows). ``noise`` optionally gives each computed layer's
        noise [N, size, size, 1] (see :meth:`noise_sizes`) instead of drawing it. ``lod``, a
        Python number, fixes the level of detail when the function is traced instead of reading
        the ``lod`` variable: the ToRGB layers and blends that it leaves out are not computed
        (at lod 0, every lower level's; inference of a trained network).
        """
        if tuple(dlatents.shape[1:]) != (self.num_layers, self.dlatent_size):
            raise ValueError(
                f"dlatents must have shape [N, {self.num_layers}, {self.dlatent_size}], "
                f"got {tuple(dlatents.shape)}"
            )
        top = resolution_log2(resolution or self.resolution)
        if top > self.resolution_log2:
            raise ValueError(f"resolution {resolution} exceeds the network's {self.resolution}")
        if noise is not None and len(noise) != 2 * top - 2:
            raise ValueError(f"noise must hold {2 * top - 2} maps (one per layer up to {2 ** top}px), "
                             f"got {len(noise)}")
        noise = noise or [None] * (2 * top - 2)
        dlatents = ops.cast(dlatents, self.compute_dtype)
        blend_weights = self.blend_weights(top, lod)
        fixed = lod is not None
        # With a fixed lod, the levels before the last one of weight 0 do not reach the output.
        first_used = max(index for index, weight in enumerate(blend_weights)
                         if weight is None or (fixed and weight == 0))
        x = images = None
        for index in range(top - 1):
            block, to_rgb, weight = self.blocks[index], self.to_rgb[index], blend_weights[index]
            x = block(x, dlatents[:, 2 * index], dlatents[:, 2 * index + 1], randomize_noise=randomize_noise,
                      noise=noise[2 * index:2 * index + 2])
            if index < first_used:
                continue
            if images is None:  # the first level used: any later one has a weight above 0
                images = to_rgb(x)
            elif fixed and weight == 1:
                images = sg_ops.upsample_nearest(images)
            else:
                images = sg_ops.lerp_clip(to_rgb(x), sg_ops.upsample_nearest(images), weight)
        return images

    def blend_weights(self, top, lod=None):
        """The weight of the upsampled lower level in each level's blend up to ``2 ** top`` px: a
        float from a fixed ``lod``, else a tensor from the ``lod`` variable (None for 4 px, whose
        images start the blend)."""
        variable_lod = ops.cast(self.lod, self.compute_dtype) if lod is None else None
        weights = [None]
        for index in range(1, top - 1):
            level = self.resolution_log2 - (index + 2)  # 0 at the output resolution
            weights.append(variable_lod - level if lod is None else min(max(float(lod) - level, 0.0), 1.0))
        return weights

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.resolution, self.resolution, self.num_channels)

    def macs_per_sample(self):
        """Multiply-accumulates of one call on one sample (convs and dense layers)."""
        return sum(block.macs_per_sample() + to_rgb.macs_per_sample(block.resolution)
                   for block, to_rgb in zip(self.blocks, self.to_rgb))

    def get_config(self):
        return {
            **super().get_config(), "dlatent_size": self.dlatent_size, "num_channels": self.num_channels,
            "resolution": self.resolution, "fmap_base": self.fmap_base, "fmap_decay": self.fmap_decay,
            "fmap_max": self.fmap_max, "use_styles": self.use_styles,
            "const_input_layer": self.const_input_layer, "use_noise": self.use_noise,
            "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale,
            "use_pixel_norm": self.use_pixel_norm, "use_instance_norm": self.use_instance_norm,
            "fused_scale": self.fused_scale, "blur_filter": self.blur_filter, "seed": self.seed,
        }
