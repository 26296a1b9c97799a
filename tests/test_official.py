"""Parity with the official StyleGAN code (../shared/official_ref) and the importer's own behaviour."""

import os
import pickle
import re
import shlex
import sys
import types

import numpy as np
import pytest
from helpers import nchw, nhwc, official_networks, official_ref_path

from tf_stylegan.formats.official import (
    OfficialPickleError,
    discriminator_variable_map,
    generator_variable_map,
    load_official_pickle,
    read_official_pickle,
)

@pytest.fixture(params=["", "_fused", "_cond"], ids=["nonfused", "fused", "conditional"])
def official_config(request):
    """(pickle path, reference outputs) for each of the three official reference configs, the
    class-conditional one included (the other test files export and serve: unconditional only)."""
    pkl = official_ref_path(f"network-small{request.param}.pkl")
    return pkl, dict(np.load(official_ref_path(f"ref_outputs{request.param}.npz")))


IMAGE_ATOL = 1e-4
LATENT_ATOL = 1e-5  # dlatents and scores


# ------------------------------------------------------------------------------------------------
# Parity: one check per output key of ref_outputs*.npz


def _z(ref, key="z"):
    return ref[key].astype(np.float32)


def _labels(ref):
    """The one-hot labels of a conditional config, None for the unconditional ones (shape [4, 0])."""
    return ref["labels"].astype(np.float32) if ref["labels"].shape[1] else None


def _truncated(ref, Gs, row):
    psi, cutoff = ref["trunc_psi_cutoff"][row]
    return Gs(_z(ref), truncation_psi=float(psi), truncation_cutoff=int(cutoff), randomize_noise=False,
              return_dlatents=True, labels=_labels(ref))


def _mixed_dlatents(ref, Gs):
    labels = _labels(ref)
    return Gs.mix(Gs.mapping(_z(ref), labels), Gs.mapping(_z(ref, "z_b"), labels), int(ref["mix_cutoff"]))


def _with_lod(networks_, value, run):
    for network in networks_:
        network.lod.assign(value)
    try:
        return run()
    finally:
        for network in networks_:
            network.lod.assign(0.0)


def _images_lod(ref, G, D, Gs):
    return np.stack([
        nchw(_with_lod([Gs], lod, lambda: Gs(_z(ref), truncation_psi=1, randomize_noise=False,
                                             labels=_labels(ref))))
        for lod in ref["lod_values"]
    ])


def _scores_lod(ref, G, D, Gs):
    return np.stack([
        np.asarray(_with_lod([D], lod, lambda: D(nhwc(images), _labels(ref))))
        for lod, images in zip(ref["lod_values"], ref["images_lod"], strict=True)
    ])


def _scores(images_key):
    return lambda ref, G, D, Gs: D(nhwc(ref[images_key]), _labels(ref))


# key -> (our value as a function of (ref, G, D, Gs), tolerance)
PARITY = {
    "dlatents": (lambda ref, G, D, Gs: Gs.mapping(_z(ref), _labels(ref)), LATENT_ATOL),
    "dlatents_b": (lambda ref, G, D, Gs: Gs.mapping(_z(ref, "z_b"), _labels(ref)), LATENT_ATOL),
    "dlatent_avg": (lambda ref, G, D, Gs: Gs.w_avg, LATENT_ATOL),
    "images_psi1": (lambda ref, G, D, Gs: nchw(Gs(_z(ref), truncation_psi=1, randomize_noise=False,
                                                  labels=_labels(ref))), IMAGE_ATOL),
    "images_psi07_cut8": (lambda ref, G, D, Gs: nchw(_truncated(ref, Gs, 0)[0]), IMAGE_ATOL),
    "dlatents_psi07_cut8": (lambda ref, G, D, Gs: _truncated(ref, Gs, 0)[1], LATENT_ATOL),
    "images_psi07_cut3": (lambda ref, G, D, Gs: nchw(_truncated(ref, Gs, 1)[0]), IMAGE_ATOL),
    "dlatents_psi07_cut3": (lambda ref, G, D, Gs: _truncated(ref, Gs, 1)[1], LATENT_ATOL),
    "dlatents_mix": (lambda ref, G, D, Gs: _mixed_dlatents(ref, Gs), LATENT_ATOL),
    "images_mix": (lambda ref, G, D, Gs: nchw(Gs.synthesis(_mixed_dlatents(ref, Gs), randomize_noise=False)),
                   IMAGE_ATOL),
    "scores_psi1": (_scores("images_psi1"), LATENT_ATOL),
    "scores_psi07_cut8": (_scores("images_psi07_cut8"), LATENT_ATOL),
    "scores_psi07_cut3": (_scores("images_psi07_cut3"), LATENT_ATOL),
    "scores_mix": (_scores("images_mix"), LATENT_ATOL),
    "images_lod": (_images_lod, IMAGE_ATOL),
    "scores_lod": (_scores_lod, LATENT_ATOL),
}
# Keys that are inputs of the checks above (checked in test_reference_inputs).
INPUTS = {"z", "z_b", "labels", "lod_values", "mix_cutoff", "trunc_psi_cutoff"}


