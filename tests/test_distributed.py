"""Distributed training: MirroredStrategy over 2 logical CPUs against 1 replica, and
MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1.

Logical CPU devices must be configured before TensorFlow initialises, and a multi-worker cluster
needs one process per worker, so both tests run subprocesses (the pytest process has TF started).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import REPO, TINY, read_events, subprocess_env, variables_digest
from PIL import Image

from tf_stylegan.formats.snapshot import load_networks

TIMEOUT = 420


# ------------------------------------------------------------------ MirroredStrategy, 1 vs 2 replicas

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import gin
    import numpy as np
    from tf_stylegan.training import configurables

    out, name, gin_file = sys.argv[1], sys.argv[2], sys.argv[3]
    bindings = sys.argv[4:]
    result = {}
    for replicas in (1, 2):
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
        run_dir = os.path.join(out, f"{name}-{replicas}")
        gin.clear_config()
        configurables.parse([gin_file], bindings)
        lines = []
        trainer = configurables.train(run_dir=run_dir, strategy=strategy, print_fn=lines.append)
        gin.clear_config()
        arrays = {}
        for network in (trainer.G, trainer.D, trainer.Gs):
            for variable in network.variables:
                arrays[f"var:{variable.path}"] = np.asarray(variable)
        for optimizer, network in ((trainer.G_opt, trainer.G), (trainer.D_opt, trainer.D)):
            assert len(optimizer._velocities) == len(network.trainable_variables)
            for variable, m, v in zip(network.trainable_variables, optimizer._momentums, """
                                   """optimizer._velocities):
                arrays[f"m:{variable.path}"] = np.asarray(m)
                arrays[f"v:{variable.path}"] = np.asarray(v)
        np.savez(run_dir + ".npz", **arrays)
        # Every replica's copy of every variable (networks and optimizer state).
        copies = []
        for variable in [*trainer.G.variables, *trainer.D.variables, *trainer.Gs.variables,
                         *trainer.G_opt.variables, *trainer.D_opt.variables]:
            components = getattr(getattr(variable, "_value", variable), "values", None)
            if components is None:
                copies.append([variable.path, 0, False])
            else:
                values = [np.asarray(c) for c in components]
                copies.append([variable.path, len(values), """
                            """all(np.array_equal(values[0], c) for c in values[1:])])
        result[replicas] = dict(num_replicas=trainer.num_replicas, cur_nimg=int(trainer.cur_nimg.numpy()),
                                steps=int(trainer.step_count.numpy()), trace_counts=trainer.trace_counts,
                                copies=copies, lines=lines)
    with open(os.path.join(out, name + ".json"), "w") as file:
        json.dump(result, file)
""")

# One step per progress tick, so that every step's metrics reach the TensorBoard log.
PER_STEP = ["train.minibatch_repeats=1", "train.tick_kimg=0.008", "train.checkpoint_kimg=100",
            "train.image_snapshot_kimg=100"]
# 1 x 8 and 2 x 4 images form different minibatch-stddev groups: use groups of 1.
SAME_GROUPS = ["Discriminator.mbstd_group_size=1"]


def run_mirrored(tmp_path, name, bindings):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tmp_path), name, TINY, *bindings],
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-5000:]
    summary = json.loads((tmp_path / f"{name}.json").read_text())
    arrays = [dict(np.load(tmp_path / f"{name}-{replicas}.npz")) for replicas in (1, 2)]
    scalars = [read_events(tmp_path / f"{name}-{replicas}")[0] for replicas in (1, 2)]
    return summary, arrays, scalars


def check_replicas(summary, steps):
    one, two = summary["1"], summary["2"]
    assert one["num_replicas"] == 1 and two["num_replicas"] == 2
    assert "on 2 replica(s)" in two["lines"][0]
    assert one["cur_nimg"] == two["cur_nimg"] == 8 * steps and one["steps"] == two["steps"] == steps
    assert one["trace_counts"] == two["trace_counts"]
    assert all(count == 1 for count in two["trace_counts"].values()), two["trace_counts"]
    # Both replicas hold identical copies of every variable, optimizer state included.
    not_mirrored = [path for path, count, _ in two["copies"] if count != 2]
    assert not not_mirrored, f"not mirrored over 2 replicas: {not_mirrored}"
    differ = [path for path, _, same in two["copies"] if not same]
    assert not differ, f"replicas disagree on {differ}"


