"""The style-based generator: mapping + synthesis, ``w_avg``, truncation and style mixing."""

import keras
from keras import ops

from tf_stylegan.nn import ops as sg_ops
from tf_stylegan.nn.layers import constructor_arguments, register
from tf_stylegan.nn.mapping import MappingNetwork
from tf_stylegan.nn.synthesis import SynthesisNetwork


def layer_mask(num_layers, crossover):
    """Boolean mask of the dlatent layers below ``crossover``: [1, num_layers, 1] for a scalar
    crossover, [N, num_layers, 1] for one per sample ([N, 1, 1])."""
    return ops.arange(num_layers)[None, :, None] < crossover


def truncation_coefficients(num_layers, psi, cutoff):
    """[1, num_layers, 1]: ``psi`` on dlatent layers ``i < cutoff``, 1 elsewhere."""
    return ops.where(layer_mask(num_layers, cutoff), ops.cast(psi, "float32"), 1.0)


@register
class Generator(keras.Model):
    """z [N, latent_size] -> images [N, resolution, resolution, num_channels] (NHWC, nominal [-1, 1]).

    Holds ``w_avg`` (the running mean of w, updated only in training calls) for the
    truncation trick. A training call also applies style-mixing regularization.
    """

    def __init__(
        self,
        resolution=1024,  # output resolution, a power of two
        num_channels=3,  # image channels
        latent_size=512,  # dimensionality of z
        dlatent_size=512,  # dimensionality of w
        mapping_layers=8,  # dense layers of the mapping network
        mapping_fmaps=512,  # width of its hidden layers
        mapping_lrmul=0.01,  # its learning-rate multiplier (equalized lr)
        mapping_nonlinearity="lrelu",  # its activation: 'lrelu' or 'relu'
        normalize_latents=True,  # pixel norm of z before the mapping
        fmap_base=8192,  # synthesis feature maps: min(fmap_base / 2 ** (stage * fmap_decay), fmap_max)
        fmap_decay=1.0,  # how fast the feature maps shrink with resolution
        fmap_max=512,  # the most feature maps of any synthesis layer
        use_styles=True,  # AdaIN style modulation
        const_input_layer=True,  # learned constant 4x4 input (else a dense layer from w)
        use_noise=True,  # per-layer noise inputs
        nonlinearity="lrelu",  # synthesis activation: 'lrelu' or 'relu'
        use_pixel_norm=False,  # pixel norm in each synthesis epilogue
        use_instance_norm=True,  # instance norm in each synthesis epilogue
        fused_scale="auto",  # fused up-conv: True, False or 'auto' (from 128 px)
        blur_filter=(1, 2, 1),  # low-pass taps after each up-conv; None disables
        use_wscale=True,  # equalized learning rate
        truncation_psi=0.7,  # default psi of inference calls (1 or None disables, as official)
        truncation_cutoff=8,  # truncate dlatent layers i < cutoff (8 = 4x4 to 32x32; None disables)
        dlatent_avg_beta=0.995,  # decay of the w_avg running mean
        style_mixing_prob=0.9,  # probability of mixing two latents in a training call
        seed=None,  # seed of noise and style-mixing randomness (None: random)
        label_size=0,  # classes of a class-conditional generator (0: unconditional)
        class_names=None,  # their names, e.g. a dataset's class folders (None: unnamed)
        **kwargs,
    ):
        if class_names is not None:
            class_names = [str(name) for name in class_names]
            if len(class_names) != label_size:
                raise ValueError(f"{len(class_names)} class names for a generator of {label_size} classes")
        arguments = {name: value for name, value in locals().items()
                     if name in constructor_arguments(Generator)}
        super().__init__(**kwargs)
        off = truncation_psi is None or truncation_cutoff is None
        self.truncation_psi = 1.0 if off else float(truncation_psi)
        self.truncation_cutoff = 0 if off else int(truncation_cutoff)
        self.dlatent_avg_beta = float(dlatent_avg_beta)
        self.style_mixing_prob = float(style_mixing_prob)
        self.seed = seed
        self.arguments = arguments  # get_config's content
        self.synthesis = SynthesisNetwork(
            dlatent_size=dlatent_size, num_channels=num_channels, resolution=resolution,
            fmap_base=fmap_base, fmap_decay=fmap_decay, fmap_max=fmap_max, use_styles=use_styles,
            const_input_layer=const_input_layer, use_noise=use_noise, nonlinearity=nonlinearity,
            use_wscale=use_wscale, use_pixel_norm=use_pixel_norm, use_instance_norm=use_instance_norm,
            fused_scale=fused_scale, blur_filter=blur_filter, seed=seed, name="synthesis",
        )
        self.num_layers = self.synthesis.num_layers
        self.mapping = MappingNetwork(
            latent_size=latent_size, dlatent_size=dlatent_size, mapping_layers=mapping_layers,
            mapping_fmaps=mapping_fmaps, mapping_lrmul=mapping_lrmul,
            mapping_nonlinearity=mapping_nonlinearity, normalize_latents=normalize_latents,
            dlatent_broadcast=self.num_layers, use_wscale=use_wscale, label_size=label_size, name="mapping",
            # Under a float16 / bfloat16 policy W space stays float32, as StyleGAN2-ADA's mapping.
            dtype="float32" if sg_ops.is_narrow_float(self.dtype_policy.compute_dtype) else self.dtype_policy,
        )

    @property
    def latent_size(self):
        return self.mapping.latent_size

    @property
    def dlatent_size(self):
        return self.mapping.dlatent_size

    @property
    def label_size(self):
        return self.mapping.label_size

    @property
    def class_names(self):
        """The names of the classes (a list of ``label_size``), or None."""
        return self.arguments["class_names"]

    @property
    def resolution(self):
        return self.synthesis.resolution

    @property
    def lod(self):
        """The synthesis network's level-of-detail variable."""
        return self.synthesis.lod

    def build(self, input_shape=None):
        self.mapping.build()
        self.synthesis.build()
        # MEAN aggregation: replicas each update it from their share of the batch.
        self.w_avg = self.add_weight(name="w_avg", shape=(self.dlatent_size,), initializer="zeros",
                                     trainable=False, aggregation="mean")
        self.mixing_seed_generator = keras.random.SeedGenerator(
            None if self.seed is None else self.seed + 7919, name="mixing_seed")

    def call(self, z, training=False, truncation_psi=None, truncation_cutoff=None, randomize_noise=True,
             return_dlatents=False, resolution=None, noise=None, mixing_latents=None, mixing_cutoff=None,
             style_mixing=True, labels=None, lod=None):
        """Maps z and synthesises images.

        Inference (``training=False``): truncation with ``truncation_psi`` / ``truncation_cutoff``
        (defaults from the constructor; psi 1 disables). Training: ``w_avg`` is updated and
        style mixing applied with probability ``style_mixing_prob``; no truncation. A trainer
        that draws its own randomness passes ``mixing_latents`` (the second z) and
        ``mixing_cutoff`` (the crossover layer; ``num_layers`` for no mixing) and ``noise``;
        ``style_mixing=False`` turns the regularization off (the official reference iterations).
        ``resolution``, ``noise`` and ``lod``: see :meth:`SynthesisNetwork.call`. A class-conditional
        generator takes ``labels`` [N, label_size] (one-hot rows); the mixing latents map with the same
        labels.
        Returns images, or (images, dlatents) with ``return_dlatents``.
        """
        dlatents = self.mapping(z, labels)  # [N, num_layers, dlatent_size]
        if training:
            self.update_w_avg(dlatents)
            if mixing_latents is not None:
                dlatents = self.mix(dlatents, self.mapping(mixing_latents, labels), mixing_cutoff)
            elif style_mixing:
                dlatents = self.style_mixing_regularization(z, dlatents, labels)
        else:
            dlatents = self.truncate(dlatents, truncation_psi, truncation_cutoff)
        images = self.synthesis(dlatents, randomize_noise=randomize_noise, resolution=resolution, noise=noise,
                                lod=lod)
        return (images, dlatents) if return_dlatents else images

    def update_w_avg(self, dlatents):
        """``w_avg = lerp(mean_batch(w), w_avg, beta)``."""
        batch_mean = ops.mean(dlatents[:, 0], axis=0)
        self.w_avg.assign(sg_ops.lerp(batch_mean, self.w_avg, self.dlatent_avg_beta))

    def truncate(self, dlatents, psi=None, cutoff=None):
        """``w_avg + psi * (w - w_avg)`` on dlatent layers ``i < cutoff``; psi may be a tensor."""
        psi = self.truncation_psi if psi is None else psi
        cutoff = self.truncation_cutoff if cutoff is None else cutoff
        if isinstance(psi, (int, float)) and isinstance(cutoff, int) and (psi == 1 or cutoff <= 0):
            return dlatents
        coefficients = truncation_coefficients(self.num_layers, psi, cutoff)
        return sg_ops.lerp(self.w_avg, dlatents, ops.cast(coefficients, dlatents.dtype))

    def mix(self, dlatents_a, dlatents_b, crossover):
        """Layers ``i < crossover`` from ``dlatents_a``, the rest from ``dlatents_b``."""
        return ops.where(layer_mask(self.num_layers, crossover), dlatents_a, dlatents_b)

    def active_layers(self):
        """Number of dlatent layers in use at the current lod (integer part)."""
        return self.num_layers - 2 * ops.cast(self.synthesis.lod, "int32")

    def mixing_crossover(self, coin, uniform):
        """The official style-mixing crossover from two U[0, 1) draws: with probability
        ``style_mixing_prob`` (``coin``) a layer uniform in [1, active layers) (``uniform``),
        else the number of active layers (no mixing)."""
        active = self.active_layers()
        crossover = 1 + ops.cast(uniform * ops.cast(active - 1, "float32"), "int32")
        return ops.where(coin < self.style_mixing_prob, crossover, active)

    def style_mixing_regularization(self, z, dlatents, labels=None):
        """With probability ``style_mixing_prob`` replace the layers from a random crossover on
        (among the active ones) by the dlatents of a second, fresh z."""
        if self.style_mixing_prob <= 0:
            return dlatents
        z2 = keras.random.normal(ops.shape(z), dtype=z.dtype, seed=self.mixing_seed_generator)
        coin = keras.random.uniform((), seed=self.mixing_seed_generator)
        uniform = keras.random.uniform((), seed=self.mixing_seed_generator)
        return self.mix(dlatents, self.mapping(z2, labels), self.mixing_crossover(coin, uniform))

    def compute_output_shape(self, input_shape):
        return self.synthesis.compute_output_shape((input_shape[0], self.num_layers, self.dlatent_size))

    def macs_per_sample(self):
        """Multiply-accumulates of one inference call on one sample (convs and dense layers)."""
        return self.mapping.macs_per_sample() + self.synthesis.macs_per_sample()

    def get_config(self):
        # The inference defaults and training rates are attributes a user may change after construction.
        return {**super().get_config(), **self.arguments, "truncation_psi": self.truncation_psi,
                "truncation_cutoff": self.truncation_cutoff, "dlatent_avg_beta": self.dlatent_avg_beta,
                "style_mixing_prob": self.style_mixing_prob}
