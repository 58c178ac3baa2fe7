"""Opt-in downloading (``download = true``): fetch a published file, check its MD5, unpack it safely.

Nothing here runs unless a recipe sets ``download = true``; by default a missing dataset is an error
that says where to get it. Archives come from third-party servers, so extraction refuses members that
would land outside the target folder (absolute paths, ``..``), links and device files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

from contrastive_core.run_directory import new_file_mode

from .errors import DownloadError

#: Read and hash in 1 MiB pieces so multi-gigabyte archives (STL-10) never sit in memory whole.
CHUNK_BYTES = 1 << 20


def md5_of(path: str | Path) -> str:
    """Hex MD5 of the file ``path`` (the checksum dataset authors publish; used for integrity only)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, destination: str | Path, md5: str | None = None) -> Path:
    """Download ``url`` to the file ``destination`` (folders created), checking ``md5`` when given.

    The data goes to a temporary file next to ``destination`` and is renamed only once complete and
    verified, so an interrupted download never leaves a truncated file under the final name.
    """
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
        )
    except OSError as error:
        raise DownloadError(f"cannot write into {destination.parent}: {error}") from None
    try:
        os.fchmod(handle, new_file_mode())  # mkstemp's 0600 would leave the dataset unreadable to others
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, file, CHUNK_BYTES)
        if md5 is not None:
            actual = md5_of(partial)
            if actual != md5:
                raise DownloadError(f"{url}: MD5 {actual} differs from the published {md5}; not using it")
        os.replace(partial, destination)
    except OSError as error:  # urllib's URLError/HTTPError are OSErrors too
        raise DownloadError(f"downloading {url} to {destination} failed: {error}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return destination


def check_tar_member(member: tarfile.TarInfo) -> None:
    """Raise :class:`DownloadError` unless ``member`` is a plain file or folder inside the target."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")):
        raise DownloadError(f"archive member {member.name!r} has an absolute path; refusing to extract")
    if ".." in name.parts:
        raise DownloadError(f"archive member {member.name!r} climbs out of the target folder ('..')")
    if not (member.isfile() or member.isdir()):
        raise DownloadError(f"archive member {member.name!r} is a link or special file; refusing to extract")


def extract_tar(archive: str | Path, root: str | Path) -> None:
    """Unpack the (possibly gzip-compressed) tar ``archive`` into the folder ``root``, checking every
    member first so that nothing is written from an archive holding a single unsafe member."""
    root = Path(root)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_tar_member(member)
            # The "data" filter re-checks the same rules inside tarfile where Python provides it.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, members=members, **extra)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DownloadError(f"extracting {archive} into {root} failed: {error}") from None


def fetch_and_extract(url: str, root: str | Path, md5: str | None = None) -> None:
    """Download the tar archive ``url`` into ``root``, verify it, extract it there, delete the archive."""
    archive = fetch(url, Path(root) / PurePosixPath(url).name, md5)
    try:
        extract_tar(archive, root)
    finally:
        archive.unlink(missing_ok=True)
