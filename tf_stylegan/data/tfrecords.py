"""The official multi-resolution TFRecords (``<name>-rNN.tfrecords``): read and write, as
``dataset_tool.py``."""

import contextlib
import json
import os
import pathlib

import numpy as np
import tensorflow as tf

from tf_stylegan.data.dataset import ImageDataset, box_levels, level_resolutions
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.records import (
    FEATURES,
    LEVEL_FILE,
    check_shapes,
    count_records,
    first_record,
    parsed_chunks,
)
from tf_stylegan.files import atomic_file, write_atomically


def scan_level(path, expected, count, reference):
    """Check every record's shape and the record count of a level (the slow path of read_tfrecords)."""
    total = 0
    for start, chunk in parsed_chunks(path, {"shape": FEATURES["shape"]}):
        check_shapes(path, start, chunk["shape"], expected)
        total = start + len(chunk["shape"])
    if total != count:
        raise DataError(f"{path}: holds {total} records, but {reference} holds {count}")


def labels_path(out_dir, name):
    return pathlib.Path(out_dir) / f"{name}-rxx.labels"


def class_names_path(out_dir, name):
    """Beside the labels: the names of the classes, a JSON list (the official format has none)."""
    return pathlib.Path(out_dir) / f"{name}-classes.json"


def write_class_names(path, names):
    write_atomically(path, json.dumps(list(names)))


def read_class_names(folder, name, label_size):
    """The class names written beside a TFRecords folder's labels, or None; DataError if unusable."""
    path = class_names_path(folder, name)
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the class names ({error})") from None
    if not isinstance(names, list) or len(names) != label_size:
        raise DataError(f"{path}: expected a list of {label_size} class names (one per label component)")
    return names


def write_labels(path, labels):
    """The official labels file: ``np.save`` of float32 [N, label_size], row k = record k's label."""
    with atomic_file(path) as staging, open(staging, "wb") as file:
        np.save(file, np.asarray(labels, np.float32))


def read_labels(folder, count):
    """The labels of a TFRecords folder (its first ``*.labels`` file, as the official reader), or None."""
    found = sorted(pathlib.Path(folder).glob("*.labels"))
    if not found:
        return None
    try:
        labels = np.load(found[0], allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{found[0]}: cannot read the labels ({error})") from error
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.number):
        raise DataError(f"{found[0]}: labels must be numbers [N, label_size], got {labels.dtype} "
                        f"{list(labels.shape)}")
    if len(labels) != count:
        raise DataError(f"{found[0]}: {len(labels)} labels, but the TFRecords hold {count} images")
    return labels.astype(np.float32)


def read_tfrecords(path):
    """Open an official multi-resolution TFRecords folder (``<name>-rNN.tfrecords``, NN = 02 .. log2(res)).

    Levels stay on disk (``levels`` holds their paths; ``level(r)`` reads one). Checked here: the
    levels are complete and consistent in name, shape and channels, and each file's size matches
    its record count (a level whose size does not is scanned record by record). Labels: the first
    ``*.labels`` file of the folder (official ``<name>-rxx.labels``), if any.
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
    labels = read_labels(folder, count)
    class_names = None if labels is None else read_class_names(folder, name, labels.shape[1])
    return ImageDataset(name, 2 ** top, channels, levels, labels=labels, class_names=class_names,
                        _num_records=count)


def level_path(out_dir, name, r):
    return pathlib.Path(out_dir) / f"{name}-r{r.bit_length() - 1:02d}.tfrecords"


def _example(image):
    """uint8 [H, W, C] -> one record as dataset_tool.py writes it (shape [C, H, W], CHW bytes)."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))  # HWC -> CHW
    return tf.train.Example(features=tf.train.Features(feature={
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))})).SerializeToString()


@contextlib.contextmanager
def level_writers(out_dir, name, resolutions):
    """Yields ``write(levels)``, which appends {r: uint8 [n, r, r, C]} to ``<out_dir>/<name>-rNN.tfrecords``,
    one file per resolution, all open at once (so a dataset can be written chunk by chunk). Each file is
    written under a temporary name and renamed when the block ends without an error."""
    with contextlib.ExitStack() as stack:
        writers = {r: stack.enter_context(tf.io.TFRecordWriter(
            stack.enter_context(atomic_file(level_path(out_dir, name, r))))) for r in resolutions}

        def write(levels):
            for r, images in levels.items():
                for image in images:
                    writers[r].write(_example(image))

        yield write


def write_tfrecords(dataset, out_dir, shuffle_seed=123):
    """Write ``dataset`` in the official layout: ``<out_dir>/<name>-rNN.tfrecords``, one uncompressed
    ``tf.train.Example`` per image (``shape`` int64 [C, H, W], ``data`` CHW uint8 bytes), in the order
    ``np.random.RandomState(shuffle_seed).permutation(N)`` as dataset_tool.py (None keeps the order),
    and its labels, if any, in the same order to ``<name>-rxx.labels``. Returns the level paths, r02 first.
    """
    n = dataset.num_images
    order = np.arange(n) if shuffle_seed is None else np.random.RandomState(shuffle_seed).permutation(n)
    levels = {r: dataset.level(r) for r in sorted(dataset.levels)}
    with level_writers(out_dir, dataset.name, levels) as write:
        for start in range(0, n, 1024):
            write({r: images[order[start:start + 1024]] for r, images in levels.items()})
    if dataset.labels is not None:
        write_labels(labels_path(out_dir, dataset.name), dataset.labels[order])
        if dataset.class_names:
            write_class_names(class_names_path(out_dir, dataset.name), dataset.class_names)
    return [str(level_path(out_dir, dataset.name, r)) for r in levels]


def write_folder_tfrecords(folder, out_dir, shuffle_seed=123, progress=None):
    """Write an ``ImageFolder`` as :func:`write_tfrecords` would write it loaded, decoding it chunk by
    chunk (never held in memory whole). dataset_tool.py's order: the files taken in the order
    ``RandomState(shuffle_seed).permutation(number of files)`` (None: sorted), unusable ones left out
    with ``skip_bad``; class folders give the labels file. Returns (level paths, number of images written)."""
    n = len(folder.files)
    order = np.arange(n) if shuffle_seed is None else np.random.RandomState(shuffle_seed).permutation(n)
    resolutions = level_resolutions(folder.resolution)
    kept = []  # file indices, in record order
    with level_writers(out_dir, folder.name, resolutions) as write:
        for indices, chunk in folder.chunks(order, progress):
            write(box_levels(chunk))
            kept.extend(indices)
        if not kept:
            raise DataError(f"{folder.path}: all {n} images are unusable, e.g. {folder.skipped[0][1]}")
        if folder.class_folders:
            write_labels(labels_path(out_dir, folder.name), folder.labels(kept))
            write_class_names(class_names_path(out_dir, folder.name), folder.class_names)
    return [str(level_path(out_dir, folder.name, r)) for r in resolutions], len(kept)
