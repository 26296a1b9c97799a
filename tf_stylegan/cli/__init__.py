"""The ``tf-stylegan`` command line."""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise on a terminal

import tf_stylegan  # noqa: E402,F401  (sets the allocator before TensorFlow starts)
from tf_stylegan.cli import bench, convert, dataset, export, figures, metrics, project, train  # noqa: E402

COMMAND_MODULES = (convert, bench, train, export, metrics, dataset, figures, project)

EXAMPLES = """examples:
  tf-stylegan train --gin-file gin/emoji.gin --run-dir runs/emoji
  tf-stylegan generate runs/emoji --seeds 0-15 --grid 4 --out grid.png
  tf-stylegan export runs/emoji --out exported
  tf-stylegan COMMAND --help        # a command's options and examples"""


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-stylegan", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parsers(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)
