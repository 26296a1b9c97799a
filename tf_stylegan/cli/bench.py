"""``bench``: generator inference, training speed, export, FID features, or training quality in a time
budget."""

import dataclasses
import json
import math
import os
import sys

from tf_stylegan.cli.common import add_command, add_option, fail
from tf_stylegan.cli.train import parse_gin


def bench(args):
    """Generator inference (images/s, GFLOP/s against the conv roofline), training images/s,
    export sizes and latency, FID feature extraction time, or training quality in a time budget."""
    from tf_stylegan.bench import generator, measure, quality, training

    if args.what == "quality":
        return bench_quality(args)
    widths = dict(fmap_base=args.fmap_base, fmap_max=args.fmap_max, latent_size=args.latent_size,
                  dlatent_size=args.latent_size, mapping_fmaps=args.latent_size)
    if args.what == "train":
        networks, phases = {}, None
        r1_gamma, r1_interval, mixed_precision = args.r1_gamma, args.r1_interval, args.mixed_precision
        # the networks, schedule and R1 of a training config (with its --gin-param bindings)
        if args.gin_file:
            from tf_stylegan.training import configurables
            from tf_stylegan.training.schedule import schedule_phases

            error = parse_gin(args.gin_file, args.gin_param)
            if error:
                return error
            networks = dict(generator=configurables.Generator, discriminator=configurables.Discriminator)
            widths = {}
            network_resolution = (args.network_resolution or [_bound("train.resolution") or 1024])[0]
            r1_gamma = r1_gamma if r1_gamma is not None else _bound("LogisticR1.r1_gamma")
            r1_interval = r1_interval if r1_interval is not None else _bound("LogisticR1.r1_interval")
            mixed_precision = mixed_precision or _bound("train.mixed_precision")
            all_phases = schedule_phases(configurables.training_schedule,
                                                   int(math.log2(network_resolution)))
            chosen = [phase if args.batch is None else dataclasses.replace(phase, minibatch=args.batch)
                      for phase in all_phases
                      if not args.resolution or (phase.stable and phase.resolution in args.resolution)]
            if not chosen:
                return fail(f"--resolution {' '.join(map(str, args.resolution))}: the schedule's phases are "
                            + ", ".join(training.phase_label(phase) for phase in all_phases))
            phases = {network_resolution: chosen}
        try:
            rows = training.run_train(resolutions=args.resolution or [32, 64], batch=args.batch or 8,
                                       network_resolutions=args.network_resolution or [1024],
                                       repeats=args.repeats,
                                       r1_gamma=10.0 if r1_gamma is None else r1_gamma,
                                       r1_interval=r1_interval or 1, phases=phases,
                                       channels=args.channels, profile_top=args.profile,
                                       mixed_precision=mixed_precision, step_only=args.step_only,
                                       **networks, **widths)
        except ValueError as error:  # the networks' or the loss's arguments (gin bindings, width flags)
            return fail(str(error))
        best = max(conv.gflops for conv in measure.roofline())
        print(f"roofline = {best:.1f} GFLOP/s (plain 3x3 convs {measure.ROOFLINE_CONVS}, "
              "batch 4, this run)")
    elif args.what == "fid":
        rows = [quality.run_fid_features(resolution, batch=args.batch or 32)
                for resolution in args.resolution or [256]]
    elif args.what == "export":
        rows = [row for resolution in args.resolution or [256]
                for row in generator.run_export(resolution, repeats=args.repeats, **widths)]
    else:
        rows = generator.run(resolutions=args.resolution or [256, 1024], batch=args.batch or 4,
                             repeats=args.repeats, truncation_psi=args.psi, **widths)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)
    return 0


def _bound(binding):
    """The value gin holds for ``binding`` ('configurable.parameter'), or None where it is not bound."""
    import gin

    try:
        return gin.query_parameter(binding)
    except ValueError:
        return None


def calibration_dataset(args):
    """``--data`` (at ``--resolution``) for ``bench quality --calibrate``, or None: the default
    calibration on the 64 px emoji."""
    from tf_stylegan.data import load_dataset

    if args.data is None:
        if args.resolution:
            raise ValueError("bench quality --calibrate: --resolution needs --data")
        return None
    if args.resolution and len(args.resolution) != 1:
        raise ValueError(f"bench quality --calibrate: one --resolution, got {args.resolution}")
    return load_dataset(args.data, args.resolution[0] if args.resolution else None)


