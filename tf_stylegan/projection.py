"""Projection of real images into the latent space: the StyleGAN2 paper's projector (Karras et al. 2020,
Section 5; the official ``projector.py``), on this library's generators.

For each target image it optimises a w (one for all layers, "W", or one per layer, "W+") and every
layer's noise map with Adam, starting at the average w of 10,000 mapped latents. The learning rate ramps
up over the first 5 % of the steps and down (cosine) over the last 25 %; Gaussian noise added to w, scaled
by the spread of W, decays to zero over the first 75 %; the noise maps are kept free of spatial structure by
a penalty on their autocorrelation at every scale of a pyramid (weight 1e5) and renormalised to zero mean
and unit variance after each step. The distance to the target is pluggable (:func:`lpips_distance`,
:func:`pixel_distance`, :func:`emoji_distance`, :func:`random_feature_distance`).

Many targets are projected at once; each target's randomness comes from its own stateless seed
(``seed + index``), so a target's result does not depend on the others in its batch.
"""

import dataclasses
import math
import os
import time

import numpy as np
import tensorflow as tf

from tf_stylegan.data.folders import decode, normalize_mode
from tf_stylegan.images import to_uint8

PROJECTION_FILE = "projected_w.npz"
W_SAMPLES = 10000  # mapped latents that estimate W's average and spread (official)
W_SAMPLES_SEED = 123  # their RandomState seed (official)
DISTANCE_SIZE = 256  # images larger than this are box-downsampled before the distance (official)
NOISE_WEIGHT = 1e5  # weight of the noise regularisation (official)
PYRAMID_FLOOR = 8  # the noise pyramid stops at maps of this size or smaller (official)
STREAM_NOISE_INIT = 0  # second word of the stateless seed of each target's initial noise maps
STREAM_LATENT_NOISE = 1  # ... of its latent noise (plus the step index)


class ProjectionError(ValueError):
    """An unusable projection input (a target image, a model, a saved projection); the message names it."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The official schedules over ``num_steps`` steps; ``step`` may be a Python number or a tensor."""

    num_steps: int = 1000
    initial_learning_rate: float = 0.1
    lr_rampup_length: float = 0.05  # fraction of the steps
    lr_rampdown_length: float = 0.25
    initial_noise_factor: float = 0.05  # latent noise at step 0, in units of W's spread
    noise_ramp_length: float = 0.75

    def learning_rate(self, step):
        """Up linearly over the first ``lr_rampup_length``, down as a half cosine over the last
        ``lr_rampdown_length`` of the steps."""
        t = tf.cast(step, tf.float64) / self.num_steps
        down = tf.minimum((1.0 - t) / self.lr_rampdown_length, 1.0)
        ramp = (0.5 - 0.5 * tf.cos(down * math.pi)) * tf.minimum(t / self.lr_rampup_length, 1.0)
        return tf.cast(self.initial_learning_rate * ramp, tf.float32)

    def latent_noise(self, step, w_spread):
        """Standard deviation of the noise added to w: ``w_spread * factor * (1 - t / ramp)^2``, 0 after."""
        t = tf.cast(step, tf.float64) / self.num_steps
        decay = tf.square(tf.maximum(1.0 - t / self.noise_ramp_length, 0.0))
        return tf.cast(self.initial_noise_factor * decay, tf.float32) * w_spread


