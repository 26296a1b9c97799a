"""Images as uint8 arrays: the official float -> uint8 conversion, grids and PNG files."""

import io

import numpy as np

from tf_stylegan.files import write_atomically


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


def png_bytes(image):
    """One uint8 [H, W, C] image (C 1 or 3) as a PNG file's bytes."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path, image):
    """Writes one uint8 [H, W, C] image as a PNG file, atomically."""
    write_atomically(path, png_bytes(image))
