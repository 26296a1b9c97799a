"""Image folders: decoding, mode conversion, centre crop and resize to a dataset."""

import concurrent.futures
import dataclasses
import hashlib
import os
import pathlib

import numpy as np
from PIL import Image, ImageOps

from tf_stylegan.data.dataset import (
    IMAGE_EXTENSIONS,
    ImageDataset,
    box_levels,
    check_resolution,
    level_resolutions,
)
from tf_stylegan.data.errors import DataError

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")

CHUNK_BYTES = 256 << 20  # decoded pixels per chunk of ImageFolder.chunks, at most (unless one per thread)


def list_images(folder):
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


def decode(path):
    """The image in ``path``, decoded and turned upright by its EXIF orientation."""
    with Image.open(path) as image:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    return image


def normalize_mode(image, num_channels, background):
    """Any Pillow mode -> "L" (num_channels=1) or "RGB", transparency composited on ``background``."""
    if image.mode in SIXTEEN_BIT_MODES:  # 16-bit grayscale: scale 0..65535 to 0..255
        wide = np.asarray(image, dtype=np.float32)
        image = Image.fromarray(np.rint(np.clip(wide, 0, 65535) * (255 / 65535)).astype(np.uint8), "L")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)  # [H, W, 4]
        alpha = rgba[..., 3:]
        rgb = (rgba[..., :3] * alpha + np.asarray(background, np.float32) * (255 - alpha)) / 255
        image = Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")
    return image.convert("L" if num_channels == 1 else "RGB")


def load_image(path, resolution, num_channels, background, crop, upscale=False):
    """One image file -> uint8 [resolution, resolution, num_channels]; DataError if unusable. Smaller
    images are an error unless ``upscale`` (then resized up, as larger ones are down)."""
    try:
        image = decode(path)
    except MemoryError:
        raise
    except Exception as error:  # any decoder failure means the file is corrupt or not an image
        raise DataError(f"{path}: cannot read the image ({type(error).__name__}: {error})") from error
    width, height = image.size
    side = min(width, height)
    if width != height and not crop:
        raise DataError(f"{path}: the image is {width}x{height}, not square (crop=True centre-crops it)")
    if side < resolution and not upscale:
        raise DataError(f"{path}: the image is {width}x{height}, smaller than the {resolution}x{resolution} "
                        "resolution (images are only scaled down)")
    try:
        image = normalize_mode(image, num_channels, background)
    except ValueError as error:
        raise DataError(f"{path}: cannot convert the {image.mode} image ({error})") from error
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))  # not resize(box=): that samples outside the box
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, num_channels)


