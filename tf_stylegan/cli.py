"""The ``tf-stylegan`` command line."""

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise on a terminal

import tf_stylegan  # noqa: E402,F401  (sets the allocator before TensorFlow starts)


def _count(variables):
    return sum(int(v.numpy().size) for v in variables)


def convert_official(args):
    """Official NVlabs pickle -> a tf_stylegan network snapshot."""
    from tf_stylegan.formats.official import OfficialPickleError, load_official_pickle
    from tf_stylegan.formats.snapshot import save_networks

    if not os.path.isfile(args.pkl):
        return _fail(f"{args.pkl}: no such file")
    try:
        G, D, Gs = load_official_pickle(args.pkl)
    except OfficialPickleError as error:
        return _fail(str(error))
    try:
        save_networks(args.out, G, D, Gs, overwrite=args.force,
                      metadata={"converted_from": os.path.abspath(args.pkl), "source": "official StyleGAN pickle"})
    except FileExistsError as error:
        return _fail(str(error))
    print(f"converted {args.pkl} -> {args.out}")
    print(f"  resolution {Gs.resolution}, latent {Gs.latent_size}, dlatent {Gs.dlatent_size}, "
          f"{Gs.num_layers} style layers")
    print(f"  trainable parameters: G {_count(G.trainable_weights):,}, D {_count(D.trainable_weights):,}")
    return 0


def bench(args):
    """Generator inference (images/s, GFLOP/s against the conv roofline), training images/s,
    export sizes and latency, FID feature extraction time, or training quality in a time budget."""
    from tf_stylegan import bench as bench_lib

    if args.what == "quality":
        return bench_quality(args)
    widths = dict(fmap_base=args.fmap_base, fmap_max=args.fmap_max, latent_size=args.latent_size,
                  dlatent_size=args.latent_size, mapping_fmaps=args.latent_size)
    if args.what == "train":
        networks, phases = {}, None
        if args.gin_file:  # the networks of a training config: its Generator / Discriminator bindings
            import gin
            from tf_stylegan.training import configurables

            configurables.parse(args.gin_file)
            networks = dict(generator=configurables.Generator, discriminator=configurables.Discriminator)
            widths = {}
            if not args.resolution:  # every phase of the config's schedule
                try:
                    network_resolution = gin.query_parameter("train.resolution") or args.network_resolution[0]
                except ValueError:  # not bound: TFRecords give it
                    network_resolution = args.network_resolution[0]
                phases = {network_resolution: bench_lib.schedule_phases(
                    configurables.training_schedule, int(math.log2(network_resolution)))}
        rows = bench_lib.run_train(resolutions=args.resolution or [32, 64], batch=args.batch or 8,
                                   network_resolutions=args.network_resolution, repeats=args.repeats,
                                   r1_gamma=args.r1_gamma, r1_interval=args.r1_interval, phases=phases,
                                   channels=args.channels, profile_top=args.profile, **networks, **widths)
        best = max(conv.gflops for conv in bench_lib.roofline())
        print(f"roofline = {best:.1f} GFLOP/s (plain 3x3 convs {bench_lib.ROOFLINE_CONVS}, batch 4, this run)")
    elif args.what == "fid":
        rows = [bench_lib.run_fid_features(resolution, batch=args.batch or 32) for resolution in args.resolution or [256]]
    elif args.what == "export":
        rows = [row for resolution in args.resolution or [256]
                for row in bench_lib.run_export(resolution, repeats=args.repeats, **widths)]
    else:
        rows = bench_lib.run(resolutions=args.resolution or [256, 1024], batch=args.batch or 4,
                             repeats=args.repeats, truncation_psi=args.psi, **widths)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)
    return 0


