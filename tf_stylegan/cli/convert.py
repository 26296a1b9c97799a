"""``convert-official``: an official NVlabs pickle -> a tf_stylegan network snapshot."""

import os

from tf_stylegan.cli.common import add_command, fail


def _count(variables):
    return sum(int(v.numpy().size) for v in variables)


def convert_official(args):
    """Official NVlabs pickle -> a tf_stylegan network snapshot."""
    from tf_stylegan.formats.official import OfficialPickleError, load_official_pickle
    from tf_stylegan.formats.snapshot import save_networks

    if not os.path.isfile(args.pkl):
        return fail(f"{args.pkl}: no such file")
    try:
        G, D, Gs = load_official_pickle(args.pkl)
    except OfficialPickleError as error:
        return fail(str(error))
    try:
        save_networks(args.out, G, D, Gs, overwrite=args.force,
                      metadata={"converted_from": os.path.abspath(args.pkl),
                                "source": "official StyleGAN pickle"})
    except FileExistsError as error:
        return fail(str(error))
    print(f"converted {args.pkl} -> {args.out}")
    print(f"  resolution {Gs.resolution}, latent {Gs.latent_size}, dlatent {Gs.dlatent_size}, "
          f"{Gs.num_layers} style layers")
    print(f"  trainable parameters: G {_count(G.trainable_weights):,}, D {_count(D.trainable_weights):,}")
    return 0


def add_parsers(commands):
    convert = add_command(commands, "convert-official", "convert an official NVlabs StyleGAN pickle", [
        "tf-stylegan convert-official karras2019stylegan-ffhq-1024x1024.pkl ffhq-1024",
        ("tf-stylegan convert-official network.pkl converted --force", "replace an existing folder"),
    ])
    convert.add_argument("pkl", help="official network pickle, e.g. karras2019stylegan-ffhq-1024x1024.pkl")
    convert.add_argument("out", help="output folder (tf_stylegan network snapshot)")
    convert.add_argument("--force", action="store_true", help="replace OUT if it exists")
    convert.set_defaults(run=convert_official)