def test_every_reference_key_is_checked(official_config):
    _, ref = official_config
    assert not set(PARITY) & INPUTS
    assert set(PARITY) | INPUTS == set(ref), (
        f"unchecked keys: {sorted(set(ref) - set(PARITY) - INPUTS)}; "
        f"keys not in the npz: {sorted(set(PARITY) | INPUTS - set(ref))}")


def test_reference_inputs(official_config):
    path, ref = official_config
    G, D, Gs = official_networks(path.name)
    assert ref["z"].shape == ref["z_b"].shape == (4, Gs.latent_size)
    if Gs.label_size:  # one-hot rows of the conditional config's 3 classes
        assert ref["labels"].shape == (4, 3) and set(ref["labels"].sum(axis=1)) == {1.0}
    else:
        assert ref["labels"].shape == (4, 0)  # unconditional networks take no labels
    assert int(ref["mix_cutoff"]) == 3
    np.testing.assert_allclose(ref["trunc_psi_cutoff"], [[0.7, 8], [0.7, 3]])
    np.testing.assert_allclose(ref["lod_values"], [0.5, 1.0, 1.5])


@pytest.mark.parametrize("key", sorted(PARITY))
def test_parity(official_config, key):
    path, ref = official_config
    G, D, Gs = official_networks(path.name)
    ours, atol = PARITY[key]
    ours = np.asarray(ours(ref, G, D, Gs))
    assert ours.shape == ref[key].shape
    np.testing.assert_allclose(ours, ref[key], rtol=0, atol=atol, err_msg=f"{path.name}: {key}")


def test_truncation_defaults_match_official(official_config):
    """An official ``Gs.run(z, None)`` truncates with psi 0.7, cutoff 8: so does a plain call."""
    path, ref = official_config
    G, D, Gs = official_networks(path.name)
    images, dlatents = Gs(_z(ref), randomize_noise=False, return_dlatents=True, labels=_labels(ref))
    np.testing.assert_allclose(np.asarray(dlatents), ref["dlatents_psi07_cut8"], rtol=0, atol=LATENT_ATOL)
    np.testing.assert_allclose(nchw(images), ref["images_psi07_cut8"], rtol=0, atol=IMAGE_ATOL)


def test_imported_lod_is_zero(official_config):
    """Every lod in the reference pickles is 0 (and the lod parity checks restore it)."""
    path, _ = official_config
    for network in official_networks(path.name):
        assert float(network.lod) == 0.0


# ------------------------------------------------------------------------------------------------
# The importer