def noise_regularization(maps):
    """[N]: over each noise map [N, s, s, 1] and its 2x2 box-downsampled pyramid down to 8 px, the
    squared mean products of the map with itself shifted by one pixel, across and down."""
    total = 0.0
    for noise in maps:
        while True:
            total += tf.square(tf.reduce_mean(noise * tf.roll(noise, shift=1, axis=2), axis=[1, 2, 3]))
            total += tf.square(tf.reduce_mean(noise * tf.roll(noise, shift=1, axis=1), axis=[1, 2, 3]))
            size = noise.shape[1]
            if size <= PYRAMID_FLOOR:
                break
            noise = tf.reshape(noise, [-1, size // 2, 2, size // 2, 2, 1])  # [N, s/2, 2, s/2, 2, 1]
            noise = tf.reduce_mean(noise, axis=[2, 4])
    return total


def normalized(noise):
    """Each sample's map [N, s, s, 1] shifted and scaled to zero mean and unit mean square."""
    noise = noise - tf.reduce_mean(noise, axis=[1, 2, 3], keepdims=True)
    return noise * tf.math.rsqrt(tf.reduce_mean(tf.square(noise), axis=[1, 2, 3], keepdims=True))


def flatten_noise(maps, count):
    """Noise maps [count, s, s, 1] per layer -> [count, sum(s * s)] (the layout of ``projected_w.npz`` and
    of the exported ``synthesis_with_noise`` signature)."""
    if not maps:  # a generator without noise inputs
        return np.zeros((count, 0), np.float32)
    return np.concatenate([np.reshape(m, (len(m), -1)) for m in maps], axis=1).astype(np.float32)


def psnr(images_a, images_b):
    """Peak signal-to-noise ratio in dB [N] of uint8 image pairs (peak 255)."""
    error = np.mean(np.square(np.asarray(images_a, np.float64) - np.asarray(images_b, np.float64)),
                    axis=(1, 2, 3))
    return 10 * np.log10(255.0 ** 2 / np.maximum(error, 1e-12))


# --- distances: (images, targets) -> [N], on float [0, 255] NHWC tensors, differentiable ------------


class FeatureTargetDistance:
    """A :class:`~tf_stylegan.metrics.ppl.FeatureDistance` with the targets' features computed once."""

    def __init__(self, feature_distance, name):
        self.feature_distance, self.name = feature_distance, name

    def prepare(self, targets):
        return self.feature_distance.features(targets)

    def __call__(self, images, prepared):
        return self.feature_distance.compare(self.feature_distance.features(images), prepared)


class PixelDistance:
    """Mean squared pixel difference, pixels scaled to [-1, 1] (the recovery tests' distance)."""

    name = "mse"

    def prepare(self, targets):
        return targets / 127.5 - 1.0

    def __call__(self, images, prepared):
        return tf.reduce_mean(tf.square(images / 127.5 - 1.0 - prepared), axis=[1, 2, 3])


def pixel_distance():
    return PixelDistance()


def lpips_distance(lin_weights, vgg_weights="imagenet"):
    """LPIPS-VGG16 (the official projector's distance; the PPL metric's :func:`lpips_vgg16`)."""
    from tf_stylegan.metrics.ppl import lpips_vgg16

    return FeatureTargetDistance(lpips_vgg16(lin_weights, vgg_weights), "lpips")


def emoji_distance(classifier=None):
    """The emoji classifier's feature maps (:func:`tf_stylegan.metrics.emoji_distance`): no download."""
    from tf_stylegan.metrics.emoji_classifier import emoji_distance as classifier_distance

    return FeatureTargetDistance(classifier_distance(classifier, print_fn=lambda *_: None), "emoji")


def random_feature_distance(num_channels=3, widths=(16, 32), seed=0):
    """An LPIPS-style distance on a fixed, randomly initialised two-level conv net (for tests)."""
    import keras

    inputs = keras.Input((None, None, num_channels))
    x, outputs = inputs, []
    for index, width in enumerate(widths):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(seed=seed * 100 + index))(x)
        outputs.append(x)
    from tf_stylegan.metrics.ppl import FeatureDistance

    return FeatureTargetDistance(FeatureDistance(keras.Model(inputs, outputs)), "random")


# --- targets ----------------------------------------------------------------------------------------


def load_target(path, resolution, num_channels=3, background=(255, 255, 255)):
    """An image file of any size and mode -> uint8 [resolution, resolution, num_channels]: upright (EXIF),
    transparency on ``background``, the centre square, resized (Lanczos, up or down)."""
    from PIL import Image

    try:
        image = normalize_mode(decode(path), num_channels, background)
    except MemoryError:
        raise
    except Exception as error:  # any decoder failure means the file is corrupt or not an image
        raise ProjectionError(f"{path}: cannot read the image ({type(error).__name__}: {error})") from None
    width, height = image.size
    side = min(width, height)
    if side < 1:
        raise ProjectionError(f"{path}: the image is empty ({width}x{height})")
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, np.uint8).reshape(resolution, resolution, num_channels)


