"""Figures of a trained generator (tf_stylegan.figures): generate, style-mix, truncation, noise,
interpolate."""

import os

from tf_stylegan.cli.common import add_command, add_option, class_argument, fail, output_path, wrote
from tf_stylegan.images import IMAGE_SUFFIXES, save_gif, save_image

ALL_CLASSES = "all"  # generate --class all: one grid row per class


def _figure_model(figures, args, all_classes=False):
    """``tf_stylegan.load`` of the command's model (for ``--class``'s class, unless ``all_classes``), its
    failures as FigureError."""
    from tf_stylegan.deploy.inference import load

    if args.class_index == ALL_CLASSES and not all_classes:
        raise figures.FigureError("--class all makes a grid of generate only: give one class")
    if int(args.batch_size) < 1:
        raise figures.FigureError(f"batch size must be at least 1, got {args.batch_size}")
    try:
        model = load(args.model, batch_size=int(args.batch_size))
    except (ValueError, OSError) as error:  # LoadError, OfficialPickleError, unreadable files
        raise figures.FigureError(str(error) or f"{args.model}: cannot load a generator") from None
    if (args.class_index is None and not model.label_size) or all_classes:
        return model
    try:
        return model.for_class(args.class_index)
    except ValueError as error:  # no --class for a conditional model, or a wrong one
        raise figures.FigureError(f"{args.model}: {str(error).replace('class_index', '--class')}") from None


def _given(figures, model, seeds, w_files):
    """The parsed ``seeds`` or, with --w files, their projected images (figures.Latents, in order)."""
    if not w_files:
        return seeds
    import numpy as np

    from tf_stylegan.projection import load_projection

    saved = [load_projection(path, model.num_layers, model.dlatent_size, model.noise_size)
             for path in w_files]
    names = [os.path.basename(name) for projection in saved for name in projection.targets]
    return figures.Latents(np.concatenate([p.dlatents for p in saved]),
                           np.concatenate([p.noise for p in saved]), names)


def _seeds(figures, seeds, w_files, option="--seeds"):
    """The seeds of ``option``, or None when --w files replace them (an error to give both or neither)."""
    if w_files:
        if seeds:
            raise figures.FigureError(f"give {option} or projected latents, not both")
        return None
    return figures.parse_seeds(seeds)


def figure_class_grid(figures, args):
    """generate --class all: one grid, a row per class and a column per seed."""
    if args.w:
        raise figures.FigureError("--class all draws seeds in every class: give --seeds, not --w")
    seeds = figures.parse_seeds(args.seeds)
    path = output_path(args.out, "grid.png")
    model = _figure_model(figures, args, all_classes=True)
    grid = figures.class_grid(model, seeds, args.truncation_psi)
    wrote(save_image(path, grid), grid, f", {model.label_size} classes (rows) x {len(seeds)} seeds")


def figure_generate(args):
    """One PNG per seed into a folder, or a grid of them into one image file."""
    from tf_stylegan import figures

    if args.class_index == ALL_CLASSES:
        try:
            figure_class_grid(figures, args)
        except (ValueError, OSError) as error:
            return fail(str(error))
        return 0
    try:
        seeds = _seeds(figures, args.seeds, args.w)
        if args.grid is not None and args.grid < 1:
            raise figures.FigureError(f"--grid must be at least 1, got {args.grid}")
        to_file = os.path.splitext(args.out)[1].lower() in IMAGE_SUFFIXES
        output_path(args.out, "grid.png")  # rejects an unsupported suffix before loading
        model = _figure_model(figures, args)
        seeds = _given(figures, model, seeds, args.w)
        images = figures.generate_images(model, seeds, args.truncation_psi)
        columns = figures.grid_columns(len(seeds), args.grid)
        if not to_file:
            names = ([f"projected{index:04d}" for index in range(len(seeds))] if args.w
                     else [f"seed{seed:04d}" for seed in seeds])
            for name, image in zip(names, images):
                wrote(save_image(os.path.join(args.out, f"{name}.png"), image), image)
        if to_file or args.grid is not None:
            grid = figures.image_grid(images, columns)
            path = save_image(output_path(args.out, "grid.png"), grid)
            wrote(path, grid, f", {len(seeds)} {'images' if args.w else 'seeds'} in {columns} columns")
    except (ValueError, OSError) as error:  # FigureError, bad output paths
        return fail(str(error))
    return 0