def bench_quality(args):
    """``bench quality``: the emoji Fréchet distance of G and Gs after training a gin config for
    ``--minutes``, or the meter's calibration (``--calibrate``)."""
    from tf_stylegan import bench as bench_lib
    from tf_stylegan.metrics import calibrate
    from tf_stylegan.training.trainer import (
        CheckpointError,
        NonFiniteLossError,
        TrainingInterrupted,
    )

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        return _fail(f"--json {args.json}: its folder does not exist")
    if not args.calibrate:
        if not args.gin_file or args.minutes is None:
            return _fail("bench quality needs --gin_file and --minutes (or --calibrate)")
        if args.minutes <= 0:
            return _fail(f"--minutes must be positive, got {args.minutes}")
        error = _parse_gin(args.gin_file, args.gin_param)
        if error:
            return error
    try:
        if args.calibrate:
            result = calibrate(args.num_images)
        else:
            result = bench_lib.run_quality(args.minutes, seed=args.seed, run_dir=args.out,
                                           metrics_every_kimg=args.metrics_every_kimg, num_images=args.num_images)
    except (TrainingInterrupted, KeyboardInterrupt):
        print("bench quality: stopped", file=sys.stderr)
        return 130
    except (NonFiniteLossError, CheckpointError, ValueError) as error:  # MetricError, DataError, RunDirectoryError
        return _fail(str(error))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
    return 0


def _parse_gin(gin_files, gin_params, run_dir=None, resume=False):
    """Parses the gin configuration; None, or the exit code of a reported error."""
    from tf_stylegan.training import configurables

    try:
        configurables.parse(gin_files, gin_params, run_dir, resume)
    except (configurables.RunDirectoryError, FileNotFoundError) as error:
        return _fail(str(error))
    except Exception as error:  # gin reports the file and line of a bad binding
        return _fail(f"invalid gin configuration: {error}")
    return None


def train(args):
    """Train (or resume) a run configured by gin."""
    from tf_stylegan.training import configurables
    from tf_stylegan.training.trainer import (
        CheckpointError,
        NonFiniteLossError,
        TrainingInterrupted,
    )

    error = _parse_gin(args.gin_file, args.gin_param, args.run_dir, args.resume)
    if error:
        return error
    try:
        configurables.train(run_dir=args.run_dir, resume=args.resume or False)
    except TrainingInterrupted:
        print(f"stopped; resume with: tf-stylegan train --run_dir {args.run_dir} --resume", file=sys.stderr)
        return 130
    except (NonFiniteLossError, CheckpointError, ValueError) as error:  # DataError, RunDirectoryError, bindings
        return _fail(str(error))
    except KeyboardInterrupt:
        print("stopped at once; the previous checkpoint is intact", file=sys.stderr)
        return 130
    return 0


def dataset_create(args):
    """Image folder -> the official multi-resolution TFRecord layout."""
    from tf_stylegan.data import DataError, load_image_folder, write_tfrecords

    try:
        images = load_image_folder(args.images, args.resolution, num_channels=args.channels,
                                   background=tuple(args.background), crop=not args.no_crop,
                                   skip_bad=args.skip_bad)
        paths = write_tfrecords(images, args.out, shuffle_seed=args.shuffle_seed)
    except DataError as error:
        return _fail(str(error))
    if images.skipped:
        print(f"skipped {len(images.skipped)} file(s):")
        for path, reason in images.skipped:
            print(f"  {path}: {reason}")
    print(f"wrote {images.num_images} images at {images.resolution}px ({len(paths)} levels) to {args.out}")
    return 0


def dataset_info(args):
    """What a dataset folder holds."""
    from tf_stylegan.data import DataError, load_dataset

    try:
        images = load_dataset(args.path, args.resolution)
    except DataError as error:
        return _fail(str(error))
    print(f"{images.name}: {images.num_images} images, {images.resolution}px, {images.num_channels} channel(s), "
          f"levels {sorted(images.levels)}")
    return 0


