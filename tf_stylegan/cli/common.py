"""Shared by the command modules: the error helper, how commands and options are declared, and
the output line of a written image."""

import argparse
import os
import re
import sys

PROG = "tf-stylegan"

# gin appends "\n  In call to configurable 'NAME' (<function NAME at 0x...>)" (plus " in scope 'S'") to
# an exception raised inside each configurable call it wraps
# (gin.utils.augment_exception_message_and_reraise).
_GIN_CALL_CONTEXT = re.compile(r"\n  In call to configurable '[^'\n]*' \([^\n]*\)"
                               r"(?: in scope '[^'\n]*')?(?=\n|$)")


def strip_gin_context(message):
    """``message`` without gin's appended "In call to configurable ..." lines."""
    return _GIN_CALL_CONTEXT.sub("", message)


def fail(message, code=1):
    """Prints the error (the real message last: without gin's call context) and returns ``code``."""
    print(f"{PROG}: error: {strip_gin_context(message)}", file=sys.stderr)
    return code


def add_command(commands, name, summary, examples):
    """A (sub)command parser whose ``--help`` ends with example invocations.

    ``examples``: ``(command line, comment)`` pairs or command lines, shown as written."""
    lines = []
    for example in examples:
        command, comment = (example, "") if isinstance(example, str) else example
        lines.append(f"  {command}" + (f"   # {comment}" if comment else ""))
    return commands.add_parser(name, help=summary, description=summary,
                               epilog="examples:\n" + "\n".join(lines),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_option(parser, name, **kwargs):
    """Declares ``--kebab-case`` option ``name`` (the spelling ``--help`` shows) and, for a multi-word name,
    its old ``--snake_case`` spelling as an alias hidden from ``--help``: same ``dest`` (``snake_case``),
    type and action (both spellings of an ``append`` option append to one list). Returns the kebab action."""
    name = name.lstrip("-")
    kebab, snake = "--" + name.replace("_", "-"), "--" + name.replace("-", "_")
    kwargs.setdefault("dest", name.replace("-", "_"))
    if kebab == snake:
        return parser.add_argument(kebab, **kwargs)
    # argparse would count a required option given by its alias as missing: either spelling satisfies a group
    container = (parser.add_mutually_exclusive_group(required=True) if kwargs.pop("required", False)
                 else parser)
    action = container.add_argument(kebab, **kwargs)
    alias = {key: value for key, value in kwargs.items() if key not in ("help", "default")}
    container.add_argument(snake, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **alias)
    return action


def class_argument(text):
    """``--class``: an index (digits) or a class name."""
    return int(text) if text.isdigit() else text


def wrote(path, image, detail=""):
    """The line that reports a written image."""
    height, width = image.shape[:2]
    print(f"wrote {path} ({width}x{height} px{detail})")


def output_path(out, default_name, suffixes=None):
    """The file to write: ``out`` if it ends with one of ``suffixes`` (default: the image types),
    else ``out/default_name`` (``out`` a folder). ValueError for another suffix."""
    from tf_stylegan.images import IMAGE_SUFFIXES

    suffixes = suffixes or IMAGE_SUFFIXES
    out = os.fspath(out)
    suffix = os.path.splitext(out)[1].lower()
    if suffix in suffixes:
        return out
    if suffix and not os.path.isdir(out):
        raise ValueError(f"{out}: unsupported file type {suffix!r} (use {', '.join(suffixes)} or a folder)")
    return os.path.join(out, default_name)

