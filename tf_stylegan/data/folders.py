"""Image folders: decoding, mode conversion, centre crop and resize to a dataset."""

import concurrent.futures
import os
import pathlib

import numpy as np
from PIL import Image, ImageOps

from tf_stylegan.data import dataset
from tf_stylegan.data.dataset import (
    IMAGE_EXTENSIONS,
    ImageDataset,
    box_levels,
    check_resolution,
    gib,
    level_resolutions,
)
from tf_stylegan.data.errors import DataError

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


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


def load_image(path, resolution, num_channels, background, crop):
    """One image file -> uint8 [resolution, resolution, num_channels]; DataError if unusable."""
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
    if side < resolution:
        raise DataError(f"{path}: the image is {width}x{height}, smaller than the {resolution}x{resolution} "
                        "resolution (images are only scaled down)")
    try:
        image = normalize_mode(image, num_channels, background)
    except ValueError as error:
        raise DataError(f"{path}: cannot convert the {image.mode} image ({error})") from error
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))  # not resize(box=): that samples outside the box
    if side > resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, num_channels)


def load_image_folder(path, resolution, num_channels=3, background=(255, 255, 255), crop=True,
                      skip_bad=False):
    """Load every .png/.jpg/.jpeg/.webp under ``path`` (recursive, sorted; hidden files skipped) into memory.

    Each image is turned upright by its EXIF orientation, converted to ``num_channels`` (grayscale is
    replicated to RGB; RGB becomes ITU-R 601 luminance for 1 channel; 16-bit scaled to 8 bits;
    transparency composited on the RGB ``background``), centre-cropped to a square (or refused if
    ``crop=False``), and scaled down to ``resolution`` with Lanczos. With ``skip_bad=True`` unusable
    files are left out and listed in ``skipped``. Datasets above ``MAX_IN_MEMORY_BYTES`` are refused:
    convert them to TFRecords with ``tf-stylegan dataset create``.
    """
    folder = pathlib.Path(path).expanduser()
    check_resolution(resolution, folder)
    if num_channels not in (1, 3):
        raise DataError(f"{folder}: num_channels must be 1 or 3, got {num_channels!r}")
    if len(background) != 3 or not all(0 <= int(v) <= 255 for v in background):
        raise DataError(f"{folder}: background must be an RGB triple of 0..255, got {background!r}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = list_images(folder)

    pixels_per_image = sum(r * r for r in level_resolutions(resolution)) * num_channels
    num_bytes = len(files) * pixels_per_image
    if num_bytes > dataset.MAX_IN_MEMORY_BYTES:
        raise DataError(f"{folder}: {len(files)} images at {resolution}x{resolution}x{num_channels} need "
                        f"{gib(num_bytes)} in memory, more than {gib(dataset.MAX_IN_MEMORY_BYTES)}; "
                        "convert the folder to TFRecords with `tf-stylegan dataset create` and train "
                        "from those")

    def load(file):
        try:
            return load_image(file, resolution, num_channels, background, crop)
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
    return ImageDataset(folder.resolve().name, resolution, num_channels, box_levels(images[:kept]), skipped)