def export(args):
    """The moving-average generator -> SavedModel (TF Serving layout), optionally TFLite."""
    from tf_stylegan.deploy import export as export_lib
    from tf_stylegan.deploy.inference import LoadError, keras_generator
    from tf_stylegan.nn import precision

    try:
        generator = keras_generator(args.model)
    except LoadError as error:
        return _fail(str(error))
    if float(generator.lod.numpy()) != 0:
        print(f"warning: {args.model} is still growing (lod {float(generator.lod.numpy()):g}): the export "
              "produces its current, blended output", file=sys.stderr)
    if args.dtype != "float32":
        if args.tflite or args.quantize:
            return _fail(f"--dtype {args.dtype} exports a SavedModel for GPU serving; for a float16 TFLite "
                         "model use --quantize float16 (with the default --dtype float32)")
        generator = export_lib.generator_copy(generator, precision.policy_name(args.dtype))
    module = export_lib.GeneratorModule(generator)  # traced once: for the export, its check and TFLite's
    try:
        path = export_lib.export_saved_model(module, args.out, name=args.name, version=args.version)
    except export_lib.ExportError as error:
        return _fail(str(error))
    print(f"  SavedModel: {export_lib.folder_bytes(path) / 1e6:.1f} MB")
    if args.tflite or args.quantize:
        suffix = f"_{args.quantize}" if args.quantize else ""
        tflite_path = os.path.join(args.out, f"{args.name}_{os.path.basename(path)}{suffix}.tflite")
        try:
            export_lib.export_tflite(path, tflite_path, quantize=args.quantize)
            differences = export_lib.verify_tflite(module, tflite_path,
                                                   float_atol=None if args.quantize else 1e-3)
        except Exception as error:  # converter errors, ExportError of the check
            if os.path.exists(tflite_path):
                os.remove(tflite_path)
            return _fail(f"TFLite export failed (the SavedModel {path} is fine): {error}")
        latency = export_lib.tflite_latency(tflite_path, generator.latent_size)
        print(f"exported {tflite_path}: {os.path.getsize(tflite_path) / 1e6:.1f} MB, "
              f"{latency * 1000:.1f} ms per image (batch 1), signatures {', '.join(export_lib.TFLITE_SIGNATURES)}")
        print("  max |difference| from Keras (uint8 images in levels): " + "; ".join(
            f"{name} " + ", ".join(f"{key} {value:.2g}" for key, value in outputs.items())
            for name, outputs in differences.items()))
    return 0


def metrics(args):
    """FID / KID / EFD / PPL of a generator: a result line per metric, and JSON with --json."""
    from tf_stylegan import metrics as metrics_lib
    from tf_stylegan.data import DataError, load_dataset
    from tf_stylegan.deploy.inference import LoadError

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        return _fail(f"--json {args.json}: its folder does not exist")
    try:
        distance = metrics_lib.lpips_vgg16(args.lpips_weights, args.vgg_weights) if args.lpips_weights else None
        chosen = [metrics_lib.metric_from_name(name, args.num_images, args.num_samples, args.inception_weights,
                                               distance, args.batch_size, args.cache_dir) for name in args.names]
        metrics_lib.prepare(chosen)  # every weights file first, before hours of computing
        generator = tf_stylegan.load(args.model, batch_size=args.batch_size or 8)
        dataset = load_dataset(args.data, generator.resolution) if args.data else None
        results = metrics_lib.evaluate(chosen, generator, dataset)
    except (metrics_lib.MetricError, LoadError, DataError) as error:
        return _fail(str(error))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"model": args.model, "data": args.data, "results": results}, file, indent=1)
        print(f"wrote {args.json}")
    return 0


# --- figures: generate, style-mix, truncation, noise, interpolate (tf_stylegan.figures); curve (charts) -


def _wrote(path, image, detail=""):
    height, width = image.shape[:2]
    print(f"wrote {path} ({width}x{height} px{detail})")


def _figure_model(figures, args):
    """The loaded model of a figure command (FigureError for a bad path or batch size)."""
    return figures.load_model(args.model, args.batch_size)


