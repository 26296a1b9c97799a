"""The package's import direction: each room imports only the rooms below it (README, Architecture)."""

import ast
import subprocess
import sys

import pytest
from helpers import REPO

PACKAGE = REPO / "tf_stylegan"

# Room -> the rooms it may import. A room is a subpackage or a top-level module of tf_stylegan.
ALLOWED = {
    "nn": set(),
    "files": set(),
    "images": {"files"},
    "progress": set(),
    "data": {"files", "progress"},
    "charts": set(),
    "formats": {"nn", "files"},
    "deploy": {"nn", "formats", "files"},
    "metrics": {"nn", "data", "deploy", "files"},
    "training": {"nn", "data", "formats", "deploy", "metrics", "files", "images", "progress"},
    "figures": {"images"},
    "projection": {"data", "images", "metrics", "files"},
    "bench": {"nn", "data", "formats", "deploy", "metrics", "training", "files", "images"},
    "cli": {"nn", "data", "formats", "deploy", "metrics", "training", "figures", "charts", "bench", "files",
            "images", "progress", "projection", "__init__"},
    "__init__": {"deploy"},
    "__main__": {"cli"},
}


def room_of(path):
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_rooms(path):
    """The tf_stylegan rooms that ``path`` imports anywhere (module level or inside functions)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tf_stylegan":
            parts = node.module.split(".")
            if len(parts) > 1:
                rooms.add(parts[1])
            else:
                rooms.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tf_stylegan":
                    rooms.add(parts[1] if len(parts) > 1 else "__init__")
    return rooms


def test_every_room_is_in_the_map():
    rooms = {room_of(path) for path in PACKAGE.rglob("*.py")}
    assert rooms == set(ALLOWED), "a room was added or removed: place it in ALLOWED and in the README's map"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_only_downwards(path):
    room = room_of(path)
    upward = imported_rooms(path) - ALLOWED[room] - {room}
    assert not upward, f"{path.relative_to(PACKAGE)} ({room}) imports {sorted(upward)}"


@pytest.mark.parametrize("room", ["nn", "formats", "deploy"])
def test_a_room_imported_alone_loads_nothing_above_it(room):
    code = ("import importlib, pkgutil, sys\n"
            f"import tf_stylegan.{room} as room\n"
            "for info in pkgutil.iter_modules(room.__path__):\n"
            "    importlib.import_module(room.__name__ + '.' + info.name)\n"
            "print(' '.join({name.split('.')[1] for name in sys.modules "
            "if name.startswith('tf_stylegan.')}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert room in loaded
    assert set(loaded) <= {room} | ALLOWED[room]
