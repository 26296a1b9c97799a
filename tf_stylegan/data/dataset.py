"""``ImageDataset``: square training images at every resolution 4, 8, ..., R."""

import dataclasses

import numpy as np

from tf_stylegan.data.errors import DataError
from tf_stylegan.data.records import count_records, read_level

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".webp")


MAX_IN_MEMORY_BYTES = 4 << 30          # datasets (or TFRecord levels) held in memory at most


def check_resolution(resolution, what):
    if (isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer))
            or resolution < 4 or resolution & (resolution - 1)):
        raise DataError(f"{what}: resolution must be a power of two >= 4, got {resolution!r}")


def level_resolutions(resolution):
    return [2 ** k for k in range(2, int(resolution).bit_length())]


def byte_size(num_bytes):
    """``3.1 GiB``, ``12.0 MiB``, ``4.5 KiB`` or ``900 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if num_bytes >= 1 << shift:
            return f"{num_bytes / (1 << shift):.1f} {unit}"
    return f"{num_bytes} bytes"


@dataclasses.dataclass
class ImageDataset:
    """Square training images at every resolution 4, 8, ..., ``resolution``.

    ``levels[r]`` is a uint8 array [N, r, r, C], or the path of an official ``<name>-rNN.tfrecords``
    file; ``level(r)`` always gives the array. ``skipped`` lists the (path, reason) of input files
    left out with ``skip_bad=True``. ``labels`` (class-conditional datasets): float32 [N, label_size],
    image k's label in row k (one-hot class vectors, or any vectors as the official labels files hold);
    ``class_names``: the name of each class (component) of one-hot labels, e.g. class folders' names.
    """

    name: str
    resolution: int
    num_channels: int
    levels: dict
    skipped: list = dataclasses.field(default_factory=list)
    labels: np.ndarray = None
    class_names: list = None
    _num_records: int = dataclasses.field(default=None, repr=False)  # record count of TFRecord levels

    def __post_init__(self):
        check_resolution(self.resolution, self.name)
        if self.num_channels not in (1, 3):
            raise DataError(f"{self.name}: num_channels must be 1 or 3, got {self.num_channels!r}")
        expected = level_resolutions(self.resolution)
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
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.number):
                raise DataError(f"{self.name}: labels must be numbers [N, label_size], got {labels.dtype} "
                                f"{list(labels.shape)}")
            if len(labels) != (counts.pop() if counts else self.num_images):
                raise DataError(f"{self.name}: {len(labels)} labels for {self.num_images} images")
            self.labels = labels.astype(np.float32)
        if self.class_names is not None:
            self.class_names = [str(name) for name in self.class_names]
            if len(self.class_names) != self.label_size:
                raise DataError(f"{self.name}: {len(self.class_names)} class names for labels of "
                                f"{self.label_size} components")

    @classmethod
    def from_images(cls, name, images):
        """A dataset of uint8 images [N, R, R, C] held in memory (the lower levels box-averaged)."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise DataError(f"{name}: images must be [N, R, R, C], got shape {images.shape}")
        return cls(name, images.shape[1], images.shape[3], box_levels(images))

    @property
    def label_size(self):
        """Components of a label (0: unconditional)."""
        return 0 if self.labels is None else self.labels.shape[1]

    @property
    def num_images(self):
        """Number of images (the same at every level)."""
        smallest = self.levels[4]
        if isinstance(smallest, np.ndarray):
            return len(smallest)
        if self._num_records is None:
            self._num_records = count_records(smallest)
        return self._num_records

    def subset(self, count, seed=0):
        """``count`` of the images, chosen by a seeded shuffle and kept in their order (as StyleGAN2-ADA's
        ``max_size``), held in memory; the dataset itself when it has no more than ``count``."""
        if int(count) != count or count < 1:
            raise DataError(f"{self.name}: a subset needs a positive number of images, got {count!r}")
        if count >= self.num_images:
            return self
        chosen = np.sort(np.random.RandomState(seed).permutation(self.num_images)[:count])
        return ImageDataset(f"{self.name}[{count}]", self.resolution, self.num_channels,
                            {r: self.level(r)[chosen] for r in self.levels}, list(self.skipped),
                            None if self.labels is None else self.labels[chosen], self.class_names)

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
                            f"{byte_size(num_bytes)}, more than the {byte_size(MAX_IN_MEMORY_BYTES)} held in "
                            "memory; give the path to real_images_pipeline to stream it instead")
        return read_level(level, self.num_images)


def box_levels(images):
    """{r: uint8 [N, r, r, C]} for r = 4 .. R from uint8 [N, R, R, C], as the official exporter computes
    them: each level the 2x2 mean of the previous unrounded float32 level, then rounded and clipped."""
    resolution = images.shape[1]
    levels = {resolution: images}
    for r in level_resolutions(resolution)[:-1]:
        levels[r] = np.empty((len(images), r, r, images.shape[3]), np.uint8)
    chunk = max(1, (64 << 20) // max(1, images[0].size * 4))  # bound the float32 copy to ~64 MiB
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].astype(np.float32)
        while x.shape[1] > 4:
            x = (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * 0.25
            levels[x.shape[1]][start:start + chunk] = np.rint(x).clip(0, 255).astype(np.uint8)
    return dict(sorted(levels.items()))