def load_targets(paths, resolution, num_channels=3):
    """uint8 [N, resolution, resolution, num_channels] of image files (:func:`load_target`)."""
    if not paths:
        raise ProjectionError("no target images given")
    return np.stack([load_target(path, resolution, num_channels) for path in paths])


# --- the projector ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Projection:
    """What :meth:`Projector.project` returns, for N targets of a generator with L layers of w."""

    dlatents: np.ndarray  # float32 [N, L, D]: the projected w (without the latent noise)
    noise: np.ndarray  # float32 [N, sum(s * s)]: the projected noise maps, flattened (flatten_noise)
    images: np.ndarray  # uint8 [N, H, W, C]: the synthesis of dlatents with noise
    distances: np.ndarray  # float [steps, N]: each step's distance to the targets (w with its latent noise)
    frames: np.ndarray  # uint8 [F, N, H, W, C]: images every frame_every steps (F = 0 without)
    seconds: float  # optimisation wall time


def w_statistics(generator, num_samples=W_SAMPLES, labels=None, batch_size=1000):
    """(average w [D], spread): the mean of ``num_samples`` mapped latents (``RandomState(123)``) and
    the root of their mean squared distance to it, summed over the D dimensions (official). ``labels``
    [label_size] maps every latent with that one-hot class (a class-conditional generator)."""
    latents = np.random.RandomState(W_SAMPLES_SEED).randn(num_samples, generator.latent_size)
    dlatents = []
    for start in range(0, num_samples, batch_size):
        z = tf.constant(latents[start:start + batch_size], tf.float32)
        batch_labels = None if labels is None else tf.tile(tf.constant(labels, tf.float32)[None], [len(z), 1])
        dlatents.append(generator.mapping(z, batch_labels)[:, 0].numpy().astype(np.float64))
    dlatents = np.concatenate(dlatents)  # [num_samples, D]
    average = dlatents.mean(axis=0)
    spread = math.sqrt(np.sum(np.square(dlatents - average)) / num_samples)
    return average.astype(np.float32), spread


