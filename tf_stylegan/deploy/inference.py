"""``tf_stylegan.load``: a generator for notebooks and scripts, from an export or a training run.

Both sources run the same signature functions (:class:`~tf_stylegan.deploy.signatures.GeneratorModule`):
an exported SavedModel through its signatures, a snapshot / run directory / official pickle
through the module built in-process. So a seed gives the same picture everywhere.
"""

import copy
import json
import os

import numpy as np
import tensorflow as tf

from tf_stylegan.deploy.signatures import (
    METADATA_FILE,
    GeneratorModule,
    latents_from_seeds,
)


class LoadError(ValueError):
    """A path that holds no generator this library can load."""


class StyleGAN:
    """A loaded generator: ``generate``, ``generate_png``, ``mapping``, ``truncate``, ``synthesis``, ``mix``.

    Images are uint8 [N, H, W, 3] NumPy arrays (``raw=True`` on :meth:`synthesis`: float,
    nominal [-1, 1]). ``truncation_psi=None`` means the model's default; 1 disables truncation.
    A class-conditional generator (``label_size`` classes) needs ``class_index`` (an int or a class name,
    or one per sample) wherever it takes seeds or z, or a default class (:meth:`for_class`); ``class_names``
    lists the names (None when the training data gave none). Calls are split into batches of ``batch_size``
    samples.
    """

    def __init__(self, functions, metadata, source, batch_size=8):
        self._functions = functions  # {signature name: callable(**tensors) -> {name: tensor}}
        self.source = source
        self.batch_size = int(batch_size)
        self.latent_size = int(metadata["latent_size"])
        self.dlatent_size = int(metadata["dlatent_size"])
        self.num_layers = int(metadata["num_layers"])
        self.resolution = int(metadata["resolution"])
        self.truncation_psi = float(metadata["truncation_psi"])
        self.truncation_cutoff = int(metadata["truncation_cutoff"])
        self.label_size = int(metadata.get("label_size", 0))  # exports before conditional ones: 0
        self.class_names = metadata.get("class_names")
        self.noise_size = metadata.get("noise_size")  # values of all noise maps (None: an older export)
        self.class_index = None  # the default class of a conditional generator (for_class)

    def __repr__(self):
        return (f"StyleGAN({self.source!r}: {self.resolution}px, z {self.latent_size}, "
                f"{self.num_layers} x w {self.dlatent_size}, psi {self.truncation_psi} below layer "
                f"{self.truncation_cutoff})")

    def for_class(self, class_index):
        """This generator with ``class_index`` as the default class of every call (conditional only)."""
        self._classes(class_index, 1)  # checked now
        model = copy.copy(self)
        model.class_index = class_index
        return model

    def latents(self, seeds):
        """z [N, latent_size] of integer seeds (the draw every signature uses)."""
        return latents_from_seeds(np.asarray(seeds, np.int64), self.latent_size).numpy()

    def generate(self, seeds=None, z=None, truncation_psi=None, class_index=None):
        """Images of ``seeds`` or of latents ``z`` (exactly one), with the stored noise."""
        if (seeds is None) == (z is None):
            raise ValueError("give exactly one of seeds and z")
        if seeds is not None:
            seeds = np.asarray(seeds, np.int64).reshape(-1)
            return self._run("generate_from_seeds", seeds=seeds,
                             truncation_psi=self._psi(truncation_psi, len(seeds)),
                             **self._classes(class_index, len(seeds)))
        z = self._z(z)
        return self._run("serving_default", z=z, truncation_psi=self._psi(truncation_psi, len(z)),
                         **self._classes(class_index, len(z)))

    def generate_png(self, seeds, truncation_psi=None, class_index=None):
        """PNG files (bytes, an object array [N]) of the images of ``seeds``."""
        seeds = np.asarray(seeds, np.int64).reshape(-1)
        return self._run("generate_png", "png_bytes", seeds=seeds,
                         truncation_psi=self._psi(truncation_psi, len(seeds)),
                         **self._classes(class_index, len(seeds)))

    def mapping(self, z, truncation_psi=1.0, class_index=None):
        """dlatents [N, num_layers, dlatent_size] of ``z`` (untruncated unless ``truncation_psi`` says)."""
        z = self._z(z)
        return self._run("mapping", "dlatents", z=z, truncation_psi=self._psi(truncation_psi, len(z)),
                         **self._classes(class_index, len(z)))

    def truncate(self, dlatents, truncation_psi=None):
        """``w_avg + psi * (w - w_avg)`` on the layers below the model's cutoff."""
        dlatents = self._dlatents(dlatents)
        return self._run("truncate", "dlatents", dlatents=dlatents,
                         truncation_psi=self._psi(truncation_psi, len(dlatents)))

    def synthesis(self, dlatents, noise_seeds=None, noise_scale=None, raw=False, noise=None):
        """Images of dlatents. ``noise_seeds`` [N]: fresh noise drawn from each seed (None or a
        negative seed: the stored noise maps); ``noise_scale`` [N, num_layers] or [num_layers]
        scales each layer's noise (0 removes it). Or ``noise`` [N, noise_size]: every layer's noise
        map, flattened in layer order (a projection's, ``projected_w.npz``)."""
        dlatents = self._dlatents(dlatents)
        count = len(dlatents)
        output = "raw_images" if raw else "images"
        if noise is not None:
            if noise_seeds is not None or noise_scale is not None:
                raise ValueError("give noise maps, or noise_seeds / noise_scale, not both")
            if "synthesis_with_noise" not in self._functions:
                raise ValueError(f"{self.source} has no synthesis_with_noise signature (an export of "
                                 "tf_stylegan 0.1): export the model again to synthesise given noise maps")
            noise = np.asarray(noise, np.float32)
            if noise.shape != (count, self.noise_size):
                raise ValueError(f"noise must have shape [{count}, {self.noise_size}] (every layer's map, "
                                 f"flattened), got {noise.shape}")
            return self._run("synthesis_with_noise", output, dlatents=dlatents, noise=noise)
        seeds = np.full(count, -1, np.int64) if noise_seeds is None else np.asarray(noise_seeds, np.int64)
        scale = np.ones((count, self.num_layers), np.float32) if noise_scale is None else noise_scale
        scale = np.broadcast_to(np.asarray(scale, np.float32), (count, self.num_layers))
        return self._run("synthesis", output, dlatents=dlatents,
                         noise_seeds=np.broadcast_to(seeds, (count,)), noise_scale=scale)

    def mix(self, z_a, z_b, crossover, truncation_psi=None, class_index=None):
        """Style mixing: dlatent layers ``i < crossover`` from ``z_a``, the rest from ``z_b``
        (``crossover`` an int or one per sample; ``class_index``: of both)."""
        z_a, z_b = self._z(z_a), self._z(z_b)
        if z_a.shape != z_b.shape:
            raise ValueError(f"z_a and z_b must have the same shape, got {z_a.shape} and {z_b.shape}")
        crossover = np.broadcast_to(np.asarray(crossover, np.int32), (len(z_a),))
        return self._run("style_mix", z_a=z_a, z_b=z_b, crossover=crossover,
                         truncation_psi=self._psi(truncation_psi, len(z_a)),
                         **self._classes(class_index, len(z_a)))

    # --- helpers ---------------------------------------------------------------------------------

    def _classes(self, class_index, count):
        """{"class_index": int64 [count]} for a conditional generator, {} otherwise; ValueError if the
        index is missing, given to an unconditional generator, or out of range."""
        if not self.label_size:
            if class_index is not None:
                raise ValueError("class_index given, but this generator is unconditional")
            return {}
        class_index = self.class_index if class_index is None else class_index
        if class_index is None:
            raise ValueError(f"this generator is class-conditional ({self.label_size} classes): give "
                             "class_index (an int, or one per sample)")
        classes = np.asarray(class_index)
        if classes.dtype.kind in "US":  # class names
            classes = np.vectorize(self.class_number, otypes=[np.int64])(classes)
        if not np.issubdtype(classes.dtype, np.integer) or classes.ndim > 1:
            raise ValueError(f"class_index must be an int or a 1-D array of ints, got {class_index!r}")
        bad = classes[(classes < 0) | (classes >= self.label_size)]
        if bad.size:
            raise ValueError(f"class_index {int(bad.flat[0])} is out of range: this generator has "
                             f"{self.label_size} classes, 0 .. {self.label_size - 1}")
        return {"class_index": np.broadcast_to(classes.astype(np.int64), (count,))}

    def class_number(self, name):
        """The index of a class of a conditional generator from its name (ValueError naming the names)."""
        names = self.class_names or []
        if str(name) not in names:
            known = (f"its classes are {', '.join(names)}" if names
                     else "its classes have no names: give an index")
            raise ValueError(f"no class {name!r}: {known}")
        return names.index(str(name))

    def _psi(self, truncation_psi, count):
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        return np.broadcast_to(np.asarray(psi, np.float32), (count,))

    def _z(self, z):
        z = np.asarray(z, np.float32)
        z = z[None] if z.ndim == 1 else z
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"z must have shape [N, {self.latent_size}], got {z.shape}")
        return z

    def _dlatents(self, dlatents):
        dlatents = np.asarray(dlatents, np.float32)
        if dlatents.ndim != 3 or dlatents.shape[1:] != (self.num_layers, self.dlatent_size):
            raise ValueError(f"dlatents must have shape [N, {self.num_layers}, {self.dlatent_size}], "
                             f"got {dlatents.shape}")
        return dlatents

    def _run(self, signature, output="images", **inputs):
        """One signature over all samples, ``batch_size`` at a time: the NumPy ``output``."""
        count = len(next(iter(inputs.values())))
        parts = []
        for start in range(0, count, self.batch_size):
            batch = {key: tf.constant(value[start:start + self.batch_size]) for key, value in inputs.items()}
            parts.append(self._functions[signature](**batch)[output].numpy())
        if not parts:
            raise ValueError("no samples given")
        return np.concatenate(parts)


