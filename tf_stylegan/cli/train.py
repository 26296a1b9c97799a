"""``train``: train (or resume) a run configured by gin; the gin parsing the other commands share."""

import sys

from tf_stylegan.cli.common import add_command, add_option, fail


def parse_gin(gin_files, gin_params, run_dir=None, resume=False):
    """Parses the gin configuration; None, or the exit code of a reported error."""
    from tf_stylegan.training import configurables

    try:
        configurables.parse(gin_files, gin_params, run_dir, resume)
    except (configurables.RunDirectoryError, FileNotFoundError) as error:
        return fail(str(error))
    except Exception as error:  # gin reports the file and line of a bad binding
        return fail(f"invalid gin configuration: {error}")
    return None


def train(args):
    """Train (or resume) a run configured by gin."""
    from tf_stylegan.training import configurables
    from tf_stylegan.training.checkpoints import CheckpointError
    from tf_stylegan.training.trainer import NonFiniteLossError, TrainingInterrupted

    error = parse_gin(args.gin_file, args.gin_param, args.run_dir, args.resume)
    if error:
        return error
    try:
        configurables.train(run_dir=args.run_dir, resume=args.resume or False)
    except TrainingInterrupted:
        print(f"stopped; resume with: tf-stylegan train --run-dir {args.run_dir} --resume", file=sys.stderr)
        return 130
    except (NonFiniteLossError, CheckpointError, ValueError) as error:
        # DataError, RunDirectoryError, bindings
        return fail(str(error))
    except KeyboardInterrupt:
        print("stopped at once; the previous checkpoint is intact", file=sys.stderr)
        return 130
    return 0


def add_parsers(commands):
    parser = add_command(commands, "train", "train StyleGAN (configured by gin files)", [
        ("tf-stylegan train --gin-file gin/emoji.gin --run-dir runs/emoji", "CPU demo"),
        "tf-stylegan train --gin-file gin/tiny.gin --gin-param 'train.total_kimg=1' --run-dir runs/tiny",
        ("tf-stylegan train --run-dir runs/emoji --resume", "continue where it stopped"),
    ])
    add_option(parser, "gin-file", action="append", default=[], help="gin config file(s), e.g. gin/emoji.gin")
    add_option(parser, "gin-param", action="append", default=[],
               help="a gin binding, e.g. 'train.total_kimg=100' (repeatable)")
    add_option(parser, "run-dir", required=True, help="folder for checkpoints, samples and logs")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue the run in --run-dir (its latest checkpoint, or CHECKPOINT)")
    parser.set_defaults(run=train)
