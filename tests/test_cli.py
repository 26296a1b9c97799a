"""The tf-stylegan command line: convert-official, bench, train errors, and the flag convention."""

import argparse
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import TINY, cli, nchw, official_ref_path

from tf_stylegan.bench import generator as bench_generator
from tf_stylegan.bench import measure as bench_measure
from tf_stylegan.bench import training as bench_training
from tf_stylegan.cli import build_parser, main
from tf_stylegan.cli.common import strip_gin_context
from tf_stylegan.formats.official import load_official_pickle
from tf_stylegan.formats.snapshot import load_networks
from tf_stylegan.training import step as step_lib


@pytest.mark.slow
def test_convert_official_console_script_round_trips(tmp_path, official_config):
    """The acceptance command: convert the reference pickle; the saved networks reload identically."""
    pkl, ref = official_config
    out = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "tf_stylegan.cli", "convert-official", str(pkl), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trainable parameters" in result.stdout

    G, D, Gs = load_official_pickle(pkl)
    loaded = load_networks(out)
    for original, restored in zip((G, D, Gs), loaded):
        for a, b in zip(original.variables, restored.variables):
            if not a.path.endswith("seed_generator_state"):  # each import draws its own noise seeds
                np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    images = loaded.Gs(ref["z"], truncation_psi=1.0, randomize_noise=False).numpy()
    np.testing.assert_allclose(nchw(images), ref["images_psi1"], atol=1e-4)
    np.testing.assert_array_equal(images, Gs(ref["z"], truncation_psi=1.0, randomize_noise=False).numpy())
    np.testing.assert_array_equal(loaded.D(images).numpy(), D(images).numpy())


