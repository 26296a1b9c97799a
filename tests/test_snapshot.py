"""The network snapshot format: exact round trip, atomic writes, clear errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import perturb, small_discriminator, small_generator

from tf_stylegan.formats import snapshot
from tf_stylegan.formats.snapshot import SnapshotError, load_networks, save_networks


def _networks(seed=1):
    # Every variable distinctive: biases, noise strengths (at 0 they would hide the noise path) and
    # w_avg drawn, each network from its own stream.
    G = perturb(small_generator(8, mapping_layers=2, seed=seed), seed, scale=1.0, w_avg_scale=1.0)
    D = perturb(small_discriminator(8), seed + 100, scale=1.0)
    Gs = perturb(small_generator(8, mapping_layers=2, seed=seed + 1), seed + 200, scale=1.0, w_avg_scale=1.0)
    return G, D, Gs


def test_round_trip_restores_every_variable_and_rng_state(tmp_path):
    G, D, Gs = _networks()
    z = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    G(z)  # advance the noise generators: their state must be saved too
    path = save_networks(tmp_path / "net", G, D, Gs, metadata={"note": "test"})
    loaded = load_networks(path)

    for original, restored in zip((G, D, Gs), loaded):
        assert type(restored) is type(original)
        assert len(restored.variables) == len(original.variables)
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # Fresh noise continues identically: the RNG state travelled with the weights.
    np.testing.assert_array_equal(G(z).numpy(), loaded.G(z).numpy())
    images = Gs(z, randomize_noise=False).numpy()
    np.testing.assert_array_equal(images, loaded.Gs(z, randomize_noise=False).numpy())
    np.testing.assert_array_equal(D(images).numpy(), loaded.D(images).numpy())
    config = json.loads((tmp_path / "net" / snapshot.CONFIG_FILE).read_text())
    assert config["metadata"] == {"note": "test"} and config["version"] == snapshot.VERSION


def test_partial_snapshot_holds_only_given_networks(tmp_path):
    _, _, Gs = _networks()
    loaded = load_networks(save_networks(tmp_path / "gs_only", Gs=Gs))
    assert loaded.G is None and loaded.D is None and loaded.Gs is not None


def test_refuses_to_overwrite_unless_asked(tmp_path):
    G, D, Gs = _networks(seed=1)
    save_networks(tmp_path / "net", G, D, Gs)
    with pytest.raises(FileExistsError, match="exists"):
        save_networks(tmp_path / "net", G, D, Gs)
    G2, D2, Gs2 = _networks(seed=5)
    save_networks(tmp_path / "net", G2, D2, Gs2, overwrite=True)
    loaded = load_networks(tmp_path / "net")
    np.testing.assert_array_equal(loaded.G.w_avg.numpy(), G2.w_avg.numpy())


def test_failed_write_leaves_previous_snapshot_intact(tmp_path, monkeypatch):
    G, D, Gs = _networks(seed=1)
    save_networks(tmp_path / "net", G, D, Gs)
    before = sorted(os.listdir(tmp_path / "net"))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.train.Checkpoint, "write", crash)
    G2, D2, Gs2 = _networks(seed=5)
    with pytest.raises(OSError, match="disk full"):
        save_networks(tmp_path / "net", G2, D2, Gs2, overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["net"]  # no staging folder left behind
    assert sorted(os.listdir(tmp_path / "net")) == before
    np.testing.assert_array_equal(load_networks(tmp_path / "net").G.w_avg.numpy(), G.w_avg.numpy())


@pytest.mark.parametrize("damage, message", [
    ("no_config", "no networks.json"),
    ("corrupt_config", "corrupt"),
    ("other_format", "not a tf_stylegan network snapshot"),
    ("future_version", "upgrade tf_stylegan"),
    ("no_weights", "weights checkpoint"),
])
def test_damaged_snapshots_give_clear_errors(tmp_path, damage, message):
    G, D, Gs = _networks()
    path = tmp_path / "net"
    save_networks(path, G, D, Gs)
    config_file = path / snapshot.CONFIG_FILE
    config = json.loads(config_file.read_text())
    if damage == "no_config":
        config_file.unlink()
    elif damage == "corrupt_config":
        config_file.write_text("{not json")
    elif damage == "other_format":
        config_file.write_text(json.dumps({**config, "format": "something.else"}))
    elif damage == "future_version":
        config_file.write_text(json.dumps({**config, "version": snapshot.VERSION + 1}))
    elif damage == "no_weights":
        (path / "weights.index").unlink()
    with pytest.raises(SnapshotError, match=message):
        load_networks(path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    G, D, Gs = _networks()
    save_networks(tmp_path / "a", G, D, Gs)
    wider = small_generator(8, mapping_layers=2, seed=1, latent_size=32, mapping_fmaps=32)
    save_networks(tmp_path / "b", Gs=wider)
    with pytest.raises((SnapshotError, ValueError)):
        load_networks(tmp_path / "b", weights_prefix=str(tmp_path / "a" / "weights"))
