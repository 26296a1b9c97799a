"""The mapping network f: z -> w."""

import keras
from keras import ops

from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import EqualizedDense, register


def check_labels(labels, label_size, what):
    """``labels`` [N, label_size] of a conditional network, or ValueError naming ``what`` needs them."""
    if labels is None:
        raise ValueError(f"{what} is class-conditional ({label_size} classes): pass labels [N, {label_size}] "
                         "(one-hot rows)")
    if len(labels.shape) != 2 or labels.shape[-1] != label_size:
        raise ValueError(f"labels must have shape [N, {label_size}], got {tuple(labels.shape)}")
    return labels


@register
class MappingNetwork(keras.layers.Layer):
    """z [N, latent_size] -> pixel norm -> ``mapping_layers`` x dense -> w [N, dlatent_size].

    Class-conditional (``label_size`` > 0, official ``LabelConcat``): the labels [N, label_size] (one-hot
    rows) are embedded by a plain matrix [label_size, latent_size] and concatenated to z before the norm.

    With ``dlatent_broadcast`` set, w is tiled to [N, dlatent_broadcast, dlatent_size].
    """

    def __init__(
        self,
        latent_size=512,  # dimensionality of z
        dlatent_size=512,  # dimensionality of w
        mapping_layers=8,  # number of dense layers
        mapping_fmaps=512,  # width of the hidden layers
        mapping_lrmul=0.01,  # learning-rate multiplier of the mapping layers
        mapping_nonlinearity="lrelu",  # 'lrelu' or 'relu'
        normalize_latents=True,  # pixel-normalise z first
        dlatent_broadcast=None,  # tile w to [N, dlatent_broadcast, dlatent_size]
        use_wscale=True,  # equalized learning rate
        label_size=0,  # classes of a conditional network (0: unconditional)
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.label_size = int(label_size)
        self.latent_size = int(latent_size)
        self.dlatent_size = int(dlatent_size)
        self.mapping_layers = int(mapping_layers)
        self.mapping_fmaps = int(mapping_fmaps)
        self.mapping_lrmul = float(mapping_lrmul)
        self.mapping_nonlinearity = mapping_nonlinearity
        self.normalize_latents = normalize_latents
        self.dlatent_broadcast = dlatent_broadcast
        self.use_wscale = use_wscale
        gain = sg_ops.activation_gain(mapping_nonlinearity)
        self.dense_layers = [
            EqualizedDense(
                dlatent_size if i == self.mapping_layers - 1 else mapping_fmaps,
                gain=gain, lr_multiplier=mapping_lrmul, activation=mapping_nonlinearity,
                use_wscale=use_wscale, dtype=self.dtype_policy, name=f"dense{i}",
            )
            for i in range(self.mapping_layers)
        ]

    def build(self, input_shape=None):
        features = self.latent_size
        if self.label_size:
            self.label_weight = self.add_weight(
                name="label_weight", shape=(self.label_size, self.latent_size),
                initializer=keras.initializers.RandomNormal(stddev=1.0))
            features += self.latent_size
        for layer in self.dense_layers:
            layer.build((None, features))
            features = layer.units

    def call(self, z, labels=None):
        if len(z.shape) != 2 or z.shape[-1] != self.latent_size:
            raise ValueError(f"z must have shape [N, {self.latent_size}], got {tuple(z.shape)}")
        x = z
        if self.label_size:
            labels = check_labels(labels, self.label_size, "the mapping network")
            embedded = ops.matmul(ops.cast(labels, x.dtype), ops.cast(self.label_weight, x.dtype))
            x = ops.concatenate([x, embedded], axis=1)  # [N, 2 * latent_size]
        if self.normalize_latents:
            x = sg_ops.pixel_norm(x)
        for layer in self.dense_layers:
            x = layer(x)
        if self.dlatent_broadcast:
            x = ops.tile(x[:, None, :], [1, self.dlatent_broadcast, 1])  # [N, num_layers, dlatent_size]
        return x

    def compute_output_shape(self, input_shape):
        if self.dlatent_broadcast:
            return (input_shape[0], self.dlatent_broadcast, self.dlatent_size)
        return (input_shape[0], self.dlatent_size)

    def macs_per_sample(self):
        """Multiply-accumulates of one call on one sample."""
        embedding = self.label_size * self.latent_size
        return embedding + sum(int(layer.weight.shape[0]) * layer.units for layer in self.dense_layers)

    def get_config(self):
        return {
            **super().get_config(), "latent_size": self.latent_size, "dlatent_size": self.dlatent_size,
            "mapping_layers": self.mapping_layers, "mapping_fmaps": self.mapping_fmaps,
            "mapping_lrmul": self.mapping_lrmul, "mapping_nonlinearity": self.mapping_nonlinearity,
            "normalize_latents": self.normalize_latents, "dlatent_broadcast": self.dlatent_broadcast,
            "use_wscale": self.use_wscale, "label_size": self.label_size,
        }
