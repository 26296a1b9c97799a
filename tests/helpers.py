"""Helpers of the tests, one home for each: paths (the repository, gin/tiny.gin, the official reference
files), small network configurations and builders, weight perturbers, NumPy references (nearest
upsampling, box downsampling, NCHW <-> NHWC), and in-process training and CLI runs.

Fixtures stay in conftest.py (pytest's convention); test files import these by name, as pytest puts
this folder on ``sys.path`` (rootdir conftest, "prepend" import mode)::

    from helpers import TINY, small_generator
"""

import collections
import functools
import glob
import hashlib
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

import gin
from tf_stylegan import data
from tf_stylegan.cli import main
from tf_stylegan.formats import official
from tf_stylegan.nn.discriminator import Discriminator
from tf_stylegan.nn.generator import Generator
from tf_stylegan.training import configurables
from tf_stylegan.training.trainer import Trainer

# ----------------------------------------------------------------------------------------- paths

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = str(REPO / "gin" / "tiny.gin")  # 8x8 emoji, tiny widths: a training run of seconds
OFFICIAL_REF = REPO.parent / "shared" / "official_ref"


def official_ref_path(name):
    """Path of a file in ../shared/official_ref, or a skip naming why it is absent."""
    path = OFFICIAL_REF / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared beside the checkout")
        pytest.skip(f"official reference vectors not found at {path} (they live in ../shared, "
                    "outside the repository; a user's clone has none)")
    return path


@functools.lru_cache(maxsize=None)
def official_networks(name):
    """(G, D, Gs) of an official pickle of ../shared/official_ref, loaded once per name (shared by
    every test: a test that changes a network, e.g. its lod, restores it)."""
    return official.load_official_pickle(official_ref_path(name))


# ------------------------------------------------------------------------------------ small networks

LATENT = 16  # latent, dlatent and mapping width of the small networks unless given
# Small widths for fast tests: every stage gets min(256 / 2**stage, 32) feature maps.
SMALL_WIDTHS = dict(fmap_base=256, fmap_max=32)


def small_widths(resolution):
    """SMALL_WIDTHS where they give >= 8 feature maps at the top; 8 maps everywhere above that.

    (With SMALL_WIDTHS the 1024 block would get 256 / 2**9 = 0 feature maps.)
    """
    return dict(SMALL_WIDTHS) if resolution <= 64 else dict(fmap_base=4 * resolution, fmap_max=8)


def small_generator(resolution=16, latent=LATENT, **kwargs):
    """A built Generator of small widths whose latent, dlatent and mapping widths are ``latent``;
    ``kwargs`` (any Generator argument) override."""
    args = dict(small_widths(resolution), resolution=resolution, latent_size=latent, dlatent_size=latent,
                mapping_fmaps=latent)
    args.update(kwargs)
    generator = Generator(**args)
    generator.build()
    return generator


def small_discriminator(resolution=16, **kwargs):
    """A built Discriminator of small widths; ``kwargs`` override."""
    args = dict(small_widths(resolution), resolution=resolution)
    args.update(kwargs)
    discriminator = Discriminator(**args)
    discriminator.build()
    return discriminator


def perturb(network, seed=0, scale=0.3, names=None, const_scale=0.0, w_avg_scale=0.0):
    """Gives the variables a fresh network (or layer) builds at constants values as after training, so
    that no check passes by them; returns ``network``. Every zero trainable (biases, noise strengths: noise
    would have no effect), or with ``names`` those of them so named (e.g. ``("strength",)``), gets
    N(0, scale²); with ``const_scale`` the 4x4 const input (ones: a layer of zero variance, which
    float16 turns into NaN) 1 + N(0, const_scale²); with ``w_avg_scale`` w_avg (zeros: truncation
    would be a plain scaling) N(0, w_avg_scale²). One random stream of ``seed``."""
    rng = np.random.default_rng(seed)
    for variable in network.trainable_weights:
        value = np.asarray(variable)
        name = variable.path.split("/")[-1]
        if not value.any() and (names is None or name in names):
            variable.assign(rng.normal(0.0, scale, value.shape).astype(np.float32))
        elif const_scale and name == "const":
            variable.assign(1 + const_scale * rng.normal(size=value.shape).astype(np.float32))
    if w_avg_scale:
        network.w_avg.assign(rng.normal(0.0, w_avg_scale, network.w_avg.shape).astype(np.float32))
    return network


def clone(network, **config):
    """A new built network of the same config (but for the arguments ``config`` gives) holding copies of
    every variable."""
    copy = type(network).from_config({**network.get_config(), **config})
    copy.build()
    for target, source in zip(copy.variables, network.variables, strict=True):
        target.assign(source)
    return copy