def figure_style_mix(args):
    """The paper's Fig. 3: rows (A) take the --styles layers of the columns (B)."""
    from tf_stylegan import figures

    try:
        rows = _seeds(figures, args.rows, args.rows_w, "--rows")
        columns = _seeds(figures, args.cols, args.cols_w, "--cols")
        if rows is not None and len(args.styles) not in (1, len(rows)):
            raise figures.FigureError(f"give one --styles, or one per row ({len(rows)}), "
                                      f"got {len(args.styles)}")
        path = output_path(args.out, "style-mix.png")
        model = _figure_model(figures, args)
        rows = _given(figures, model, rows, args.rows_w)
        columns = _given(figures, model, columns, args.cols_w)
        styles = args.styles if len(args.styles) > 1 else args.styles[0]
        described = sorted(set(figures.describe_styles(spec, model.num_layers) for spec in args.styles))
        image = figures.style_mixing_figure(model, rows, columns, styles, args.truncation_psi)
        wrote(save_image(path, image), image,
               f", {len(rows)} rows x {len(columns)} columns of {model.resolution} px; styles "
               + "; ".join(described))
    except (ValueError, OSError) as error:  # FigureError, bad output paths
        return fail(str(error))
    return 0


def figure_truncation(args):
    """The paper's Fig. 8: rows = seeds, columns = psi from 1 to -1."""
    from tf_stylegan import figures

    try:
        seeds = _seeds(figures, args.seeds, args.w)
        psis = figures.truncation_psis(args.steps)
        path = output_path(args.out, "truncation.png")
        model = _figure_model(figures, args)
        seeds = _given(figures, model, seeds, args.w)
        image = figures.truncation_figure(model, seeds, args.steps)
        wrote(save_image(path, image), image,
               f", {len(seeds)} {'images' if args.w else 'seeds'} x psi "
               + " ".join(f"{psi:g}" for psi in psis)
               + f" (on layers below {model.truncation_cutoff} of {model.num_layers})")
    except (ValueError, OSError) as error:  # FigureError, bad output paths
        return fail(str(error))
    return 0


def figure_noise(args):
    """The paper's Figs. 5 and 4: noise in all / no / fine / coarse layers, and the std map."""
    from tf_stylegan import figures

    try:
        seeds = _seeds(figures, args.seeds, args.w)
        if args.draws < 2:
            raise figures.FigureError(f"--draws must be at least 2, got {args.draws}")
        path = output_path(args.out, "noise.png")
        model = _figure_model(figures, args)
        seeds = _given(figures, model, seeds, args.w)
        image, means = figures.noise_figure(model, seeds, args.draws, args.truncation_psi, args.noise_seed)
        groups = figures.noise_layer_groups(model.num_layers)
        wrote(save_image(path, image), image,
               f", {len(seeds)} row(s): all / no / fine {figures.describe_layers(groups['fine'])} / "
               f"coarse {figures.describe_layers(groups['coarse'])} noise, std map")
        for name, mean in zip(seeds.names if args.w else [f"seed {seed}" for seed in seeds], means):
            print(f"  {name}: mean per-pixel std over {args.draws} noise draws {mean:.3f} "
                  "(pixel values 0-255)")
    except (ValueError, OSError) as error:  # FigureError, bad output paths
        return fail(str(error))
    return 0


def figure_interpolate(args):
    """An animated GIF walking through the seeds' latents (lerp in W, slerp in Z)."""
    from tf_stylegan import figures

    try:
        seeds = _seeds(figures, args.seeds, args.w)
        if seeds is not None and len(seeds) < 2:
            raise figures.FigureError("an interpolation needs at least two seeds")
        if args.frames < 1 or args.duration < 1:
            raise figures.FigureError("--frames and --duration must be at least 1")
        path = output_path(args.out, f"interpolate-{args.space}.gif", suffixes=(".gif",))
        model = _figure_model(figures, args)
        seeds = _given(figures, model, seeds, args.w)
        frames = figures.interpolation_frames(model, seeds, args.frames, args.space, args.loop,
                                              args.truncation_psi)
        wrote(save_gif(path, frames, args.duration), frames[0],
               f", {len(frames)} frames of {args.duration} ms, {args.space} space"
               f"{', looping' if args.loop else ''}")
    except (ValueError, OSError) as error:  # FigureError, bad output paths
        return fail(str(error))
    return 0



SEEDS_HELP = "seeds: integers and inclusive ranges, e.g. 1 2 3 or 0-15"
W_HELP = ("instead of seeds: projected images (projected_w.npz files of tf-stylegan project, all their "
          "images in order; not truncated unless --truncation-psi is given)")


def _figure_parser(commands, name, summary, examples, run, psi=True):
    """A figure command: MODEL, --out, --truncation-psi (unless ``psi`` is False) and --batch-size."""
    parser = add_command(commands, name, summary, examples)
    parser.add_argument("model",
                        help="exported SavedModel, network snapshot, training run directory or official .pkl")
    parser.add_argument("--out", required=True, help="output file, or a folder for the default file name")
    if psi:
        add_option(parser, "truncation-psi", type=float,
                   help="truncation psi (default: the model's; 1 disables)")
    add_option(parser, "batch-size", type=int, default=8, help="images per generator call")
    parser.add_argument("--class", dest="class_index", type=class_argument, metavar="CLASS",
                        help="class of a class-conditional model: an index (0 .. classes - 1) or a name"
                             + ("; all: a grid with a row per class" if name == "generate" else ""))
    parser.set_defaults(run=run)
    return parser


