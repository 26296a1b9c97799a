"""Perceptual path length: the official sampling, crop and filter, and LPIPS-style distances."""

import os

import numpy as np
import tensorflow as tf

from tf_stylegan.metrics.errors import MetricError
from tf_stylegan.nn.ops import lerp

PPL_EPSILON = 1e-4
PPL_SPACES = ("z", "w")
PPL_SAMPLINGS = ("full", "end")


def slerp_directions(a, b, t):
    """The official PPL's slerp: the unit vector at fraction ``t`` [N, 1] of the great circle from the
    direction of ``a`` to that of ``b`` [N, D] (magnitudes dropped; cf. ``figures.slerp``)."""
    normalize = lambda v: v / np.sqrt(np.sum(np.square(v), axis=-1, keepdims=True))
    a, b = normalize(a), normalize(b)
    d = np.sum(a * b, axis=-1, keepdims=True)
    p = t * np.arccos(np.clip(d, -1, 1))
    c = normalize(b - d * a)
    return normalize(a * np.cos(p) + c * np.sin(p))


def ppl_inputs(rng, batch, latent_size, sampling):
    """The draws of one batch: z for both path ends [2B, D] (t0 rows 0::2, t1 rows 1::2), the
    interpolation position t [B] (uniform in [0, 1) for 'full', 0 for 'end'), as official, and a
    noise seed per sample [B] (the official metric draws fresh noise for every minibatch, the same
    for both ends of a path)."""
    z = rng.standard_normal((2 * batch, latent_size)).astype(np.float32)
    t = rng.uniform(0.0, 1.0, batch) if sampling == "full" else np.zeros(batch)
    noise_seeds = rng.integers(0, 2 ** 31 - 1, batch, dtype=np.int64)
    return z, t.astype(np.float32), noise_seeds


