"""The project's saved format for networks: a folder that training resumes from and export reads.

```
OUT/
  networks.json                     format, version, each network's Keras config, metadata
  weights.index, weights.data-*     a tf.train.Checkpoint of every variable (RNG states too)
```

Each network's variables are checkpointed under their Keras path relative to the network
(``synthesis/block8/conv1/weight``), which does not depend on instance names. A snapshot is
written into a temporary folder beside ``OUT`` and renamed into place, so a crash never
leaves a half-written snapshot under the final name.
"""

import json
import os
import shutil
import tempfile
from collections import namedtuple

import keras
import tensorflow as tf

from tf_stylegan.files import replace_folder, write_atomically
from tf_stylegan.nn import discriminator, generator  # noqa: F401  (registers the classes)

FORMAT = "tf_stylegan.networks"
VERSION = 1
CONFIG_FILE = "networks.json"
WEIGHTS_PREFIX = "weights"
CHECKPOINT_DIR = "checkpoints"  # a training run directory's checkpoints
NETWORK_NAMES = ("G", "D", "Gs")

Networks = namedtuple("Networks", NETWORK_NAMES)


class SnapshotError(ValueError):
    """A folder that is not a readable tf_stylegan network snapshot."""


def variable_tree(network):
    """{path relative to the network: variable} for every variable of a built network."""
    tree = {}
    for variable in network.variables:
        key = variable.path.split("/", 1)[1]
        if key in tree:
            raise ValueError(f"two variables of {network.name} share the path {key!r}")
        tree[key] = variable
    return tree


def checkpoint_of(networks):
    """A ``tf.train.Checkpoint`` over the variables of ``{name: network}`` (None entries skipped)."""
    return tf.train.Checkpoint(**{name: variable_tree(net)
                                  for name, net in networks.items() if net is not None})


def _config(networks, metadata):
    return {
        "format": FORMAT, "version": VERSION, "metadata": metadata or {},
        "networks": {name: keras.saving.serialize_keras_object(net) for name, net in networks.items()},
    }


def write_config(folder, networks, metadata=None):
    """Writes ``networks.json`` for ``{name: network}`` into ``folder`` (atomically, by rename).

    A training run directory holds one next to its ``checkpoints/``, which makes the run
    loadable with :func:`load_networks`.
    """
    write_atomically(os.path.join(folder, CONFIG_FILE), json.dumps(_config(networks, metadata), indent=1))


def save_networks(path, G=None, D=None, Gs=None, metadata=None, overwrite=False):
    """Writes the given built networks to the folder ``path`` atomically; returns ``path``."""
    networks = {name: net for name, net in zip(NETWORK_NAMES, (G, D, Gs)) if net is not None}
    if not networks:
        raise ValueError("save_networks needs at least one network")
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        write_config(staging, networks, metadata)
        checkpoint_of(networks).write(os.path.join(staging, WEIGHTS_PREFIX))
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_snapshot_config(path):
    """The parsed ``networks.json`` of a snapshot folder, validated."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise SnapshotError(f"{path} is not a tf_stylegan network snapshot: no {CONFIG_FILE}")
    try:
        with open(config_path) as file:
            config = json.load(file)
    except json.JSONDecodeError as error:
        raise SnapshotError(f"{config_path} is corrupt: {error}") from None
    if config.get("format") != FORMAT:
        raise SnapshotError(f"{config_path} is not a tf_stylegan network snapshot "
                            f"(format {config.get('format')!r})")
    if config.get("version", 0) > VERSION:
        raise SnapshotError(f"{config_path} has format version {config['version']}; this tf_stylegan reads "
                            f"up to {VERSION}: upgrade tf_stylegan")
    return config


def build_networks(config):
    """Built, freshly initialised networks from a snapshot's ``networks.json`` content."""
    built = {}
    for name in NETWORK_NAMES:
        if name in config["networks"]:
            network = keras.saving.deserialize_keras_object(config["networks"][name])
            if not network.built:  # Keras builds it from the saved build config when it has one
                network.build()
            built[name] = network
    return built


def load_networks(path, weights_prefix=None):
    """Reads a snapshot folder or a training run directory: ``Networks(G, D, Gs)`` (None for
    networks it does not hold).

    A run directory gives its latest checkpoint. ``weights_prefix`` reads the variables from
    another checkpoint of the same networks instead.
    """
    config = read_snapshot_config(path)
    built = build_networks(config)
    prefix = weights_prefix or _weights_prefix(path)
    if not tf.io.gfile.exists(prefix + ".index"):
        raise SnapshotError(f"{path}: the weights checkpoint {prefix}.index is missing")
    status = checkpoint_of(built).read(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise SnapshotError(f"{prefix} does not hold every variable of the networks in {path}: "
                            f"{error}") from None
    status.expect_partial()  # a training checkpoint also holds optimizer state
    return Networks(*(built.get(name) for name in NETWORK_NAMES))


def _weights_prefix(path):
    """The snapshot's own weights, or a run directory's latest training checkpoint."""
    own = os.path.join(path, WEIGHTS_PREFIX)
    if tf.io.gfile.exists(own + ".index"):
        return own
    latest = tf.train.latest_checkpoint(os.path.join(path, CHECKPOINT_DIR))
    return latest or own
