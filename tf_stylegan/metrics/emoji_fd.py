"""The quality meter of the default dataset: the emoji Fréchet distance (EFD), its calibration, and
precision and recall in the same embedding (EPR).

EFD is FID's procedure in the 128-value embedding of the emoji classifier
(:mod:`tf_stylegan.metrics.emoji_classifier`) instead of Inception-v3's 2,048: the Fréchet distance
between the embeddings of N generated images (no truncation, fresh noise, latents and noise from fixed
seeds) and of every real image (their statistics cached). Nothing is downloaded, and 2,000 images take
seconds to embed on a CPU (generating them is the cost), so every change to training can be judged by a
number. :func:`calibrate` says what a value means. EPR splits what EFD mixes: whether the images look
real (precision) and whether they cover the real ones' variety (recall).
"""

import numpy as np

from tf_stylegan.metrics.emoji_classifier import (
    CLASSIFIER_SIZE,
    EmojiFeatures,
    labelled_emoji,
)
from tf_stylegan.metrics.errors import MetricError
from tf_stylegan.metrics.inception import (
    FeatureMetric,
    StreamingMoments,
    frechet_distance,
    generated_classes,
    generated_feature_batches,
    generated_statistics,
    precision_recall,
    real_features,
    real_statistics,
)


class _EmojiMetric(FeatureMetric):
    """What the emoji metrics share: the classifier's embedding and the real images' dataset
    (``reference``, e.g. 'emoji' for a run on a subset; None: the training data)."""

    def __init__(self, num_images, classifier, batch_size, cache_dir, seed, name, reference):
        self.classifier = classifier
        self.reference = reference
        super().__init__(num_images, batch_size, cache_dir, seed, name)

    def build_extractor(self):
        """The classifier's embedding (training it first only when the packaged weights are missing)."""
        return EmojiFeatures(self.classifier)

    def _inputs(self, generator, dataset, print_fn):
        """(the generated images' classes, the real images' dataset), checked."""
        classes = generated_classes(generator, dataset, self.num_images, self.seed)
        if self.reference is not None and dataset is not None:
            from tf_stylegan.data import load_dataset

            dataset = load_dataset(self.reference, dataset.resolution)
        self._check(generator, dataset, print_fn)
        if dataset.num_channels != 3:
            raise MetricError(f"the emoji metrics measure RGB images; {dataset.name} has "
                              f"{dataset.num_channels} channel(s)")
        return classes, dataset


class EmojiFD(_EmojiMetric):
    """Emoji Fréchet distance between ``num_images`` generated images and every real image of the
    dataset, or of ``reference`` (a dataset spec, e.g. 'emoji' for runs on a subset) (efd2k: 2,000
    generated). ``classifier``: see :class:`EmojiFeatures` (None: the packaged
    weights). Calibrated on the emoji dataset (see the README); on another RGB dataset its values still
    compare runs with each other. Compare values at one resolution: real and generated images are
    both resized to 64 px, so a 16 px run is measured against 16 px reals.
    """

    kind = "efd"

    def __init__(self, num_images=2000, classifier=None, batch_size=64, cache_dir=None, seed=0, name=None,
                 reference=None):
        super().__init__(num_images, classifier, batch_size, cache_dir, seed, name, reference)

    def __call__(self, generator, dataset, print_fn=None):
        classes, dataset = self._inputs(generator, dataset, print_fn)
        real = real_statistics(dataset, self.extractor, dataset.num_images, self.batch_size, self.cache_dir,
                               print_fn)
        fake = generated_statistics(generator, self.extractor, self.num_images, self.batch_size, self.seed,
                                    classes)
        return {self.name: frechet_distance(fake.mean, fake.covariance, real.mean, real.covariance)}


