"""``project``: real images into a generator's latent space (tf_stylegan.projection)."""

import os

from tf_stylegan.cli.common import add_command, add_option, class_argument, fail, wrote
from tf_stylegan.images import save_gif, save_image
from tf_stylegan.progress import Progress, duration

DISTANCES = ("lpips", "emoji", "mse")
GIF_FRAMES = 100  # frames of an optimisation animation, at most


def _distance(projection, args):
    """The chosen distance; ProjectionError / MetricError when its weights are missing."""
    if args.distance == "lpips":
        if not args.lpips_weights:
            raise projection.ProjectionError(
                "the default distance, LPIPS-VGG16, needs its linear layers: --lpips-weights lpips_vgg16.npz "
                "(lin0..lin4) and, offline, --vgg-weights <VGG16 notop .h5>; or --distance emoji (emoji "
                "models: the quality meter's classifier, no download) or --distance mse (pixels)")
        return projection.lpips_distance(args.lpips_weights, args.vgg_weights)
    return projection.emoji_distance() if args.distance == "emoji" else projection.pixel_distance()


def _generator(path):
    """The Keras Gs of a snapshot, run directory or .pkl (projection optimises through the network)."""
    from tf_stylegan.deploy.inference import LoadError, keras_generator
    from tf_stylegan.projection import ProjectionError

    try:
        return keras_generator(path)
    except LoadError as error:
        raise ProjectionError(str(error)) from None


def _stems(paths):
    """A distinct output name per target: its file stem, numbered when stems repeat."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    return [stem if stems.count(stem) == 1 else f"{stem}-{index}" for index, stem in enumerate(stems)]


def project(args):
    """Projects the targets; writes projected_w.npz, each projection and a target | projection pair."""
    import numpy as np

    from tf_stylegan import projection
    from tf_stylegan.metrics.errors import MetricError

    if args.steps < 1:
        return fail(f"--steps must be at least 1, got {args.steps}")
    missing = [path for path in args.target if not os.path.isfile(path)]
    if missing:
        return fail(f"target image {missing[0]} not found")
    try:
        distance = _distance(projection, args)
        generator = _generator(args.model)
        synthesis = generator.synthesis
        targets = projection.load_targets(args.target, synthesis.resolution, synthesis.num_channels)
        projector = projection.Projector(generator, distance, projection.Schedule(num_steps=args.steps),
                                         w_plus=args.w_plus, seed=args.seed, class_index=args.class_index)
        print(f"projecting {len(targets)} image(s) into {args.model} ({synthesis.resolution} px, "
              f"{'W+' if args.w_plus else 'W'}, distance {distance.name}, {args.steps} steps, "
              f"seed {args.seed})")
        projector.statistics()  # W's average and spread (10,000 mapped latents) before the progress line
        progress = Progress(args.steps, unit="steps")
        result = projector.project(
            targets,
            progress=lambda step, distances: progress.update(step, distance=f"{distances.mean():.4f}"),
            frame_every=max(1, args.steps // GIF_FRAMES) if args.gif else 0)
        progress.close()
    except (projection.ProjectionError, MetricError) as error:
        return fail(str(error))
    os.makedirs(args.out, exist_ok=True)
    saved = projection.save_projection(os.path.join(args.out, projection.PROJECTION_FILE), result,
                                       targets=args.target, distance=distance.name, seed=args.seed,
                                       w_plus=args.w_plus)
    print(f"wrote {saved} (dlatents {list(result.dlatents.shape)}, noise {list(result.noise.shape)})")
    rgb = (lambda images: np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images)
    psnrs = projection.psnr(result.images, targets)
    for index, (stem, psnr) in enumerate(zip(_stems(args.target), psnrs)):
        image = rgb(result.images[index])
        wrote(save_image(os.path.join(args.out, f"{stem}-projected.png"), image), image)
        pair = np.concatenate([rgb(targets[index]), image], axis=1)
        wrote(save_image(os.path.join(args.out, f"{stem}-target-projected.png"), pair), pair,
              f", target | projection: {distance.name} {result.distances[-1, index]:.4f}, PSNR {psnr:.2f} dB")
        if args.gif:
            frames = rgb(result.frames[:, index])
            path = save_gif(os.path.join(args.out, f"{stem}-steps.gif"), frames)
            wrote(path, frames[0], f", {len(frames)} frames of the optimisation")
    print(f"{args.steps} steps in {duration(result.seconds)} ({1000 * result.seconds / args.steps:.1f} s per "
          f"1000 steps for {len(targets)} image(s))")
    return 0


def add_parsers(commands):
    summary = "project real images into the latent space (StyleGAN2's projector)"
    parser = add_command(commands, "project", summary, [
        ("tf-stylegan project runs/emoji --target face.png --distance emoji --out projected/",
         "an emoji model: no download"),
        "tf-stylegan project ffhq.pkl --target me.jpg --lpips-weights lpips_vgg16.npz --out projected/",
        ("tf-stylegan project runs/emoji --target a.png b.png --distance mse --w-plus --gif --out p/",
         "two targets, one w per layer"),
        ("tf-stylegan style-mix runs/emoji --rows-w projected/projected_w.npz --cols 1 2 3 --out mix.png",
         "then edit"),
    ])
    parser.add_argument("model", help="training run directory, network snapshot or official .pkl")
    parser.add_argument("--target", nargs="+", required=True,
                        help="image files (any size and mode: centre-cropped and resized)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of target i's noise draws: seed + i")
    parser.add_argument("--distance", choices=DISTANCES, default="lpips",
                        help="lpips: LPIPS-VGG16 (as official; needs --lpips-weights); emoji: the emoji "
                             "classifier's features (no download); mse: pixels")
    add_option(parser, "lpips-weights", help="lpips: .npz of LPIPS-VGG16's linear layers lin0..lin4")
    add_option(parser, "vgg-weights", default="imagenet", help="lpips: VGG16 'imagenet' or a notop .h5 path")
    add_option(parser, "w-plus", action="store_true", help="one w per layer (W+) instead of one for all (W)")
    parser.add_argument("--class", dest="class_index", type=class_argument, metavar="CLASS",
                        help="class of a class-conditional model: an index (0 .. classes - 1) or a name")
    parser.add_argument("--gif", action="store_true", help="also an animation of the optimisation per target")
    parser.set_defaults(run=project)
