"""Every gin registration of tf_stylegan, in one place: the Keras classes contain no gin code.

The root configurable is ``train``. A gin file binds its arguments and those of the
networks, the loss and the schedule, e.g.::

    train.dataset = 'emoji'
    train.total_kimg = 1000
    train.loss = @LogisticR1()
    LogisticR1.r1_gamma = 10.0
    Generator.fmap_max = 128
    Discriminator.fmap_max = 128
    training_schedule.lod_initial_resolution = 8
"""

import functools
import inspect
import logging
import os

import gin
from tf_stylegan import data
from tf_stylegan.files import write_atomically
from tf_stylegan.metrics import FID, KID, PPL, EmojiFD, EmojiPR, FeatureDistance, lpips_vgg16
from tf_stylegan.nn import discriminator, generator
from tf_stylegan.training import augment, losses, schedule
from tf_stylegan.training.checkpoints import CHECKPOINT_DIR
from tf_stylegan.training.trainer import Trainer

OPERATIVE_CONFIG = "config.gin"


def _network_factory(cls):
    """A gin-configurable stand-in for a Keras class (gin's own wrapping would hide the
    constructor signature Keras inspects): checks binding names, then builds ``cls``."""
    accepted = set(inspect.signature(cls.__init__).parameters) | {"name", "dtype"}

    def factory(**kwargs):
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ValueError(f"{cls.__name__} has no argument(s) {unknown}: check the gin bindings "
                             f"{', '.join(f'{cls.__name__}.{name}' for name in unknown)}")
        return cls(**kwargs)

    factory.__name__ = factory.__qualname__ = cls.__name__
    factory.__doc__ = cls.__doc__
    return factory


Generator = gin.configurable("Generator", module="tf_stylegan")(_network_factory(generator.Generator))
Discriminator = gin.configurable("Discriminator", module="tf_stylegan")(
    _network_factory(discriminator.Discriminator))
gin.configurable("LogisticR1", module="tf_stylegan")(losses.LogisticR1)
gin.configurable("WGANGP", module="tf_stylegan")(losses.WGANGP)
training_schedule = gin.configurable("training_schedule", module="tf_stylegan")(schedule.training_schedule)
gin.configurable("FID", module="tf_stylegan")(FID)
gin.configurable("KID", module="tf_stylegan")(KID)
gin.configurable("EmojiFD", module="tf_stylegan")(EmojiFD)
gin.configurable("EmojiPR", module="tf_stylegan")(EmojiPR)
gin.configurable("PPL", module="tf_stylegan")(PPL)
gin.configurable("FeatureDistance", module="tf_stylegan")(FeatureDistance)
gin.configurable("lpips_vgg16", module="tf_stylegan")(lpips_vgg16)
Augmentation = gin.configurable("Augmentation", module="tf_stylegan")(augment.Augmentation)
gin.configurable("AugmentPipe", module="tf_stylegan")(augment.AugmentPipe)


DATASET_SETTINGS = ("resolution", "num_channels", "label_size", "class_names")  # taken from the dataset


def check_dataset_bindings(images):
    """ValueError when a gin binding of a network's resolution, channels, classes or class names differs
    from the dataset's, which the networks are built with (a binding would otherwise be silently ignored)."""
    for network in ("Generator", "Discriminator"):
        for name in DATASET_SETTINGS:
            try:
                bound = gin.query_parameter(f"{network}.{name}")
            except ValueError:  # not bound
                continue
            given = getattr(images, name)
            if bound != given:
                raise ValueError(f"{network}.{name} = {bound!r} in the gin config, but the networks take the "
                                 f"dataset's: {images.name} has {name} {given} (resize with "
                                 "train.resolution; classes come from train.class_folders or a labels file): "
                                 "remove the binding")


class RunDirectoryError(ValueError):
    """The run directory does not fit the request (checkpoints without --resume, or none with it)."""


