"""The signatures of an exported generator, also run in-process by :func:`tf_stylegan.load`.

The exported ``tf.Module`` (:class:`GeneratorModule`) has one signature per use, every input batched
on axis 0 so that TF Serving's REST row format (``instances``) works for all of them:

=====================  =======================================================  ===========================
signature              inputs                                                   outputs
=====================  =======================================================  ===========================
``serving_default``    ``z`` [N, latent] f32, ``truncation_psi`` [N] f32         ``images`` [N, H, W, 3] u8
``generate_from_seeds`` ``seeds`` [N] i64, ``truncation_psi`` [N] f32            ``images``
``mapping``            ``z``, ``truncation_psi``                                 ``dlatents`` [N, L, D] f32
``truncate``           ``dlatents``, ``truncation_psi``                          ``dlatents``
``synthesis``          ``dlatents``, ``noise_seeds`` [N] i64, ``noise_scale``     ``images``, ``raw_images``
                       [N, L] f32                                                [N, H, W, 3] f32
``synthesis_stored_noise`` ``dlatents``                                          ``images``, ``raw_images``
``synthesis_with_noise`` ``dlatents``, ``noise`` [N, M] f32                      ``images``, ``raw_images``
``style_mix``          ``z_a``, ``z_b``, ``crossover`` [N] i32, ``truncation_psi`` ``images``
``generate_png``       ``seeds``, ``truncation_psi``                             ``png_bytes`` [N] string
=====================  =======================================================  ===========================

``truncation_psi`` 1 disables truncation; it applies to the dlatent layers below the model's
cutoff (8 by default). Noise: every signature but ``synthesis`` uses the stored noise maps
(deterministic, as the official figure scripts); ``synthesis`` draws fresh noise from each
sample's ``noise_seeds`` entry (a negative seed: the stored maps) and scales layer ``i``'s noise
by ``noise_scale[:, i]`` (1: as trained, 0: none); ``synthesis_with_noise`` takes every layer's noise map
itself, flattened and concatenated in layer order (M = the sum of the maps' s * s values, :func:`noise_size`):
the layout of a projection's ``projected_w.npz``, so a server reproduces a projected image exactly. Seeds
give latents through stateless random
ops, so a seed gives the same picture in Python, in a SavedModel and in a server. ``generate_png``
gives ``generate_from_seeds``'s images as PNG files: TF Serving's REST API sends an output whose
name ends in ``_bytes`` as base64: 4x (pure noise) to 30x (Twemoji images) smaller, measured, than a
uint8 image as JSON numbers.

A class-conditional generator's signatures that take ``z`` (all but ``truncate`` and the two
``synthesis`` ones) take ``class_index`` [N] i64 as well: the class of each sample (one-hot label);
an index outside [0, classes) fails the call with an error naming the range (TFLite drops that check:
check indices before calling a TFLite model).

TFLite has no stateless random ops, so the TFLite model holds the signatures without them
(:data:`TFLITE_SIGNATURES`).
"""


import types

import tensorflow as tf

SEED_STREAM_LATENTS = 0  # second word of the stateless seed of z draws
SEED_STREAM_NOISE = 1  # ... and of noise draws
METADATA_FILE = "tf_stylegan.json"  # in assets.extra/, which TF Serving ignores
SIGNATURES = ("serving_default", "generate_from_seeds", "mapping", "truncate", "synthesis",
              "synthesis_stored_noise", "synthesis_with_noise", "style_mix", "generate_png")
TFLITE_SIGNATURES = ("serving_default", "mapping", "truncate", "synthesis_stored_noise",
                     "synthesis_with_noise", "style_mix")


def latents_from_seeds(seeds, latent_size):
    """[N] integer seeds -> z [N, latent_size]: one stateless N(0, 1) draw per seed."""
    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
    return tf.map_fn(
        lambda seed: tf.random.stateless_normal([latent_size], tf.stack([seed, SEED_STREAM_LATENTS])),
        seeds, fn_output_signature=tf.float32)


def noise_size(synthesis):
    """Values of all the noise maps of a synthesis network per sample (0 without noise inputs)."""
    return sum(size * size for size in synthesis.noise_sizes()) if synthesis.use_noise else 0


def split_noise(noise, sizes):
    """[N, sum(s * s)] -> a list of [N, s, s, 1] per layer of the given ``sizes``."""
    maps, offset = [], 0
    for size in sizes:
        maps.append(tf.reshape(noise[:, offset:offset + size * size], [-1, size, size, 1]))
        offset += size * size
    return maps