class Projector:
    """Projects images into the latent space of a Keras :class:`~tf_stylegan.nn.generator.Generator`.

    ``distance``: one of this module's distances; ``w_plus``: one w per layer instead of one for all;
    ``seed``: target i draws its initial noise maps and latent noise from ``seed + i``; ``class_index``:
    a class-conditional generator's class (an index or a name, or one per target), whose W statistics
    are used.
    """

    def __init__(self, generator, distance, schedule=Schedule(), w_plus=False, seed=0,
                 noise_weight=NOISE_WEIGHT, w_samples=W_SAMPLES, class_index=None):
        if not generator.built:
            generator.build()
        if schedule.num_steps < 1:
            raise ProjectionError(f"a projection needs at least one step, got {schedule.num_steps}")
        self.generator, self.distance, self.schedule = generator, distance, schedule
        self.w_plus, self.seed = bool(w_plus), int(seed)
        self.noise_weight, self.w_samples = float(noise_weight), int(w_samples)
        self.class_index = class_index
        label_size = generator.label_size
        if label_size and class_index is None:
            raise ProjectionError(f"the generator is class-conditional ({label_size} classes): give the "
                                  "class of the targets (class_index)")
        if not label_size and class_index is not None:
            raise ProjectionError("class_index given, but the generator is unconditional")
        if class_index is not None:
            self.class_index = [self._class_number(index) for index in np.atleast_1d(class_index)]
        self._statistics = {}  # class (or None) -> (average w, spread)
        self.noise_sizes = generator.synthesis.noise_sizes() if generator.synthesis.use_noise else []

    def statistics(self, class_index=None):
        """(average w [D], spread) of W (for the class of a conditional generator), computed once."""
        if class_index not in self._statistics:
            labels = None
            if class_index is not None:
                if not 0 <= int(class_index) < self.generator.label_size:
                    raise ProjectionError(f"class_index {class_index} is out of range: the generator has "
                                          f"{self.generator.label_size} classes")
                labels = np.eye(self.generator.label_size, dtype=np.float32)[int(class_index)]
            self._statistics[class_index] = w_statistics(self.generator, self.w_samples, labels)
        return self._statistics[class_index]

    def project(self, targets, progress=None, frame_every=0):
        """A :class:`Projection` of uint8 targets [N, H, W, C] at the generator's resolution and channels.

        ``progress``: optional ``callable(step, distances [N])`` after every step; ``frame_every``: keep
        the current images every that many steps (and the last), e.g. for an animation.
        """
        targets = np.asarray(targets)
        synthesis = self.generator.synthesis
        expected = (synthesis.resolution, synthesis.resolution, synthesis.num_channels)
        if targets.dtype != np.uint8 or targets.ndim != 4 or targets.shape[1:] != expected:
            raise ProjectionError(f"targets must be uint8 [N, {expected[0]}, {expected[1]}, {expected[2]}], "
                                  f"got {targets.dtype} {targets.shape}")
        count = len(targets)
        classes = self._classes(count)
        stats = [self.statistics(index) for index in classes]
        average = np.stack([mean for mean, _ in stats])[:, None]  # [N, 1, D]
        spread = tf.constant([[[s]] for _, s in stats], tf.float32)  # [N, 1, 1]
        layers = synthesis.num_layers if self.w_plus else 1
        w = tf.Variable(np.repeat(average, layers, axis=1), name="w")  # [N, layers, D]
        seeds = [tf.constant([self.seed + index, STREAM_NOISE_INIT], tf.int64) for index in range(count)]
        maps = [tf.Variable(normalized(tf.stack([tf.random.stateless_normal([size, size, 1], seed)
                                                 for seed in seeds])), name=f"noise{layer}")
                for layer, size in enumerate(self.noise_sizes)]
        optimizer = _adam(self.schedule)
        variables = [w, *maps]
        optimizer.build(variables)
        prepared = self.distance.prepare(_distance_scale(tf.constant(targets, tf.float32)))
        step = tf.function(lambda: self._step(w, maps, spread, prepared, optimizer, count))
        distances, frames = [], []
        start = time.perf_counter()
        for index in range(self.schedule.num_steps):
            distance = step().numpy()
            distances.append(distance)
            if progress is not None:
                progress(index + 1, distance)
            if frame_every and (index % frame_every == 0 or index + 1 == self.schedule.num_steps):
                frames.append(self._images(w, maps))
        seconds = time.perf_counter() - start
        dlatents = self._broadcast(w).numpy()
        return Projection(dlatents=dlatents, noise=flatten_noise([m.numpy() for m in maps], count),
                          images=self._images(w, maps), distances=np.stack(distances),
                          frames=np.stack(frames) if frames else np.zeros((0, count) + expected, np.uint8),
                          seconds=seconds)

    def _class_number(self, index):
        """A class index from an index or a name of the generator's classes."""
        if isinstance(index, (str, np.str_)):
            index, names = str(index), self.generator.class_names or []
            if index not in names:
                known = f"its classes are {', '.join(names)}" if names else "its classes have no names"
                raise ProjectionError(f"no class {index!r}: {known}")
            return names.index(index)
        return int(index)

    def _classes(self, count):
        if self.class_index is None:
            return [None] * count
        if len(self.class_index) not in (1, count):
            raise ProjectionError(f"give one class, or one per target ({count}), got {len(self.class_index)}")
        return self.class_index * count if len(self.class_index) == 1 else self.class_index

    def _broadcast(self, w):
        """[N, layers, D] -> [N, num_layers, D]."""
        return tf.broadcast_to(w, [w.shape[0], self.generator.num_layers, w.shape[2]])

    def _step(self, w, maps, spread, prepared, optimizer, count):
        """One Adam step on w and the noise maps; renormalises the maps; returns the distances [N]."""
        step = optimizer.iterations
        latent_noise = tf.stack([  # [N, layers, D]: each target's own draw for this step
            tf.random.stateless_normal(w.shape[1:], tf.stack([tf.constant(self.seed + index, tf.int64),
                                                              STREAM_LATENT_NOISE + step]))
            for index in range(count)])
        with tf.GradientTape() as tape:
            noisy_w = w + latent_noise * self.schedule.latent_noise(step, spread)
            images = self.generator.synthesis(self._broadcast(noisy_w), randomize_noise=False,
                                              noise=list(maps) or None)
            distance = self.distance(_distance_scale(tf.cast(images, tf.float32) * 127.5 + 127.5), prepared)
            loss = tf.reduce_sum(distance + self.noise_weight * noise_regularization(maps))
        variables = [w, *maps]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        for noise in maps:
            noise.assign(normalized(noise))
        return distance

    def _images(self, w, maps):
        images = self.generator.synthesis(self._broadcast(w), randomize_noise=False, noise=list(maps) or None)
        return to_uint8(tf.cast(images, tf.float32).numpy())


