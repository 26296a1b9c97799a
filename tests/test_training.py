"""Training end to end on gin/tiny.gin (8x8 emoji, tiny widths): progressive growing, run-directory
outputs, exact resume after SIGKILL, Ctrl-C, refusals and bad input through the CLI, non-finite
losses, and a learning check on a trivially learnable dataset.

Tests that need a process of their own (signals, SIGKILL, the entry point's exit codes) start
``python -m tf_stylegan.cli train`` in subprocesses; the others call the CLI's ``main`` or
``configurables.train`` in-process, always clearing gin's global config around them.
"""

import glob
import hashlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, TINY, cli, read_events, subprocess_env, train_in_process
from PIL import Image

import gin
from tf_stylegan.formats.snapshot import load_networks
from tf_stylegan.training import configurables
from tf_stylegan.training import trainer as trainer_module

CLI = [sys.executable, "-m", "tf_stylegan.cli", "train"]
TIMEOUT = 300  # seconds for any one training subprocess (a tiny run takes ~15 s)


# ----------------------------------------------------------------------------------------- helpers

def run_cli(args, timeout=TIMEOUT):
    """``python -m tf_stylegan.cli train ARGS`` to completion."""
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=subprocess_env())


def start_cli(args, log_path):
    """Starts ``python -m tf_stylegan.cli train ARGS`` with stdout+stderr going to ``log_path``."""
    log = open(log_path, "w")
    try:
        return subprocess.Popen(CLI + list(args), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env=subprocess_env())
    finally:
        log.close()  # the child holds its own descriptor


def stop(process):
    """Kills a subprocess this test started, if it still runs."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def wait_for(condition, process, timeout, what):
    """Polls ``condition()`` every 20 ms until true; fails if ``process`` exits first or on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the training process exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def checkpoint_numbers(run_dir):
    """Images shown of every complete checkpoint (one with an .index) in run_dir/checkpoints."""
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", p).group(1))
                  for p in glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.index")))


def latest_number(run_dir):
    """Images shown of the latest checkpoint the run's checkpoint state names (0 if none)."""
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def checkpoint_values(prefix):
    """{name: array} of every variable of a training checkpoint (bookkeeping entries left out)."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(prefix)
            if not name.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


def tree_digest(folder):
    """{relative path: sha256} of every file under folder."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(pathlib.Path(folder).rglob("*")) if path.is_file()}


def solid_pngs(folder, colours, count, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), colours[i % len(colours)], np.uint8)).save(
            folder / f"{i:03d}.png")
    return folder


def read_grid(path, columns=8, rows=4):
    """A samples/fakes*.png grid (columns x rows of square images) -> float [N, r, r, C]."""
    grid = np.asarray(Image.open(path), np.float64)
    size = grid.shape[1] // columns
    assert grid.shape[:2] == (rows * size, columns * size), grid.shape
    images = grid.reshape(rows, size, columns, size, -1).transpose(0, 2, 1, 3, 4)
    return images.reshape(rows * columns, size, size, -1)


def assert_variables_equal(networks_a, networks_b):
    for a, b in zip(networks_a, networks_b):
        assert [v.path for v in a.variables] == [v.path for v in b.variables]
        for va, vb in zip(a.variables, b.variables):
            np.testing.assert_array_equal(np.asarray(va), np.asarray(vb), err_msg=va.path)


# ------------------------------------------------------------------ one tiny run shared by several tests

