"""``metrics`` (FID / KID / EFD / EPR / PPL of a generator) and ``curve`` (a run's logged metrics as a
chart)."""

import json
import os

import tf_stylegan
from tf_stylegan.cli.common import add_command, add_option, fail, output_path, wrote


def metrics(args):
    """FID / KID / EFD / EPR / PPL of a generator: a result line per metric, and JSON with --json."""
    from tf_stylegan import metrics as metrics_lib
    from tf_stylegan.data import DataError, load_dataset
    from tf_stylegan.deploy.inference import LoadError

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        return fail(f"--json {args.json}: its folder does not exist")
    try:
        distance = (metrics_lib.lpips_vgg16(args.lpips_weights, args.vgg_weights) if args.lpips_weights
                    else None)
        chosen = [metrics_lib.metric_from_name(name, args.num_images, args.num_samples,
                                               args.inception_weights, distance, args.batch_size,
                                               args.cache_dir) for name in args.names]
        metrics_lib.prepare(chosen)  # every weights file first, before hours of computing
        generator = tf_stylegan.load(args.model, batch_size=args.batch_size or 8)
        dataset = load_dataset(args.data, generator.resolution) if args.data else None
        results = metrics_lib.evaluate(chosen, generator, dataset)
    except (metrics_lib.MetricError, LoadError, DataError) as error:
        return fail(str(error))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"model": args.model, "data": args.data, "results": results}, file, indent=1)
        print(f"wrote {args.json}")
    return 0


def curve(args):
    """The run's metrics.jsonl as a PNG chart, one panel per metric."""
    from tf_stylegan import charts
    from tf_stylegan.images import save_image

    try:
        path = output_path(args.out or args.run_dir, "metrics.png")
        image = charts.metric_curves(args.run_dir, args.metric)
        wrote(save_image(path, image), image)
    except (charts.ChartError, ValueError, OSError) as error:
        return fail(str(error))
    return 0


def add_parsers(commands):
    parser = add_command(
        commands, "metrics", "FID, KID, the emoji meters and perceptual path length of a generator", [
            ("tf-stylegan metrics fid50k --model runs/ffhq --data datasets/ffhq",
             "FID, 50k generated vs 50k real"),
            "tf-stylegan metrics fid10k --model exported/stylegan --data emoji --json fid.json",
            "tf-stylegan metrics ppl_wend ppl_zfull --model ffhq-1024 --lpips-weights lpips_vgg16.npz",
            ("tf-stylegan metrics efd2k --model runs/emoji --data emoji", "the emoji quality meter"),
            ("tf-stylegan metrics epr2k --model runs/emoji --data emoji", "its precision and recall"),
        ])
    parser.add_argument("names", nargs="+", metavar="METRIC", help="fid50k (fid<N>k), kid50k (kid<N>k), "
                        "efd2k (efd<N>k), epr2k (epr<N>k), ppl_zfull, ppl_wfull, ppl_zend, ppl_wend")
    parser.add_argument("--model", required=True, help="export, snapshot, run directory or official .pkl")
    parser.add_argument("--data", help="real images for FID / KID / EFD / EPR: 'emoji' (or some groups: "
                        "'emoji:Smileys & Emotion'), a TFRecord folder or an image folder")
    add_option(parser, "num-images", type=int,
               help="FID / KID / EPR: images of each kind; EFD: generated images (default: from the name)")
    add_option(parser, "num-samples", type=int, help="PPL: samples (default 100,000)")
    add_option(parser, "inception-weights", default="imagenet",
               help="'imagenet' (Keras's cached file or a download) or the notop .h5 path")
    add_option(parser, "lpips-weights", help="PPL: .npz of LPIPS-VGG16's linear layers lin0..lin4")
    add_option(parser, "vgg-weights", default="imagenet", help="PPL: VGG16 'imagenet' or a notop .h5 path")
    add_option(parser, "batch-size", type=int)
    add_option(parser, "cache-dir", help="real-statistics cache (default ~/.cache/tf_stylegan/fid)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.set_defaults(run=metrics)

    curve_parser = add_command(commands, "curve", "plot a run's metrics.jsonl (train.metrics) against kimg", [
        ("tf-stylegan curve runs/emoji", "runs/emoji/metrics.png"),
        "tf-stylegan curve runs/emoji --metric efd2k --out efd.png",
    ])
    curve_parser.add_argument("run_dir", help="training run directory")
    curve_parser.add_argument("--metric", nargs="+", help="metric names (default: every one the run logged)")
    curve_parser.add_argument("--out", help="PNG file or folder (default: RUN_DIR/metrics.png)")
    curve_parser.set_defaults(run=curve)