def figure_generate(args):
    """One PNG per seed into a folder, or a grid of them into one image file."""
    from tf_stylegan import figures

    try:
        seeds = figures.parse_seeds(args.seeds)
        if args.grid is not None and args.grid < 1:
            raise figures.FigureError(f"--grid must be at least 1, got {args.grid}")
        to_file = os.path.splitext(args.out)[1].lower() in figures.IMAGE_SUFFIXES
        figures.output_path(args.out, "grid.png")  # rejects an unsupported suffix before loading
        images = figures.generate_images(_figure_model(figures, args), seeds, args.truncation_psi)
        columns = figures.grid_columns(len(seeds), args.grid)
        if not to_file:
            for seed, image in zip(seeds, images):
                _wrote(figures.save_image(os.path.join(args.out, f"seed{seed:04d}.png"), image), image)
        if to_file or args.grid is not None:
            grid = figures.image_grid(images, columns)
            path = figures.save_image(figures.output_path(args.out, "grid.png"), grid)
            _wrote(path, grid, f", {len(seeds)} seeds in {columns} columns")
    except (figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def figure_style_mix(args):
    """The paper's Fig. 3: rows (A) take the --styles layers of the columns (B)."""
    from tf_stylegan import figures

    try:
        rows, columns = figures.parse_seeds(args.rows), figures.parse_seeds(args.cols)
        if len(args.styles) not in (1, len(rows)):
            raise figures.FigureError(f"give one --styles, or one per row ({len(rows)}), got {len(args.styles)}")
        path = figures.output_path(args.out, "style-mix.png")
        model = _figure_model(figures, args)
        styles = args.styles if len(args.styles) > 1 else args.styles[0]
        described = sorted(set(figures.describe_styles(spec, model.num_layers) for spec in args.styles))
        image = figures.style_mixing_figure(model, rows, columns, styles, args.truncation_psi)
        _wrote(figures.save_image(path, image), image,
               f", {len(rows)} rows x {len(columns)} columns of {model.resolution} px; styles " + "; ".join(described))
    except (figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def figure_truncation(args):
    """The paper's Fig. 8: rows = seeds, columns = psi from 1 to -1."""
    from tf_stylegan import figures

    try:
        seeds = figures.parse_seeds(args.seeds)
        psis = figures.truncation_psis(args.steps)
        path = figures.output_path(args.out, "truncation.png")
        model = _figure_model(figures, args)
        image = figures.truncation_figure(model, seeds, args.steps)
        _wrote(figures.save_image(path, image), image,
               f", {len(seeds)} seeds x psi " + " ".join(f"{psi:g}" for psi in psis)
               + f" (on layers below {model.truncation_cutoff} of {model.num_layers})")
    except (figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def figure_noise(args):
    """The paper's Figs. 5 and 4: noise in all / no / fine / coarse layers, and the std map."""
    from tf_stylegan import figures

    try:
        seeds = figures.parse_seeds(args.seeds)
        if args.draws < 2:
            raise figures.FigureError(f"--draws must be at least 2, got {args.draws}")
        path = figures.output_path(args.out, "noise.png")
        model = _figure_model(figures, args)
        image, means = figures.noise_figure(model, seeds, args.draws, args.truncation_psi, args.noise_seed)
        groups = figures.noise_layer_groups(model.num_layers)
        _wrote(figures.save_image(path, image), image,
               f", {len(seeds)} row(s): all / no / fine {figures.describe_layers(groups['fine'])} / "
               f"coarse {figures.describe_layers(groups['coarse'])} noise, std map")
        for seed, mean in zip(seeds, means):
            print(f"  seed {seed}: mean per-pixel std over {args.draws} noise draws {mean:.3f} (pixel values 0-255)")
    except (figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def figure_interpolate(args):
    """An animated GIF walking through the seeds' latents (lerp in W, slerp in Z)."""
    from tf_stylegan import figures

    try:
        seeds = figures.parse_seeds(args.seeds)
        if len(seeds) < 2:
            raise figures.FigureError("an interpolation needs at least two seeds")
        if args.frames < 1 or args.duration < 1:
            raise figures.FigureError("--frames and --duration must be at least 1")
        path = figures.output_path(args.out, f"interpolate-{args.space}.gif", suffixes=(".gif",))
        frames = figures.interpolation_frames(_figure_model(figures, args), seeds, args.frames, args.space,
                                              args.loop, args.truncation_psi)
        _wrote(figures.save_gif(path, frames, args.duration), frames[0],
               f", {len(frames)} frames of {args.duration} ms, {args.space} space{', looping' if args.loop else ''}")
    except (figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def curve(args):
    """The run's metrics.jsonl as a PNG chart, one panel per metric."""
    from tf_stylegan import charts, figures

    try:
        path = figures.output_path(args.out or args.run_dir, "metrics.png")
        image = charts.metric_curves(args.run_dir, args.metric)
        _wrote(figures.save_image(path, image), image)
    except (charts.ChartError, figures.FigureError, OSError) as error:
        return _fail(str(error))
    return 0


def _fail(message, code=1):
    print(f"tf-stylegan: error: {message}", file=sys.stderr)
    return code


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-stylegan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert-official", help="convert an official NVlabs StyleGAN pickle")
    convert.add_argument("pkl", help="official network pickle, e.g. karras2019stylegan-ffhq-1024x1024.pkl")
    convert.add_argument("out", help="output folder (tf_stylegan network snapshot)")
    convert.add_argument("--force", action="store_true", help="replace OUT if it exists")
    convert.set_defaults(run=convert_official)

    bench_parser = commands.add_parser("bench", help="benchmark generator inference, training speed or quality")
    bench_parser.add_argument("what", nargs="?", choices=("generator", "train", "export", "fid", "quality"),
                              default="generator")
    bench_parser.add_argument("--resolution", type=int, nargs="+",
                              help="generator: output resolutions (256 1024); train: stable phases (32 64; with "
                                   "--gin_file and none given: every phase of its schedule); export, fid: 256")
    bench_parser.add_argument("--network-resolution", type=int, nargs="+", default=[1024],
                              help="train: full resolution of the networks the phases run in")
    bench_parser.add_argument("--batch", type=int, help="generator: 4; train: 8; fid: 32")
    bench_parser.add_argument("--r1-gamma", type=float, default=10.0, help="train: R1 weight")
    bench_parser.add_argument("--r1-interval", type=int, default=1,
                              help="train: minibatches per R1 update (lazy R1 above 1; figures are per step)")
    bench_parser.add_argument("--gin_file", action="append", default=[],
                              help="train: take the networks from a training config instead of the width flags; "
                                   "quality: the training config")
    bench_parser.add_argument("--gin_param", action="append", default=[],
                              help="quality: a gin binding, e.g. 'train.total_kimg=100' (repeatable)")
    bench_parser.add_argument("--minutes", type=float, help="quality: wall-time budget of the training run")
    bench_parser.add_argument("--seed", type=int, help="quality: train.seed (default: the config's)")
    bench_parser.add_argument("--out", help="quality: keep the run in this folder (default: a temporary one)")
    bench_parser.add_argument("--metrics_every_kimg", type=float,
                              help="quality: also measure Gs every this many kimg during training (in the budget)")
    bench_parser.add_argument("--num_images", type=int, default=2000,
                              help="quality: generated images per measurement, or images per calibration row")
    bench_parser.add_argument("--calibrate", action="store_true",
                              help="quality: print the meter on transformed real emoji instead of training")
    bench_parser.add_argument("--repeats", type=int, default=5, help="timed calls (median reported)")
    bench_parser.add_argument("--psi", type=float, default=0.7, help="truncation psi")
    bench_parser.add_argument("--channels", type=int, default=3, help="train: image channels (1: grayscale)")
    bench_parser.add_argument("--profile", type=int, default=0, metavar="N",
                              help="train: also print the N op types that take the step's kernel time longest "
                                   "(TensorFlow's profiler)")
    bench_parser.add_argument("--fmap-base", type=int, default=8192)
    bench_parser.add_argument("--fmap-max", type=int, default=512)
    bench_parser.add_argument("--latent-size", type=int, default=512, help="z, w and mapping width")
    bench_parser.add_argument("--json", help="also write the rows to this JSON file")
    bench_parser.set_defaults(run=bench)

    train_parser = commands.add_parser("train", help="train StyleGAN (configured by gin files)")
    train_parser.add_argument("--gin_file", action="append", default=[], help="gin config file(s), e.g. gin/emoji.gin")
    train_parser.add_argument("--gin_param", action="append", default=[],
                              help="a gin binding, e.g. 'train.total_kimg=100' (repeatable)")
    train_parser.add_argument("--run_dir", required=True, help="folder for checkpoints, samples and logs")
    train_parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                              help="continue the run in --run_dir (its latest checkpoint, or CHECKPOINT)")
    train_parser.set_defaults(run=train)

    export_parser = commands.add_parser(
        "export", help="export the moving-average generator (SavedModel for TF Serving, TFLite)")
    export_parser.add_argument("model", help="training run directory, network snapshot or official .pkl")
    export_parser.add_argument("--out", required=True, help="export folder; the model goes to OUT/NAME/VERSION")
    export_parser.add_argument("--name", default="stylegan", help="model name (TF Serving's model folder)")
    export_parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    export_parser.add_argument("--tflite", action="store_true", help="also write a float32 TFLite model")
    export_parser.add_argument("--quantize", choices=("float16", "dynamic"),
                               help="write a quantized TFLite model instead (implies --tflite)")
    export_parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                               help="the SavedModel computes in this type (float16: for GPUs; the mapping "
                                    "network and normalisation statistics stay float32; inputs and outputs "
                                    "are float32 / uint8 either way)")
    export_parser.set_defaults(run=export)

    metrics_parser = commands.add_parser(
        "metrics", help="FID, KID, emoji Fréchet distance and perceptual path length of a generator")
    metrics_parser.add_argument("names", nargs="+", metavar="METRIC", help="fid50k (fid<N>k), kid50k (kid<N>k), "
                                "efd2k (efd<N>k), ppl_zfull, ppl_wfull, ppl_zend, ppl_wend")
    metrics_parser.add_argument("--model", required=True, help="export, snapshot, run directory or official .pkl")
    metrics_parser.add_argument("--data", help="real images for FID / KID / EFD: 'emoji', a TFRecord folder or an "
                                "image folder")
    metrics_parser.add_argument("--num_images", type=int,
                                help="FID / KID: images of each kind; EFD: generated images (default: from the name)")
    metrics_parser.add_argument("--num_samples", type=int, help="PPL: samples (default 100,000)")
    metrics_parser.add_argument("--inception_weights", default="imagenet",
                                help="'imagenet' (Keras's cached file or a download) or the notop .h5 path")
    metrics_parser.add_argument("--lpips_weights", help="PPL: .npz of LPIPS-VGG16's linear layers lin0..lin4")
    metrics_parser.add_argument("--vgg_weights", default="imagenet", help="PPL: VGG16 'imagenet' or a notop .h5 path")
    metrics_parser.add_argument("--batch_size", type=int)
    metrics_parser.add_argument("--cache_dir", help="real-statistics cache (default ~/.cache/tf_stylegan/fid)")
    metrics_parser.add_argument("--json", help="also write the results to this JSON file")
    metrics_parser.set_defaults(run=metrics)

    dataset = commands.add_parser("dataset", help="create or inspect datasets")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    create = dataset_commands.add_parser("create", help="image folder -> official multi-resolution TFRecords")
    create.add_argument("images", help="folder of PNG / JPEG / WebP images (searched recursively)")
    create.add_argument("out", help="output folder for <name>-rNN.tfrecords")
    create.add_argument("--resolution", type=int, required=True, help="target resolution, a power of two")
    create.add_argument("--channels", type=int, choices=(1, 3), default=3)
    create.add_argument("--background", type=int, nargs=3, default=(255, 255, 255), metavar=("R", "G", "B"),
                        help="colour transparent pixels are composited on")
    create.add_argument("--no-crop", action="store_true", help="reject non-square images instead of centre-cropping")
    create.add_argument("--skip-bad", action="store_true", help="skip unusable images and report them")
    create.add_argument("--shuffle-seed", type=int, default=123, help="record order, as official (123)")
    create.set_defaults(run=dataset_create)
    info = dataset_commands.add_parser("info", help="describe a dataset ('emoji', images or TFRecords)")
    info.add_argument("path")
    info.add_argument("--resolution", type=int)
    info.set_defaults(run=dataset_info)

    curve_parser = commands.add_parser("curve", help="plot a run's metrics.jsonl (train.metrics) against kimg")
    curve_parser.add_argument("run_dir", help="training run directory")
    curve_parser.add_argument("--metric", nargs="+", help="metric names (default: every one the run logged)")
    curve_parser.add_argument("--out", help="PNG file or folder (default: RUN_DIR/metrics.png)")
    curve_parser.set_defaults(run=curve)

    def figure_parser(name, summary, run, psi=True):
        sub = commands.add_parser(name, help=summary)
        sub.add_argument("model", help="exported SavedModel, network snapshot, training run directory or official .pkl")
        sub.add_argument("--out", required=True, help="output file, or a folder for the default file name")
        if psi:
            sub.add_argument("--truncation_psi", "--truncation-psi", type=float,
                             help="truncation psi (default: the model's; 1 disables)")
        sub.add_argument("--batch_size", "--batch-size", type=int, default=8, help="images per generator call")
        sub.set_defaults(run=run)
        return sub

    seeds_help = "seeds: integers and inclusive ranges, e.g. 1 2 3 or 0-15"
    generate = figure_parser("generate", "images of seeds: one PNG each (seed0001.png ...) or a grid",
                             figure_generate)
    generate.add_argument("--seeds", nargs="*", default=[], help=seeds_help)
    generate.add_argument("--grid", type=int, metavar="COLUMNS",
                          help="grid columns (an image --out is a grid; a folder also gets grid.png)")
    style_mix = figure_parser("style-mix", "style mixing figure (paper Fig. 3)", figure_style_mix)
    style_mix.add_argument("--rows", nargs="*", default=[], help="row (A, destination) " + seeds_help)
    style_mix.add_argument("--cols", nargs="*", default=[], help="column (B, source of styles) " + seeds_help)
    style_mix.add_argument("--styles", nargs="+", default=["coarse"],
                           help="layers taken from the column: coarse (0-3), middle (4-7), fine (8-), a range "
                                "like 0-3; one, or one per row")
    truncation = figure_parser("truncation", "truncation trick figure (paper Fig. 8): psi from 1 to -1",
                               figure_truncation, psi=False)
    truncation.add_argument("--seeds", nargs="*", default=[], help=seeds_help)
    truncation.add_argument("--steps", type=int, default=9, help="psi values (columns), from 1 to -1")
    noise = figure_parser("noise", "noise figure (paper Figs. 4, 5): all / no / fine / coarse noise, std map",
                          figure_noise)
    noise.add_argument("--seeds", nargs="*", default=[], help=seeds_help)
    noise.add_argument("--draws", type=int, default=100, help="noise draws of the std map")
    noise.add_argument("--noise_seed", "--noise-seed", type=int, default=0, help="seed of the fresh noise")
    interpolate = figure_parser("interpolate", "animated GIF of a walk through the seeds' latents",
                                figure_interpolate)
    interpolate.add_argument("--seeds", nargs="*", default=[], help=seeds_help)
    interpolate.add_argument("--frames", type=int, default=30, help="frames from one seed to the next")
    interpolate.add_argument("--space", choices=("w", "z"), default="w",
                             help="w: linear in (truncated) W; z: spherical in Z, then mapping")
    interpolate.add_argument("--loop", action="store_true", help="walk back to the first seed")
    interpolate.add_argument("--duration", type=int, default=40, help="milliseconds per frame")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
