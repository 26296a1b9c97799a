"""FID and KID: Inception-v3 features of real and generated images, their streaming statistics
(cached for the real data), the Fréchet distance, the kernel Inception distance, and precision and
recall over any features."""

import abc
import hashlib
import json
import os
import warnings

import numpy as np
import tensorflow as tf

from tf_stylegan import data
from tf_stylegan.files import atomic_file
from tf_stylegan.files import cache_dir as package_cache_dir
from tf_stylegan.metrics.errors import MetricError

INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                         + INCEPTION_WEIGHTS_FILE)


# --------------------------------------------------------------------------------------------------
# Fréchet distance and streaming statistics


def frechet_distance(mu1, sigma1, mu2, sigma2, warn_tolerance=1e-3):
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` in float64.

    ``tr((sigma1 sigma2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues
    of the symmetric ``sqrt(sigma1) sigma2 sqrt(sigma1)``: the same value as SciPy's ``sqrtm``
    of the product (the official way), without its complex round-off. Negative eigenvalues are
    round-off and dropped (the official code drops imaginary parts); a warning says so when
    they are larger than ``warn_tolerance`` of the largest one.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise MetricError(f"statistics do not match: mu {mu1.shape} / {mu2.shape}, "
                          f"sigma {sigma1.shape} / {sigma2.shape}")
    eigenvalues, eigenvectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt_sigma1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    roots = np.linalg.eigvalsh((product + product.T) / 2)
    largest = max(float(np.max(np.abs(roots))), 1e-300)
    if roots.min() < -warn_tolerance * largest:
        warnings.warn(f"Fréchet distance: (sigma1 sigma2) has eigenvalue {roots.min():.3g} "
                      f"(largest {largest:.3g}); the covariances are ill-conditioned (too few images?) "
                      "and the value is unreliable", RuntimeWarning, stacklevel=2)
    trace_sqrt = np.sum(np.sqrt(np.clip(roots, 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


class StreamingMoments:
    """Mean and covariance of feature rows fed in batches, in float64, in O(D^2) memory.

    The covariance is unbiased (``N - 1``), as ``np.cov(features, rowvar=False)`` in the official code.
    """

    def __init__(self, dimension):
        self.count = 0
        self.total = np.zeros(dimension, np.float64)
        self.outer = np.zeros((dimension, dimension), np.float64)  # sum of x x^T

    def update(self, features):
        features = np.asarray(features, np.float64)
        self.count += len(features)
        self.total += features.sum(axis=0)
        self.outer += features.T @ features

    @property
    def mean(self):
        return self.total / self.count

    @property
    def covariance(self):
        if self.count < 2:
            raise MetricError(f"a covariance needs at least 2 feature rows, got {self.count}")
        mean = self.mean
        return (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)

    def save(self, path):
        """Writes count, mean and covariance to ``path`` (.npz), atomically (a unique temporary file
        renamed into place, so concurrent writers cannot mix their files)."""
        with atomic_file(path) as staging, open(staging, "wb") as file:
            np.savez(file, count=self.count, mean=self.mean, covariance=self.covariance)

    @classmethod
    def load(cls, path):
        with np.load(path) as stored:
            mean, covariance, count = stored["mean"], stored["covariance"], int(stored["count"])
        moments = cls(len(mean))
        moments.count = count
        moments.total = mean * count
        moments.outer = covariance * (count - 1) + count * np.outer(mean, mean)
        return moments


# --------------------------------------------------------------------------------------------------
# Inception-v3 features


def _keras_weights_path(filename):
    return os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models", filename)


class InceptionFeatures:
    """Inception-v3 pool features [N, 2048] of uint8 images [N, H, W, C] (C = 1 or 3).

    ``weights``: ``"imagenet"`` (Keras's ImageNet weights: its cached file, or a download where
    the machine is online), a path to that ``.h5`` file, or ``None`` (He-normal kernels drawn from
    ``seed``, without touching any global random state: the plumbing without the meaning, for
    tests). Images are resized to 299 x 299 as the official metric's Inception graph does (TF1
    ``resize_bilinear``: no half-pixel centres) and scaled to [-1, 1].
    """

    def __init__(self, weights="imagenet", batch_size=32, seed=0):
        import keras

        self.batch_size = int(batch_size)
        weights_path = self._resolve(weights)
        self.model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=None, input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
        if weights_path is None:
            rng = np.random.default_rng(seed)
            for variable in self.model.weights:
                if variable.path.endswith("kernel"):
                    fan_in = int(np.prod(variable.shape[:-1]))
                    variable.assign(rng.normal(0, np.sqrt(2 / fan_in), variable.shape).astype(np.float32))
            self.identity = f"inception-random-{seed}"
        else:
            try:
                self.model.load_weights(weights_path)
            except Exception as error:  # h5py / Keras: not an Inception-v3 notop weights file
                raise MetricError(f"{weights_path} is not a usable Inception-v3 notop weights file: "
                                  f"{error}") from None
            self.identity = "inception-" + _file_digest(weights_path)
        self._features = tf.function(self._features_of, reduce_retracing=True)

    @staticmethod
    def _resolve(weights):
        """The local .h5 path of ``weights`` (downloading ImageNet's if needed), or None."""
        if weights is None:
            return None
        if weights != "imagenet":
            if not os.path.isfile(weights):
                raise MetricError(f"Inception weights file {weights} not found")
            return os.fspath(weights)
        cached = _keras_weights_path(INCEPTION_WEIGHTS_FILE)
        if os.path.isfile(cached):
            return cached
        import keras

        try:
            return keras.utils.get_file(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, cache_subdir="models")
        except Exception as error:  # offline: urllib / HTTP errors, wrapped by Keras
            raise MetricError(
                f"FID needs the ImageNet weights of Inception-v3, which could not be downloaded ({error}). "
                f"On a machine that is online, download {INCEPTION_WEIGHTS_URL} and either put it at "
                f"{cached} or pass its path (--inception-weights PATH, FID.inception_weights)") from None

    def _features_of(self, images):
        images = tf.cast(images, tf.float32)
        resized = tf.compat.v1.image.resize_bilinear(images, [INCEPTION_SIZE, INCEPTION_SIZE],
                                                     align_corners=False, half_pixel_centers=False)
        return self.model(resized / 127.5 - 1.0, training=False)

    def __call__(self, images):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise MetricError(f"Inception features need uint8 images [N, H, W, 1 or 3], got {images.dtype} "
                              f"{images.shape}")
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)  # grayscale -> RGB, as official
        return np.concatenate([self._features(images[start:start + self.batch_size]).numpy()
                               for start in range(0, len(images), self.batch_size)])


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def dataset_fingerprint(dataset, count):
    """Identifies the first ``count`` images of ``dataset`` at full resolution: a digest of the pixels
    when they are in memory, the file's path, size and modification time when streamed."""
    level = dataset.levels[dataset.resolution]
    if isinstance(level, str):
        status = os.stat(level)
        return f"file:{os.path.realpath(level)}:{status.st_size}:{status.st_mtime_ns}:{count}"
    digest = hashlib.sha256()
    for start in range(0, count, 1024):
        digest.update(np.ascontiguousarray(level[start:min(start + 1024, count)]).tobytes())
    return f"pixels:{digest.hexdigest()}:{level.shape[1:]}:{count}"


def _cache_path(kind, dataset, count, extractor, cache_dir, suffix):
    key = json.dumps([kind, dataset_fingerprint(dataset, count), extractor.identity])
    return os.path.join(cache_dir or package_cache_dir("fid"),
                        hashlib.sha256(key.encode()).hexdigest()[:24] + suffix)


def real_feature_batches(dataset, extractor, count, batch_size=32):
    """Inception features [B, 2048] of the first ``count`` real images, batch by batch."""
    for batch in data.ordered_batches(dataset, batch_size, count):
        yield extractor(batch)


def generated_classes(generator, dataset, count, seed=0):
    """Classes [count] of a conditional generator's images, drawn from the dataset's labels as the
    official metrics draw labels (a seeded uniform choice of rows); None for an unconditional one (or
    an object without ``label_size``)."""
    if not getattr(generator, "label_size", 0):
        return None
    if dataset is None or dataset.label_size != generator.label_size:
        raise MetricError(f"the generator is class-conditional ({generator.label_size} classes): measure it "
                          "with its labelled dataset (--data)")
    rows = np.random.RandomState(seed).randint(0, dataset.num_images, count)
    return dataset.labels[rows].argmax(axis=1)


def generated_feature_batches(generator, extractor, count, batch_size=32, seed=0, classes=None):
    """Inception features of ``count`` generated images, batch by batch: z from seeds
    ``seed * 10**9 + i``, no truncation, fresh noise from the same seeds (as official: random
    latents, ``randomize_noise=True``, no truncation at validation); ``classes`` [count] of a
    conditional generator (:func:`generated_classes`)."""
    for start in range(0, count, batch_size):
        seeds = np.arange(start, min(start + batch_size, count), dtype=np.int64) + seed * 10 ** 9
        batch_classes = {} if classes is None else {"class_index": classes[start:start + len(seeds)]}
        dlatents = generator.mapping(generator.latents(seeds), truncation_psi=1.0, **batch_classes)
        yield extractor(generator.synthesis(dlatents, noise_seeds=seeds))


def real_statistics(dataset, extractor, num_images, batch_size=32, cache_dir=None, print_fn=None):
    """:class:`StreamingMoments` of the Inception features of the first ``num_images`` real images,
    read from the cache when it holds them (keyed by :func:`dataset_fingerprint` and the extractor)."""
    count = min(int(num_images), dataset.num_images)
    path = _cache_path("fid-real-statistics-v1", dataset, count, extractor, cache_dir, ".npz")
    if os.path.isfile(path):
        return StreamingMoments.load(path)
    moments = StreamingMoments(extractor.model.output_shape[-1])
    for features in real_feature_batches(dataset, extractor, count, batch_size):
        moments.update(features)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    moments.save(path)
    if print_fn:
        print_fn(f"cached the statistics of {count} real images in {path}")
    return moments


def generated_statistics(generator, extractor, num_images, batch_size=32, seed=0, classes=None):
    """:class:`StreamingMoments` of the features of ``num_images`` generated images
    (:func:`generated_feature_batches`)."""
    moments = StreamingMoments(extractor.model.output_shape[-1])
    for features in generated_feature_batches(generator, extractor, num_images, batch_size, seed, classes):
        moments.update(features)
    return moments


def real_features(dataset, extractor, num_images, batch_size=32, cache_dir=None, print_fn=None):
    """float32 features [N, 2048] of the first ``num_images`` real images (cached as .npy; KID needs
    the rows, not only their moments: 8 KB per image)."""
    count = min(int(num_images), dataset.num_images)
    path = _cache_path("kid-real-features-v1", dataset, count, extractor, cache_dir, ".npy")
    if os.path.isfile(path):
        return np.load(path)
    features = np.concatenate(
        list(real_feature_batches(dataset, extractor, count, batch_size))).astype(np.float32)
    with atomic_file(path) as staging, open(staging, "wb") as file:
        np.save(file, features)
    if print_fn:
        print_fn(f"cached the features of {count} real images in {path}")
    return features


def kernel_inception_distance(real, fake, num_subsets=100, max_subset_size=1000, seed=0):
    """KID (Bińkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
    ``k(x, y) = (x.y / d + 1)^3``, averaged over ``num_subsets`` random subsets of
    ``min(N_real, N_fake, max_subset_size)`` rows of each set (as StyleGAN2-ADA's metric)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    dimension = real.shape[1]
    size = min(len(real), len(fake), int(max_subset_size))
    if size < 2:
        raise MetricError(f"KID needs at least 2 feature rows of each kind, got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), size, replace=False)]
        y = real[rng.choice(len(real), size, replace=False)]
        within = (x @ x.T / dimension + 1) ** 3 + (y @ y.T / dimension + 1) ** 3
        across = (x @ y.T / dimension + 1) ** 3
        total += (within.sum() - np.diag(within).sum()) / (size - 1) - across.sum() * 2 / size
    return float(total / num_subsets / size)


def precision_recall(real, fake, k=3, batch_size=1000):
    """Improved precision and recall (Kynkäänniemi et al. 2019; StyleGAN2-ADA's pr50k3 uses k = 3): a
    set's manifold is the union of balls around its rows, each reaching the row's k-th nearest other
    row. Precision is the share of generated rows inside the reals' manifold (are the images like real
    ones?), recall the share of real rows inside the generated one (is every kind of real image made?).
    Returns (precision, recall); distances are Euclidean, computed ``batch_size`` rows at a time."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(len(real), len(fake)) <= k:
        raise MetricError(f"precision and recall with k={k} need more than {k} feature rows of each kind, "
                          f"got {len(real)} and {len(fake)}")

    def squared_distances(rows, others):  # [len(rows), len(others)]
        return np.maximum((rows ** 2).sum(1)[:, None] + (others ** 2).sum(1)[None] - 2 * rows @ others.T, 0)

    def radii(rows):  # squared distance of each row to its k-th nearest other row (the 0-th is itself)
        return np.concatenate([np.partition(squared_distances(rows[i:i + batch_size], rows), k, axis=1)[:, k]
                               for i in range(0, len(rows), batch_size)])

    def inside(points, manifold):
        reach = radii(manifold)
        return np.concatenate([(squared_distances(points[i:i + batch_size], manifold) <= reach).any(1)
                               for i in range(0, len(points), batch_size)]).mean()

    return float(inside(fake, real)), float(inside(real, fake))


class FeatureMetric(abc.ABC):
    """What the feature-based metrics share (FID, KID, EmojiFD): the image count, the name, the
    feature extractor built once (:meth:`build_extractor`), and the real data's checks."""

    kind = None  # "fid" / "kid" / "efd"

    def __init__(self, num_images, batch_size, cache_dir=None, seed=0, name=None):
        if num_images < 2:
            raise MetricError(f"{self.kind.upper()} needs at least 2 images, got num_images={num_images}")
        self.num_images = int(num_images)
        self.batch_size = int(batch_size)
        self.cache_dir = cache_dir
        self.seed = int(seed)
        self.name = name or (f"{self.kind}{self.num_images // 1000}k" if self.num_images % 1000 == 0
                             else f"{self.kind}{self.num_images}")
        self._extractor = None

    @property
    def extractor(self):
        self.prepare()
        return self._extractor

    def prepare(self):
        """Builds the feature extractor (reading or fetching its weights), so that a missing file stops
        a run before it starts rather than when the metric first runs."""
        if self._extractor is None:
            self._extractor = self.build_extractor()

    @abc.abstractmethod
    def build_extractor(self):
        """The callable images -> features [N, D]."""

    def _check(self, generator, dataset, print_fn):
        if dataset is None:
            raise MetricError(f"{self.kind.upper()} needs the real dataset (--data)")
        if dataset.resolution != generator.resolution:
            raise MetricError(f"the dataset is {dataset.resolution}px but the generator "
                              f"{generator.resolution}px")
        if dataset.num_images < self.num_images and print_fn:
            print_fn(f"{self.name}: the dataset holds {dataset.num_images} images, so {self.num_images} "
                     f"generated images are compared with {dataset.num_images} real ones")


class _InceptionMetric(FeatureMetric):
    """FID and KID: features of Inception-v3 (``inception_weights``: see :class:`InceptionFeatures`)."""

    def __init__(self, num_images=50000, inception_weights="imagenet", batch_size=32, cache_dir=None, seed=0,
                 name=None):
        self.inception_weights = inception_weights
        super().__init__(num_images, batch_size, cache_dir, seed, name)

    def build_extractor(self):
        return InceptionFeatures(self.inception_weights, self.batch_size)


class FID(_InceptionMetric):
    """FID between ``num_images`` generated images and up to ``num_images`` real ones (fid50k:
    50,000). ``inception_weights``: see :class:`InceptionFeatures`."""

    kind = "fid"

    def __call__(self, generator, dataset, print_fn=None):
        self._check(generator, dataset, print_fn)
        classes = generated_classes(generator, dataset, self.num_images, self.seed)
        real = real_statistics(dataset, self.extractor, self.num_images, self.batch_size, self.cache_dir,
                               print_fn)
        fake = generated_statistics(generator, self.extractor, self.num_images, self.batch_size, self.seed,
                                    classes)
        return {self.name: frechet_distance(fake.mean, fake.covariance, real.mean, real.covariance)}


class KID(_InceptionMetric):
    """KID (:func:`kernel_inception_distance`) between ``num_images`` generated images and up to
    ``num_images`` real ones, whose features are cached; it keeps every feature row in memory
    (8 KB per image of each kind)."""

    kind = "kid"

    def __call__(self, generator, dataset, print_fn=None):
        self._check(generator, dataset, print_fn)
        classes = generated_classes(generator, dataset, self.num_images, self.seed)
        real = real_features(dataset, self.extractor, self.num_images, self.batch_size, self.cache_dir,
                             print_fn)
        fake = np.concatenate(list(generated_feature_batches(generator, self.extractor, self.num_images,
                                                             self.batch_size, self.seed, classes)))
        return {self.name: kernel_inception_distance(real, fake, seed=self.seed)}
