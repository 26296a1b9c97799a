"""``dataset create`` (image folder -> official multi-resolution TFRecords) and ``dataset info``."""

import os

from tf_stylegan.cli.common import add_command, add_option, fail


def dataset_create(args):
    """Image folder -> the official multi-resolution TFRecord layout, decoded and written chunk by chunk."""
    from tf_stylegan.data import DataError, ImageFolder, write_folder_tfrecords
    from tf_stylegan.progress import Progress

    created = not os.path.exists(args.out)
    try:
        folder = ImageFolder(args.images, args.resolution, num_channels=args.channels,
                             background=tuple(args.background), crop=not args.no_crop, skip_bad=args.skip_bad,
                             class_folders=args.class_folders)
        progress = Progress(len(folder.files), "images")
        paths, written = write_folder_tfrecords(folder, args.out, shuffle_seed=args.shuffle_seed,
                                                progress=progress)
        progress.close()
    except DataError as error:
        if created and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)  # made for the files that were not written
        return fail(str(error))
    if folder.skipped:
        print(f"skipped {len(folder.skipped)} file(s):")
        for path, reason in folder.skipped:
            print(f"  {path}: {reason}")
    classes = ""
    if folder.class_folders:
        classes = f", {folder.label_size} classes ({', '.join(folder.class_names)})"
    print(f"wrote {written} images at {folder.resolution}px ({len(paths)} levels{classes}) to {args.out}")
    return 0


def dataset_info(args):
    """What a dataset folder holds."""
    from tf_stylegan.data import DataError, load_dataset

    try:
        images = load_dataset(args.path, args.resolution)
    except DataError as error:
        return fail(str(error))
    labels = f", labels of {images.label_size} components" if images.label_size else ""
    if images.class_names:
        labels += f" (classes {', '.join(images.class_names)})"
    print(f"{images.name}: {images.num_images} images, {images.resolution}px, "
          f"{images.num_channels} channel(s), levels {sorted(images.levels)}{labels}")
    return 0


def add_parsers(commands):
    dataset = add_command(commands, "dataset", "create or inspect datasets", [
        "tf-stylegan dataset create images/ffhq datasets/ffhq --resolution 1024",
        "tf-stylegan dataset info datasets/ffhq",
    ])
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)

    create = add_command(dataset_commands, "create", "image folder -> official multi-resolution TFRecords", [
        "tf-stylegan dataset create images/ffhq datasets/ffhq --resolution 1024",
        ("tf-stylegan dataset create icons/ datasets/icons --resolution 64 --skip-bad --channels 1",
         "grayscale; report unusable images"),
        ("tf-stylegan dataset create pets/ datasets/pets --resolution 256 --class-folders",
         "pets/cat/*.jpg, pets/dog/*.jpg: two classes"),
    ])
    create.add_argument("images", help="folder of PNG / JPEG / WebP images (searched recursively)")
    create.add_argument("out", help="output folder for <name>-rNN.tfrecords")
    create.add_argument("--resolution", type=int, required=True, help="target resolution, a power of two")
    create.add_argument("--channels", type=int, choices=(1, 3), default=3)
    create.add_argument("--background", type=int, nargs=3, default=(255, 255, 255), metavar=("R", "G", "B"),
                        help="colour transparent pixels are composited on")
    add_option(create, "no-crop", action="store_true",
               help="reject non-square images instead of centre-cropping")
    add_option(create, "skip-bad", action="store_true", help="skip unusable images and report them")
    add_option(create, "class-folders", action="store_true",
               help="each sub-folder is a class: write one-hot labels (<name>-rxx.labels)")
    add_option(create, "shuffle-seed", type=int, default=123, help="record order, as official (123)")
    create.set_defaults(run=dataset_create)

    info = add_command(dataset_commands, "info", "describe a dataset ('emoji', images or TFRecords)", [
        "tf-stylegan dataset info emoji",
        "tf-stylegan dataset info datasets/ffhq",
        ("tf-stylegan dataset info images/ffhq --resolution 256", "an image folder needs a resolution"),
    ])
    info.add_argument("path")
    info.add_argument("--resolution", type=int)
    info.set_defaults(run=dataset_info)