def variables_digest(*networks):
    """SHA-256 of every float variable of the networks (to compare replicas and workers)."""
    digest = hashlib.sha256()
    for network in networks:
        for variable in network.variables:
            value = np.asarray(variable)
            if value.dtype.kind == "f":
                digest.update(value.tobytes())
    return digest.hexdigest()


def latents(batch, seed=0, size=LATENT):
    """float32 [batch, size] N(0, 1) latents of ``seed``."""
    return np.random.default_rng(seed).standard_normal((batch, size)).astype(np.float32)


# ------------------------------------------------------------------------------------------ trainers

def one_replica_trainer(run_dir, levels, generator, discriminator, loss, **kwargs):
    """A Trainer on the images ``levels`` ({r: uint8 [N, r, r, 3]}) with the Generator and
    Discriminator arguments ``generator`` and ``discriminator``, on one CPU replica, printing
    nothing; ``kwargs`` go to the Trainer."""
    return Trainer(
        str(run_dir), data.ImageDataset("given", max(levels), 3, levels),
        generator=functools.partial(Generator, **generator),
        discriminator=functools.partial(Discriminator, **discriminator), loss=loss,
        strategy=tf.distribute.MirroredStrategy(["/cpu:0"]), print_fn=lambda *args: None, **kwargs)


def _constructor_arguments(network):
    config = network.get_config()
    for key in ("name", "trainable", "dtype", "resolution", "num_channels"):
        config.pop(key, None)
    return config


def trainer_from_official(run_dir, loss):
    """A one-replica Trainer whose G, D and Gs hold network-small.pkl's weights."""
    G0, D0, Gs0 = official_networks("network-small.pkl")
    levels = {r: np.zeros((4, r, r, 3), np.uint8) for r in (4, 8, 16)}
    trainer = one_replica_trainer(run_dir, levels, _constructor_arguments(G0), _constructor_arguments(D0),
                                  loss)
    for ours, theirs in ((trainer.G, G0), (trainer.D, D0), (trainer.Gs, Gs0)):
        assert ([v.path.split("/", 1)[1] for v in ours.variables]
                == [v.path.split("/", 1)[1] for v in theirs.variables])
        for target, source in zip(ours.variables, theirs.variables):
            target.assign(source)
    return trainer


# ---------------------------------------------------------------------------------- NumPy references

def normal(rng, *shape):
    """float32 N(0, 1) samples of ``shape`` from the Generator ``rng``."""
    return rng.standard_normal(shape).astype(np.float32)


def nchw(images):
    """NHWC -> NCHW (the official layout)."""
    return np.transpose(np.asarray(images), [0, 3, 1, 2])


def nhwc(images):
    """NCHW -> NHWC."""
    return np.transpose(np.asarray(images), [0, 2, 3, 1])


def upsample(images, factor=2):
    """Nearest-neighbour upsampling of NHWC images: every pixel repeated factor x factor times."""
    return np.repeat(np.repeat(np.asarray(images), factor, axis=1), factor, axis=2)


def box_down(images, factor=2):
    """Box downsampling of NHWC images: the mean of every factor x factor block (in their dtype)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


# ------------------------------------------------------------------------------ training and the CLI

def subprocess_env(**extra):
    """The environment of a Python subprocess of a test: unbuffered output, TensorFlow's info logs off."""
    return dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", **extra)


def train_in_process(run_dir, bindings=(), gin_files=(TINY,), resume=False, **kwargs):
    """configurables.parse + train (as the CLI does); returns (trainer, printed lines). Leaves gin's
    config clear."""
    lines = []
    gin.clear_config()
    try:
        configurables.parse([] if resume else list(gin_files), list(bindings), run_dir=str(run_dir),
                            resume=resume)
        trainer = configurables.train(run_dir=str(run_dir), resume=resume, print_fn=lines.append, **kwargs)
    finally:
        gin.clear_config()
    return trainer, lines


def cli(argv, capsys):
    """The CLI's ``main`` in-process: (exit code, stdout, stderr); gin's config is cleared around it."""
    gin.clear_config()
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        gin.clear_config()
    out, err = capsys.readouterr()
    return code, out, err


def read_events(run_dir):
    """(scalars {tag: {step: value}}, {tag: [(step, tensor proto, plugin name)]}) of run_dir/logs."""
    scalars, everything = collections.defaultdict(dict), collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(run_dir, "logs", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                everything[value.tag].append((event.step, value.tensor, plugin))
                if plugin == "scalars":
                    scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    return dict(scalars), dict(everything)
