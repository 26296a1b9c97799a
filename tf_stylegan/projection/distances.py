"""Distances of the projector: ``distance(images, prepared targets) -> [N]`` on float [0, 255] NHWC
tensors, differentiable; ``prepare(targets)`` computes what depends on the targets alone, once."""

import tensorflow as tf


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
