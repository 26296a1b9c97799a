"""files.py (atomic writes, the cache folder) and images.py (uint8 conversion, grids, PNG)."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from tf_stylegan import files, images


def test_write_atomically_writes_text_and_bytes_with_the_mode_open_gives(tmp_path):
    files.write_atomically(tmp_path / "a.txt", "text")
    files.write_atomically(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text() == "text" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    (tmp_path / "plain").write_text("x")
    assert (stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode)
            == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "config.gin"
    path.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_file(path) as staging:
        with open(staging, "w") as file:
            file.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["config.gin"]


def test_replace_folder_swaps_a_complete_folder_in(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("old")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "new").write_text("new")
    files.replace_folder(tmp_path / "staging", tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["new"] and sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.parametrize("value", [None, "", "relative/cache"])
def test_cache_dir_ignores_an_unset_empty_or_relative_xdg_cache_home(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert files.cache_dir("fid") == os.path.join(os.path.expanduser("~"), ".cache", "tf_stylegan", "fid")


def test_cache_dir_follows_an_absolute_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert files.cache_dir() == os.path.join(str(tmp_path), "tf_stylegan")


def test_to_uint8_saturates_and_truncates_as_the_official_conversion():
    values = np.array([-2.0, -1.0, -0.004, 0.0, 0.5, 0.999, 1.0, 3.0], np.float32).reshape(1, 1, -1, 1)
    expected = [0, 0, 127, 128, 191, 255, 255, 255]  # saturate_cast(x * 127.5 + 128) truncates
    assert images.to_uint8(values).reshape(-1).tolist() == expected


def test_image_grid_is_row_major_with_black_cells_and_png_round_trips(tmp_path):
    tiles = np.stack([np.full((2, 3, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = images.image_grid(tiles, 3)
    assert grid.shape == (4, 9, 3)
    assert grid[0, 3, 0] == 20 and grid[2, 3, 0] == 50 and grid[2, 6, 0] == 0
    with pytest.raises(ValueError, match="columns"):
        images.image_grid(tiles, 0)
    images.save_image(tmp_path / "grid.png", grid)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")), grid)
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    images.save_image(tmp_path / "gray.png", gray)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "gray.png")), gray[..., 0])
