"""Training checkpoints: where they live, which are complete, and restoring the newest readable one.

A checkpoint ``checkpoints/ckpt-N`` (N = images shown) holds G, D, Gs, both optimizers and the
counters. A damaged one (a truncated or missing file, a checksum mismatch) is never restored from:
:func:`first_readable` skips it with a message naming it and the reason.
"""

import glob
import os
import re

import tensorflow as tf

from tf_stylegan.formats.snapshot import CHECKPOINT_DIR

__all__ = ["CHECKPOINT_DIR", "CheckpointError", "RunCheckpoints", "checkpoint_directory",
           "checkpoint_prefixes", "checkpoint_problem", "first_readable", "is_chief"]


class CheckpointError(RuntimeError):
    """No checkpoint to resume from reads completely."""


def checkpoint_prefixes(folder):
    """The checkpoint prefixes in ``folder`` (``ckpt-N``, whether their files are complete or not),
    newest first."""
    numbers = set()
    for path in glob.glob(os.path.join(glob.escape(folder), "ckpt-*")):
        match = re.fullmatch(r"ckpt-(\d+)\.(index|data-\d+-of-\d+)", os.path.basename(path))
        if match:
            numbers.add(int(match.group(1)))
    return [os.path.join(folder, f"ckpt-{number}") for number in sorted(numbers, reverse=True)]


def checkpoint_problem(prefix):
    """Why the checkpoint ``prefix`` cannot be restored (a missing or truncated file, a checksum
    mismatch), or None when every saved tensor reads completely."""
    if not os.path.isfile(f"{prefix}.index"):
        return f"{os.path.basename(prefix)}.index is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # the reader raises OpError, IndexError, ... on damaged files
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {message}"[:300]
    return None


def first_readable(checkpoint, candidates, print_fn=print):
    """Restores ``checkpoint`` (a ``tf.train.Checkpoint``) from the first of the prefixes ``candidates``
    that reads completely and returns it; CheckpointError naming each damaged one when none does.
    Nothing is assigned from a damaged checkpoint."""
    skipped = []
    for candidate in candidates:
        problem = checkpoint_problem(candidate)
        if problem is None:
            checkpoint.read(candidate).assert_existing_objects_matched()
            return candidate
        print_fn(f"skipping damaged checkpoint {candidate}: {problem}")
        skipped.append(f"{os.path.basename(candidate)} ({problem})")
    raise CheckpointError(f"no checkpoint in {os.path.dirname(candidates[0])} reads completely: "
                          f"{'; '.join(skipped)}. Start a new run, or restore the files from a copy.")


def is_chief(strategy):
    """True on the one process of ``strategy`` that writes checkpoints, samples and logs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster or resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def checkpoint_directory(run_dir, strategy):
    """The run's checkpoint folder; non-chief workers write to a private one they delete."""
    if is_chief(strategy):
        return os.path.join(run_dir, CHECKPOINT_DIR)
    return os.path.join(run_dir, f".worker{strategy.cluster_resolver.task_id}-checkpoints")


class RunCheckpoints:
    """A run's checkpoints of ``objects`` (a ``tf.train.Checkpoint``'s keyword arguments) in its checkpoint
    folder, the newest ``max_to_keep`` kept; non-chief workers write a private copy and delete it."""

    def __init__(self, run_dir, strategy, objects, max_to_keep=3, print_fn=print):
        self.run_dir, self.strategy, self.print = run_dir, strategy, print_fn
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.directory = checkpoint_directory(run_dir, strategy)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=max_to_keep)

    def restore(self, path=None):
        """Restores from ``path``, or from the run's newest checkpoint that reads completely; returns the
        path, or None when the run has none. A damaged one is skipped with a message naming it and the
        reason; CheckpointError when ``path`` or every checkpoint is damaged (nothing assigned from it)."""
        if path is not None:
            problem = checkpoint_problem(path)
            if problem:
                raise CheckpointError(f"checkpoint {path} cannot be read: {problem}")
            candidates = [path]
        else:
            candidates = checkpoint_prefixes(os.path.join(self.run_dir, CHECKPOINT_DIR))
            if not candidates:
                return None
        return first_readable(self.checkpoint, candidates, self.print)

    def save(self, number):
        """Writes ``ckpt-<number>`` (atomically: the index only names complete checkpoints); its path."""
        path = self.manager.save(checkpoint_number=number)
        if not is_chief(self.strategy):
            tf.io.gfile.rmtree(self.directory)
        return path
