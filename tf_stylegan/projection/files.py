"""The projection's files: target images in, ``projected_w.npz`` out and back."""

import dataclasses
import io
import os

import numpy as np

from tf_stylegan.data.errors import DataError
from tf_stylegan.data.folders import load_image
from tf_stylegan.files import write_atomically
from tf_stylegan.projection.errors import ProjectionError

PROJECTION_FILE = "projected_w.npz"


def load_target(path, resolution, num_channels=3, background=(255, 255, 255)):
    """An image file of any size and mode -> uint8 [resolution, resolution, num_channels]: as a dataset's
    images (upright, transparency on ``background``, the centre square), resized up or down."""
    try:
        return load_image(path, resolution, num_channels, background, crop=True, upscale=True)
    except DataError as error:
        raise ProjectionError(str(error)) from None


def load_targets(paths, resolution, num_channels=3):
    """uint8 [N, resolution, resolution, num_channels] of image files (:func:`load_target`)."""
    if not paths:
        raise ProjectionError("no target images given")
    return np.stack([load_target(path, resolution, num_channels) for path in paths])


def save_projection(path, projection, targets=(), distance="", seed=0, w_plus=False):
    """Writes ``projected_w.npz`` atomically: ``dlatents`` [N, L, D], ``noise`` [N, sum(s * s)], the
    ``targets``' names, the distance's name, the final distances, ``seed`` and ``w_plus``."""
    buffer = io.BytesIO()
    np.savez(buffer, dlatents=projection.dlatents, noise=projection.noise,
             targets=np.asarray([os.fspath(t) for t in targets], dtype=str), distance=np.asarray(distance),
             final_distances=projection.distances[-1], seed=np.int64(seed), w_plus=np.bool_(w_plus))
    write_atomically(path, buffer.getvalue())
    return os.fspath(path)


@dataclasses.dataclass
class SavedProjection:
    """A ``projected_w.npz`` read back: dlatents [N, L, D], noise [N, sum(s * s)], target names."""

    dlatents: np.ndarray
    noise: np.ndarray
    targets: list

    def __len__(self):
        return len(self.dlatents)


def load_projection(path, num_layers=None, dlatent_size=None, noise_size=None):
    """A :class:`SavedProjection`; with a model's shapes given, checked against them (errors name both)."""
    path = os.fspath(path)
    try:
        with np.load(path) as stored:
            dlatents = np.asarray(stored["dlatents"], np.float32)
            noise = np.asarray(stored["noise"], np.float32)
            targets = [str(t) for t in stored["targets"]] if "targets" in stored else []
    except FileNotFoundError:
        raise ProjectionError(f"{path}: no such file") from None
    except KeyError as error:
        raise ProjectionError(f"{path} is not a projection (it lacks {error}; tf-stylegan project "
                              "writes dlatents and noise)") from None
    except Exception as error:  # zip / npy decoding failures: a damaged or foreign file
        raise ProjectionError(f"{path}: cannot read the projection "
                              f"({type(error).__name__}: {error})") from None
    if dlatents.ndim != 3 or noise.ndim != 2 or len(noise) != len(dlatents):
        raise ProjectionError(f"{path}: dlatents {dlatents.shape} and noise {noise.shape} are not "
                              "[N, layers, D] and [N, noise values]")
    if num_layers is not None and dlatents.shape[1:] != (num_layers, dlatent_size):
        raise ProjectionError(f"{path} holds dlatents of {dlatents.shape[1]} x {dlatents.shape[2]}, the "
                              f"model takes {num_layers} x {dlatent_size}: it was projected with another "
                              "model")
    if noise_size is not None and noise.shape[1] != noise_size:
        raise ProjectionError(f"{path} holds {noise.shape[1]} noise values per image, the model's maps "
                              f"hold {noise_size}: it was projected with another model")
    return SavedProjection(dlatents, noise, targets or [f"image{i}" for i in range(len(dlatents))])
