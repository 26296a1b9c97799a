"""The discriminator: images -> scores, with progressive-growing ``lod`` and minibatch stddev."""

import keras
from keras import ops

from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import (
    Blur,
    EqualizedConv2D,
    EqualizedDense,
    FromRGB,
    MinibatchStddev,
    constructor_arguments,
    register,
)
from tf_stylegan.nn.mapping import check_labels
from tf_stylegan.nn.synthesis import resolution_log2, use_fused_scale


@register
class DiscriminatorBlock(keras.layers.Layer):
    """Above 4x4: conv 3x3 -> blur -> down-conv 3x3 (each conv with bias and activation).

    At 4x4: [minibatch stddev] -> conv 3x3 -> dense -> dense to one score (flattened in
    the official NCHW order).
    """

    def __init__(self, resolution, filters, out_filters, fused=False, blur_filter=(1, 2, 1),
                 mbstd_group_size=4, mbstd_num_features=1, nonlinearity="lrelu", use_wscale=True,
                 num_outputs=1, **kwargs):
        super().__init__(**kwargs)
        self.num_outputs = int(num_outputs)  # the 4x4 block's scores: one per class when conditional
        self.resolution = int(resolution)
        self.filters = int(filters)
        self.out_filters = int(out_filters)
        self.fused = bool(fused)
        self.blur_filter = None if blur_filter is None else [float(t) for t in blur_filter]
        self.mbstd_group_size = int(mbstd_group_size)
        self.mbstd_num_features = int(mbstd_num_features)
        self.nonlinearity = nonlinearity
        self.use_wscale = use_wscale
        gain = sg_ops.activation_gain(nonlinearity)
        conv_args = dict(gain=gain, activation=nonlinearity, use_wscale=use_wscale)
        self.blur = self.mbstd = None
        if self.resolution > 4:
            self.conv0 = EqualizedConv2D(filters, 3, name="conv0", **conv_args)
            if blur_filter is not None:
                self.blur = Blur(blur_filter, name="blur")
            self.conv1 = EqualizedConv2D(out_filters, 3, resample="down", fused=fused, name="conv1_down",
                                         **conv_args)
        else:
            if mbstd_group_size > 1:
                self.mbstd = MinibatchStddev(mbstd_group_size, mbstd_num_features, name="mbstd")
            self.conv0 = EqualizedConv2D(filters, 3, name="conv", **conv_args)
            self.dense0 = EqualizedDense(out_filters, name="dense0", **conv_args)
            self.dense1 = EqualizedDense(self.num_outputs, gain=1.0, use_wscale=use_wscale, name="dense1")

    def build(self, input_shape):
        size, in_channels = self.resolution, int(input_shape[-1])
        if self.resolution > 4:
            self.conv0.build((None, size, size, in_channels))
            if self.blur is not None:
                self.blur.build((None, size, size, self.filters))
            self.conv1.build((None, size, size, self.filters))
        else:
            if self.mbstd is not None:
                in_channels += self.mbstd_num_features
            self.conv0.build((None, 4, 4, in_channels))
            self.dense0.build((None, self.filters * 16))
            self.dense1.build((None, self.out_filters))

    def call(self, x):
        if self.resolution > 4:
            x = self.conv0(x)
            if self.blur is not None:
                x = self.blur(x)
            return self.conv1(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv0(x)
        x = ops.reshape(ops.transpose(x, [0, 3, 1, 2]), [-1, self.filters * 16])  # NCHW flatten: [N, C*16]
        return self.dense1(self.dense0(x))

    def compute_output_shape(self, input_shape):
        if self.resolution > 4:
            return (input_shape[0], self.resolution // 2, self.resolution // 2, self.out_filters)
        return (input_shape[0], self.num_outputs)

    def macs_per_sample(self):
        """Multiply-accumulates of one call on one sample."""
        if self.resolution > 4:
            return self.conv0.macs_per_sample(self.resolution) + self.conv1.macs_per_sample(self.resolution)
        return (self.conv0.macs_per_sample(4) + self.filters * 16 * self.out_filters
                + self.out_filters * self.num_outputs)

    def get_config(self):
        return {
            **super().get_config(), "resolution": self.resolution, "filters": self.filters,
            "out_filters": self.out_filters, "fused": self.fused, "blur_filter": self.blur_filter,
            "mbstd_group_size": self.mbstd_group_size, "mbstd_num_features": self.mbstd_num_features,
            "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale, "num_outputs": self.num_outputs,
        }


@register
class Discriminator(keras.Model):
    """images [N, resolution, resolution, num_channels] -> scores [N, 1].

    Class-conditional (``label_size`` > 0, official ``LabelSwitch``): one score per class, and the score
    of an image is that of its label (the scores times the one-hot labels, summed).

    The non-trainable ``lod`` mirrors the generator's: at each resolution r the features
    blend with FromRGB of the box-downsampled image by ``clip(lod - (log2(resolution) - r), 0, 1)``.
    """

    def __init__(
        self,
        num_channels=3,  # image channels
        resolution=1024,  # input resolution, a power of two
        fmap_base=8192,  # feature maps: min(fmap_base / 2 ** (stage * fmap_decay), fmap_max)
        fmap_decay=1.0,  # how fast the feature maps shrink with resolution
        fmap_max=512,  # the most feature maps of any layer
        nonlinearity="lrelu",  # 'lrelu' or 'relu'
        use_wscale=True,  # equalized learning rate
        mbstd_group_size=4,  # minibatch stddev group size (<= 1 disables)
        mbstd_num_features=1,  # minibatch stddev features appended
        fused_scale="auto",  # fused down-conv: True, False or 'auto' (from 128 px)
        blur_filter=(1, 2, 1),  # low-pass taps before each down-conv; None disables
        label_size=0,  # classes of a class-conditional discriminator (0: unconditional)
        **kwargs,
    ):
        arguments = {name: value for name, value in locals().items()
                     if name in constructor_arguments(Discriminator)}
        super().__init__(**kwargs)
        self.arguments = arguments  # get_config's content
        self.resolution_log2 = resolution_log2(resolution)
        self.num_channels = int(num_channels)
        self.resolution = int(resolution)
        self.fmap_base, self.fmap_decay, self.fmap_max = int(fmap_base), float(fmap_decay), int(fmap_max)
        self.nonlinearity = nonlinearity
        self.use_wscale = use_wscale
        self.mbstd_group_size = int(mbstd_group_size)
        self.mbstd_num_features = int(mbstd_num_features)
        self.fused_scale = fused_scale
        self.blur_filter = None if blur_filter is None else [float(t) for t in blur_filter]
        self.label_size = int(label_size)
        # Index k serves resolution 2 ** (resolution_log2 - k): blocks from the top down to 4x4.
        self.blocks, self.from_rgb = [], []
        for res_log2 in range(self.resolution_log2, 1, -1):
            size = 2 ** res_log2
            out_filters = self.fmaps(res_log2 - 2) if res_log2 > 2 else self.fmaps(0)
            self.blocks.append(DiscriminatorBlock(
                size, self.fmaps(res_log2 - 1), out_filters, fused=use_fused_scale(fused_scale, size),
                blur_filter=blur_filter, mbstd_group_size=mbstd_group_size,
                mbstd_num_features=mbstd_num_features, nonlinearity=nonlinearity, use_wscale=use_wscale,
                num_outputs=max(self.label_size, 1) if size == 4 else 1, name=f"block{size}",
            ))
            self.from_rgb.append(FromRGB(self.fmaps(res_log2 - 1), activation=nonlinearity,
                                         use_wscale=use_wscale, name=f"from_rgb{size}"))

    def fmaps(self, stage):
        """Feature maps at ``stage`` (the block at 2**r px has ``fmaps(r - 1)``)."""
        return sg_ops.fmaps(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    def build(self, input_shape=None):
        for block, from_rgb in zip(self.blocks, self.from_rgb):
            size = block.resolution
            from_rgb.build((None, size, size, self.num_channels))
            block.build((None, size, size, block.filters))
        self.lod = self.add_weight(name="lod", shape=(), initializer="zeros", trainable=False)

    def call(self, images, labels=None):
        """Scores [N, 1] of images [N, r, r, C] at the full resolution, or at a lower power of two
        r: then only the blocks from r down run, equal to the full network on the nearest-upsampled
        images whenever ``lod >= log2(resolution / r)``. A conditional D takes ``labels`` [N, label_size]."""
        if self.label_size:
            labels = check_labels(labels, self.label_size, "the discriminator")
        size = images.shape[1]
        if (len(images.shape) != 4 or images.shape[2] != size or images.shape[3] != self.num_channels
                or size is None or size > self.resolution or size < 4 or size & (size - 1)):
            raise ValueError(f"images must have shape [N, r, r, {self.num_channels}] (NHWC) with r a power "
                             f"of two from 4 to {self.resolution}, got {tuple(images.shape)}")
        images = ops.cast(images, self.compute_dtype)
        lod = ops.cast(self.lod, self.compute_dtype)
        first = self.resolution_log2 - resolution_log2(size)  # level of the input resolution
        x = self.from_rgb[first](images)
        for level in range(first, self.resolution_log2 - 2):
            x = self.blocks[level](x)
            images = sg_ops.downsample_box(images)
            x = sg_ops.lerp_clip(x, self.from_rgb[level + 1](images), lod - level)
        scores = self.blocks[-1](x)  # [N, max(label_size, 1)]
        if self.label_size:
            scores = ops.sum(scores * ops.cast(labels, scores.dtype), axis=1, keepdims=True)
        return scores

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def macs_per_sample(self):
        """Multiply-accumulates of one call on one sample (convs and dense layers)."""
        return sum(block.macs_per_sample() + rgb.macs_per_sample(block.resolution)
                   for block, rgb in zip(self.blocks, self.from_rgb))

    def get_config(self):
        return {**super().get_config(), **self.arguments}