class EmojiPR(_EmojiMetric):
    """Precision and recall (:func:`precision_recall`, ``k`` nearest neighbours) of ``num_images``
    generated images against as many real ones (a seeded draw from the dataset, or from ``reference``;
    all of them when it holds fewer), in the emoji classifier's embedding: epr2k gives
    ``epr2k_precision`` and ``epr2k_recall``, each from 0 to 1, higher is better. A generator that
    makes one convincing image per class scores a high precision and a low recall."""

    kind = "epr"

    def __init__(self, num_images=2000, k=3, classifier=None, batch_size=64, cache_dir=None, seed=0,
                 name=None, reference=None):
        self.k = int(k)
        super().__init__(num_images, classifier, batch_size, cache_dir, seed, name, reference)

    def __call__(self, generator, dataset, print_fn=None):
        classes, dataset = self._inputs(generator, dataset, print_fn)
        real = real_features(dataset, self.extractor, dataset.num_images, self.batch_size, self.cache_dir,
                             print_fn)
        if len(real) > self.num_images:
            real = real[np.sort(np.random.default_rng(self.seed).choice(len(real), self.num_images,
                                                                        replace=False))]
        fake = np.concatenate(list(generated_feature_batches(generator, self.extractor, self.num_images,
                                                             self.batch_size, self.seed, classes)))
        precision, recall = precision_recall(real, fake, self.k)
        return {f"{self.name}_precision": precision, f"{self.name}_recall": recall}


# --------------------------------------------------------------------------------------------------
# Calibration


def gaussian_blur(images, sigma):
    """uint8 images [N, H, W, C] blurred by a Gaussian of standard deviation ``sigma`` px (separable,
    truncated at 3 sigma, edges replicated), rounded back to uint8."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    x = np.pad(images.astype(np.float32), ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    height, width = images.shape[1:3]
    x = sum(tap * x[:, i:i + height] for i, tap in enumerate(taps))
    x = sum(tap * x[:, :, i:i + width] for i, tap in enumerate(taps))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def upsample(images, size, method):
    """uint8 images resized up to ``size`` px: ``nearest`` (pixel replication) or ``bilinear``."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(images, tf.float32), [size, size], method=method)
    return np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8)