@dataclasses.dataclass
class ImageFolder:
    """The image files under a folder and the settings that make them training images.

    Each image is turned upright by its EXIF orientation, converted to ``num_channels`` (grayscale is
    replicated to RGB; RGB becomes ITU-R 601 luminance for 1 channel; 16-bit scaled to 8 bits;
    transparency composited on the RGB ``background``), centre-cropped to a square (or refused if
    ``crop=False``), and scaled down to ``resolution`` with Lanczos. With ``skip_bad=True`` unusable
    files are left out and listed in ``skipped`` as they are met. With ``class_folders=True`` each
    sub-folder of ``path`` is a class (``class_names``, sorted) and every image is labelled by the
    sub-folder it sits in (at any depth below it) with a one-hot vector.
    """

    path: pathlib.Path
    resolution: int
    num_channels: int = 3
    background: tuple = (255, 255, 255)
    crop: bool = True
    skip_bad: bool = False
    class_folders: bool = False

    def __post_init__(self):
        self.path = pathlib.Path(self.path).expanduser()
        check_resolution(self.resolution, self.path)
        if self.num_channels not in (1, 3):
            raise DataError(f"{self.path}: num_channels must be 1 or 3, got {self.num_channels!r}")
        if len(self.background) != 3 or not all(0 <= int(v) <= 255 for v in self.background):
            raise DataError(f"{self.path}: background must be an RGB triple of 0..255, got "
                            f"{self.background!r}")
        self.background = tuple(int(v) for v in self.background)
        if not self.path.is_dir():
            raise DataError(f"{self.path}: not a folder")
        self.files = list_images(self.path)
        self.skipped = []
        self.name = self.path.resolve().name
        self.class_names, self.classes = [], None
        if self.class_folders:
            tops = [file.relative_to(self.path).parts for file in self.files]
            loose = [os.path.join(*parts) for parts in tops if len(parts) == 1]
            if loose:
                raise DataError(f"{self.path}: with class folders every image sits in a class sub-folder, "
                                f"but {len(loose)} lie in the folder itself, e.g. {loose[0]}")
            self.class_names = sorted({parts[0] for parts in tops})
            self.classes = np.array([self.class_names.index(parts[0]) for parts in tops], np.int64)

    @property
    def label_size(self):
        return len(self.class_names)

    def labels(self, indices):
        """One-hot float32 [len(indices), label_size] of the files ``indices`` (None without classes)."""
        if self.classes is None:
            return None
        return np.eye(self.label_size, dtype=np.float32)[self.classes[np.asarray(indices, np.int64)]]

    @property
    def num_bytes(self):
        """Bytes of all levels 4 .. resolution of all images, as uint8."""
        return len(self.files) * sum(r * r for r in level_resolutions(self.resolution)) * self.num_channels

    def settings(self):
        """What makes the files training images, as a string."""
        return repr((self.resolution, self.num_channels, self.background, self.crop, self.skip_bad,
                     self.class_folders))

    def fingerprint(self):
        """A digest of the settings and of every file's path, size and modification time."""
        digest = hashlib.sha256(self.settings().encode())
        for file in self.files:
            stat = file.stat()
            digest.update(f"{file.relative_to(self.path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def load(self, file):
        """One file -> uint8 [R, R, C], or the DataError that makes it unusable."""
        try:
            return load_image(file, self.resolution, self.num_channels, self.background, self.crop)
        except DataError as error:
            return error

    def chunks(self, order=None, progress=None):
        """Yield (file indices [n], uint8 images [n, R, R, C]) of the usable images, chunk by chunk, the
        files taken in ``order`` (indices; default: sorted path order), decoded by one thread per core
        (Pillow decodes without the GIL) one chunk ahead of the consumer, at most ``CHUNK_BYTES`` of
        pixels per chunk. ``progress`` (a ``Progress``) counts the files and the skipped ones."""
        order = np.arange(len(self.files)) if order is None else np.asarray(order)
        files = [self.files[index] for index in order]
        workers = os.cpu_count() or 1
        image_bytes = self.resolution * self.resolution * self.num_channels
        size = max(workers, min(64 * workers, CHUNK_BYTES // image_bytes))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            submit = lambda start: [pool.submit(self.load, file) for file in files[start:start + size]]
            pending = submit(0)
            for start in range(0, len(files), size):
                current, pending = pending, submit(start + size)
                kept, indices = [], []
                for index, file, future in zip(order[start:start + size], files[start:start + size], current):
                    result = future.result()
                    if isinstance(result, DataError):
                        if not self.skip_bad:
                            for future in pending:
                                future.cancel()
                            raise result
                        self.skipped.append((str(file), str(result)))
                    else:
                        kept.append(result)
                        indices.append(index)
                if progress is not None:
                    progress.update(start + len(current), skipped=len(self.skipped))
                if kept:
                    yield np.array(indices, np.int64), np.stack(kept)

    def dataset(self):
        """The folder held in memory as an ``ImageDataset`` (box-averaged levels)."""
        images = np.empty((len(self.files), self.resolution, self.resolution, self.num_channels), np.uint8)
        kept = []
        for indices, chunk in self.chunks():
            images[len(kept):len(kept) + len(chunk)] = chunk
            kept.extend(indices)
        if not kept:
            raise DataError(f"{self.path}: all {len(self.files)} images are unusable, e.g. "
                            f"{self.skipped[0][1]}")
        return ImageDataset(self.name, self.resolution, self.num_channels, box_levels(images[:len(kept)]),
                            list(self.skipped), self.labels(kept), self.class_names or None)
