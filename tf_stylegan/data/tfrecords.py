"""The official multi-resolution TFRecords (``<name>-rNN.tfrecords``): read and write, as
``dataset_tool.py``."""

import os
import pathlib

import numpy as np
import tensorflow as tf

from tf_stylegan.data.dataset import ImageDataset
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.records import (
    FEATURES,
    LEVEL_FILE,
    check_shapes,
    count_records,
    first_record,
    parsed_chunks,
)
from tf_stylegan.files import atomic_file


def scan_level(path, expected, count, reference):
    """Check every record's shape and the record count of a level (the slow path of read_tfrecords)."""
    total = 0
    for start, chunk in parsed_chunks(path, {"shape": FEATURES["shape"]}):
        check_shapes(path, start, chunk["shape"], expected)
        total = start + len(chunk["shape"])
    if total != count:
        raise DataError(f"{path}: holds {total} records, but {reference} holds {count}")


def read_tfrecords(path):
    """Open an official multi-resolution TFRecords folder (``<name>-rNN.tfrecords``, NN = 02 .. log2(res)).

    Levels stay on disk (``levels`` holds their paths; ``level(r)`` reads one). Checked here: the
    levels are complete and consistent in name, shape and channels, and each file's size matches
    its record count (a level whose size does not is scanned record by record). Labels
    (``-rxx.labels``) are ignored.
    """
    folder = pathlib.Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    found = {}
    for file in sorted(folder.iterdir()):
        match = LEVEL_FILE.match(file.name)
        if match and int(match["log2"]) >= 2:
            found.setdefault(match["name"], {})[int(match["log2"])] = file
    if not found:
        raise DataError(f"{folder}: no <name>-rNN.tfrecords files")
    if len(found) > 1:
        raise DataError(f"{folder}: holds TFRecords of several datasets {sorted(found)}; keep one per folder")
    (name, files), = found.items()
    top = max(files)
    missing = [f"r{k:02d}" for k in range(2, top + 1) if k not in files]
    if missing:
        raise DataError(f"{folder}: levels {', '.join(missing)} of {name} are missing (found "
                        f"{', '.join(f'r{k:02d}' for k in sorted(files))})")

    channels = None
    record_sizes = {}
    for log2, file in sorted(files.items()):
        shape, record_sizes[log2] = first_record(file)
        r = 2 ** log2
        if shape[1:] != (r, r):
            raise DataError(f"{file}: record 0 has shape {list(shape)}, but the name -r{log2:02d} means "
                            f"{r}x{r} images")
        if shape[0] not in (1, 3):
            raise DataError(f"{file}: record 0 has {shape[0]} channels; only 1 (grayscale) or 3 (RGB) "
                            "are supported")
        if channels is not None and shape[0] != channels:
            raise DataError(f"{file}: {shape[0]} channels, but {files[2]} has {channels}")
        channels = shape[0]

    count = count_records(files[2])
    for log2, file in sorted(files.items()):
        # A TFRecord is a 16-byte frame around each serialized Example: uniform records <=> this size.
        if os.path.getsize(file) != count * (record_sizes[log2] + 16):
            scan_level(file, (channels, 2 ** log2, 2 ** log2), count, files[2])
    levels = {2 ** log2: str(file) for log2, file in sorted(files.items())}
    return ImageDataset(name, 2 ** top, channels, levels, _num_records=count)


def write_tfrecords(dataset, out_dir, shuffle_seed=123):
    """Write ``dataset`` in the official layout: ``<out_dir>/<name>-rNN.tfrecords``, one uncompressed
    ``tf.train.Example`` per image (``shape`` int64 [C, H, W], ``data`` CHW uint8 bytes), in the order
    ``np.random.RandomState(shuffle_seed).permutation(N)`` as dataset_tool.py (None keeps the order).
    Each file is written under a temporary name and renamed when complete. Returns the paths, r02 first.
    """
    out = pathlib.Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    n = dataset.num_images
    order = np.arange(n) if shuffle_seed is None else np.random.RandomState(shuffle_seed).permutation(n)
    paths = []
    for r in sorted(dataset.levels):
        images = dataset.level(r)
        path = out / f"{dataset.name}-r{r.bit_length() - 1:02d}.tfrecords"
        with atomic_file(path) as staging, tf.io.TFRecordWriter(staging) as writer:
            for index in order:
                chw = np.ascontiguousarray(images[index].transpose(2, 0, 1))  # HWC -> CHW
                example = tf.train.Example(features=tf.train.Features(feature={
                    "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
                    "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))}))
                writer.write(example.SerializeToString())
        paths.append(str(path))
    return paths
