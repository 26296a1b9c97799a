"""The ``tf-stylegan`` command line."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise on a terminal

import tf_stylegan  # noqa: E402,F401  (sets the allocator before TensorFlow starts)


def _count(variables):
    return sum(int(v.numpy().size) for v in variables)


def convert_official(args):
    """Official NVlabs pickle -> a tf_stylegan network snapshot."""
    from tf_stylegan.official import OfficialPickleError, load_official_pickle
    from tf_stylegan.snapshot import save_networks

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
    """Generator inference images/s and GFLOP/s against the conv roofline."""
    from tf_stylegan import bench as bench_lib

    rows = bench_lib.run(
        resolutions=args.resolution, batch=args.batch, repeats=args.repeats, truncation_psi=args.psi,
        fmap_base=args.fmap_base, fmap_max=args.fmap_max, latent_size=args.latent_size,
        dlatent_size=args.latent_size, mapping_fmaps=args.latent_size,
    )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)
    return 0


def train(args):
    """Placeholder until the trainer lands."""
    return _fail("training arrives in a later release of tf_stylegan; today you can import official "
                 "networks (convert-official) and benchmark inference (bench)", code=2)


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

    bench_parser = commands.add_parser("bench", help="benchmark generator inference")
    bench_parser.add_argument("--resolution", type=int, nargs="+", default=[256, 1024])
    bench_parser.add_argument("--batch", type=int, default=4)
    bench_parser.add_argument("--repeats", type=int, default=5, help="timed calls (median reported)")
    bench_parser.add_argument("--psi", type=float, default=0.7, help="truncation psi")
    bench_parser.add_argument("--fmap-base", type=int, default=8192)
    bench_parser.add_argument("--fmap-max", type=int, default=512)
    bench_parser.add_argument("--latent-size", type=int, default=512, help="z, w and mapping width")
    bench_parser.add_argument("--json", help="also write the rows to this JSON file")
    bench_parser.set_defaults(run=bench)

    train_parser = commands.add_parser("train", help="train StyleGAN (a later release)")
    train_parser.add_argument("--gin_file", action="append", default=[], help="gin config file(s)")
    train_parser.add_argument("--gin_param", action="append", default=[], help="gin binding(s)")
    train_parser.add_argument("--run_dir", help="folder for checkpoints, samples and logs")
    train_parser.set_defaults(run=train)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
