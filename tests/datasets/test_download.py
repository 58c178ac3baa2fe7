"""download = true and its helpers, offline (file:// URLs): MD5 checks, safe extraction, the dataset flow."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from contrastive_plugins.datasets.cifar import Cifar10
from contrastive_plugins.datasets.download import extract_tar, fetch, fetch_and_extract, md5_of
from contrastive_plugins.datasets.errors import DownloadError
from contrastive_plugins.datasets.mnist import Mnist

from .reference import FIXTURES


def make_tar(path, members):
    """A .tar.gz at ``path`` with ``members``: (name, bytes) files or (name, "symlink"/"hardlink", target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if len(rest) == 1:
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
            else:
                info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[rest[0]]
                info.linkname = rest[1]
                tar.addfile(info)
    return path


def test_fetch_checks_the_md5_and_leaves_no_partial_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"published bytes")
    destination = tmp_path / "data" / "copy.bin"
    with pytest.raises(DownloadError, match="differs from the published 0000"):
        fetch(source.as_uri(), destination, md5="0000")
    assert list((tmp_path / "data").iterdir()) == []
    fetch(source.as_uri(), destination, md5=md5_of(source))
    assert destination.read_bytes() == b"published bytes"


def test_a_fetched_file_gets_the_mode_the_umask_gives_any_new_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"published bytes")
    previous = os.umask(0o022)
    try:
        fetch(source.as_uri(), tmp_path / "copy.bin")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "copy.bin").stat().st_mode) == 0o644


def test_fetch_reports_an_unreachable_url(tmp_path):
    with pytest.raises(DownloadError, match="downloading .*absent.bin .* failed"):
        fetch((tmp_path / "absent.bin").as_uri(), tmp_path / "copy.bin")


def test_fetch_and_extract_unpacks_into_root_and_removes_the_archive(tmp_path):
    archive = make_tar(tmp_path / "data.tar.gz", [("data/a.bin", b"a"), ("data/sub/b.bin", b"bb")])
    root = tmp_path / "root"
    fetch_and_extract(archive.as_uri(), root, md5=md5_of(archive))
    assert (root / "data" / "a.bin").read_bytes() == b"a"
    assert (root / "data" / "sub" / "b.bin").read_bytes() == b"bb"
    assert not (root / "data.tar.gz").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (("/etc/evil", b"x"), "absolute path"),
        (("data/../../evil", b"x"), r"climbs out of the target folder \('\.\.'\)"),
        (("data/link", "symlink", "/etc/passwd"), "is a link or special file"),
        (("data/hard", "hardlink", "data/a.bin"), "is a link or special file"),
    ],
)
def test_unsafe_members_stop_extraction_before_anything_is_written(tmp_path, member, message):
    archive = make_tar(tmp_path / "bad.tar.gz", [("data/a.bin", b"a"), member])
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DownloadError, match=message):
        extract_tar(archive, root)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_a_damaged_archive_is_reported(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"not a tar archive")
    with pytest.raises(DownloadError, match="extracting .*broken.tar.gz"):
        extract_tar(archive, tmp_path)


def test_mnist_download_true_fetches_the_missing_gz_files(make_dataset, tmp_path, monkeypatch):
    # The mirror is replaced by the fixture folder (a file:// URL): the flow runs without network.
    mirror = FIXTURES / "fashion_mnist" / "gzip"
    monkeypatch.setattr(Mnist, "base_url", mirror.as_uri() + "/")
    monkeypatch.setattr(Mnist, "md5s", {path.name[: -len(".gz")]: md5_of(path) for path in mirror.iterdir()})
    images, labels = make_dataset(type="mnist", root=str(tmp_path / "mnist"), download=True).tensors("test")
    assert images.shape == (32, 1, 28, 28)
    assert sorted(path.name for path in (tmp_path / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_cifar10_download_true_fetches_and_extracts_the_binary_archive(make_dataset, tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(FIXTURES / "cifar10" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    monkeypatch.setattr(Cifar10, "url", archive.as_uri())
    monkeypatch.setattr(Cifar10, "md5", md5_of(archive))
    images, _ = make_dataset(type="cifar10", root=str(tmp_path / "root"), download=True).tensors("train")
    assert images.shape == (40, 3, 32, 32)
    assert not (tmp_path / "root" / "cifar-10-binary.tar.gz").exists()