def ppl_crop(images, crop=True):
    """Images [N, H, W, C] in [-1, 1] as the official metric gives them to VGG: with ``crop`` the face
    region (rows 3/8..7/8, columns 2/8..6/8), box-downsampled to 256 px if larger, scaled to [0, 255]."""
    if crop:
        c = images.shape[1] // 8
        images = images[:, 3 * c:7 * c, 2 * c:6 * c]
    if images.shape[1] > 256:
        factor = images.shape[1] // 256
        n, h, w, ch = images.shape
        images = images.reshape(n, h // factor, factor, w // factor, factor, ch).mean(axis=(2, 4))
    return (images + 1) * (255 / 2)


def path_length_samples(generator, distance, num_samples, space="w", sampling="full", epsilon=PPL_EPSILON,
                        crop=True, batch_size=16, seed=0):
    """The ``num_samples`` per-sample path lengths ``distance(img(t), img(t + epsilon)) / epsilon^2``
    before filtering. Images without truncation, both ends of a path with the same fresh noise, as
    official; draws are :func:`ppl_inputs` of ``np.random.default_rng(seed)``."""
    if space not in PPL_SPACES or sampling not in PPL_SAMPLINGS:
        raise MetricError(f"PPL space must be one of {PPL_SPACES} and sampling one of {PPL_SAMPLINGS}, "
                          f"got {space!r}, {sampling!r}")
    rng = np.random.default_rng(seed)
    distances = []
    for start in range(0, num_samples, batch_size):
        batch = min(batch_size, num_samples - start)
        z, t, noise_seeds = ppl_inputs(rng, batch, generator.latent_size, sampling)
        t = t[:, None]
        if space == "w":
            w = generator.mapping(z, truncation_psi=1.0)
            w0, w1 = w[0::2], w[1::2]
            ends = [lerp(w0, w1, t[:, :, None]), lerp(w0, w1, t[:, :, None] + epsilon)]
        else:
            z0, z1 = z[0::2], z[1::2]
            ends = [generator.mapping(slerp_directions(z0, z1, t), truncation_psi=1.0),
                    generator.mapping(slerp_directions(z0, z1, t + epsilon), truncation_psi=1.0)]
        images = [ppl_crop(np.asarray(generator.synthesis(end.astype(np.float32), noise_seeds=noise_seeds,
                                                          raw=True),
                                      np.float32), crop) for end in ends]
        distances.append(np.asarray(distance(images[0], images[1]), np.float64) / epsilon ** 2)
    return np.concatenate(distances)


def filtered_mean(distances):
    """The official filter: the mean of the distances between the 1st (lower) and 99th (higher)
    percentiles, inclusive."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(np.mean(distances[(lo <= distances) & (distances <= hi)]))


class FeatureDistance:
    """LPIPS-style perceptual distance [N] between images in [0, 255] (NHWC).

    ``feature_model`` maps preprocessed images to a list of feature maps; each is unit-normalised
    over channels, the squared difference weighted per channel by ``layer_weights`` (LPIPS's
    linear layers; None: the channel mean), averaged over space, and summed over layers.
    ``preprocess`` maps [0, 255] images to the model's input (default: to [-1, 1]).
    """

    def __init__(self, feature_model, layer_weights=None, preprocess=None):
        self.feature_model = feature_model
        self.layer_weights = layer_weights
        self.preprocess = preprocess or (lambda images: images / 127.5 - 1.0)
        self._distance = tf.function(self.distance, reduce_retracing=True)

    def features(self, images):
        """The feature maps of images [N, H, W, C] in [0, 255] (tensors; differentiable)."""
        return self.feature_model(self.preprocess(images))

    def compare(self, features0, features1):
        """Distances [N] between two lists of :meth:`features` (tensors; differentiable)."""
        total = 0.0
        for index, (f0, f1) in enumerate(zip(features0, features1)):
            f0 = f0 / (tf.sqrt(tf.reduce_sum(tf.square(f0), axis=-1, keepdims=True)) + 1e-10)
            f1 = f1 / (tf.sqrt(tf.reduce_sum(tf.square(f1), axis=-1, keepdims=True)) + 1e-10)
            squared = tf.square(f0 - f1)  # [N, h, w, C]
            if self.layer_weights is None:
                per_pixel = tf.reduce_mean(squared, axis=-1)
            else:
                per_pixel = tf.reduce_sum(squared * tf.constant(self.layer_weights[index], tf.float32),
                                          axis=-1)
            total += tf.reduce_mean(per_pixel, axis=[1, 2])
        return total

    def distance(self, images0, images1):
        """Distances [N] between image tensors [N, H, W, C] in [0, 255] (differentiable)."""
        return self.compare(self.features(images0), self.features(images1))

    def __call__(self, images0, images1):
        return self._distance(tf.constant(images0, tf.float32), tf.constant(images1, tf.float32)).numpy()


LPIPS_VGG_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
LPIPS_VGG_CHANNELS = (64, 128, 256, 512, 512)
VGG_BGR_MEAN = (103.939, 116.779, 123.68)  # the input convention of Keras's (Caffe-converted) VGG16 weights


def lpips_vgg16(lin_weights, vgg_weights="imagenet"):
    """LPIPS-VGG16 (Zhang et al. 2018, v0.1) as a :class:`FeatureDistance`, on Keras's VGG16.

    ``lin_weights``: an .npz with ``lin0`` ... ``lin4`` ([64], [128], [256], [512], [512]: the
    linear layers of LPIPS's ``vgg.pth``); ``vgg_weights``: Keras's ImageNet VGG16 (cached or
    downloaded) or a path to its notop .h5 file. Keras's VGG16 weights were converted from Caffe and
    take BGR mean-subtracted input, where LPIPS's were torchvision's: the distances follow LPIPS's
    but are not numerically identical to the PyTorch package (or the official TF port).
    """
    import keras

    if not os.path.isfile(lin_weights):
        raise MetricError(f"LPIPS linear-layer weights {lin_weights} not found (an .npz of lin0..lin4)")
    with np.load(lin_weights) as stored:
        missing = [f"lin{i}" for i in range(len(LPIPS_VGG_LAYERS)) if f"lin{i}" not in stored]
        if missing:
            raise MetricError(f"{lin_weights} lacks {missing}: expected lin0..lin4 "
                              "(LPIPS-VGG16's linear layers)")
        layer_weights = [np.asarray(stored[f"lin{i}"], np.float32).reshape(-1)
                         for i in range(len(LPIPS_VGG_LAYERS))]
    for index, (weights, channels) in enumerate(zip(layer_weights, LPIPS_VGG_CHANNELS)):
        if weights.shape != (channels,):
            raise MetricError(f"{lin_weights}: lin{index} has {weights.size} values, expected {channels}")
    try:
        vgg = keras.applications.VGG16(include_top=False, weights=vgg_weights)
    except Exception as error:
        raise MetricError(f"VGG16 weights unavailable ({error}): pass the path of "
                          "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5") from None
    model = keras.Model(vgg.input, [vgg.get_layer(name).output for name in LPIPS_VGG_LAYERS])
    mean = np.array(VGG_BGR_MEAN, np.float32)
    return FeatureDistance(model, layer_weights, lambda images: images[..., ::-1] - mean)


class PPL:
    """Perceptual path length (ppl_zfull, ppl_wfull, ppl_zend, ppl_wend: 100,000 samples, ε = 1e-4,
    the official crop and percentile filter). ``distance``: a :class:`FeatureDistance` (e.g.
    :func:`lpips_vgg16`) or any callable ``(images0, images1) -> [N]`` on [0, 255] NHWC images."""

    def __init__(self, distance, space="w", sampling="full", num_samples=100000, epsilon=PPL_EPSILON,
                 crop=True, batch_size=16, seed=0, name=None):
        if space not in PPL_SPACES or sampling not in PPL_SAMPLINGS:
            raise MetricError(f"PPL space must be one of {PPL_SPACES} and sampling one of {PPL_SAMPLINGS}, "
                              f"got {space!r}, {sampling!r}")
        if num_samples < 1:
            raise MetricError(f"PPL needs at least one sample, got num_samples={num_samples}")
        self.distance, self.space, self.sampling = distance, space, sampling
        self.num_samples, self.epsilon, self.crop = int(num_samples), float(epsilon), crop
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.name = name or f"ppl_{space}{sampling}"

    def __call__(self, generator, dataset=None, print_fn=None):
        if getattr(generator, "label_size", 0):
            raise MetricError("PPL measures unconditional generators only (its paths would need a class)")
        samples = path_length_samples(generator, self.distance, self.num_samples, self.space, self.sampling,
                                      self.epsilon, self.crop, self.batch_size, self.seed)
        return {self.name: filtered_mean(samples)}
