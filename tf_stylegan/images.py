"""Images as uint8 arrays: the official float -> uint8 conversion, grids, and image / GIF files."""

import io
import os

import numpy as np

from tf_stylegan.files import write_atomically

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # what save_image writes


def to_uint8(images):
    """float [-1, 1] NHWC -> uint8 as the official ``convert_images_to_uint8``: saturate_cast(x*127.5 + 128),
    which clips and then truncates (NumPy's cast of the clipped values truncates too)."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128.0, 0, 255).astype(np.uint8)


def image_grid(images, columns):
    """uint8 [N, H, W, C] -> one uint8 [ceil(N / columns) * H, columns * W, C] grid, row-major,
    missing cells black."""
    if int(columns) < 1:
        raise ValueError(f"grid columns must be at least 1, got {columns}")
    images = np.asarray(images, np.uint8)
    n, height, width, channels = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, height, width, channels), np.uint8)
    padded[:n] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, columns * width, channels)


def save_image(path, image):
    """Writes one uint8 [H, W, C] image, in the format of the suffix (:data:`IMAGE_SUFFIXES`),
    atomically; creates the folder. Returns ``path``."""
    from PIL import Image

    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unsupported image type {suffix!r} (use {', '.join(IMAGE_SUFFIXES)})")
    image = np.asarray(image, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
        buffer, format=Image.registered_extensions()[suffix])
    write_atomically(path, buffer.getvalue())
    return path


def save_gif(path, frames, duration=40):
    """Writes uint8 [F, H, W, 3] frames as an endlessly repeating animated GIF, ``duration``
    milliseconds per frame (Pillow merges identical consecutive frames), atomically. Returns ``path``."""
    from PIL import Image

    frames = [Image.fromarray(frame) for frame in np.asarray(frames, np.uint8)]
    if not frames:
        raise ValueError("no frames to write")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=int(duration),
                   loop=0)
    write_atomically(path, buffer.getvalue())
    return os.fspath(path)