def test_convert_official_refuses_existing_output_and_bad_input(tmp_path, capsys):
    pkl = official_ref_path("network-small.pkl")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert-official", str(pkl), str(out)]) == 1
    assert "exists" in capsys.readouterr().err

    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pkl.read_bytes()[:5000])
    assert main(["convert-official", str(truncated), str(tmp_path / "x")]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    assert main(["convert-official", str(tmp_path / "missing.pkl"), str(tmp_path / "y")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_train_reports_a_missing_gin_file(tmp_path, capsys):
    assert main(["train", "--gin-file", str(tmp_path / "missing.gin"),
                 "--run-dir", str(tmp_path / "run")]) == 1
    assert "missing.gin not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_gin_configured_error_is_reported_without_gins_call_context(tmp_path, capsys):
    """gin appends "In call to configurable 'train' (<function ...>)" to an error raised in ``train``: the
    user sees the real message alone, on the last line (this one fails at loading the dataset)."""
    config = tmp_path / "bad.gin"
    config.write_text("train.dataset = '/nonexistent/folder'\ntrain.resolution = 8\n")
    code, _, err = cli(["train", "--gin-file", str(config), "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 1
    assert "In call to configurable" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tf-stylegan: error: /nonexistent/folder: no such dataset"), err


def test_strip_gin_context_removes_every_call_line_and_keeps_the_rest():
    message = ("bad value\n  second line\n"
               "  In call to configurable 'Generator' (<class 'x.Generator'>) in scope 'G'"
               "\n  In call to configurable 'train' (<function train at 0x7f00>)")
    assert strip_gin_context(message) == "bad value\n  second line"
    assert strip_gin_context("plain") == "plain"


def _parse(argv):
    return vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("command, kebab, snake, value, key", [
    (["train", "--run-dir", "r"], "--gin-param", "--gin_param", "train.seed=1", "gin_param"),
    (["bench", "quality"], "--metrics-every-kimg", "--metrics_every_kimg", "2.5", "metrics_every_kimg"),
    (["metrics", "fid50k", "--model", "m"], "--inception-weights", "--inception_weights", "w.h5",
     "inception_weights"),
    (["generate", "m", "--out", "o"], "--truncation-psi", "--truncation_psi", "0.5", "truncation_psi"),
    (["noise", "m", "--out", "o"], "--noise-seed", "--noise_seed", "3", "noise_seed"),
])
def test_kebab_and_snake_spellings_parse_to_the_same_value(command, kebab, snake, value, key):
    assert (_parse(command + [kebab, value])[key] == _parse(command + [snake, value])[key]
            != _parse(command)[key])


def test_both_spellings_of_an_append_option_append_to_one_list():
    args = _parse(["train", "--gin-file", "a.gin", "--gin_file", "b.gin", "--gin-file", "c.gin",
                   "--gin_param", "x=1", "--gin-param", "y=2", "--run_dir", "r"])
    assert args["gin_file"] == ["a.gin", "b.gin", "c.gin"] and args["gin_param"] == ["x=1", "y=2"]
    assert args["run_dir"] == "r" and _parse(["train", "--run-dir", "r"])["gin_file"] == []
    assert _parse(["bench", "--gin_file", "a.gin", "--gin-file", "b.gin"])["gin_file"] == ["a.gin", "b.gin"]


def test_a_required_option_takes_either_spelling(capsys):
    assert (_parse(["train", "--run_dir", "r"])["run_dir"] == _parse(["train", "--run-dir", "r"])["run_dir"]
            == "r")
    with pytest.raises(SystemExit):
        _parse(["train", "--gin-file", "a.gin"])
    assert "--run-dir" in capsys.readouterr().err


def _parsers(parser, name="tf-stylegan"):
    """(command line, parser) of the top level and every command and subcommand."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_help_shows_kebab_flags_only_and_examples_for_every_command():
    names = []
    for name, parser in _parsers(build_parser()):
        names.append(name)
        text = parser.format_help()
        assert "examples:" in text and f"\n  {name} " in text.split("examples:")[1], name
        long_options = [option for action in parser._actions for option in action.option_strings
                        if option.startswith("--") and action.help is not argparse.SUPPRESS]
        assert not [option for option in long_options if "_" in option], name
        assert not re.findall(r"--[a-z0-9]+_[a-z0-9_]+", text), f"{name}: a snake_case flag in --help"
        for option in long_options:
            assert option in text, f"{name}: {option} missing from --help"
    assert {"tf-stylegan dataset create", "tf-stylegan dataset info", "tf-stylegan train"} <= set(names)
    assert len(names) == 16  # the top level, 13 commands, dataset's 2 subcommands
    train_help = dict(_parsers(build_parser()))["tf-stylegan train"].format_help()
    assert "--run-dir" in train_help and "--run_dir" not in train_help and "--gin-file" in train_help


def test_python_dash_m_tf_stylegan_is_the_command():
    result = subprocess.run([sys.executable, "-m", "tf_stylegan", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tf-stylegan") and "convert-official" in result.stdout


def test_bench_prints_a_table_of_positive_figures(capsys):
    rows = bench_generator.run(resolutions=(8,), batch=2, repeats=1, fmap_base=64, fmap_max=16,
                         latent_size=16, dlatent_size=16, mapping_fmaps=16)
    printed = capsys.readouterr().out
    assert "roofline =" in printed and "tf.function" in printed and "eager" in printed
    assert [row["call"] for row in rows] == ["eager", "tf.function"]
    for row in rows:
        assert row["images_per_s"] > 0 and row["gflops"] > 0 and row["peak_rss_mib"] > 0
        # GFLOP per image is counted from the layers: check it against a hand count for this tiny net.
        assert row["gflop_per_image"] == pytest.approx(2 * _tiny_macs() / 1e9)


@pytest.mark.parametrize("r1_interval, header", [(1, "every step"), (3, "every 3 steps (lazy)")])
def test_bench_train_prints_positive_figures_with_and_without_lazy_r1(capsys, monkeypatch, r1_interval,
                                                                       header):
    flags = []
    original = step_lib.TrainStep.__call__
    monkeypatch.setattr(step_lib.TrainStep, "__call__", lambda self, reals, seed, beta, regularize=False: (
        flags.append(bool(regularize)), original(self, reals, seed, beta, regularize))[1])
    rows = bench_training.run_train(resolutions=(4, 8), network_resolutions=(8,), batch=4, repeats=1,
                               r1_interval=r1_interval, fmap_base=64, fmap_max=16, latent_size=16,
                               dlatent_size=16, mapping_fmaps=16, mapping_layers=2)
    printed = capsys.readouterr().out
    assert header in printed and "outside graph" in printed
    assert ([(row["phase"], row["network_resolution"], row["batch"]) for row in rows]
            == [("4²", 8, 4), ("8²", 8, 4)])
    for row in rows:
        assert row["images_per_s"] > 0 and row["loop_images_per_s"] > 0 and row["peak_rss_mib"] > 0
        assert 0 <= row["outside_graph"] < 1
    # The separate R1 update only with lazy R1, once per r1_interval steps (step alone and loop alike).
    assert sum(flags) == (0 if r1_interval == 1 else pytest.approx(len(flags) / r1_interval, abs=4))


def test_bench_train_profile_of_a_grayscale_config_names_the_step_kernels(capsys):
    assert main(["bench", "train", "--resolution", "8", "--network-resolution", "8", "--batch", "4",
                 "--repeats", "1", "--channels", "1", "--profile", "5", "--fmap-base", "64",
                 "--fmap-max", "16", "--latent-size", "16"]) == 0
    printed = capsys.readouterr().out
    kernels = [line for line in printed.splitlines() if "kernels" in line]
    assert len(kernels) == 1 and "ms per step" in kernels[0]
    shares = re.findall(r"(\w+) [\d.]+ \((\d+)%\)", kernels[0])
    # the step is convolutions first: Eigen's Conv2D, or oneDNN's _MklNativeConv2D / _MklNativeFusedConv2D
    assert len(shares) == 5 and any(name.endswith("Conv2D") for name, _ in shares)
    assert sum(int(share) for _, share in shares) <= 100


def test_bench_train_mixed_precision_from_the_flag_or_the_gin_file(capsys, monkeypatch):
    from tf_stylegan.training.trainer import Trainer

    compute_dtypes = []
    original = Trainer.train
    monkeypatch.setattr(Trainer, "train", lambda self: (
        compute_dtypes.append((self.G.compute_dtype, self.D.compute_dtype, self.Gs.compute_dtype)),
        original(self))[1])
    tiny_8 = ["--resolution", "8", "--network-resolution", "8", "--batch", "4", "--repeats", "1",
              "--fmap-base", "64", "--fmap-max", "16", "--latent-size", "16"]
    code, printed, _ = cli(["bench", "train", *tiny_8, "--mixed-precision", "bfloat16"], capsys)
    assert code == 0 and "synthetic images, bfloat16;" in printed
    tiny_gin = ["--gin-file", TINY, "--resolution", "4", "--repeats", "1"]
    code, printed, _ = cli(["bench", "train", *tiny_gin, "--gin-param", "train.mixed_precision='bfloat16'"],
                           capsys)
    assert code == 0 and "synthetic images, bfloat16;" in printed
    code, printed, _ = cli(["bench", "train", *tiny_gin], capsys)
    assert code == 0 and "synthetic images, float32;" in printed
    # G and D compute in the chosen type; the moving-average Gs stays float32
    assert compute_dtypes == [("bfloat16", "bfloat16", "float32")] * 2 + [("float32",) * 3]
    with pytest.raises(SystemExit):
        cli(["bench", "train", "--mixed-precision", "float64"], capsys)
    assert "invalid choice: 'float64'" in capsys.readouterr().err


def test_bench_train_step_only_leaves_out_the_trainers_loop(capsys, monkeypatch):
    from tf_stylegan.training.trainer import Trainer

    monkeypatch.setattr(Trainer, "train", lambda self: pytest.fail("--step-only ran the trainer's loop"))
    code, printed, _ = cli(["bench", "train", "--resolution", "8", "--network-resolution", "8", "--batch",
                            "4", "--repeats", "1", "--fmap-base", "64", "--fmap-max", "16", "--latent-size",
                            "16", "--step-only"], capsys)
    assert code == 0
    row = next(line.split() for line in printed.splitlines() if line.split()[:1] == ["8²"])
    assert float(row[3]) > 0 and row[4:6] == ["-", "-"]  # step img/s, then no loop figures


def test_op_profile_counts_the_kernels_of_a_function_once():
    x = tf.random.normal([4, 16, 16, 8])
    kernel = tf.random.normal([3, 3, 8, 8])
    conv = tf.function(lambda: tf.nn.conv2d(tf.nn.conv2d(x, kernel, 1, "SAME"), kernel, 1, "SAME"))
    profile = dict(bench_measure.op_profile(conv, calls=2))
    convolutions = [name for name in profile if name.endswith("Conv2D")]  # Eigen's or oneDNN's kernel
    assert convolutions and all(profile[name] > 0 for name in convolutions)
    assert "Process" not in profile and "ParallelFor" not in profile


@pytest.mark.slow
def test_bench_train_of_a_gin_file_measures_every_phase_of_its_schedule(capsys):
    assert main(["bench", "train", "--gin-file", TINY, "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.strip().startswith(("4²", "8²"))]
    assert [row[:2] for row in rows] == [["4²", "8²"], ["8²", "fade"], ["8²", "8²"]]
    assert "roofline =" in printed


def test_bench_train_of_a_gin_file_takes_its_bindings_and_the_chosen_phases(capsys):
    code, printed, _ = cli(["bench", "train", "--gin-file", TINY, "--gin-param", "LogisticR1.r1_gamma=3.0",
                            "--gin-param", "LogisticR1.r1_interval=2", "--resolution", "4", "--repeats", "1"],
                           capsys)
    assert code == 0 and "R1 gamma 3.0 every 2 steps (lazy)" in printed
    rows = [line.split() for line in printed.splitlines() if line.strip().startswith(("4²", "8²"))]
    assert [row[:3] for row in rows] == [["4²", "8²", "8"]]  # tiny.gin: 8x8 networks, minibatch_base 8
    code, _, err = cli(["bench", "train", "--gin-file", TINY, "--resolution", "32"], capsys)
    assert code == 1 and "--resolution 32: the schedule's phases are 4², 8² fade, 8²" in err
    code, _, err = cli(["bench", "train", "--gin-file", TINY, "--gin-param", "Generator.no_such_argument=1"],
                       capsys)
    assert code == 1 and "Generator has no argument(s) ['no_such_argument']" in err


def _tiny_macs():
    """Hand count for resolution 8, fmap_base 64 / fmap_max 16 (16 maps), latent 16, 8 mapping layers."""
    mapping = 8 * 16 * 16
    styles = 4 * 16 * 32  # four AdaIN affines w(16) -> 2 x 16
    conv4 = 16 * 9 * 16 * 16  # 3x3 conv at 4x4
    up8 = 64 * 9 * 16 * 16  # nearest x2 then 3x3 conv at 8x8
    conv8 = 64 * 9 * 16 * 16
    to_rgb = 16 * 16 * 3 + 64 * 16 * 3
    return mapping + styles + conv4 + up8 + conv8 + to_rgb


def test_dataset_create_and_info_with_class_folders(tmp_path, capsys):
    from PIL import Image

    for name, level in (("cat", 60), ("dog", 190)):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 10), (level, level, level)).save(tmp_path / "pets" / name / f"{i}.png")
    (tmp_path / "pets" / "dog" / "broken.png").write_bytes(b"broken")
    out_dir = tmp_path / "records"
    argv = ["dataset", "create", str(tmp_path / "pets"), str(out_dir), "--resolution", "8", "--class-folders"]
    code, _, err = cli(argv, capsys)
    assert code == 1 and "broken.png: cannot read the image" in err and not out_dir.exists()
    code, out, err = cli(argv + ["--skip-bad"], capsys)
    assert code == 0, err
    assert "skipped 1 file(s):" in out and "wrote 6 images at 8px (2 levels, 2 classes (cat, dog))" in out
    assert "images  7/7  100.0%" in err and "skipped 1  took" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["pets-classes.json", "pets-r02.tfrecords",
                                                         "pets-r03.tfrecords", "pets-rxx.labels"]
    code, out, _ = cli(["dataset", "info", str(out_dir)], capsys)
    assert code == 0 and out.strip() == ("pets: 6 images, 8px, 3 channel(s), levels [4, 8], labels of 2 "
                                         "components (classes cat, dog)")