def check_losses(scalars, steps, rtol=1e-4):
    one, two = scalars
    tags = sorted(tag for tag in one if tag.startswith("Loss/"))
    assert {"Loss/D", "Loss/G"} <= set(tags) and sorted(t for t in two if t.startswith("Loss/")) == tags
    for tag in tags:
        assert sorted(one[tag]) == sorted(two[tag]) == [8 * (i + 1) for i in range(steps)], tag
        a = np.array([one[tag][s] for s in sorted(one[tag])])
        b = np.array([two[tag][s] for s in sorted(two[tag])])
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-5, err_msg=f"{tag} per step, 2 vs 1 replicas")


NOISE_FLOOR = 1e-6  # sqrt(Adam velocity) under which a parameter's gradient is float noise


def check_weights(arrays):
    """Trainables (G, D and Gs, Gs masked with G's optimizer state) whose Adam velocity is above the
    noise floor in either run agree within 1e-4; so do both Adam moments relative to the gradient scale,
    and every non-trainable float variable."""
    one, two = arrays
    assert sorted(one) == sorted(two)
    checked = masked = 0
    for key in sorted(one):
        if not key.startswith("var:") or one[key].dtype.kind != "f":
            continue
        path = key[4:]
        velocity = "v:" + path.replace("Gs/", "G/", 1) if path.startswith("Gs/") else "v:" + path
        if velocity not in one:  # non-trainable: lod, w_avg, noise maps
            np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=path)
            continue
        scale = np.sqrt(np.maximum(one[velocity], two[velocity]))
        mask = scale > NOISE_FLOOR
        checked += mask.sum()
        masked += mask.size - mask.sum()
        np.testing.assert_allclose(two[key][mask], one[key][mask], rtol=0, atol=1e-4, err_msg=path)
        if not path.startswith("Gs/"):
            for moment in ("m:", "v:"):
                a, b = one[moment + path], two[moment + path]
                if moment == "v:":
                    a, b = np.sqrt(a), np.sqrt(b)
                error = np.abs(a - b)[mask] / scale[mask]
                assert error.size == 0 or error.max() < 1e-3, (
                    f"{moment}{path}: relative error {error.max():.2e}")
    assert checked > 10000
    assert masked / (checked + masked) < 0.02, (
        f"{masked} of {checked + masked} elements under the noise floor")


