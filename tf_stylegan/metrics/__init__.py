"""Metrics of the paper: FID (Fréchet Inception Distance) and perceptual path length (PPL), with the
procedures of the official ``metrics/frechet_inception_distance.py`` and
``metrics/perceptual_path_length.py``; KID (kernel Inception distance) on the same features; and the
quality meter of the default dataset, the emoji Fréchet distance (EFD: FID's procedure in the embedding
of a small classifier of the emoji, shipped with the package, so that nothing is downloaded).

The feature networks are not the official ones: FID uses Keras's ImageNet Inception-v3 (the official
metric, the 2015 TF Inception graph), PPL an LPIPS-style distance of your choice. Values compare
runs measured here; they are not comparable to the decimal with published numbers.

A metric is a callable ``metric(generator, dataset, print_fn=None) -> {name: float}`` with an
optional ``prepare()`` that fetches what it needs (weights) before a long run. ``generator`` is what
:func:`tf_stylegan.load` returns (or :func:`tf_stylegan.deploy.inference.from_generator` of a Keras
generator during training); ``dataset`` a :class:`tf_stylegan.data.ImageDataset`.
"""


import re
import time

from tf_stylegan.data.emoji import EmojiLabels, emoji_labels  # the classifier's classes
from tf_stylegan.metrics.emoji_classifier import (
    CLASSIFIER_VERSION,
    EmojiFeatures,
    build_classifier,
    classifier_weights,
    emoji_distance,
    train_classifier,
)
from tf_stylegan.metrics.emoji_fd import (
    EmojiFD,
    EmojiPR,
    calibrate,
    calibration_sets,
    dataset_calibration_sets,
    gaussian_blur,
)
from tf_stylegan.metrics.errors import MetricError
from tf_stylegan.metrics.inception import (
    FID,
    INCEPTION_SIZE,
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    KID,
    InceptionFeatures,
    StreamingMoments,
    dataset_fingerprint,
    frechet_distance,
    generated_feature_batches,
    generated_statistics,
    kernel_inception_distance,
    precision_recall,
    real_feature_batches,
    real_features,
    real_statistics,
)
from tf_stylegan.metrics.ppl import (
    LPIPS_VGG_CHANNELS,
    LPIPS_VGG_LAYERS,
    PPL,
    PPL_EPSILON,
    PPL_SAMPLINGS,
    PPL_SPACES,
    FeatureDistance,
    filtered_mean,
    lpips_vgg16,
    path_length_samples,
    ppl_crop,
    ppl_inputs,
    slerp_directions,
)

__all__ = [  # the package's API: the modules' names, and running metrics by name
    "CLASSIFIER_VERSION", "EmojiFD", "EmojiFeatures", "EmojiPR", "EmojiLabels", "FID", "FeatureDistance",
    "INCEPTION_SIZE", "INCEPTION_WEIGHTS_FILE", "INCEPTION_WEIGHTS_URL", "InceptionFeatures", "KID",
    "LPIPS_VGG_CHANNELS", "LPIPS_VGG_LAYERS", "METRIC_NAMES", "MetricError", "PPL", "PPL_EPSILON",
    "PPL_SAMPLINGS", "PPL_SPACES", "StreamingMoments", "build_classifier", "calibrate", "calibration_sets",
    "classifier_weights", "dataset_calibration_sets", "dataset_fingerprint", "emoji_distance", "emoji_labels",
    "evaluate",
    "filtered_mean", "frechet_distance", "gaussian_blur", "generated_feature_batches", "generated_statistics",
    "kernel_inception_distance", "lpips_vgg16", "metric_from_name", "path_length_samples", "ppl_crop",
    "ppl_inputs", "precision_recall", "prepare", "real_feature_batches", "real_features", "real_statistics",
    "slerp_directions",
    "train_classifier",
]


def prepare(metrics):
    """Calls each metric's ``prepare()`` (fetching weights), so that nothing is missing mid-run."""
    for metric in metrics:
        if hasattr(metric, "prepare"):
            metric.prepare()


def evaluate(metrics, generator, dataset=None, print_fn=print):
    """Runs each metric; returns {name: float} and prints a result line per metric with its time."""
    prepare(metrics)
    results = {}
    for metric in metrics:
        start = time.time()
        values = {name: float(value) for name, value in metric(generator, dataset, print_fn=print_fn).items()}
        results.update(values)
        if print_fn:
            for name, value in values.items():
                print_fn(f"{name:<14} {value:12.4f}   ({time.time() - start:.1f} s)")
    return results


METRIC_NAMES = ("fid50k (or fid<N>k), kid50k (or kid<N>k), efd2k (or efd<N>k), epr2k (or epr<N>k), "
                "ppl_zfull, ppl_wfull, ppl_zend, ppl_wend")


def metric_from_name(name, num_images=None, num_samples=None, inception_weights="imagenet", distance=None,
                     batch_size=None, cache_dir=None):
    """The metric the official code calls ``name`` (fid50k, ppl_wend, ...), or an emoji meter (efd2k,
    epr2k), with optional overrides; PPL needs ``distance`` (e.g. :func:`lpips_vgg16`)."""
    match = re.fullmatch(r"(efd|epr)(\d+)k", name)
    if match:
        count = int(match.group(2)) * 1000 if num_images is None else num_images
        metric = EmojiFD if match.group(1) == "efd" else EmojiPR
        return metric(count, batch_size=64 if batch_size is None else batch_size, cache_dir=cache_dir,
                      name=name if num_images is None else None)
    match = re.fullmatch(r"(fid|kid)(\d+)k", name)
    if match:
        count = int(match.group(2)) * 1000 if num_images is None else num_images
        metric = FID if match.group(1) == "fid" else KID
        return metric(count, inception_weights, 32 if batch_size is None else batch_size, cache_dir,
                      name=name if num_images is None else None)
    match = re.fullmatch(r"ppl_([zw])(full|end)", name)
    if match:
        if distance is None:
            raise MetricError(f"{name} needs a perceptual distance: LPIPS-VGG16 linear weights "
                              "(--lpips-weights lpips_vgg16.npz, see the README)")
        return PPL(distance, match.group(1), match.group(2), 100000 if num_samples is None else num_samples,
                   batch_size=16 if batch_size is None else batch_size,
                   name=name if num_samples is None else None)
    raise MetricError(f"unknown metric {name!r}: use {METRIC_NAMES}")