def load(path, batch_size=8):
    """A :class:`StyleGAN` from an exported SavedModel (a version folder, or a model folder: its
    highest version), a network snapshot, a training run directory (its latest checkpoint's Gs)
    or an official NVlabs ``.pkl``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise LoadError(f"{path}: no such file or directory")
    saved_model = _saved_model_folder(path)
    if saved_model:
        metadata_path = os.path.join(saved_model, "assets.extra", METADATA_FILE)
        if not os.path.isfile(metadata_path):
            raise LoadError(f"{saved_model} is a SavedModel but not a tf_stylegan export "
                            f"(no {metadata_path})")
        with open(metadata_path) as file:
            metadata = json.load(file)
        loaded = tf.saved_model.load(saved_model)
        functions = {name: loaded.signatures[name] for name in metadata["signatures"]}
        return StyleGAN(functions, metadata, saved_model, batch_size)
    models = [entry for entry in sorted(os.listdir(path)) if _saved_model_folder(os.path.join(path, entry))] \
        if os.path.isdir(path) else []
    if models:
        raise LoadError(f"{path} holds exported models ({', '.join(models)}): give one, e.g. "
                        f"{os.path.join(path, models[0])}")
    return from_generator(keras_generator(path), batch_size, source=path)


def keras_generator(path):
    """The Keras moving-average generator (Gs) of a network snapshot, a training run directory (its
    latest checkpoint) or an official ``.pkl``; :class:`LoadError` otherwise."""
    from tf_stylegan.formats.official import OfficialPickleError, load_official_pickle
    from tf_stylegan.formats.snapshot import SnapshotError, load_networks

    path = os.fspath(path)
    if not os.path.exists(path):
        raise LoadError(f"{path}: no such file or directory")
    if _saved_model_folder(path):
        raise LoadError(f"{path} is an exported model: it holds signatures, not the Keras network; give the "
                        "training run directory, a network snapshot or an official .pkl")
    try:
        generator = load_official_pickle(path)[2] if path.endswith(".pkl") else load_networks(path).Gs
    except (OfficialPickleError, SnapshotError) as error:
        raise LoadError(str(error)) from None
    if generator is None:
        raise LoadError(f"{path} holds no moving-average generator (Gs)")
    return generator


def from_generator(generator, batch_size=8, source=None, growing=False):
    """A :class:`StyleGAN` around a Keras :class:`~tf_stylegan.nn.generator.Generator` (in-process);
    ``growing``: the network is still training, its lod may change (see :class:`GeneratorModule`)."""
    module = GeneratorModule(generator, growing=growing)
    functions = {name: getattr(module, name) for name in module.metadata()["signatures"]}
    return StyleGAN(functions, module.metadata(), source or generator.name, batch_size)


def _saved_model_folder(path):
    """``path`` if it is a SavedModel, its highest numeric version if it is a model folder, else None."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isdir(path):
        versions = [int(entry) for entry in os.listdir(path)
                    if entry.isdigit() and os.path.isfile(os.path.join(path, entry, "saved_model.pb"))]
        if versions:
            return os.path.join(path, str(max(versions)))
    return None
