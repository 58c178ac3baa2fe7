"""Atomic file writes: a reader (or a crash) sees either the old file or the complete new one.

Folders too (:func:`write_directory_atomic`): written whole under a hidden temporary name, then renamed.

The temporary file comes from ``tempfile.mkstemp``, which creates it readable by its owner only (0600)
whatever the umask; it is given the mode ``open()`` would have given a new file (0666 minus the
umask) before it is renamed, so colleagues on a shared machine can read a run's results as they can
read any other file the user writes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file next to ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, new_file_mode())
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: 0o666 without the process's umask bits."""
    # Reading the umask means setting it; 0o077 for that instant, so that a file another thread creates
    # meanwhile is at worst more private than intended, never less.
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda file: file.write(text.encode("utf-8")))


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_directory_atomic(path: str | Path, files: Mapping[str, bytes], *, replace: bool = False) -> None:
    """Make the folder ``path`` holding ``files`` (file names -> contents), never a half-written one.

    The files are written and synced in a hidden temporary folder next to ``path``, which is then
    renamed to ``path``. An existing ``path`` raises :class:`FileExistsError`, unless ``replace``: then it
    is moved aside, the new folder renamed into its place (the old one is put back if that fails), and
    only then deleted. The folder gets the mode ``mkdir`` would give it (0777 minus the umask).
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not replace:
        raise FileExistsError(f"{path} exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        # mkdtemp makes it 0700; open it to whoever may read the files in it (each read bit of 0666 minus
        # the umask gets its execute bit).
        mode = new_file_mode()
        os.chmod(temporary, mode | (mode & 0o444) >> 2)
        for name, content in files.items():
            with open(temporary / name, "xb") as file:  # mode 0666 minus the umask, as any new file
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
        _fsync_directory(temporary)
        if not (path.exists() or path.is_symlink()):
            os.rename(temporary, path)
        else:
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rename(path, aside / path.name)
            try:
                os.rename(temporary, path)
            except BaseException:
                os.rename(aside / path.name, path)
                raise
            shutil.rmtree(aside)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