def calibration_sets(num_images=2000, seed=0):
    """(reference images, [(row name, what it is, images)]): the meter's reference points on the
    64 px emoji. The dataset is split in two random halves; the reference is one, each row's
    ``num_images`` images come from the other (transformed), so "real" is the floor a generator as
    good as the data reaches."""
    dataset, labels = labelled_emoji()
    images = dataset.level(CLASSIFIER_SIZE)
    order = np.random.default_rng(seed).permutation(len(images))
    reference, other = order[:len(order) // 2], order[len(order) // 2:]
    if num_images > len(other):
        raise MetricError(f"the calibration takes at most {len(other)} images per row (half the emoji), "
                          f"got {num_images}")
    test = other[:num_images]
    names, counts = np.unique(labels.subgroup[labels.labelled], return_counts=True)
    # every other subgroup by size: about half the images
    kept = names[np.argsort(-counts, kind="stable")][::2]
    kept_images = other[np.isin(labels.subgroup[other], kept)]
    rng = np.random.default_rng(seed + 1)
    rows = [("real", "the other half of the emoji", images[test])]
    for sigma in (1, 2, 4):
        rows.append((f"blur {sigma} px", f"Gaussian blur, sigma {sigma} px",
                     gaussian_blur(images[test], sigma)))
    for size in (32, 16, 8):
        for method in ("nearest", "bilinear"):
            rows.append((f"{size} px, {method}", f"box-averaged to {size} px, resized back up ({method})",
                         upsample(dataset.level(size)[test], CLASSIFIER_SIZE, method)))
    rows.append(("half the subgroups", f"{len(kept)} of {len(names)} subgroups only (every other by size): "
                 f"{num_images} drawn from their {len(kept_images)} images",
                 images[rng.choice(kept_images, num_images)]))
    rows.append(("uniform noise", "uniform random pixels",
                 rng.integers(0, 256, images[test].shape, dtype=np.uint8)))
    rows.append(("flat gray", "every pixel 128", np.full_like(images[test], 128)))
    return images[reference], rows


def dataset_calibration_sets(dataset, num_images=2000, seed=0):
    """(reference images, [(row name, what it is, images)]): the meter's reference points on an RGB
    dataset held in memory, measured as a training run measures it: the reference is every image at the
    dataset's resolution, each row ``num_images`` images drawn from it (with replacement, half of them
    mirrored, as a generator trained with ``mirror_augment`` makes them) and transformed. A small dataset
    has no held-out half, so "real" is what a generator that reproduces the training images reaches."""
    if dataset.num_channels != 3:
        raise MetricError(f"the emoji meter measures RGB images; {dataset.name} has "
                          f"{dataset.num_channels} channel(s)")
    resolution = dataset.resolution
    if isinstance(dataset.levels[resolution], str):
        raise MetricError(f"{dataset.name}: the calibration needs a dataset held in memory, not streamed")
    images = dataset.level(resolution)
    rng = np.random.default_rng(seed)

    def draw(pool):
        chosen = images[rng.choice(pool, num_images)]
        mirrored = rng.random(num_images) < 0.5
        chosen[mirrored] = chosen[mirrored, :, ::-1]
        return chosen

    everything = np.arange(len(images))
    half = rng.permutation(everything)[:max(1, len(images) // 2)]
    drawn = draw(everything)
    rows = [("real", "the dataset's images, drawn again", drawn)]
    for sigma in (1, 2):
        rows.append((f"blur {sigma} px", f"Gaussian blur, sigma {sigma} px at {resolution} px",
                     gaussian_blur(drawn, sigma)))
    if resolution >= 8:
        lower = dataset.level(resolution // 2)[rng.choice(everything, num_images)]
        rows.append((f"{resolution // 2} px, nearest", f"box-averaged to {resolution // 2} px, shown at "
                     f"{resolution} px (pixel replication)", upsample(lower, resolution, "nearest")))
    rows.append(("half the images", f"drawn from a random half ({len(half)}) of the images only",
                 draw(half)))
    rows.append(("uniform noise", "uniform random pixels", rng.integers(0, 256, drawn.shape, dtype=np.uint8)))
    rows.append(("flat gray", "every pixel 128", np.full_like(drawn, 128)))
    return images, rows


def calibrate(num_images=2000, classifier=None, seed=0, print_fn=print, dataset=None):
    """The meters on :func:`calibration_sets` (or, given an RGB ``dataset``, on
    :func:`dataset_calibration_sets`): prints a table and returns its rows as dicts (name, description,
    value: the Fréchet distance, precision and recall with k = 3)."""
    extractor = EmojiFeatures(classifier)
    if dataset is None:
        reference_images, rows = calibration_sets(num_images, seed)
        what = f"reference {len(reference_images)} real emoji at 64 px"
    else:
        reference_images, rows = dataset_calibration_sets(dataset, num_images, seed)
        what = f"reference the {len(reference_images)} images of {dataset.name} at {dataset.resolution} px"

    def moments(features):
        statistics = StreamingMoments(features.shape[-1])
        statistics.update(features)
        return statistics

    reference_features = extractor(reference_images)
    reference = moments(reference_features)
    if print_fn:
        print_fn(f"emoji meter calibration ({extractor.identity}): {what}, {num_images} images per row")
        print_fn(f"{'row':<20} {'efd':>8} {'precision':>9} {'recall':>6}   images")
    results = []
    for name, description, images in rows:
        features = extractor(images)
        statistics = moments(features)
        value = frechet_distance(statistics.mean, statistics.covariance, reference.mean, reference.covariance)
        precision, recall = precision_recall(reference_features, features)
        results.append(dict(name=name, description=description, value=value, precision=precision,
                            recall=recall))
        if print_fn:
            print_fn(f"{name:<20} {value:8.2f} {precision:9.3f} {recall:6.3f}   {description}")
    return results
