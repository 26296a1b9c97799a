"""The tf-stylegan command line: convert-official, bench, and the train placeholder."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import nchw, official_ref_path
from tf_stylegan import bench as bench_lib
from tf_stylegan.cli import main
from tf_stylegan.official import load_official_pickle
from tf_stylegan.snapshot import load_networks


@pytest.mark.slow
def test_convert_official_console_script_round_trips(tmp_path, official_config):
    """The acceptance command: convert the reference pickle; the saved networks reload identically."""
    pkl, ref = official_config
    out = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "tf_stylegan.cli", "convert-official", str(pkl), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trainable parameters" in result.stdout

    G, D, Gs = load_official_pickle(pkl)
    loaded = load_networks(out)
    for original, restored in zip((G, D, Gs), loaded):
        for a, b in zip(original.variables, restored.variables):
            if not a.path.endswith("seed_generator_state"):  # each import draws its own noise seeds
                np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    images = loaded.Gs(ref["z"], truncation_psi=1.0, randomize_noise=False).numpy()
    np.testing.assert_allclose(nchw(images), ref["images_psi1"], atol=1e-4)
    np.testing.assert_array_equal(images, Gs(ref["z"], truncation_psi=1.0, randomize_noise=False).numpy())
    np.testing.assert_array_equal(loaded.D(images).numpy(), D(images).numpy())


def test_convert_official_refuses_existing_output_and_bad_input(tmp_path, capsys):
    pkl = official_ref_path("network-small.pkl")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert-official", str(pkl), str(out)]) == 1
    assert "exists" in capsys.readouterr().err

    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pkl.read_bytes()[:5000])
    assert main(["convert-official", str(truncated), str(tmp_path / "x")]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    assert main(["convert-official", str(tmp_path / "missing.pkl"), str(tmp_path / "y")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_train_reports_a_missing_gin_file(tmp_path, capsys):
    assert main(["train", "--gin_file", str(tmp_path / "missing.gin"), "--run_dir", str(tmp_path / "run")]) == 1
    assert "missing.gin not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bench_prints_a_table_of_positive_figures(capsys):
    rows = bench_lib.run(resolutions=(8,), batch=2, repeats=1, fmap_base=64, fmap_max=16,
                         latent_size=16, dlatent_size=16, mapping_fmaps=16)
    printed = capsys.readouterr().out
    assert "roofline =" in printed and "tf.function" in printed and "eager" in printed
    assert [row["call"] for row in rows] == ["eager", "tf.function"]
    for row in rows:
        assert row["images_per_s"] > 0 and row["gflops"] > 0 and row["peak_rss_mib"] > 0
        # GFLOP per image is counted from the layers: check it against a hand count for this tiny net.
        assert row["gflop_per_image"] == pytest.approx(2 * _tiny_macs() / 1e9)


@pytest.mark.parametrize("r1_interval, header", [(1, "every step"), (3, "every 3 steps (lazy)")])
def test_bench_train_prints_positive_figures_with_and_without_lazy_r1(capsys, r1_interval, header):
    rows = bench_lib.run_train(resolutions=(4, 8), network_resolutions=(8,), batch=4, repeats=1,
                               r1_interval=r1_interval, fmap_base=64, fmap_max=16, latent_size=16,
                               dlatent_size=16, mapping_fmaps=16, mapping_layers=2)
    printed = capsys.readouterr().out
    assert header in printed
    assert [(row["resolution"], row["network_resolution"]) for row in rows] == [(4, 8), (8, 8)]
    assert all(row["images_per_s"] > 0 and row["peak_rss_mib"] > 0 for row in rows)


def _tiny_macs():
    """Hand count for resolution 8, fmap_base 64 / fmap_max 16 (16 maps), latent 16, 8 mapping layers."""
    mapping = 8 * 16 * 16
    styles = 4 * 16 * 32  # four AdaIN affines w(16) -> 2 x 16
    conv4 = 16 * 9 * 16 * 16  # 3x3 conv at 4x4
    up8 = 64 * 9 * 16 * 16  # nearest x2 then 3x3 conv at 8x8
    conv8 = 64 * 9 * 16 * 16
    to_rgb = 16 * 16 * 3 + 64 * 16 * 3
    return mapping + styles + conv4 + up8 + conv8 + to_rgb
