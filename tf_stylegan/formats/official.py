"""Import of the official NVlabs StyleGAN (v1) network pickles, without TF1 or dnnlib.

An official snapshot is ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.Network`` objects
whose state holds ``static_kwargs``, ``components`` and ``variables`` (own variables, in
creation order) next to the embedded network source. A restricted unpickler maps the
dnnlib class to a plain stub and admits only the NumPy array reconstructors, so no code
from the file ever runs; the embedded source is never executed. Every size comes from
``static_kwargs`` (a missing key means the official default).
"""

import io
import pickle
from dataclasses import dataclass, field

import numpy as np

from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.nn.layers import constructor_arguments

# The globals an official pickle may reference: NumPy's array and scalar reconstructors.
_NUMPY_GLOBALS = {
    (module, name)
    for package in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{package}.multiarray", "_reconstruct"),
        (f"{package}.multiarray", "scalar"),
        (f"{package}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype")}

# static_kwargs that select behaviour we reproduce identically whatever their value.
_IGNORED_KWARGS = {"structure", "randomize_noise", "is_template_graph", "force_clean_graph",
                   "truncation_psi_val", "truncation_cutoff_val", "is_training", "is_validation"}

_GENERATOR_KWARGS = constructor_arguments(Generator) - {"seed"}
_DISCRIMINATOR_KWARGS = constructor_arguments(Discriminator)
# Generator-only kwargs that the official training loop also hands to D, which ignores them.
_IGNORED_BY_DISCRIMINATOR = _GENERATOR_KWARGS - _DISCRIMINATOR_KWARGS

_STYLEGAN2_FUNCS = {"G_main", "D_stylegan2", "G_synthesis_stylegan2", "G_mapping"}


class OfficialPickleError(ValueError):
    """The file is not an official StyleGAN (v1) network pickle this importer can read."""


class _NetworkStub:
    """Stands in for ``dnnlib.tflib.network.Network``: keeps the pickled state, runs nothing."""

    def __setstate__(self, state):
        self.state = state


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("dnnlib.") and name == "Network":
            return _NetworkStub
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise OfficialPickleError(
            f"refusing to load {module}.{name}: an official StyleGAN pickle references only "
            "dnnlib Network objects and NumPy arrays"
        )


@dataclass
class NetworkState:
    """One official network as pickled: its variables by local name, and its components."""

    name: str
    build_func_name: str
    static_kwargs: dict
    variables: dict
    components: dict = field(default_factory=dict)

    def all_variables(self):
        """Own and component variables, named as the official ``Network.vars`` names them."""
        result = dict(self.variables)
        for component in self.components.values():
            for local_name, value in component.all_variables().items():
                result[f"{component.name}/{local_name}"] = value
        return result


def _network_state(stub, where):
    state = getattr(stub, "state", None)
    if not isinstance(stub, _NetworkStub) or not isinstance(state, dict):
        raise OfficialPickleError(f"{where} is a {type(stub).__name__}, not a dnnlib Network")
    for key in ("name", "build_func_name", "static_kwargs", "variables"):
        if key not in state:
            raise OfficialPickleError(f"{where} has no {key!r} in its state: not an official network")
    components = state.get("components") or {}
    return NetworkState(
        name=state["name"],
        build_func_name=state["build_func_name"],
        static_kwargs=dict(state["static_kwargs"]),
        variables={name: np.asarray(value) for name, value in state["variables"]},
        components={key: _network_state(value, f"{where}.{key}") for key, value in components.items()},
    )