def to_uint8(images):
    """float NHWC, nominal [-1, 1] -> uint8 as the official ``convert_images_to_uint8``
    (``saturate_cast(x * 127.5 + 128)``; min / max rather than ClipByValue, which TFLite lacks)."""
    return tf.cast(tf.minimum(tf.maximum(images * 127.5 + 128.0, 0.0), 255.0), tf.uint8)


class GeneratorModule(tf.Module):
    """The signatures of a Keras :class:`~tf_stylegan.nn.generator.Generator` (see the module doc).

    Works in-process as well: :func:`tf_stylegan.load` of a snapshot wraps one of these, so
    Python and an exported model run the same functions.
    """

    def __init__(self, generator, name="stylegan", growing=False):
        super().__init__(name=name)
        if not generator.built:
            generator.build()
        # Kept out of tf.Module's tracking; the variables are attached explicitly below, or a
        # SavedModel may hold none of them and TFLite conversion output NaN.
        self._keras = types.SimpleNamespace(generator=generator)
        self.generator_variables = [variable.value for variable in generator.variables]
        self.latent_size = generator.latent_size
        self.dlatent_size = generator.dlatent_size
        self.num_layers = generator.num_layers
        self.resolution = generator.resolution
        self.num_channels = generator.synthesis.num_channels
        self.truncation_cutoff = generator.truncation_cutoff
        self.default_truncation_psi = generator.truncation_psi
        self.label_size = generator.label_size
        # A network at lod 0 that is not ``growing`` (trained to the end, or imported) stays there: its
        # signatures are traced at a fixed lod 0, which skips the lower levels' ToRGB layers and blends.
        # A network still in training (``growing``) keeps reading its lod variable.
        self._fixed_lod = 0.0 if not growing and float(generator.lod.numpy()) == 0 else None
        self._noise_layers = [epilogue.noise for block in generator.synthesis.blocks
                              for epilogue in (block.epilogue0, block.epilogue1)]
        self._use_noise = all(layer is not None for layer in self._noise_layers)

        z = tf.TensorSpec([None, self.latent_size], tf.float32, name="z")
        psi = tf.TensorSpec([None], tf.float32, name="truncation_psi")
        # Conditional: the class of each sample, after the other inputs of a signature that takes z.
        classes = [tf.TensorSpec([None], tf.int64, name="class_index")] if self.label_size else []
        dlatents = tf.TensorSpec([None, self.num_layers, self.dlatent_size], tf.float32, name="dlatents")
        self.serving_default = tf.function(self._serving_default, input_signature=[z, psi, *classes])
        seeds = tf.TensorSpec([None], tf.int64, name="seeds")
        self.generate_from_seeds = tf.function(self._generate_from_seeds,
                                               input_signature=[seeds, psi, *classes])
        self.generate_png = tf.function(self._generate_png, input_signature=[seeds, psi, *classes])
        self.mapping = tf.function(self._mapping, input_signature=[z, psi, *classes])
        self.truncate = tf.function(self._truncate, input_signature=[dlatents, psi])
        self.synthesis = tf.function(self._synthesis, input_signature=[
            dlatents, tf.TensorSpec([None], tf.int64, name="noise_seeds"),
            tf.TensorSpec([None, self.num_layers], tf.float32, name="noise_scale")])
        self.synthesis_stored_noise = tf.function(self._synthesis_stored_noise, input_signature=[dlatents])
        self.noise_size = noise_size(generator.synthesis)
        self.synthesis_with_noise = tf.function(self._synthesis_with_noise, input_signature=[
            dlatents, tf.TensorSpec([None, self.noise_size], tf.float32, name="noise")])
        self.style_mix = tf.function(self._style_mix, input_signature=[
            tf.TensorSpec([None, self.latent_size], tf.float32, name="z_a"),
            tf.TensorSpec([None, self.latent_size], tf.float32, name="z_b"),
            tf.TensorSpec([None], tf.int32, name="crossover"), psi, *classes])

    @property
    def generator(self):
        return self._keras.generator

    def signatures(self):
        """{signature name: concrete function} for ``tf.saved_model.save``."""
        return {name: getattr(self, name).get_concrete_function() for name in SIGNATURES}

    def metadata(self):
        """What a loader needs beyond the signatures (also written to assets.extra/)."""
        return {"format": "tf_stylegan.export", "version": 1, "latent_size": self.latent_size,
                "dlatent_size": self.dlatent_size, "num_layers": self.num_layers,
                "resolution": self.resolution, "num_channels": self.num_channels,
                "truncation_psi": self.default_truncation_psi, "truncation_cutoff": self.truncation_cutoff,
                "label_size": self.label_size, "class_names": self.generator.class_names,
                "noise_size": self.noise_size,
                "compute_dtype": self.generator.synthesis.compute_dtype, "signatures": list(SIGNATURES)}

    # --- signature bodies --------------------------------------------------------------------

    def _labels(self, class_index):
        """One-hot labels [N, label_size] of class indices [N] (None for an unconditional generator)."""
        if not self.label_size:
            return None
        in_range = tf.reduce_all((class_index >= 0) & (class_index < self.label_size))
        check = tf.debugging.Assert(in_range, [f"class_index must be in [0, {self.label_size}), got",
                                               class_index], summarize=16)
        with tf.control_dependencies([check]):
            return tf.one_hot(class_index, self.label_size)

    def _truncated_dlatents(self, z, truncation_psi, class_index=None):
        dlatents = self.generator.mapping(z, self._labels(class_index))  # [N, num_layers, dlatent_size]
        return self._truncate(dlatents, truncation_psi)["dlatents"]

    def _serving_default(self, z, truncation_psi, class_index=None):
        return self._images(self._truncated_dlatents(z, truncation_psi, class_index))

    def _generate_from_seeds(self, seeds, truncation_psi, class_index=None):
        return self._serving_default(latents_from_seeds(seeds, self.latent_size), truncation_psi, class_index)

    def _generate_png(self, seeds, truncation_psi, class_index=None):
        images = self._generate_from_seeds(seeds, truncation_psi, class_index)["images"]
        return {"png_bytes": tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)}

    def _mapping(self, z, truncation_psi, class_index=None):
        return {"dlatents": self._truncated_dlatents(z, truncation_psi, class_index)}

    def _truncate(self, dlatents, truncation_psi):
        psi = tf.reshape(truncation_psi, [-1, 1, 1])  # [N, 1, 1]: one psi per sample
        return {"dlatents": self.generator.truncate(dlatents, psi, self.truncation_cutoff)}

    def _synthesis(self, dlatents, noise_seeds, noise_scale):
        raw = self._raw_images(dlatents, self._noise(noise_seeds, noise_scale))
        return {"images": to_uint8(raw), "raw_images": raw}

    def _synthesis_stored_noise(self, dlatents):
        raw = self._raw_images(dlatents)
        return {"images": to_uint8(raw), "raw_images": raw}

    def _synthesis_with_noise(self, dlatents, noise):
        maps = split_noise(noise, self.generator.synthesis.noise_sizes()) if self._use_noise else None
        raw = self._raw_images(dlatents, maps)
        return {"images": to_uint8(raw), "raw_images": raw}

    def _style_mix(self, z_a, z_b, crossover, truncation_psi, class_index=None):
        dlatents_a = self._truncated_dlatents(z_a, truncation_psi, class_index)
        dlatents_b = self._truncated_dlatents(z_b, truncation_psi, class_index)
        crossover = tf.reshape(crossover, [-1, 1, 1])  # [N, 1, 1]: one crossover per sample
        return self._images(self.generator.mix(dlatents_a, dlatents_b, crossover))

    def _images(self, dlatents):
        return {"images": to_uint8(self._raw_images(dlatents))}

    def _raw_images(self, dlatents, noise=None):
        """float32 images [N, H, W, C] whatever the generator computes in (float16 exports)."""
        images = self.generator.synthesis(dlatents, randomize_noise=False, noise=noise, lod=self._fixed_lod)
        return tf.cast(images, tf.float32)

    def _noise(self, noise_seeds, noise_scale):
        """Per-layer noise [N, s, s, 1]: fresh from each non-negative seed, else stored; scaled."""
        if not self._use_noise:
            return None
        sizes = self.generator.synthesis.noise_sizes()
        total = sum(size * size for size in sizes)
        fresh = tf.map_fn(  # [N, total]: all the layers' noise of one sample from its seed
            lambda seed: tf.random.stateless_normal([total],
                                                    tf.stack([tf.maximum(seed, 0), SEED_STREAM_NOISE])),
            noise_seeds, fn_output_signature=tf.float32)
        use_fresh = tf.reshape(noise_seeds >= 0, [-1, 1, 1, 1])
        maps, offset = [], 0
        for index, (size, layer) in enumerate(zip(sizes, self._noise_layers)):
            fresh_map = tf.reshape(fresh[:, offset:offset + size * size], [-1, size, size, 1])
            offset += size * size
            stored_map = tf.cast(layer.noise_map, tf.float32)  # [1, size, size, 1]
            scale = tf.reshape(noise_scale[:, index], [-1, 1, 1, 1])
            maps.append(tf.where(use_fresh, fresh_map, stored_map) * scale)
        return maps