@pytest.mark.parametrize("suffix, latent, mapping_layers, fused", [
    ("", 32, 8, False),
    ("_fused", 48, 4, True),
])
def test_importer_reads_static_kwargs(suffix, latent, mapping_layers, fused):
    G, D, Gs = official_networks(f"network-small{suffix}.pkl")
    for generator in (G, Gs):
        assert generator.resolution == 16 and generator.num_layers == 6
        assert generator.latent_size == generator.dlatent_size == latent
        assert generator.mapping.mapping_layers == len(generator.mapping.dense_layers) == mapping_layers
        assert ([int(layer.weight.shape[0]) for layer in generator.mapping.dense_layers]
                == [latent] * mapping_layers)
        assert (generator.synthesis.fmap_base, generator.synthesis.fmap_max) == (256, 32)  # not 8192, 512
        assert [block.filters for block in generator.synthesis.blocks] == [32, 32, 32]
        assert [block.fused for block in generator.synthesis.blocks[1:]] == [fused, fused]
        assert (generator.truncation_psi, generator.truncation_cutoff) == (0.7, 8)  # official defaults
    assert D.resolution == 16 and (D.fmap_base, D.fmap_max) == (256, 32)
    assert [block.fused for block in D.blocks[:-1]] == [fused, fused]
    assert D.blocks[-1].mbstd_group_size == 4


def test_g_and_gs_are_distinct_networks(official_config):
    path, ref = official_config
    G, D, Gs = official_networks(path.name)
    g_state, d_state, gs_state = read_official_pickle(path)
    differing = 0
    for network, state in ((G, g_state), (Gs, gs_state)):
        values = state.all_variables()
        for name, (variable, convert) in generator_variable_map(network).items():
            np.testing.assert_array_equal(np.asarray(variable), convert(values[name]), err_msg=name)
    for name, (variable, convert) in discriminator_variable_map(D).items():
        np.testing.assert_array_equal(np.asarray(variable), convert(d_state.all_variables()[name]),
                                      err_msg=name)
    for g_var, gs_var in zip(G.trainable_weights, Gs.trainable_weights, strict=True):
        g_value, gs_value = np.asarray(g_var), np.asarray(gs_var)
        assert g_value.shape == gs_value.shape
        differing += not np.array_equal(g_value, gs_value)
        assert np.abs(g_value - gs_value).max() <= 0.2 * np.abs(gs_value).max() + 1e-6  # slightly
    assert differing > 0
    # All reference images come from Gs: G's images are measurably different.
    images = nchw(G(_z(ref), truncation_psi=1, randomize_noise=False, labels=_labels(ref)))
    assert np.abs(images - ref["images_psi1"]).max() > 100 * IMAGE_ATOL


# Writing official-format pickles: a stand-in for dnnlib.tflib.network.Network.


@pytest.fixture
def dnnlib_network(monkeypatch):
    """A ``dnnlib.tflib.network.Network`` class, importable while the test runs, that pickles its state."""

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

        def __setstate__(self, state):
            self.state = state

    Network.__module__ = "dnnlib.tflib.network"
    Network.__qualname__ = Network.__name__ = "Network"
    names = ["dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"]
    modules = {name: types.ModuleType(name) for name in names}
    modules["dnnlib"].tflib = modules["dnnlib.tflib"]
    modules["dnnlib.tflib"].network = modules["dnnlib.tflib.network"]
    modules["dnnlib.tflib.network"].Network = Network
    for name in names:
        monkeypatch.setitem(sys.modules, name, modules[name])
    return Network


def to_network(Network, state):
    """A pickleable official-format Network from a :class:`NetworkState`."""
    return Network({
        "version": 3, "name": state.name, "static_kwargs": dict(state.static_kwargs),
        "components": {key: to_network(Network, value) for key, value in state.components.items()},
        "build_module_src": "# not included", "build_func_name": state.build_func_name,
        "variables": list(state.variables.items()),
    })


def write_snapshot(path, Network, states):
    with open(path, "wb") as file:
        pickle.dump(tuple(to_network(Network, state) for state in states), file, protocol=5)
    return path


@pytest.fixture
def reference_states():
    return read_official_pickle(official_ref_path("network-small.pkl"))