def add_parsers(commands):
    generate = _figure_parser(
        commands, "generate", "images of seeds: one PNG each (seed0001.png ...) or a grid", [
            ("tf-stylegan generate runs/emoji --seeds 0-15 --out images/", "images/seed0000.png ..."),
            ("tf-stylegan generate runs/emoji --seeds 0-15 --grid 4 --out grid.png", "one 4-column grid"),
            ("tf-stylegan generate runs/emoji --seeds 0-7 --class all --out classes.png",
             "a class-conditional model: a row per class"),
            "tf-stylegan generate ffhq-1024 --seeds 1 2 3 --truncation-psi 0.5 --batch-size 1 --out images/",
        ], figure_generate)
    generate.add_argument("--seeds", nargs="*", default=[], help=SEEDS_HELP)
    generate.add_argument("--w", nargs="+", metavar="NPZ", help=W_HELP)
    generate.add_argument("--grid", type=int, metavar="COLUMNS",
                          help="grid columns (an image --out is a grid; a folder also gets grid.png)")

    style_mix = _figure_parser(commands, "style-mix", "style mixing figure (paper Fig. 3)", [
        "tf-stylegan style-mix runs/emoji --rows 1 2 3 --cols 4 5 6 --styles coarse --out fig3.png",
        ("tf-stylegan style-mix runs/emoji --rows 1 2 --cols 4 5 6 --styles coarse fine --out mix.png",
         "one --styles per row"),
        ("tf-stylegan style-mix runs/emoji --rows-w projected/projected_w.npz --cols 4 5 6 --out mix.png",
         "a real image (tf-stylegan project) takes the seeds' coarse styles"),
    ], figure_style_mix)
    style_mix.add_argument("--rows", nargs="*", default=[], help="row (A, destination) " + SEEDS_HELP)
    style_mix.add_argument("--cols", nargs="*", default=[], help="column (B, source of styles) " + SEEDS_HELP)
    add_option(style_mix, "rows-w", nargs="+", metavar="NPZ", help="rows: " + W_HELP)
    add_option(style_mix, "cols-w", nargs="+", metavar="NPZ", help="columns: " + W_HELP)
    style_mix.add_argument("--styles", nargs="+", default=["coarse"],
                           help="layers taken from the column: coarse (0-3), middle (4-7), fine (8-), "
                                "a range like 0-3; one, or one per row")

    truncation = _figure_parser(
        commands, "truncation", "truncation trick figure (paper Fig. 8): psi from 1 to -1", [
            ("tf-stylegan truncation runs/emoji --seeds 1 2 --steps 9 --out trunc.png",
             "columns: psi = 1 ... -1"),
        ], figure_truncation, psi=False)
    truncation.add_argument("--seeds", nargs="*", default=[], help=SEEDS_HELP)
    truncation.add_argument("--w", nargs="+", metavar="NPZ", help=W_HELP)
    truncation.add_argument("--steps", type=int, default=9, help="psi values (columns), from 1 to -1")

    noise = _figure_parser(
        commands, "noise", "noise figure (paper Figs. 4, 5): all / no / fine / coarse noise, std map", [
            "tf-stylegan noise runs/emoji --seeds 1 2 --draws 100 --out noise.png",
            "tf-stylegan noise runs/emoji --seeds 1 --draws 20 --noise-seed 7 --out noise.png",
        ], figure_noise)
    noise.add_argument("--seeds", nargs="*", default=[], help=SEEDS_HELP)
    noise.add_argument("--w", nargs="+", metavar="NPZ", help=W_HELP)
    noise.add_argument("--draws", type=int, default=100, help="noise draws of the std map")
    add_option(noise, "noise-seed", type=int, default=0, help="seed of the fresh noise")

    interpolate = _figure_parser(
        commands, "interpolate", "animated GIF of a walk through the seeds' latents", [
            "tf-stylegan interpolate runs/emoji --seeds 1 2 3 --frames 30 --space z --loop --out walk.gif",
            ("tf-stylegan interpolate runs/emoji --seeds 0-3 --out walks/", "walks/interpolate-w.gif"),
            ("tf-stylegan interpolate runs/emoji --w projected/projected_w.npz --out walk.gif",
             "between projected real images"),
        ], figure_interpolate)
    interpolate.add_argument("--seeds", nargs="*", default=[], help=SEEDS_HELP)
    interpolate.add_argument("--w", nargs="+", metavar="NPZ", help=W_HELP)
    interpolate.add_argument("--frames", type=int, default=30, help="frames from one seed to the next")
    interpolate.add_argument("--space", choices=("w", "z"), default="w",
                             help="w: linear in (truncated) W; z: spherical in Z, then mapping")
    interpolate.add_argument("--loop", action="store_true", help="walk back to the first seed")
    interpolate.add_argument("--duration", type=int, default=40, help="milliseconds per frame")
