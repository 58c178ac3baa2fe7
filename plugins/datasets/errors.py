"""The errors the dataset components raise: each names the file or folder and what would fix it.

All derive from :class:`contrastive_core.errors.ContrastiveError`, so the CLI prints them as a clean
message (no traceback) and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from contrastive_core.errors import ContrastiveError, closest


class DatasetNotFoundError(ContrastiveError):
    """Data files that are not where the dataset looks for them.

    ``looked_for`` holds one entry per missing file, e.g. ``"/data/train-images-idx3-ubyte or
    /data/train-images-idx3-ubyte.gz"``; ``remedy`` says how to get the data (package, URL, or
    ``download = true``).
    """

    def __init__(self, dataset: str, looked_for: Sequence[str], remedy: str) -> None:
        self.dataset = dataset
        self.looked_for = list(looked_for)
        self.remedy = remedy
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"dataset {self.dataset!r}: data not found; looked for:"]
        lines += [f"  {path}" for path in self.looked_for]
        lines.append(self.remedy)
        return "\n".join(lines)


class DatasetFormatError(ContrastiveError):
    """A data file that exists but is not in the expected format (truncated, corrupt, wrong file)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.problem}. The file is truncated, corrupt or not the expected file; "
            "delete it and fetch it again."
        )


class UnknownSplitError(ContrastiveError):
    """A split name the dataset does not have; the message lists the valid ones."""

    def __init__(self, dataset: str, name: object, valid: Iterable[str]) -> None:
        self.dataset = dataset
        self.name = name
        self.valid = list(valid)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"dataset {self.dataset!r} has no split {self.name!r}"
        suggestion = closest(str(self.name), self.valid)
        if suggestion:
            text += f"; did you mean {suggestion!r}?"
        return f"{text} Valid splits: {', '.join(self.valid)}"


class BadImageError(ContrastiveError):
    """An image file of an image folder that cannot be decoded (truncated, not an image, empty)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return (
            f"{self.path}: not a readable image ({self.reason}). Remove or replace the file, or set "
            'on_bad_image = "skip" in the [data] section to leave such files out.'
        )


class ImageTooLargeError(BadImageError):
    """An image-folder file whose header claims more pixels than the dataset's ``max_image_pixels``;
    found before decoding, so nothing of that size is allocated."""

    def __init__(self, path: str | Path, size: str, pixels: int, limit: int) -> None:
        self.pixels = pixels
        self.limit = limit
        super().__init__(path, f"{size} = {pixels:,} pixels, more than max_image_pixels = {limit:,}")

    def __str__(self) -> str:
        return (
            f"{self.path}: too large to decode ({self.reason}). If such images are expected, raise "
            'max_image_pixels in the [data] section; or set on_bad_image = "skip" to leave them out.'
        )


class NoReadableImageError(BadImageError):
    """Every file of an image-folder split is unreadable while ``on_bad_image = "skip"``: nothing is left.

    Its own message, because the plain :class:`BadImageError` hint (set ``on_bad_image = "skip"``) names
    the setting that is already in force.
    """

    def __init__(self, path: str | Path, count: int) -> None:
        self.count = count
        super().__init__(path, "no file of this split is a readable image")

    def __str__(self) -> str:
        return (
            f"{self.path}: not a readable image, and neither is any other of the {self.count} files of its "
            'split: on_bad_image = "skip" left out every one, so there are no images to use. Check that '
            "the [data] root points at the image folder and that its files are images (JPEG, PNG, WebP "
            "or GIF)."
        )


class DownloadError(ContrastiveError):
    """A download or extraction (``download = true``) that failed or gave unexpected content."""
