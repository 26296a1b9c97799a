"""Fine-tuning from pretrained networks (train.init_from) and Freeze-D (train.freeze_d_layers)."""

import numpy as np
import pytest
from helpers import official_networks, official_ref_path, train_in_process
from PIL import Image

from tf_stylegan.formats.snapshot import save_networks
from tf_stylegan.training import finetune

# network-small.pkl: 16x16, fmap_base 256, fmap_max 32, 32-d latents, 8 mapping layers (official_ref README).
SMALL = ["Generator.latent_size = 32", "Generator.dlatent_size = 32", "Generator.mapping_fmaps = 32",
         "Generator.mapping_layers = 8", "Generator.fmap_base = 256", "Generator.fmap_max = 32",
         "Discriminator.fmap_base = 256", "Discriminator.fmap_max = 32"]


def _folder(path, size=16, count=12):
    """Dark squares on light backgrounds, ``count`` PNGs of ``size`` px."""
    path.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        image = np.full((size, size, 3), 230, np.uint8)
        corner = rng.integers(0, size // 2, 2)
        image[corner[0]:corner[0] + size // 2, corner[1]:corner[1] + size // 2] = rng.integers(0, 80, 3)
        Image.fromarray(image).save(path / f"{index:02d}.png")
    return path


def _bindings(folder, init_from, *extra, size=16):
    return [f"train.dataset = '{folder}'", f"train.resolution = {size}", f"train.init_from = '{init_from}'",
            "train.total_kimg = 0.032", "train.checkpoint_kimg = 0.016", *SMALL, *extra]


def _values(network):
    return {v.path.split("/", 1)[1]: np.asarray(v) for v in network.variables}


@pytest.mark.slow
def test_fine_tuning_an_official_pickle_changes_the_weights_keeps_frozen_blocks_and_resumes_exactly(tmp_path):
    pkl = official_ref_path("network-small.pkl")
    G0, D0, Gs0 = official_networks("network-small.pkl")
    folder = _folder(tmp_path / "images")
    straight, lines = train_in_process(tmp_path / "straight",
                                       _bindings(folder, pkl, "train.freeze_d_layers = 1"))
    progress = [line for line in lines if line.startswith("kimg")]
    assert progress and all(" 16px" in line and "lod 0.000" in line for line in progress), progress

    given, tuned = _values(D0), _values(straight.D)
    frozen = [key for key in given if key.startswith(("block16/", "from_rgb16/"))]
    assert frozen and all(np.array_equal(given[key], tuned[key]) for key in frozen)
    assert not np.array_equal(given["block4/dense1/weight"], tuned["block4/dense1/weight"])
    for source, network in ((G0, straight.G), (Gs0, straight.Gs)):
        before, after = _values(source), _values(network)
        changed = [key for key in before if not np.array_equal(before[key], after[key])]
        assert "synthesis/block16/conv1/weight" in changed
        # Fine-tuned, not re-initialised: 32 images move the weights little.
        weight = "synthesis/block16/conv1/weight"
        assert np.abs(after[weight] - before[weight]).max() < 0.1 * np.abs(before[weight]).max()
    # Gs starts as the given Gs (w_avg kept): after 4 steps its w_avg is still the given one's, nearly.
    np.testing.assert_allclose(_values(straight.Gs)["w_avg"], _values(Gs0)["w_avg"], atol=0.05)

    # Half the run, then resume: the same weights bit for bit (the checkpoint, not init_from, restores).
    half, _ = train_in_process(tmp_path / "resumed", _bindings(folder, pkl, "train.freeze_d_layers = 1",
                                                                "train.total_kimg = 0.016"))
    resumed, _ = train_in_process(tmp_path / "resumed", ["train.total_kimg = 0.032"], resume=True)
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.Gs, resumed.Gs)):
        for key, value in _values(a).items():
            np.testing.assert_array_equal(value, _values(b)[key], err_msg=key)


@pytest.mark.slow
def test_fine_tuning_starts_from_a_snapshot_with_its_weights(tmp_path):
    G0, D0, Gs0 = official_networks("network-small.pkl")
    snapshot = tmp_path / "snapshot"
    save_networks(str(snapshot), G=G0, D=D0, Gs=Gs0)
    trainer, _ = train_in_process(tmp_path / "run", _bindings(_folder(tmp_path / "images"), snapshot,
                                                             "train.total_kimg = 0"))
    for source, network in ((G0, trainer.G), (D0, trainer.D), (Gs0, trainer.Gs)):
        after = _values(network)
        for key, value in _values(source).items():
            if key != "lod":
                np.testing.assert_array_equal(value, after[key], err_msg=key)


def test_a_network_that_does_not_fit_is_a_clear_error(tmp_path):
    pkl = official_ref_path("network-small.pkl")
    folder = _folder(tmp_path / "images")
    with pytest.raises(finetune.InitError, match=r"its Generator does not fit .*fmap_max 32 there, 64 here"):
        train_in_process(tmp_path / "wide", _bindings(folder, pkl, "Generator.fmap_max = 64"))
    small = _folder(tmp_path / "small", size=8)
    with pytest.raises(finetune.InitError,
                       match=r"holds 16x16 networks and the dataset is 8x8: .*--resolution 16"):
        train_in_process(tmp_path / "eight", _bindings(small, pkl, size=8))
    with pytest.raises(finetune.InitError, match="no such file or folder"):
        train_in_process(tmp_path / "missing", _bindings(folder, tmp_path / "nothing.pkl"))
    export = tmp_path / "export"
    (export / "1").mkdir(parents=True)
    with pytest.raises(finetune.InitError, match="an export holds only the generator"):
        train_in_process(tmp_path / "export_run", _bindings(folder, export))


def test_freeze_d_layers_out_of_range_names_the_blocks(tmp_path):
    D = official_networks("network-small.pkl")[1]
    with pytest.raises(ValueError,
                       match=r"freeze_d_layers=3: the 16x16 discriminator has 3 blocks; freeze 0 to 2"):
        finetune.freeze_discriminator_blocks(D, 3)
