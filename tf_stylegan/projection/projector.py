"""The projector: the official schedules, the noise regularisation, and the optimisation."""

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from tf_stylegan.images import to_uint8
from tf_stylegan.projection.errors import ProjectionError

W_SAMPLES = 10000  # mapped latents that estimate W's average and spread (official)
W_SAMPLES_SEED = 123  # their RandomState seed (official)
DISTANCE_SIZE = 256  # images larger than this are box-downsampled before the distance (official)
NOISE_WEIGHT = 1e5  # weight of the noise regularisation (official)
PYRAMID_FLOOR = 8  # the noise pyramid stops at maps of this size or smaller (official)
STREAM_NOISE_INIT = 0  # second word of the stateless seed of each target's initial noise maps
STREAM_LATENT_NOISE = 1  # ... of its latent noise (plus the step index)


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
