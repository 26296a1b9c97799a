"""Files written whole or not at all, and the one cache folder of the package."""

import contextlib
import os
import shutil
import tempfile


def _process_umask():
    umask = os.umask(0)  # reading it means setting it: done once, at import, before any worker thread
    os.umask(umask)
    return umask


# The mode open() gives a new file: 0666 less the umask (mkstemp's own is 0600).
_NEW_FILE_MODE = 0o666 & ~_process_umask()


@contextlib.contextmanager
def atomic_file(path, suffix=".tmp"):
    """Yields the path of a fresh temporary file beside ``path`` (its folder created); when the block
    ends without an error the file is renamed onto ``path``, else removed. A reader sees the old file
    or the whole new one, never a part, and concurrent writers cannot mix their bytes. ``suffix``
    matters to writers that choose a format by the name (e.g. Keras's ``.weights.h5``)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(descriptor)
    try:
        yield staging
        os.chmod(staging, _NEW_FILE_MODE)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def write_atomically(path, content):
    """Writes ``content`` (str or bytes) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as staging, open(staging, "wb" if isinstance(content, bytes) else "w") as file:
        file.write(content)


def replace_folder(staging, path):
    """Moves the complete folder ``staging`` to ``path``, replacing a folder already there: the old one
    is renamed aside first and deleted only after the new one is in place."""
    if not os.path.exists(path):
        os.rename(staging, path)
        return
    retired = f"{staging}.old"
    os.rename(path, retired)
    os.rename(staging, path)
    shutil.rmtree(retired)


def cache_dir(*parts):
    """``$XDG_CACHE_HOME/tf_stylegan/<parts>`` (``~/.cache`` when the variable is unset, empty or
    relative)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore unset, empty or relative values
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tf_stylegan", *parts)