TINY_RUN_BINDINGS = ["train.total_kimg=0.128", "train.tick_kimg=0.016", "train.checkpoint_kimg=0.064",
                     "train.image_snapshot_kimg=0.064"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """tiny.gin for 128 images: stable 4x4 (0-32), fade to 8x8 (32-64), stable 8x8 (64-128); a
    progress tick (and log) every 16 images = every 2 steps of 8."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    trainer, lines = train_in_process(run_dir, TINY_RUN_BINDINGS)
    return trainer, str(run_dir), lines


@pytest.mark.slow
def test_progressive_growing_traces_once_per_resolution(tiny_run):
    trainer, run_dir, lines = tiny_run
    assert int(trainer.cur_nimg.numpy()) == 128 and int(trainer.step_count.numpy()) == 16
    # One trace of the step per resolution, across stable 4x4, the fade and stable 8x8.
    assert trainer.trace_counts == {4: 1, 8: 1}
    for network in (trainer.G, trainer.D, trainer.Gs):
        assert float(network.lod.numpy()) == 0.0, network.name

    scalars, _ = read_events(run_dir)
    lod = [scalars["Progress/lod"][step] for step in sorted(scalars["Progress/lod"])]
    resolution = [scalars["Progress/resolution"][step] for step in sorted(scalars["Progress/resolution"])]
    assert sorted(scalars["Progress/lod"]) == list(range(16, 129, 16))
    assert lod[0] == 1.0 and lod[-1] == 0.0, lod
    assert any(0.0 < value < 1.0 for value in lod), f"no fade logged: {lod}"
    assert all(a >= b for a, b in zip(lod, lod[1:])), f"lod must not increase: {lod}"
    assert resolution[0] == 4 and resolution[-1] == 8, resolution
    progress = [line for line in lines if line.startswith("kimg")]
    assert (len(progress) == 8 and re.search(r"\b4px", progress[0])
            and re.search(r"\b8px", progress[-1])), progress


@pytest.mark.slow
def test_samples_in_the_middle_of_a_tick_are_left_out_of_its_speed(tmp_path, monkeypatch):
    original = trainer_module.Trainer._write_samples

    def slow_samples(self, writer):
        time.sleep(2.0)  # far longer than a tick of the tiny config's steps
        original(self, writer)

    monkeypatch.setattr(trainer_module.Trainer, "_write_samples", slow_samples)
    # Ticks every 64 images, sample grids every 32: every other grid falls inside a tick.
    _, lines = train_in_process(tmp_path, ["train.image_snapshot_kimg = 0.032"])
    shares = [int(share) for share in re.findall(r"outside graph +(\d+)%", "\n".join(lines))]
    assert len(shares) == 4 and max(shares) < 50, lines


@pytest.mark.slow
def test_run_directory_holds_checkpoints_samples_logs_config_and_networks(tiny_run):
    trainer, run_dir, _ = tiny_run
    # Checkpoints every 64 images and at the end, named by images shown, with optimizer state.
    assert checkpoint_numbers(run_dir) == [64, 128]
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")).endswith("ckpt-128")
    values = checkpoint_values(os.path.join(run_dir, "checkpoints", "ckpt-128"))
    assert int(values["cur_nimg/.ATTRIBUTES/VARIABLE_VALUE"]) == 128
    assert (any(name.startswith("G_opt/") for name in values)
            and any(name.startswith("D_opt/") for name in values))

    # Sample grids (8 x 4 Gs samples) at 0, 64, 128 images; the last one is the final Gs's.
    samples = sorted(os.listdir(os.path.join(run_dir, "samples")))
    assert samples == ["fakes000000000.png", "fakes000000064.png", "fakes000000128.png"]
    final = np.asarray(Image.open(os.path.join(run_dir, "samples", samples[-1])))
    assert final.shape == (4 * 8, 8 * 8, 3)
    np.testing.assert_array_equal(final, trainer.sample_grid())
    first = np.asarray(Image.open(os.path.join(run_dir, "samples", samples[0])))
    assert not np.array_equal(first, final), "Gs did not change during training"

    # TensorBoard events.
    scalars, events = read_events(run_dir)
    for tag in ("Loss/D", "Loss/G", "Progress/lod", "Progress/kimg", "Speed/images_per_s", "LearningRate/G",
                "Samples/Gs", "config/operative"):
        assert tag in events, f"{tag} missing from the TensorBoard logs; tags: {sorted(events)}"
    assert scalars["Progress/kimg"][128] == pytest.approx(0.128)
    assert all(np.isfinite(v) for v in scalars["Loss/D"].values())
    assert all(0 <= share < 1 for share in scalars["Speed/outside_graph_share"].values())
    image_steps = [step for step, _, plugin in events["Samples/Gs"] if plugin == "images"]
    assert image_steps == [0, 64, 128]
    last_image = tf.make_ndarray(events["Samples/Gs"][-1][1])
    np.testing.assert_array_equal(tf.io.decode_png(last_image[2]).numpy(), final)
    (_, text, plugin), = events["config/operative"]
    assert plugin == "text" and b"train.total_kimg" in tf.make_ndarray(text).item()

    # The operative config: every binding in force, and it parses again.
    config = pathlib.Path(run_dir, "config.gin").read_text()
    for binding in ("train.total_kimg = 0.128", "train.tick_kimg = 0.016", "Generator.fmap_max = 16",
                    "Discriminator.fmap_max = 16", "LogisticR1.r1_gamma = 10.0",
                    "training_schedule.lod_training_kimg = 0.032", "train.seed = 0"):
        assert binding in config, binding
    gin.clear_config()
    try:
        configurables.parse([os.path.join(run_dir, "config.gin")])
        assert gin.query_parameter("train.total_kimg") == 0.128
        assert gin.query_parameter("Generator.latent_size") == 16
    finally:
        gin.clear_config()

    # networks.json makes the run directory loadable: the latest checkpoint's G, D, Gs.
    assert os.path.isfile(os.path.join(run_dir, "networks.json"))
    loaded = load_networks(run_dir)
    assert_variables_equal((trainer.G, trainer.D, trainer.Gs), loaded)
    z = np.random.RandomState(1).randn(4, trainer.G.latent_size).astype(np.float32)
    np.testing.assert_array_equal(loaded.Gs(z, truncation_psi=1.0, randomize_noise=False).numpy(),
                                  trainer.Gs(z, truncation_psi=1.0, randomize_noise=False).numpy())


# ------------------------------------------------------------------------------------ exact resume

@pytest.mark.slow
def test_resume_after_sigkill_repeats_the_uninterrupted_run(tmp_path):
    """A: straight to N = 192 images, checkpoints every 64. The fade to 8x8 lasts 64 images (32-96), so
    the first checkpoint falls in its middle (lod 0.5), one group after the 8x8 data stream started.
    B: the same config but a far total_kimg, SIGKILLed once its first checkpoint is on disk, then
    --resume with total_kimg overridden to A's. Both end identical: images shown, step, phase, weights
    and optimizer state."""
    common = ["--gin_file", TINY, "--gin_param", "train.checkpoint_kimg=0.064",
              "--gin_param", "train.tick_kimg=0.064",
              "--gin_param", "training_schedule.lod_transition_kimg=0.064"]
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    a = start_cli(common + ["--gin_param", "train.total_kimg=0.192", "--run_dir", run_a], tmp_path / "a.log")
    b = start_cli(common + ["--gin_param", "train.total_kimg=5", "--run_dir", run_b], tmp_path / "b.log")
    try:
        # The manager's state file names only complete checkpoints: wait until it names one.
        wait_for(lambda: latest_number(run_b), b, TIMEOUT, "B's first checkpoint")
        b.send_signal(signal.SIGKILL)
        assert b.wait(timeout=30) == -signal.SIGKILL
        assert a.wait(timeout=TIMEOUT) == 0, (tmp_path / "a.log").read_text()
    finally:
        stop(a)
        stop(b)
    killed_at = latest_number(run_b)
    assert 64 <= killed_at < 192, ("B must die between 64 and 192 images, "
                                   f"its latest checkpoint is {killed_at}")
    assert latest_number(run_a) == 192

    resumed = run_cli(["--run_dir", run_b, "--resume", "--gin_param", "train.total_kimg=0.192"])
    assert resumed.returncode == 0, resumed.stderr
    resumed_from = rf"resumed from \S+ckpt-{killed_at} at {killed_at / 1000:.3f} kimg"
    assert re.search(resumed_from, resumed.stdout), resumed.stdout
    assert latest_number(run_b) == 192, "the --gin_param total_kimg override was not applied on resume"
    assert "train.total_kimg = 0.192" in pathlib.Path(run_b, "config.gin").read_text()

    final_a = checkpoint_values(os.path.join(run_a, "checkpoints", "ckpt-192"))
    final_b = checkpoint_values(os.path.join(run_b, "checkpoints", "ckpt-192"))
    assert sorted(final_a) == sorted(final_b)
    names = list(final_a)
    assert sum(name.startswith(("G_opt/", "D_opt/")) for name in names) > 20, (
        "optimizer state not checkpointed")
    for name in ("cur_nimg", "step", "prev_lod", "G/synthesis.Slod", "D/lod", "Gs/synthesis.Slod"):
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        assert key in final_a, (key, names)
    expect = {"cur_nimg": 192, "step": 24, "prev_lod": 0.0, "G/synthesis.Slod": 0.0}
    for name, value in expect.items():
        assert final_b[f"{name}/.ATTRIBUTES/VARIABLE_VALUE"] == value, name
    for name in names:
        np.testing.assert_allclose(final_b[name], final_a[name], rtol=0, atol=1e-6, err_msg=name)


# --------------------------------------------------------------------------------------- Ctrl-C

def shown_kimg(log):
    """The largest kimg a progress line of the training log reports (0 if none yet)."""
    return max((float(k) for k in re.findall(r"^kimg\s+([\d.]+)/", log.read_text(), re.M)), default=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_writes_a_checkpoint_exits_130_and_resume_continues(tmp_path, signum):
    """Ctrl-C (SIGINT) or SIGTERM mid-training: a checkpoint of the current state, exit 130, and
    (SIGINT) a --resume that continues from it."""
    run_dir = str(tmp_path / "run")
    log = tmp_path / "train.log"
    # No periodic checkpoint (1000 kimg): the only checkpoint is the one the interrupt writes.
    process = start_cli(["--gin_file", TINY, "--gin_param", "train.total_kimg=100",
                         "--gin_param", "train.checkpoint_kimg=1000", "--gin_param", "train.tick_kimg=0.016",
                         "--run_dir", run_dir], log)
    try:
        wait_for(lambda: shown_kimg(log) >= 0.032, process, TIMEOUT, "training to pass 32 images")
        process.send_signal(signum)
        code = process.wait(timeout=120)
    finally:
        stop(process)
    output = log.read_text()
    assert code == 130, output
    match = re.search(r"interrupted at ([\d.]+) kimg; checkpoint written: (\S+)", output)
    assert match, output
    assert "resume with: tf-stylegan train --run-dir" in output
    saved_numbers = checkpoint_numbers(run_dir)
    assert len(saved_numbers) == 1, f"expected just the interrupt's checkpoint, found {saved_numbers}"
    saved = saved_numbers[0]
    assert latest_number(run_dir) == saved and saved >= 32 and saved % 8 == 0
    assert match.group(2).endswith(f"ckpt-{saved}")
    assert float(match.group(1)) == saved / 1000
    values = checkpoint_values(os.path.join(run_dir, "checkpoints", f"ckpt-{saved}"))
    assert int(values["cur_nimg/.ATTRIBUTES/VARIABLE_VALUE"]) == saved
    assert int(values["step/.ATTRIBUTES/VARIABLE_VALUE"]) == saved // 8
    if signum != signal.SIGINT:
        return

    target = saved + 16
    resumed = run_cli(["--run_dir", run_dir, "--resume", "--gin_param", f"train.total_kimg={target / 1000}"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"ckpt-{saved} at {saved / 1000:.3f} kimg" in resumed.stdout, resumed.stdout
    assert checkpoint_numbers(run_dir) == [saved, target]
    values = checkpoint_values(os.path.join(run_dir, "checkpoints", f"ckpt-{target}"))
    assert int(values["step/.ATTRIBUTES/VARIABLE_VALUE"]) == target // 8


@pytest.mark.slow
@pytest.mark.parametrize("when, at_step", [("before", 4), ("before", 5), ("after", 4)],
                         ids=["before-step-4-group-start", "before-step-5-mid-group", "after-step-4"])
def test_resume_after_an_interrupt_repeats_the_uninterrupted_run(tiny_run, tmp_path, monkeypatch, when,
                                                                   at_step):
    """A stop request (what the first Ctrl-C / SIGTERM makes) injected deterministically just before or
    just after the step function of step ``at_step``: training stops at the end of that group of
    minibatch_repeats (2) steps, and the checkpoint, resumed to the same 128 images, ends exactly where
    the uninterrupted tiny_run ends."""
    reference, _, _ = tiny_run
    original = trainer_module.Trainer.train_step

    def train_step(self, resolution, global_batch):
        step = original(self, resolution, global_batch)

        def interrupted(*args):
            if when == "before" and int(self.step_count.numpy()) == at_step:
                self._request_stop(signal.SIGINT, None)
            result = step(*args)
            if when == "after" and int(self.step_count.numpy()) == at_step:
                self._request_stop(signal.SIGINT, None)
            return result
        return interrupted

    run_dir = tmp_path / "run"
    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)
    with pytest.raises(trainer_module.TrainingInterrupted):
        train_in_process(run_dir, TINY_RUN_BINDINGS)
    monkeypatch.undo()
    stop = 8 * 2 * (at_step // 2 + 1)  # the end of the group holding step at_step
    assert checkpoint_numbers(run_dir) == [stop]
    resumed, lines = train_in_process(run_dir, resume=True)
    assert any(f"ckpt-{stop} at" in line for line in lines), lines
    assert int(resumed.cur_nimg.numpy()) == 128 and int(resumed.step_count.numpy()) == 16
    differences = {}
    for ours, theirs in ((resumed.G, reference.G), (resumed.D, reference.D), (resumed.Gs, reference.Gs),
                         (resumed.G_opt, reference.G_opt), (resumed.D_opt, reference.D_opt)):
        assert [v.path for v in ours.variables] == [v.path for v in theirs.variables]
        for a, b in zip(ours.variables, theirs.variables):
            difference = float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)),
                                      initial=0))
            if difference > 1e-6:
                differences[a.path] = difference
    worst = sorted(differences.items(), key=lambda item: -item[1])[:5]
    assert not differences, f"{len(differences)} variables differ from the uninterrupted run, worst: {worst}"


# ------------------------------------------------------------------------- refusals and bad input

@pytest.mark.slow
def test_run_dir_with_checkpoints_needs_resume_and_nothing_is_lost(tiny_run, tmp_path, capsys):
    _, source, _ = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    before = tree_digest(run_dir)
    code, _, err = cli(["train", "--gin_file", TINY, "--run_dir", str(run_dir)], capsys)
    assert code == 1
    assert "tf-stylegan: error:" in err and "already holds checkpoints" in err and "--resume" in err, err
    assert tree_digest(run_dir) == before, "a refused start changed the run directory"


def test_resume_without_a_run_errors_clearly(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(["train", "--run_dir", str(empty), "--resume"], capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "config.gin" in err and "not found" in err, err
    assert os.listdir(empty) == []

    code, _, err = cli(["train", "--run_dir", str(tmp_path / "missing"), "--resume"], capsys)
    assert code == 1 and "tf-stylegan: error:" in err, err

    code, _, err = cli(["train", "--gin_file", TINY, "--run_dir", str(empty), "--resume"], capsys)
    assert code == 1 and "drop --gin-file" in err, err


def test_resume_with_a_config_but_no_checkpoint_errors_clearly(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(TINY, run_dir / "config.gin")
    code, _, err = cli(["train", "--run_dir", str(run_dir), "--resume"], capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "no checkpoint" in err, err
    assert not (run_dir / "checkpoints").exists()


def test_gin_typo_is_reported_with_file_and_line(tmp_path, capsys):
    unknown = tmp_path / "unknown.gin"
    unknown.write_text("include '%s'\ntrain.seed = 1\ntrain.tick_kimgg = 2\n" % TINY)
    code, _, err = cli(["train", "--gin_file", str(unknown), "--run_dir", str(tmp_path / "a")], capsys)
    assert code == 1, err
    assert ("tf-stylegan: error:" in err and "tick_kimgg" in err and str(unknown) in err
            and "line 3" in err), err

    syntax = tmp_path / "syntax.gin"
    syntax.write_text("train.seed = 1\ntrain.total_kimg = = 2\n")
    code, _, err = cli(["train", "--gin_file", str(syntax), "--run_dir", str(tmp_path / "b")], capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "syntax.gin" in err and "line 2" in err, err

    code, _, err = cli(["train", "--gin_file", str(tmp_path / "nope.gin"), "--run_dir", str(tmp_path / "c")],
                       capsys)
    assert code == 1 and "nope.gin" in err and "not found" in err, err
    assert not any((tmp_path / name).exists() for name in "abc"), "a refused configuration created a run dir"


def test_unknown_generator_binding_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"Generator\.fmap_maxx"):
        train_in_process(tmp_path / "run", ["Generator.fmap_maxx = 3"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("binding, message", [
    ("Generator.label_size = 10", "Generator.label_size = 10 in the gin config, but the networks take the "
                                  "dataset's: emoji has label_size 0"),
    ("Discriminator.resolution = 16", "emoji has resolution 8"),
])
def test_network_bindings_the_dataset_decides_are_refused(tmp_path, binding, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train_in_process(tmp_path / "run", [binding])
    assert not (tmp_path / "run").exists()
    train_in_process(tmp_path / "agreeing", ["Generator.resolution = 8", "train.total_kimg = 0.016"])


def test_unknown_generator_binding_is_a_cli_error(tmp_path, capsys):
    code, _, err = cli(["train", "--gin_file", TINY, "--gin_param", "Generator.fmap_maxx=3",
                        "--run_dir", str(tmp_path / "run")], capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "Generator.fmap_maxx" in err, err


@pytest.mark.slow
def test_non_finite_training_stops_and_keeps_the_last_checkpoint(tmp_path, capsys):
    """A learning rate of 1e30 once the 8x8 layers train (from 32 images): the weights overflow, updates
    are skipped, and training stops with exit 1 (after max_skipped_steps skipped steps, or at the next
    checkpoint, which is not written); the checkpoints written before are complete and loadable."""
    run_dir = tmp_path / "run"
    code, _, err = cli(["train", "--gin_file", TINY, "--run_dir", str(run_dir),
                        "--gin_param", "train.checkpoint_kimg=0.016", "--gin_param", "train.total_kimg=1",
                        "--gin_param", "train.max_skipped_steps=3",
                        "--gin_param", "training_schedule.G_lrate_dict={8: 1e30}",
                        "--gin_param", "training_schedule.D_lrate_dict={8: 1e30}"], capsys)
    assert code == 1, err
    match = re.search(r"tf-stylegan: error: (?:3 steps in a row had non-finite gradients .* at ([\d.]+) kimg|"
                      r"the weights or optimizer state became non-finite at ([\d.]+) kimg: "
                      r"no checkpoint written)",
                      err)
    assert match, err
    stopped_at = round(float(match.group(1) or match.group(2)) * 1000)
    saved = checkpoint_numbers(run_dir)
    assert saved and max(saved) <= stopped_at < 1000, (saved, stopped_at)
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert latest.endswith(f"ckpt-{max(saved)}")
    values = checkpoint_values(latest)
    assert int(values["cur_nimg/.ATTRIBUTES/VARIABLE_VALUE"]) == max(saved)
    for name, value in values.items():
        assert np.all(np.isfinite(value)), f"{name} is not finite in {latest}"
    networks = load_networks(str(run_dir))
    for network in networks:
        assert all(np.all(np.isfinite(np.asarray(v))) for v in network.variables)


@pytest.mark.slow
def test_a_nan_pixel_skips_that_d_update_and_training_goes_on(tmp_path, monkeypatch):
    """A NaN pixel in the reals of step 5 (of 16): that step's D update is skipped (D's weights and
    Adam state unchanged, the skip counted on the progress line and in TensorBoard), G's update, whose
    loss does not see the reals, goes on as the official optimizer's per-network tf.cond does, and
    the run completes with finite weights."""
    from tf_stylegan.training import step as step_module

    inject = tf.Variable(False, trainable=False)
    original_process_reals = step_module.process_reals

    def process_reals(images, lod):
        images = original_process_reals(images, lod)
        poisoned = tf.tensor_scatter_nd_update(images, [[0, 0, 0, 0]], [float("nan")])
        return tf.cond(inject, lambda: poisoned, lambda: images)

    monkeypatch.setattr(step_module, "process_reals", process_reals)
    original_train_step = trainer_module.Trainer.train_step
    observed = {}

    def train_step(self, resolution, global_batch):
        step = original_train_step(self, resolution, global_batch)

        def watched(*args):
            poisoned = int(self.step_count.numpy()) == 5
            inject.assign(poisoned)
            before = {name: [np.asarray(v).copy() for v in network.variables]
                      for name, network in (("D", self.D), ("D_opt", self.D_opt), ("G", self.G))}
            metrics = step(*args)
            if poisoned:
                observed["metrics"] = {name: float(value) for name, value in metrics.items()}
                observed["changed"] = {
                    name: sum(not np.array_equal(a, np.asarray(v)) for a, v in zip(values, network.variables))
                    for (name, values), network in zip(before.items(), (self.D, self.D_opt, self.G))}
            return metrics
        return watched

    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)
    trainer, lines = train_in_process(tmp_path / "run", TINY_RUN_BINDINGS)
    assert int(trainer.cur_nimg.numpy()) == 128
    metrics = observed["metrics"]
    assert np.isnan(metrics["Loss/D"]) and metrics["Train/D_skipped"] == 1 and metrics["Train/G_skipped"] == 0
    assert observed["changed"]["D"] == 0 and observed["changed"]["D_opt"] == 0, observed["changed"]
    assert observed["changed"]["G"] > 0
    assert trainer.skipped.counts == {"D": 1, "G": 0}
    assert any("skipped D 1 G 0" in line for line in lines if line.startswith("kimg")), lines
    scalars, _ = read_events(str(tmp_path / "run"))
    assert scalars["Train/skipped_D"][128] == 1 and scalars["Train/skipped_G"][128] == 0
    for network in (trainer.G, trainer.D, trainer.Gs):
        assert all(np.all(np.isfinite(np.asarray(v))) for v in network.variables)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated-data", "missing-index"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(tiny_run, tmp_path, damage):
    """The newest checkpoint (ckpt-128) cut short or without its index: --resume says which one it skips
    and why, resumes from ckpt-64 and ends exactly where the uninterrupted run ended."""
    reference, reference_dir, _ = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    newest = run_dir / "checkpoints" / "ckpt-128"
    if damage == "truncated-data":
        data_file = glob.glob(f"{newest}.data-*")[0]
        size = os.path.getsize(data_file)
        with open(data_file, "r+b") as file:
            file.truncate(size // 2)
    else:
        os.remove(f"{newest}.index")
    resumed, lines = train_in_process(run_dir, resume=True)
    skipped = [line for line in lines if line.startswith("skipping damaged checkpoint")]
    assert len(skipped) == 1 and "ckpt-128" in skipped[0], lines
    if damage == "missing-index":
        assert "ckpt-128.index is missing" in skipped[0]
    assert any(re.search(r"resumed from .*ckpt-64 at 0\.064 kimg", line) for line in lines), lines
    assert_variables_equal((resumed.G, resumed.D, resumed.Gs), (reference.G, reference.D, reference.Gs))


@pytest.mark.slow
def test_resume_with_every_checkpoint_damaged_is_a_clear_error(tiny_run, tmp_path, capsys):
    _, reference_dir, _ = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    for data_file in glob.glob(str(run_dir / "checkpoints" / "ckpt-*.data-*")):
        with open(data_file, "r+b") as file:
            file.truncate(100)
    code, _, err = cli(["train", "--run_dir", str(run_dir), "--resume"], capsys)
    assert code == 1, err
    assert ("no checkpoint in" in err and "reads completely" in err and "ckpt-64" in err
            and "ckpt-128" in err), err


@pytest.mark.slow
def test_bad_data_through_the_cli(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--gin_file", TINY, "--gin_param", "train.total_kimg=0.016"]
    code, _, err = cli(args + ["--gin_param", f"train.dataset='{empty}'", "--run_dir", str(tmp_path / "r1")],
                       capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "no images found" in err, err

    images = solid_pngs(tmp_path / "images", [(200, 60, 30), (30, 60, 200)], 16)
    (images / "zz_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    data = ["--gin_param", f"train.dataset='{images}'"]
    code, _, err = cli(args + data + ["--run_dir", str(tmp_path / "r2")], capsys)
    assert code == 1 and "tf-stylegan: error:" in err and "zz_bad.png" in err, err
    assert not (tmp_path / "r2" / "checkpoints").exists()

    code, out, err = cli(args + data + ["--gin_param", "train.skip_bad=True",
                                        "--run_dir", str(tmp_path / "r3")], capsys)
    assert code == 0, err
    assert re.search(r"skipped 1 unusable image\(s\), e\.g\. \S*zz_bad\.png", out), out
    assert "(16 images, 8px)" in out, out
    assert checkpoint_numbers(tmp_path / "r3") == [16]


# ------------------------------------------------------------------------------------- learning

@pytest.mark.slow
def test_gs_learns_a_solid_colour_dataset(tmp_path):
    """64 8x8 images of one solid colour: within 2 kimg the mean colour of Gs's samples gets at
    least twice closer to the data's (measured on the sample grids at 0 and at the end, and on 64
    fresh Gs samples)."""
    colour = np.array([200.0, 60.0, 30.0])
    data = solid_pngs(tmp_path / "solid", [tuple(int(c) for c in colour)], 64)
    run_dir = tmp_path / "run"
    trainer, _ = train_in_process(run_dir, [
        f"train.dataset = '{data}'", "train.resolution = 8", "train.total_kimg = 2",
        "train.G_smoothing_kimg = 0.1", "train.checkpoint_kimg = 100", "train.image_snapshot_kimg = 100",
        "train.tick_kimg = 0.5"])
    assert int(trainer.cur_nimg.numpy()) == 2000

    def distance(images):
        return np.abs(images.mean(axis=(0, 1, 2)) - colour).mean()

    initial = distance(read_grid(run_dir / "samples" / "fakes000000000.png"))
    final = distance(read_grid(run_dir / "samples" / "fakes000002000.png"))
    z = np.random.RandomState(123).randn(64, trainer.Gs.latent_size).astype(np.float32)
    fresh = np.clip(trainer.Gs(z, truncation_psi=1.0).numpy() * 127.5 + 128, 0, 255)
    assert initial > 40, f"the untrained generator is already close to the data ({initial:.1f})"
    assert final <= initial / 2, f"mean colour distance {initial:.1f} -> {final:.1f}"
    assert distance(fresh) <= initial / 2, (f"mean colour distance {initial:.1f} -> "
                                            f"{distance(fresh):.1f} (64 samples)")


def test_a_folder_above_the_memory_limit_trains_as_the_folder_held_in_memory(tmp_path, monkeypatch):
    from helpers import variables_digest

    from tf_stylegan import data
    from tf_stylegan.data.records import RecordFile

    rng = np.random.RandomState(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(24):
        Image.fromarray(rng.randint(0, 256, (8, 8, 3), np.uint8)).save(folder / f"{i:02d}.png")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bindings = [f"train.dataset = '{folder}'", "train.total_kimg = 0.096"]
    held, _ = train_in_process(tmp_path / "held", bindings)
    monkeypatch.setattr(data.dataset, "MAX_IN_MEMORY_BYTES", 1000)  # 24 images of 8x8: 1.5 KiB, streamed
    opened = []
    monkeypatch.setattr(data.stream, "RecordFile", lambda path: opened.append(path) or RecordFile(path))
    streamed, _ = train_in_process(tmp_path / "streamed", bindings)
    assert {os.path.basename(path) for path in opened} == {"images-r02.tfrecords", "images-r03.tfrecords"}
    assert variables_digest(streamed.G, streamed.D) == variables_digest(held.G, held.D)


def class_folders(root, levels, count, size=8):
    """A class sub-folder per grey level {name: level} of ``count`` solid images (noise of +-8 around it)."""
    rng = np.random.RandomState(1)
    for name, level in levels.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(level + rng.randint(-8, 9, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def test_class_folders_train_a_conditional_run_that_resumes_exactly(tmp_path):
    from helpers import variables_digest

    data = class_folders(tmp_path / "data", {"dark": 30, "light": 220, "mid": 128}, 8)
    bindings = [f"train.dataset = '{data}'", "train.class_folders = True", "train.total_kimg = 0.096",
                "train.checkpoint_kimg = 0.064"]
    whole, _ = train_in_process(tmp_path / "whole", bindings)
    assert whole.G.label_size == whole.D.label_size == whole.Gs.label_size == 3
    assert whole.Gs.class_names == ["dark", "light", "mid"]
    from tf_stylegan.deploy.inference import load

    assert load(tmp_path / "whole").class_names == ["dark", "light", "mid"]  # the run keeps the names
    grid = whole.sample_grid()  # a row per class (4 rows: dark, light, mid, dark), 8 columns
    assert grid.shape == (4 * 8, 8 * 8, 3)
    np.testing.assert_array_equal(whole.grid.labels.reshape(4, 8, 3).argmax(-1),
                                  [[0] * 8, [1] * 8, [2] * 8, [0] * 8])
    from tf_stylegan import data as data_lib
    from tf_stylegan import metrics

    whole.metrics = [metrics.EmojiFD(32, cache_dir=str(tmp_path / "cache"))]  # classes as the data's
    assert np.isfinite(whole.evaluate_metrics()["efd32"])
    with pytest.raises(metrics.MetricError, match="class-conditional .* labelled dataset"):
        metrics.FID(8, inception_weights=None)(whole._Gs_inference, data_lib.emoji_dataset(8))
    train_in_process(tmp_path / "split", bindings[:2] + ["train.total_kimg = 0.064"])
    resumed, _ = train_in_process(tmp_path / "split", ["train.total_kimg = 0.096"], resume=True)
    assert variables_digest(resumed.G, resumed.D, resumed.Gs) == variables_digest(whole.G, whole.D, whole.Gs)


@pytest.mark.slow
def test_a_two_class_toy_dataset_gives_class_dependent_samples(tmp_path):
    data = class_folders(tmp_path / "data", {"dark": 40, "light": 215}, 32)
    trainer, _ = train_in_process(tmp_path / "run", [
        f"train.dataset = '{data}'", "train.class_folders = True", "train.total_kimg = 3",
        "train.G_smoothing_kimg = 0.1", "train.checkpoint_kimg = 100", "train.image_snapshot_kimg = 100",
        "train.tick_kimg = 1"])
    z = np.random.RandomState(5).randn(64, trainer.Gs.latent_size).astype(np.float32)
    brightness = {}
    for name, label in (("dark", [1, 0]), ("light", [0, 1])):
        labels = np.tile(np.float32(label), (64, 1))
        images = trainer.Gs(z, truncation_psi=1.0, labels=labels).numpy() * 127.5 + 128
        brightness[name] = float(np.clip(images, 0, 255).mean())
    # Measured 53.5 and 134.6 (data 40 and 215); an unconditional G gives one brightness for both.
    assert brightness["light"] - brightness["dark"] > 50, brightness


def test_a_schedule_error_at_a_later_phase_stops_the_run_before_it_starts(tmp_path):
    # tiny.gin grows 4x4 -> 8x8 after 32 images; a minibatch of 0 at 8x8 cannot feed the replica.
    with pytest.raises(ValueError, match=r"minibatch 0 at 8x8 .* smaller than num_replicas=1"):
        train_in_process(tmp_path / "run", ["training_schedule.minibatch_dict = {8: 0}"])
    assert not (tmp_path / "run" / "samples").exists() and not (tmp_path / "run" / "checkpoints").exists()
    # A run that ends before that phase never reaches it: it trains.
    trainer, _ = train_in_process(tmp_path / "short", ["training_schedule.minibatch_dict = {8: 0}",
                                                        "train.total_kimg = 0.016"])
    assert int(trainer.cur_nimg.numpy()) == 16
