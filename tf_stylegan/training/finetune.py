"""Fine-tuning (transfer learning): a run that starts from trained networks instead of random ones, and
Freeze-D (Mo et al. 2020, "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs"): the
discriminator's highest-resolution blocks kept fixed.

The networks come from an official pickle, a snapshot folder or a training run directory (its latest
checkpoint); every variable of G, D and Gs is copied, ``w_avg`` and the stored noise maps included.
"""

import os

from tf_stylegan.formats.official import load_official_pickle
from tf_stylegan.formats.snapshot import CONFIG_FILE, load_networks, variable_tree

# Settings that do not shape a variable: never reported as the cause of a mismatch.
_UNSHAPED = {"name", "dtype", "trainable", "truncation_psi", "truncation_cutoff", "style_mixing_prob",
             "dlatent_avg_beta", "randomize_noise"}


class InitError(ValueError):
    """The networks named by ``init_from`` cannot start this run."""


def read_networks(path):
    """(G, D, Gs) from an official pickle, a snapshot folder or a training run directory."""
    if os.path.isfile(path):
        return load_official_pickle(path)
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        networks = load_networks(path)
        missing = [name for name, network in zip(("G", "D", "Gs"), networks) if network is None]
        if missing:
            raise InitError(f"init_from {path}: it holds no {' / '.join(missing)}; fine-tuning needs G, D "
                            "and Gs (a snapshot written by training or by convert-official, or a run "
                            "directory)")
        return tuple(networks)
    if os.path.isfile(os.path.join(path, "saved_model.pb")) or os.path.isdir(os.path.join(path, "1")):
        raise InitError(f"init_from {path}: an export holds only the generator; fine-tuning needs D too. "
                        "Give the run directory or snapshot it was exported from, or the official pickle")
    if not os.path.exists(path):
        raise InitError(f"init_from {path}: no such file or folder")
    raise InitError(f"init_from {path}: neither an official pickle, a snapshot folder ({CONFIG_FILE}) nor a "
                    "training run directory")


def copy_network(source, target, what, path):
    """Assigns every variable of ``source`` to ``target``; InitError naming the settings that differ when
    their variables do not correspond one to one with equal shapes."""
    if source.resolution != target.resolution:
        size, data = source.resolution, target.resolution
        raise InitError(
            f"init_from {path} holds {size}x{size} networks and the dataset is {data}x{data}: train on "
            f"{size}x{size} images (train.resolution = {size} resizes an image folder; or tf-stylegan "
            f"dataset create IMAGES OUT --resolution {size}), or start from a {data}x{data} network")
    sources, targets = variable_tree(source), variable_tree(target)
    mismatched = sorted(set(sources) ^ set(targets)) + sorted(
        key for key in set(sources) & set(targets) if sources[key].shape != targets[key].shape)
    if mismatched:
        given, configured = source.get_config(), target.get_config()
        differences = [f"{key} {given.get(key)!r} there, {configured.get(key)!r} here"
                       for key in sorted((set(given) | set(configured)) - _UNSHAPED)
                       if given.get(key) != configured.get(key)]
        raise InitError(f"init_from {path}: its {what} does not fit the configured one ("
                        + ("; ".join(differences) or f"variables {', '.join(mismatched[:4])}")
                        + f"): bind {what}.* as the given network has them")
    for key, variable in targets.items():
        variable.assign(sources[key])


def start_from(path, G, D, Gs, first_lod=0.0):
    """Copies the networks at ``path`` into the built ``G``, ``D`` and ``Gs`` (Gs from the given Gs);
    ``first_lod``, the schedule's first level of detail, must be 0 (the full resolution from the start)."""
    if first_lod != 0:
        raise ValueError(f"init_from: fine-tuning trains at the full resolution from the first step, but "
                         f"the schedule starts at lod {first_lod:g}: set "
                         f"training_schedule.lod_initial_resolution to {G.resolution}")
    given = read_networks(path)
    for source, target, what in zip(given, (G, D, Gs), ("Generator", "Discriminator", "Generator")):
        copy_network(source, target, what, path)


def freeze_discriminator_blocks(D, count):
    """Makes D's ``count`` highest-resolution blocks, and the from-RGB layers that feed them, untrainable
    (Freeze-D); the 4x4 block with the output layer always trains."""
    if not 0 <= count < len(D.blocks):
        raise ValueError(f"freeze_d_layers={count}: the {D.resolution}x{D.resolution} discriminator has "
                         f"{len(D.blocks)} blocks; freeze 0 to {len(D.blocks) - 1} (its 4x4 output block "
                         "trains)")
    for block, from_rgb in zip(D.blocks[:count], D.from_rgb[:count]):
        block.trainable = False
        from_rgb.trainable = False
