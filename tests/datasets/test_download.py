"""The opt-in download helpers, offline: file:// URLs, MD5 checks and refusal of unsafe archives."""

from __future__ import annotations

import io
import tarfile

import pytest

from contrastive_plugins.datasets.download import extract_tar, fetch, fetch_and_extract, md5_of
from contrastive_plugins.datasets.errors import DownloadError


def make_tar(path, members):
    """A .tar.gz at ``path`` with ``members``: (name, bytes) files or (name, tarfile type, link target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if isinstance(rest[0], bytes):
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
            else:
                info.type, info.linkname = rest
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
        (("data/link", tarfile.SYMTYPE, "/etc/passwd"), "is a link or special file"),
        (("data/hard", tarfile.LNKTYPE, "data/a.bin"), "is a link or special file"),
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