@gin.configurable(module="tf_stylegan")
def train(
    run_dir,
    dataset="emoji",  # 'emoji', 'emoji-groups' (labelled by group: class-conditional), either with some
                      # groups only ('emoji:Smileys & Emotion'), a folder of images, or a folder of
                      # official *.tfrecords
    resolution=None,  # training resolution (image folders need it; TFRecords and emoji have one)
    skip_bad=False,  # skip unreadable or unusable images (and report how many) instead of stopping
    class_folders=False,  # an image folder's sub-folders are classes (class-conditional training)
    max_images=None,  # train on this many of the images (a seeded choice, as StyleGAN2-ADA's --subset)
    total_kimg=25000,
    seed=0,
    mirror_augment=True,
    loss=None,  # @LogisticR1() (default, FFHQ) or @WGANGP() (CelebA-HQ)
    G_smoothing_kimg=10.0,
    minibatch_repeats=4,
    checkpoint_kimg=50,
    image_snapshot_kimg=10,
    tick_kimg=None,
    metrics=(),  # e.g. [@FID()] (FID.num_images = 50000, FID.inception_weights = 'imagenet' or a path),
                 # [@EmojiFD()], [@EmojiPR()]
    metrics_kimg=None,  # metrics interval in kimg (None: at the end only)
    max_skipped_steps=10,  # stop after this many consecutive steps with non-finite gradients
                           # (updates skipped)
    resume=False,  # True: the latest checkpoint in run_dir; or a checkpoint path
    init_from=None,  # fine-tuning: start G, D, Gs from an official pickle, a snapshot or a run directory,
                     # at the full resolution from the first step, with fresh optimizers
    freeze_d_layers=0,  # Freeze-D: keep D's this many highest-resolution blocks fixed
    augment=None,  # 'ada' (adaptive discriminator augmentation, Augmentation.* settings), 'fixed'
                   # (Augmentation.p), or None: no augmentation (the paper's configs)
    max_seconds=None,  # wall-time budget: stop (with a checkpoint) at the first group of steps past it
    mixed_precision=None,  # 'float16' (with loss scaling) or 'bfloat16': G and D compute in it, for GPUs
    strategy=None,
    print_fn=print,
):
    """Trains StyleGAN into ``run_dir`` (checkpoints/, samples/, logs/, config.gin, networks.json)."""
    checkpoints = os.path.join(run_dir, CHECKPOINT_DIR)
    has_checkpoints = (os.path.isdir(checkpoints)
                       and any(name.startswith("ckpt") for name in os.listdir(checkpoints)))
    if has_checkpoints and not resume:
        raise RunDirectoryError(f"{run_dir} already holds checkpoints: pass --resume to continue that run, "
                                "or choose another --run-dir")
    folder_options = {name: True for name, value in (("skip_bad", skip_bad), ("class_folders", class_folders))
                      if value}
    images = data.load_dataset(dataset, resolution, **folder_options)
    if max_images is not None:
        images = images.subset(max_images)
    check_dataset_bindings(images)
    if images.skipped:
        print_fn(f"skipped {len(images.skipped)} unusable image(s), e.g. {images.skipped[0][0]}: "
                 f"{images.skipped[0][1]}")
    # Fine-tuning grows nothing: every phase at the full resolution (resumed runs keep this schedule).
    run_schedule = (functools.partial(training_schedule, lod_initial_resolution=images.resolution)
                    if init_from else training_schedule)
    trainer = Trainer(
        run_dir, images, generator=Generator, discriminator=Discriminator, loss=loss or losses.LogisticR1(),
        schedule=run_schedule, init_from=None if resume else init_from, freeze_d_layers=freeze_d_layers,
        augment=augment and functools.partial(Augmentation, augment),
        total_kimg=total_kimg, seed=seed, mirror_augment=mirror_augment,
        G_smoothing_kimg=G_smoothing_kimg, minibatch_repeats=minibatch_repeats,
        checkpoint_kimg=checkpoint_kimg, image_snapshot_kimg=image_snapshot_kimg, tick_kimg=tick_kimg,
        metrics=metrics, metrics_kimg=metrics_kimg, max_skipped_steps=max_skipped_steps,
        mixed_precision=mixed_precision, strategy=strategy, print_fn=print_fn,
    )
    if resume:
        restored = trainer.checkpoints.restore(None if resume is True else resume)
        if restored is None:
            raise RunDirectoryError(f"--resume: no checkpoint in {checkpoints}")
        print_fn(f"resumed from {restored} at {trainer.cur_nimg.numpy() / 1000:.3f} kimg")
    if trainer.is_chief:
        write_operative_config(run_dir)
    print_fn(f"training {images.name} ({images.num_images} images, {images.resolution}px) on "
             f"{trainer.num_replicas} replica(s) into {os.path.abspath(run_dir)}: samples in samples/, "
             f"checkpoints in {CHECKPOINT_DIR}/, TensorBoard logs in logs/")
    trainer.train(max_seconds=max_seconds)
    return trainer


def write_operative_config(run_dir):
    """The bindings in force, as a gin file in the run directory (parsed again on resume)."""
    import tensorflow as tf

    from tf_stylegan.training import reporting

    os.makedirs(run_dir, exist_ok=True)
    text = gin.operative_config_str()
    path = os.path.join(run_dir, OPERATIVE_CONFIG)
    write_atomically(path, text)
    with tf.summary.create_file_writer(os.path.join(run_dir, "logs")).as_default(step=0):
        reporting.text("config/operative", gin.markdown(text))


def parse(gin_files=(), gin_params=(), run_dir=None, resume=False):
    """Parses the configuration: on resume the run's operative config (plus ``gin_params``),
    else ``gin_files`` and ``gin_params``. Errors name the file and line."""
    if resume:
        if gin_files:
            raise RunDirectoryError("--resume re-reads the run's own config.gin: drop --gin-file "
                                    "(use --gin-param to change a binding)")
        gin_files = [os.path.join(run_dir, OPERATIVE_CONFIG)]
        if not os.path.isfile(gin_files[0]):
            raise RunDirectoryError(f"--resume: {gin_files[0]} not found; is {run_dir} a training run?")
    for path in gin_files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"gin file {path} not found")
        gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))  # for its includes
    root = logging.getLogger()
    root.addFilter(_quiet_include_search)
    try:
        gin.parse_config_files_and_bindings(list(gin_files), list(gin_params))
    finally:
        root.removeFilter(_quiet_include_search)


def _quiet_include_search(record):
    """Drops gin's 'Path not found' errors: it logs one for each place it looks for an included file
    before the one that holds it (a file that is nowhere still raises an error naming it)."""
    return not record.getMessage().startswith("Path not found: ")