def bench_quality(args):
    """``bench quality``: the emoji Fréchet distance of G and Gs after training a gin config for
    ``--minutes``, or the meter's calibration (``--calibrate``)."""
    from tf_stylegan.bench.quality import run_quality
    from tf_stylegan.metrics import calibrate
    from tf_stylegan.training.checkpoints import CheckpointError
    from tf_stylegan.training.trainer import NonFiniteLossError, TrainingInterrupted

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        return fail(f"--json {args.json}: its folder does not exist")
    if not args.calibrate:
        if not args.gin_file or args.minutes is None:
            return fail("bench quality needs --gin-file and --minutes (or --calibrate)")
        if args.minutes <= 0:
            return fail(f"--minutes must be positive, got {args.minutes}")
        error = parse_gin(args.gin_file, args.gin_param)
        if error:
            return error
    try:
        if args.calibrate:
            result = calibrate(args.num_images, dataset=calibration_dataset(args))
        else:
            result = run_quality(args.minutes, seed=args.seed, run_dir=args.out,
                                           metrics_every_kimg=args.metrics_every_kimg,
                                           num_images=args.num_images)
    except (TrainingInterrupted, KeyboardInterrupt):
        print("bench quality: stopped", file=sys.stderr)
        return 130
    except (NonFiniteLossError, CheckpointError, ValueError) as error:
        # MetricError, DataError, RunDirectoryError
        return fail(str(error))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
    return 0


def add_parsers(commands):
    parser = add_command(commands, "bench", "benchmark generator inference, training speed or quality", [
        ("tf-stylegan bench", "256x256 and 1024x1024, paper widths, batch 4, psi 0.7"),
        "tf-stylegan bench --resolution 128 --fmap-max 256 --json bench.json",
        ("tf-stylegan bench train --network-resolution 32 64 1024", "training images/s"),
        ("tf-stylegan bench train --gin-file gin/emoji.gin", "every phase of a config's schedule"),
        ("tf-stylegan bench export", "sizes and ms/image as Keras, SavedModel, TFLite"),
        ("tf-stylegan bench fid", "seconds per 1,000 images of FID's Inception features"),
        ("tf-stylegan bench quality --gin-file gin/emoji.gin --minutes 30", "efd2k of G and Gs after 30 min"),
        ("tf-stylegan bench quality --calibrate", "the meter's calibration table"),
        ("tf-stylegan bench quality --calibrate --data 'emoji:Smileys & Emotion' --resolution 32",
         "... on the demo's data"),
    ])
    parser.add_argument("what", nargs="?", choices=("generator", "train", "export", "fid", "quality"),
                        default="generator")
    parser.add_argument("--resolution", type=int, nargs="+",
                        help="generator: output resolutions (256 1024); train: stable phases (32 64; with "
                             "--gin-file: its schedule's stable phases at these resolutions, every phase if "
                             "none given); export, fid: 256; quality --calibrate: the --data's resolution")
    add_option(parser, "network-resolution", type=int, nargs="+",
               help="train: full resolution of the networks the phases run in (1024; with --gin-file: "
                    "its train.resolution)")
    parser.add_argument("--batch", type=int,
                        help="generator: 4; train: 8 (the --gin-file's schedule); fid: 32")
    add_option(parser, "r1-gamma", type=float, help="train: R1 weight (10, or the --gin-file's LogisticR1)")
    add_option(parser, "r1-interval", type=int,
               help="train: minibatches per R1 update (1, or the --gin-file's; lazy R1 above 1; "
                    "figures are per step)")
    add_option(parser, "gin-file", action="append", default=[],
               help="train: take the networks from a training config instead of the width flags; "
                    "quality: the training config")
    add_option(parser, "gin-param", action="append", default=[],
               help="train, quality: a gin binding, e.g. 'train.total_kimg=100' (repeatable)")
    parser.add_argument("--minutes", type=float, help="quality: wall-time budget of the training run")
    parser.add_argument("--seed", type=int, help="quality: train.seed (default: the config's)")
    parser.add_argument("--out", help="quality: keep the run in this folder (default: a temporary one)")
    add_option(parser, "metrics-every-kimg", type=float,
               help="quality: also measure Gs every this many kimg during training (in the budget)")
    add_option(parser, "num-images", type=int, default=2000,
               help="quality: generated images per measurement, or images per calibration row")
    parser.add_argument("--calibrate", action="store_true",
                        help="quality: print the meter on transformed real emoji instead of training")
    parser.add_argument("--data", help="quality --calibrate: calibrate on this RGB dataset at --resolution "
                                       "(e.g. 'emoji:Smileys & Emotion'; default: the 64 px emoji)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median reported)")
    parser.add_argument("--psi", type=float, default=0.7, help="truncation psi")
    parser.add_argument("--channels", type=int, default=3, help="train: image channels (1: grayscale)")
    add_option(parser, "mixed-precision", choices=("float16", "bfloat16"),
               help="train: G and D compute in this type (default float32, or the --gin-file's "
                    "train.mixed_precision)")
    add_option(parser, "step-only", action="store_true",
               help="train: time the step function alone, not the trainer's loop (minutes per phase at "
                    "paper widths)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="train: also print the N op types that take the step's kernel time longest "
                             "(TensorFlow's profiler)")
    add_option(parser, "fmap-base", type=int, default=8192)
    add_option(parser, "fmap-max", type=int, default=512)
    add_option(parser, "latent-size", type=int, default=512, help="z, w and mapping width")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.set_defaults(run=bench)
