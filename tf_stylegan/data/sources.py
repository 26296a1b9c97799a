"""Where training images come from: 'emoji' (or 'emoji-groups', either of them restricted to some groups:
'emoji:Smileys & Emotion'), official TFRecords, or an image folder (held in memory when it fits, else
converted once to TFRecords in the cache and streamed from there)."""

import json
import os
import pathlib
import shutil
import sys
import tempfile

from tf_stylegan.data import dataset
from tf_stylegan.data.dataset import byte_size, level_resolutions
from tf_stylegan.data.emoji import emoji_dataset
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import ImageFolder
from tf_stylegan.data.records import LEVEL_FILE
from tf_stylegan.data.tfrecords import read_tfrecords, write_folder_tfrecords
from tf_stylegan.files import cache_dir, write_atomically
from tf_stylegan.progress import Progress

SKIPPED_FILE = "skipped.json"  # in a cached conversion: the files it left out, (path, reason)
SOURCE_FILE = "source.json"  # ... and the folder and settings it converted
RECORD_OVERHEAD = 64  # bytes per record beside the pixels: framing, shape and Example encoding (at most)
EMOJI_DATASETS = {"emoji": False, "emoji-groups": True}  # name: by_group (labelled by emoji group)


def load_dataset(spec, resolution=None, **folder_kwargs):
    """``"emoji"`` or the class-conditional ``"emoji-groups"`` (``resolution`` defaults to 64), either
    restricted to some emoji groups (``"emoji:Smileys & Emotion"``, ``"emoji-groups:Animals & Nature,Food &
    Drink"``), a folder of ``<name>-rNN.tfrecords`` (``resolution``, if given, must match), or an image
    folder (``resolution`` required). ``folder_kwargs`` go to ``load_image_folder`` and are refused for
    the others."""
    emoji = _emoji_spec(spec)
    if emoji or (isinstance(spec, (str, os.PathLike)) and _has_tfrecords(spec)):
        if folder_kwargs:
            raise DataError(f"{spec}: options {sorted(folder_kwargs)} apply to image folders only")
        if emoji:
            by_group, groups = emoji
            return emoji_dataset(64 if resolution is None else resolution, by_group=by_group, groups=groups)
        images = read_tfrecords(spec)
        if resolution is not None and resolution != images.resolution:
            raise DataError(f"{spec}: the TFRecords are {images.resolution}x{images.resolution}, "
                            f"not the requested {resolution}x{resolution}")
        return images
    folder = pathlib.Path(spec).expanduser()
    if not folder.is_dir():
        raise DataError(f"{spec}: no such dataset (give 'emoji' or 'emoji-groups', either with "
                        "':<group>,...', a folder of <name>-rNN.tfrecords, or a folder of images)")
    if resolution is None:
        raise DataError(f"{spec}: an image folder needs a resolution (a power of two >= 4)")
    return load_image_folder(folder, resolution, **folder_kwargs)


def _emoji_spec(spec):
    """(by_group, group names or None) of an emoji dataset spec, 'emoji-groups:A,B' -> (True, ['A', 'B']);
    None for any other spec."""
    if not isinstance(spec, str):
        return None
    name, colon, groups = spec.partition(":")
    if name not in EMOJI_DATASETS:
        return None
    if not colon:
        return EMOJI_DATASETS[name], None
    return EMOJI_DATASETS[name], [group.strip() for group in groups.split(",") if group.strip()]


def _has_tfrecords(spec):
    folder = pathlib.Path(spec).expanduser()
    return folder.is_dir() and any(LEVEL_FILE.match(file.name) for file in folder.iterdir())


def load_image_folder(path, resolution, num_channels=3, background=(255, 255, 255), crop=True,
                      skip_bad=False, class_folders=False, stream=None):
    """The images under ``path`` (see ``ImageFolder``) as an ``ImageDataset`` in sorted path order.

    A folder whose levels fit in ``dataset.MAX_IN_MEMORY_BYTES`` is held in memory. A larger one is
    converted once, chunk by chunk with a progress line on ``stream`` (default stderr), to TFRecords in
    the cache (``$XDG_CACHE_HOME/tf_stylegan/folders``, keyed by the settings and every file's path,
    size and time: a changed folder is converted again) and trained from there without being held in
    memory; the records keep the path order, so both give the same training stream.
    """
    folder = ImageFolder(path, resolution, num_channels, background, crop, skip_bad, class_folders)
    if folder.num_bytes <= dataset.MAX_IN_MEMORY_BYTES:
        return folder.dataset()
    return cached_records(folder, stream or sys.stderr)


def _source(folder):
    return {"folder": str(pathlib.Path(folder.path).resolve()), "settings": folder.settings()}


def _report_stale_conversions(folder, current, stream):
    """Names the cache's older conversions of the same folder and settings (made before its files
    changed): not deleted here, since a run may still be streaming from one."""
    stale = []
    for entry in current.parent.iterdir():
        source = entry / SOURCE_FILE
        if entry != current and source.is_file():
            try:
                same = json.loads(source.read_text()) == _source(folder)
            except (OSError, ValueError):
                continue
            if same:
                stale.append(entry)
    if stale:
        size = sum(file.stat().st_size for entry in stale for file in entry.iterdir())
        print(f"{len(stale)} older conversion(s) of {folder.path} from before its files changed take "
              f"{byte_size(size)} in the cache: {', '.join(str(entry) for entry in stale)}; delete them once "
              "no run streams from them", file=stream, flush=True)


def cached_records(folder, stream):
    """The ``ImageDataset`` of ``folder`` read from its TFRecords in the cache, written first if absent."""
    target = pathlib.Path(cache_dir("folders", f"{folder.name}-{folder.resolution}px-"
                                               f"{folder.fingerprint()[:16]}"))
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        needed = len(folder.files) * sum(r * r * folder.num_channels + RECORD_OVERHEAD
                                         for r in level_resolutions(folder.resolution))
        free = shutil.disk_usage(target.parent).free
        if needed > free:
            raise DataError(f"{folder.path}: {len(folder.files)} images at {folder.resolution}px need "
                            f"{byte_size(needed)} of TFRecords, but {target.parent} has {byte_size(free)} "
                            "free; set "
                            "XDG_CACHE_HOME to a disk with room, or write them there with `tf-stylegan "
                            "dataset create` and train from that folder")
        print(f"{folder.path}: {len(folder.files)} images at {folder.resolution}px take "
              f"{byte_size(folder.num_bytes)}, more than the {byte_size(dataset.MAX_IN_MEMORY_BYTES)} held "
              f"in memory: converting them once to TFRecords ({byte_size(needed)} at most) in {target} to "
              "stream from (delete it to free the disk)",
              file=stream, flush=True)
        staging = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            progress = Progress(len(folder.files), "images", stream)
            write_folder_tfrecords(folder, staging, shuffle_seed=None, progress=progress)
            progress.close()
            write_atomically(os.path.join(staging, SKIPPED_FILE), json.dumps(folder.skipped))
            write_atomically(os.path.join(staging, SOURCE_FILE), json.dumps(_source(folder)))
            try:
                os.rename(staging, target)
            except OSError:  # another process converted the same folder meanwhile: use its records
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _report_stale_conversions(folder, target, stream)
    images = read_tfrecords(target)
    skipped_file = target / SKIPPED_FILE
    images.skipped = [tuple(entry) for entry in json.loads(skipped_file.read_text())]
    return images
