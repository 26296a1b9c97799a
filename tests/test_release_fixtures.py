"""Files written by an earlier release keep loading: a training run directory (checkpoints and
config.gin), a network snapshot and a SavedModel export made by release 0.1.0 before the package was
laid out by role (tests/fixtures/make_release_fixtures.py) give the images they gave then."""

import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

import tf_stylegan
from tf_stylegan.cli import main

RELEASE = pathlib.Path(__file__).resolve().parent / "fixtures" / "release_0_1"
EXPORT = RELEASE / "export" / "stylegan" / "1"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(RELEASE / "expected.npz"))


@pytest.mark.parametrize("source", [RELEASE / "run", RELEASE / "snapshot", EXPORT],
                         ids=["run", "snapshot", "export"])
def test_an_earlier_release_s_files_give_the_same_images(source, expected):
    generator = tf_stylegan.load(str(source))
    dlatents = generator.mapping(expected["latents"], truncation_psi=0.7)
    np.testing.assert_allclose(dlatents, expected["dlatents"], rtol=1e-6, atol=1e-6)
    images = generator.synthesis(expected["dlatents"], raw=True)
    # Later releases compute the same functions in other float orders (fused epilogues); this untrained
    # network's 4x4 const layer has nearly zero variance, and instance norm multiplies that rounding by up
    # to 1e4: up to 5e-4 here on images of magnitude ~3, far below what a wrong weight would move.
    np.testing.assert_allclose(images, expected["images"], rtol=1e-4, atol=1e-3)


def test_an_earlier_release_s_run_resumes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(16):
        Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).save(
            images / f"{index:02d}.png")
    run = tmp_path / "run"
    shutil.copytree(RELEASE / "run", run)
    assert main(["train", "--run_dir", str(run), "--resume", "--gin_param", f"train.dataset='{images}'",
                 "--gin_param", "train.total_kimg=0.096", "--gin_param", "train.checkpoint_kimg=0.032"]) == 0
    assert (run / "checkpoints" / "ckpt-96.index").exists()


def test_an_earlier_release_s_export_says_to_export_again_for_given_noise_maps(expected):
    """Release 0.1's exports have no synthesis_with_noise signature; the snapshot path builds it."""
    dlatents = expected["dlatents"]
    from_snapshot = tf_stylegan.load(str(RELEASE / "snapshot"))
    noise = np.zeros((len(dlatents), from_snapshot.noise_size), np.float32)
    assert from_snapshot.synthesis(dlatents, noise=noise).shape[0] == len(dlatents)
    with pytest.raises(ValueError, match=r"noise must have shape \[\d+, \d+\]"):
        from_snapshot.synthesis(dlatents, noise=noise[:, :-1])
    with pytest.raises(ValueError, match="not both"):
        from_snapshot.synthesis(dlatents, noise=noise, noise_seeds=[1] * len(dlatents))
    with pytest.raises(ValueError, match="no synthesis_with_noise signature .* export the model again"):
        tf_stylegan.load(str(EXPORT)).synthesis(dlatents, noise=noise)