def test_rewritten_snapshot_loads(tmp_path, dnnlib_network, reference_states):
    """The pickles the tests below craft are valid official snapshots unless altered."""
    path = write_snapshot(tmp_path / "copy.pkl", dnnlib_network, reference_states)
    loaded = load_official_pickle(path)
    for ours, reference in zip(loaded, official_networks("network-small.pkl"), strict=True):
        assert len(ours.weights) == len(reference.weights)
        for a, b in zip(ours.weights, reference.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_stylegan2_pickle_is_refused(tmp_path, dnnlib_network, reference_states):
    G, D, Gs = reference_states
    G.build_func_name = Gs.build_func_name = "G_main"
    D.build_func_name = "D_stylegan2"
    G.components["synthesis"].build_func_name = Gs.components["synthesis"].build_func_name = \
        "G_synthesis_stylegan2"
    path = write_snapshot(tmp_path / "stylegan2.pkl", dnnlib_network, (G, D, Gs))
    with pytest.raises(OfficialPickleError, match="StyleGAN2"):
        load_official_pickle(path)


@pytest.mark.parametrize("network_index", [0, 1, 2], ids=["G", "D", "Gs"])
def test_a_label_size_its_variables_do_not_have_is_refused(tmp_path, dnnlib_network, reference_states,
                                                          network_index):
    reference_states[network_index].static_kwargs["label_size"] = 10
    path = write_snapshot(tmp_path / "conditional.pkl", dnnlib_network, reference_states)
    expected = (r"4x4/Dense1/weight has shape \[32, 1\], the network expects \[32, 10\]" if network_index == 1
                else r"missing: \['G_mapping/LabelConcat/weight'\]")
    with pytest.raises(OfficialPickleError, match=expected):
        load_official_pickle(path)


def test_a_conditional_network_needs_labels():
    G, D, Gs = official_networks("network-small_cond.pkl")
    assert G.label_size == Gs.label_size == D.label_size == 3
    z = np.zeros((2, Gs.latent_size), np.float32)
    with pytest.raises(ValueError, match=r"class-conditional \(3 classes\): pass labels \[N, 3\]"):
        Gs(z)
    with pytest.raises(ValueError, match=r"labels must have shape \[N, 3\], got \(2, 2\)"):
        D(np.zeros((2, 16, 16, 3), np.float32), np.eye(2, dtype=np.float32))


@pytest.mark.parametrize("length", ["half", "all_but_one", "empty"])
def test_truncated_pickle_is_refused(tmp_path, length):
    data = official_ref_path("network-small.pkl").read_bytes()
    cut = {"half": len(data) // 2, "all_but_one": len(data) - 1, "empty": 0}[length]
    path = tmp_path / "truncated.pkl"
    path.write_bytes(data[:cut])
    with pytest.raises(OfficialPickleError, match="truncated or corrupt"):
        load_official_pickle(path)


@pytest.mark.parametrize("obj, message", [
    ({"G": 1, "D": 2, "Gs": 3}, "expected a \\(G, D, Gs\\) tuple, found dict"),
    ([1, 2, 3], "expected a \\(G, D, Gs\\) tuple, found list"),
    ((1.0, 2.0), "expected a \\(G, D, Gs\\) tuple, found tuple"),
    (np.zeros(3, np.float32), "found ndarray"),
    ((1, 2, 3), "is a int, not a dnnlib Network"),
])
def test_unrelated_pickle_is_refused(tmp_path, obj, message):
    path = tmp_path / "unrelated.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(OfficialPickleError, match=message):
        load_official_pickle(path)


class _Payload:
    """Unpickling calls os.system(command)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["top_level", "inside_network_state"])
def test_malicious_pickle_is_refused_without_running(tmp_path, dnnlib_network, request, where):
    marker = tmp_path / "pwned"
    payload = _Payload(f"touch {shlex.quote(str(marker))}")
    if where == "top_level":
        data = pickle.dumps(payload)
    else:
        reference_states = request.getfixturevalue("reference_states")
        G, D, Gs = (to_network(dnnlib_network, state) for state in reference_states)
        G.state["variables"].append(("evil", payload))
        data = pickle.dumps((G, D, Gs), protocol=5)
    path = tmp_path / "malicious.pkl"
    path.write_bytes(data)
    with pytest.raises(OfficialPickleError) as error:
        load_official_pickle(path)
    assert not marker.exists(), "the payload ran"
    assert re.search(r"refusing to load \w+\.system", str(error.value)), str(error.value)
    # The payload is live: an ordinary unpickler would have run it.
    pickle.loads(data)
    assert marker.exists()