@pytest.mark.slow
def test_two_mirrored_replicas_train_like_one(tmp_path):
    """The same global batch on 1 and on 2 replicas gives the same run up to float summation order.

    Both comparisons run with ``Generator.use_instance_norm=False``: StyleGAN's first epilogue
    normalises a nearly uniform map (the constant input, initialised to ones), which divides float
    noise by sqrt(1e-8) and, with Adam, makes 1- and 2-replica runs drift apart within a few steps
    even though every replica computes the right thing (oneDNN's kernels round a batch of 4 and one
    of 8 differently: with instance norm the losses differed by 3e-4 at the 4th step on one CPU,
    by 1.0e-3 on another).
    """
    steps = 12
    summary, arrays, scalars = run_mirrored(
        tmp_path, "conditioned", SAME_GROUPS + PER_STEP + [
            f"train.total_kimg={steps * 8 / 1000}", "Generator.use_instance_norm=False",
            "train.G_smoothing_kimg=0.01"])  # a Gs half-life of 10 images: Gs moves as much as G
    assert summary["2"]["trace_counts"] == {"4": 1, "8": 1}
    check_replicas(summary, steps)
    check_losses(scalars, steps)
    check_weights(arrays)
    lod = scalars[1]["Progress/lod"]
    assert lod[8] == 1.0 and lod[8 * steps] == 0.0 and any(0 < value < 1 for value in lod.values())

    # With adaptive augmentation on from the first step (p 0.5, adjusted every step from both replicas'
    # real scores), on a class-conditional dataset: each replica augments its own samples, with its
    # reals' labels and its own draws of G's labels, as the one replica does.
    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        (tmp_path / "classes" / name).mkdir(parents=True)
        for i in range(16):
            pixels = rng.randint(0, 256, (8, 8, 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / "classes" / name / f"{i}.png")
    summary, _, scalars = run_mirrored(tmp_path, "default", SAME_GROUPS + PER_STEP + [
        "train.total_kimg=0.032", "train.augment='ada'", "Augmentation.p=0.5", "Augmentation.interval=1",
        f"train.dataset='{tmp_path / 'classes'}'", "train.class_folders=True",
        "Generator.use_instance_norm=False"])
    check_replicas(summary, 4)
    check_losses(scalars, 4)
    p = [[run["Augment/p"][step] for step in sorted(run["Augment/p"])] for run in scalars]
    assert len(p[0]) == 4 and p[0] == pytest.approx(p[1]) and p[0] != [0.5] * 4


# ------------------------------------------------------------------ MultiWorkerMirroredStrategy

WORKER_SCRIPT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    from tf_stylegan.training import configurables

    tests_dir, run_dir, gin_file = sys.argv[1:4]
    configurables.parse([gin_file], sys.argv[4:])
    trainer = configurables.train(run_dir=run_dir)
    sys.path.insert(0, tests_dir)
    from helpers import variables_digest

    print("RESULT", trainer.num_replicas, int(trainer.cur_nimg.numpy()), trainer.is_chief,
          isinstance(trainer.strategy, tf.distribute.MultiWorkerMirroredStrategy),
          variables_digest(trainer.G, trainer.D, trainer.Gs))
""")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_worker_processes_end_with_identical_weights(tmp_path):
    """2 workers of the project's trainer on 127.0.0.1 (TF_CONFIG), one --run_dir: both finish,
    hold the same weights (digest of G, D, Gs), only the chief leaves checkpoints, and the
    chief's last checkpoint holds those weights."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    run_dir = tmp_path / "run"
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    # 8 images a step = 4 per worker: minibatch-stddev groups of 4 fit.
    bindings = ["train.total_kimg=0.096", "train.checkpoint_kimg=0.032", "train.image_snapshot_kimg=0.064",
                "Discriminator.mbstd_group_size=4"]
    processes = []
    try:
        for index in range(2):
            config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            processes.append(subprocess.Popen(
                [sys.executable, str(script), str(REPO / "tests"), str(run_dir), TINY, *bindings], cwd=REPO,
                env=subprocess_env(TF_CONFIG=config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True))
        deadline = time.monotonic() + TIMEOUT  # for both workers together
        outputs = [process.communicate(timeout=max(1.0, deadline - time.monotonic()))
                   for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
    results = []
    for index, (process, (out, err)) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index}: {err[-5000:]}"
        (line,) = [line for line in out.splitlines() if line.startswith("RESULT")]
        results.append(line.split())
    ((_, replicas0, nimg0, chief0, strategy0, digest0),
     (_, replicas1, nimg1, chief1, strategy1, digest1)) = results
    assert strategy0 == strategy1 == "True", "not a MultiWorkerMirroredStrategy"
    assert replicas0 == replicas1 == "2" and nimg0 == nimg1 == "96"
    assert (chief0, chief1) == ("True", "False")
    assert digest0 == digest1, "the workers ended with different weights"

    names = sorted(os.listdir(run_dir))
    assert names == ["checkpoints", "config.gin", "logs", "networks.json", "samples"], names
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.index")) == [
        "ckpt-32.index", "ckpt-64.index", "ckpt-96.index"]
    assert variables_digest(*load_networks(str(run_dir))) == digest0