def read_official_pickle(path):
    """Reads ``path`` into three :class:`NetworkState` (G, D, Gs) without running any of its code."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        networks = _RestrictedUnpickler(io.BytesIO(data)).load()
    except OfficialPickleError as error:
        raise OfficialPickleError(f"{path}: {error}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise OfficialPickleError(f"{path}: truncated or corrupt pickle "
                                  f"({type(error).__name__}: {error})") from None
    if not (isinstance(networks, tuple) and len(networks) == 3):
        raise OfficialPickleError(
            f"{path}: not an official StyleGAN snapshot: expected a (G, D, Gs) tuple, "
            f"found {type(networks).__name__}"
        )
    states = [_network_state(net, f"{path}[{i}]") for i, net in enumerate(networks)]
    funcs = {state.build_func_name for state in states}
    if funcs & _STYLEGAN2_FUNCS:
        raise OfficialPickleError(
            f"{path}: this is a StyleGAN2 pickle (build functions {sorted(funcs)}); "
            "tf_stylegan imports StyleGAN v1 networks (G_style, D_basic) only"
        )
    expected = ["G_style", "D_basic", "G_style"]
    if [state.build_func_name for state in states] != expected:
        raise OfficialPickleError(
            f"{path}: expected networks built by {expected}, found {[s.build_func_name for s in states]}"
        )
    return tuple(states)


def _network_kwargs(static_kwargs, accepted, ignored, what):
    kwargs = {}
    for key, value in static_kwargs.items():
        if key in accepted:
            kwargs[key] = list(value) if isinstance(value, tuple) else value
        elif key == "dtype":
            if value != "float32":
                raise OfficialPickleError(f"{what} has dtype {value!r}; only float32 networks are supported")
        elif key not in ignored and key not in _IGNORED_KWARGS:
            raise OfficialPickleError(f"{what} has static_kwargs[{key!r}] = {value!r}, which tf_stylegan "
                                      "does not know how to reproduce")
    return kwargs


def generator_variable_map(generator):
    """Official variable name (as in ``Gs.vars``) -> (our variable, converter of the official value)."""
    nchw_to_nhwc = lambda value: np.transpose(value, [0, 2, 3, 1])
    same = lambda value: value
    synthesis, mapping = generator.synthesis, generator.mapping
    R = synthesis.resolution_log2
    result = {"dlatent_avg": (generator.w_avg, same), "lod": (synthesis.lod, same)}
    if mapping.label_size:
        result["G_mapping/LabelConcat/weight"] = (mapping.label_weight, same)
    for i, layer in enumerate(mapping.dense_layers):
        result[f"G_mapping/Dense{i}/weight"] = (layer.weight, same)
        result[f"G_mapping/Dense{i}/bias"] = (layer.bias, same)
    for index, (block, to_rgb) in enumerate(zip(synthesis.blocks, synthesis.to_rgb)):
        size = block.resolution
        prefix = f"G_synthesis/{size}x{size}"
        if size == 4:
            first = "Const" if block.const is not None else "Dense"
            scopes = [(first, None, block.epilogue0), ("Conv", block.conv1, block.epilogue1)]
            if block.const is not None:
                result[f"{prefix}/Const/const"] = (block.const.const, nchw_to_nhwc)
            else:
                result[f"{prefix}/Dense/weight"] = (block.dense.weight, same)
        else:
            scopes = [("Conv0_up", block.conv0, block.epilogue0), ("Conv1", block.conv1, block.epilogue1)]
        for offset, (scope, conv, epilogue) in enumerate(scopes):
            layer_index = 2 * index + offset
            if conv is not None:
                result[f"{prefix}/{scope}/weight"] = (conv.weight, same)
            result[f"{prefix}/{scope}/bias"] = (epilogue.bias, same)
            if epilogue.noise is not None:
                result[f"{prefix}/{scope}/Noise/weight"] = (epilogue.noise.strength, same)
                result[f"G_synthesis/noise{layer_index}"] = (epilogue.noise.noise_map, nchw_to_nhwc)
            if epilogue.adain.style is not None:
                result[f"{prefix}/{scope}/StyleMod/weight"] = (epilogue.adain.style.weight, same)
                result[f"{prefix}/{scope}/StyleMod/bias"] = (epilogue.adain.style.bias, same)
        lod_name = f"G_synthesis/ToRGB_lod{R - (index + 2)}"
        result[f"{lod_name}/weight"] = (to_rgb.weight, same)
        result[f"{lod_name}/bias"] = (to_rgb.bias, same)
    return result


def discriminator_variable_map(discriminator):
    """Official variable name (as in ``D.vars``) -> (our variable, converter of the official value)."""
    same = lambda value: value
    result = {"lod": (discriminator.lod, same)}
    for level, (block, from_rgb) in enumerate(zip(discriminator.blocks, discriminator.from_rgb)):
        size = block.resolution
        result[f"FromRGB_lod{level}/weight"] = (from_rgb.weight, same)
        result[f"FromRGB_lod{level}/bias"] = (from_rgb.bias, same)
        layers = ([("Conv0", block.conv0), ("Conv1_down", block.conv1)] if size > 4 else
                  [("Conv", block.conv0), ("Dense0", block.dense0), ("Dense1", block.dense1)])
        for scope, layer in layers:
            result[f"{size}x{size}/{scope}/weight"] = (layer.weight, same)
            result[f"{size}x{size}/{scope}/bias"] = (layer.bias, same)
    return result


def _assign_all(values, variable_map, what):
    missing = sorted(set(variable_map) - set(values))
    unused = sorted(set(values) - set(variable_map))
    if missing or unused:
        raise OfficialPickleError(
            f"{what}: the pickle's variables do not match the network its static_kwargs describe "
            f"(missing: {missing[:5]}, unexpected: {unused[:5]})"
        )
    for name, (variable, convert) in variable_map.items():
        value = np.asarray(convert(values[name]), dtype=np.float32)
        if tuple(value.shape) != tuple(variable.shape):
            raise OfficialPickleError(
                f"{what}: variable {name} has shape {list(value.shape)}, the network expects "
                f"{list(variable.shape)}"
            )
        variable.assign(value)


def generator_from_state(state):
    """A built :class:`Generator` holding the weights of an official ``G_style`` network state."""
    kwargs = _network_kwargs(state.static_kwargs, _GENERATOR_KWARGS, {"dlatent_broadcast"}, state.name)
    generator = Generator(name=state.name, **kwargs)
    generator.build()
    values = state.all_variables()
    values.pop("G_synthesis/lod")  # overwritten by G_style's own lod on every official run
    _assign_all(values, generator_variable_map(generator), state.name)
    return generator


def discriminator_from_state(state):
    """A built :class:`Discriminator` holding the weights of an official ``D_basic`` network state."""
    kwargs = _network_kwargs(state.static_kwargs, _DISCRIMINATOR_KWARGS, _IGNORED_BY_DISCRIMINATOR,
                             state.name)
    discriminator = Discriminator(name=state.name, **kwargs)
    discriminator.build()
    _assign_all(state.all_variables(), discriminator_variable_map(discriminator), state.name)
    return discriminator


def load_official_pickle(path):
    """Reads an official StyleGAN snapshot into our networks: ``(G, D, Gs)``.

    Raises :class:`OfficialPickleError` naming the problem for a StyleGAN2, truncated,
    conditional or unrelated pickle.
    """
    g_state, d_state, gs_state = read_official_pickle(path)
    return generator_from_state(g_state), discriminator_from_state(d_state), generator_from_state(gs_state)