def _adam(schedule):
    """Adam as the official projector's (TF1 AdamOptimizer: betas 0.9 / 0.999, epsilon 1e-8), its learning
    rate the schedule's at each step."""
    import keras

    class ScheduledRate(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return schedule.learning_rate(step)

    return keras.optimizers.Adam(learning_rate=ScheduledRate(), beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def _distance_scale(images):
    """Images [N, H, W, C] in [0, 255], box-downsampled to 256 px when larger (official), RGB."""
    size = images.shape[1]
    if size > DISTANCE_SIZE:
        factor = size // DISTANCE_SIZE
        channels = images.shape[3]
        images = tf.reshape(images, [-1, DISTANCE_SIZE, factor, DISTANCE_SIZE, factor, channels])
        images = tf.reduce_mean(images, axis=[2, 4])
    if images.shape[3] == 1:
        images = tf.tile(images, [1, 1, 1, 3])  # grayscale models: the feature nets take RGB
    return images


# --- saved projections ------------------------------------------------------------------------------


def save_projection(path, projection, targets=(), distance="", seed=0, w_plus=False):
    """Writes ``projected_w.npz`` atomically: ``dlatents`` [N, L, D], ``noise`` [N, sum(s * s)], the
    ``targets``' names, the distance's name, the final distances, ``seed`` and ``w_plus``."""
    import io

    from tf_stylegan.files import write_atomically

    buffer = io.BytesIO()
    np.savez(buffer, dlatents=projection.dlatents, noise=projection.noise,
             targets=np.asarray([os.fspath(t) for t in targets], dtype=str), distance=np.asarray(distance),
             final_distances=projection.distances[-1], seed=np.int64(seed), w_plus=np.bool_(w_plus))
    write_atomically(path, buffer.getvalue())
    return os.fspath(path)


@dataclasses.dataclass
class SavedProjection:
    """A ``projected_w.npz`` read back: dlatents [N, L, D], noise [N, sum(s * s)], target names."""

    dlatents: np.ndarray
    noise: np.ndarray
    targets: list

    def __len__(self):
        return len(self.dlatents)


def load_projection(path, num_layers=None, dlatent_size=None, noise_size=None):
    """A :class:`SavedProjection`; with a model's shapes given, checked against them (errors name both)."""
    path = os.fspath(path)
    try:
        with np.load(path) as stored:
            dlatents = np.asarray(stored["dlatents"], np.float32)
            noise = np.asarray(stored["noise"], np.float32)
            targets = [str(t) for t in stored["targets"]] if "targets" in stored else []
    except FileNotFoundError:
        raise ProjectionError(f"{path}: no such file") from None
    except KeyError as error:
        raise ProjectionError(f"{path} is not a projection (it lacks {error}; tf-stylegan project "
                              "writes dlatents and noise)") from None
    except Exception as error:  # zip / npy decoding failures: a damaged or foreign file
        raise ProjectionError(f"{path}: cannot read the projection "
                              f"({type(error).__name__}: {error})") from None
    if dlatents.ndim != 3 or noise.ndim != 2 or len(noise) != len(dlatents):
        raise ProjectionError(f"{path}: dlatents {dlatents.shape} and noise {noise.shape} are not "
                              "[N, layers, D] and [N, noise values]")
    if num_layers is not None and dlatents.shape[1:] != (num_layers, dlatent_size):
        raise ProjectionError(f"{path} holds dlatents of {dlatents.shape[1]} x {dlatents.shape[2]}, the "
                              f"model takes {num_layers} x {dlatent_size}: it was projected with another "
                              "model")
    if noise_size is not None and noise.shape[1] != noise_size:
        raise ProjectionError(f"{path} holds {noise.shape[1]} noise values per image, the model's maps "
                              f"hold {noise_size}: it was projected with another model")
    return SavedProjection(dlatents, noise, targets or [f"image{i}" for i in range(len(dlatents))])
