"""CIFAR-10 and CIFAR-100 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009),
read from the official BINARY versions.

Binary layout: each file is a sequence of fixed-size records, one per 32x32 colour image::

    CIFAR-10   <1 label byte, 0..9>                              <3072 pixel bytes>
    CIFAR-100  <1 coarse label byte, 0..19> <1 fine label byte, 0..99> <3072 pixel bytes>

The 3072 pixel bytes are the red, green and blue planes of 1024 bytes each, every plane row-major, so
a record's pixels reshape directly to (3, 32, 32).

The python versions (``cifar-10-python.tar.gz``) are deliberately not read: they are pickles, and
unpickling a downloaded file can run arbitrary code.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from contrastive_core import ComponentParams

from .download import fetch_and_extract
from .errors import DatasetFormatError, DatasetNotFoundError
from .in_memory import InMemoryDataset

PIXEL_BYTES = 3 * 32 * 32


def read_records(path: Path, label_limits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The records of one CIFAR binary file: pixels uint8 (N, 3, 32, 32), label bytes uint8 (N, L).

    Each record starts with L = ``len(label_limits)`` label bytes; ``label_limits[i]`` is the number of
    classes of label byte ``i``, and a byte outside it means the file is not what it claims to be.
    """
    label_bytes = len(label_limits)
    record_bytes = label_bytes + PIXEL_BYTES
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % record_bytes:
        raise DatasetFormatError(
            path,
            f"size {data.size} bytes is not a positive multiple of the {record_bytes}-byte record of the CIFAR "
            "binary version (a partial file, or not the binary version)",
        )
    records = data.reshape(-1, record_bytes)
    labels = records[:, :label_bytes]
    for column, limit in enumerate(label_limits):
        bad = np.flatnonzero(labels[:, column] >= limit)
        if bad.size:
            raise DatasetFormatError(
                path, f"record {bad[0]} has label byte {labels[bad[0], column]} outside 0..{limit - 1}"
            )
    return records[:, label_bytes:].reshape(-1, 3, 32, 32), labels


class CifarBinaryDataset(InMemoryDataset):
    """Base of CIFAR-10 and CIFAR-100: ``root`` holds the folder extracted from the binary archive."""

    split_names: ClassVar[tuple[str, ...]] = ("train", "test")
    archive: ClassVar[str]
    md5: ClassVar[str]
    folder: ClassVar[str]
    python_folder: ClassVar[str]
    split_files: ClassVar[dict[str, tuple[str, ...]]]
    label_limits: ClassVar[tuple[int, ...]]

    @property
    def url(self) -> str:
        return f"https://www.cs.toronto.edu/~kriz/{self.archive}"

    @property
    def root(self) -> Path:
        return Path(self.params.root).expanduser()

    def label_column(self) -> int:
        """Which label byte of a record is the label (CIFAR-100 has two)."""
        return 0

    def remedy(self) -> str:
        text = (
            f"Download the binary version {self.url} ({self.archive}) and extract it into {self.root}, "
            "or set download = true in the [data] section."
        )
        python_version = self.root / self.python_folder
        found = f" ({python_version} is there)" if python_version.is_dir() else ""
        return (
            f"{text} The python version{found} is not read: its files are pickles, and unpickling "
            "downloaded files can run arbitrary code; the binary version is needed."
        )

    def load(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [self.root / self.folder / file for file in self.split_files[name]]
        if self.params.download and not all(path.is_file() for path in paths):
            fetch_and_extract(self.url, self.root, self.md5)
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise DatasetNotFoundError(self.name, missing, self.remedy())
        records = [read_records(path, self.label_limits) for path in paths]
        images = torch.from_numpy(np.concatenate([pixels for pixels, _ in records]))
        labels = np.concatenate([label_bytes for _, label_bytes in records])[:, self.label_column()]
        return images, torch.from_numpy(labels.astype(np.int64))


class Cifar10Params(ComponentParams):
    type: Literal["cifar10"]

    root: str
    """Folder that holds cifar-10-batches-bin/ (data_batch_1.bin ... data_batch_5.bin, test_batch.bin),
    as extracted from cifar-10-binary.tar.gz."""

    download: bool = False
    """Download cifar-10-binary.tar.gz (162 MB) and extract it into root when files are missing."""


class Cifar10(CifarBinaryDataset):
    """CIFAR-10: 32x32 colour images, 10 classes, splits train (50,000) and test (10,000)."""

    name = "cifar10"
    Params = Cifar10Params

    archive = "cifar-10-binary.tar.gz"
    md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    folder = "cifar-10-batches-bin"
    python_folder = "cifar-10-batches-py"
    split_files = {
        "train": tuple(f"data_batch_{index}.bin" for index in range(1, 6)),
        "test": ("test_batch.bin",),
    }
    label_limits = (10,)

    @property
    def num_classes(self) -> int:
        return 10


class Cifar100Params(ComponentParams):
    type: Literal["cifar100"]

    root: str
    """Folder that holds cifar-100-binary/ (train.bin, test.bin), as extracted from cifar-100-binary.tar.gz."""

    label: Literal["fine", "coarse"] = "fine"
    """Which label to use: "fine" (100 classes) or "coarse" (the 20 superclasses)."""

    download: bool = False
    """Download cifar-100-binary.tar.gz (161 MB) and extract it into root when files are missing."""


class Cifar100(CifarBinaryDataset):
    """CIFAR-100: 32x32 colour images, 100 fine or 20 coarse classes, splits train (50,000) and test (10,000)."""

    name = "cifar100"
    Params = Cifar100Params

    archive = "cifar-100-binary.tar.gz"
    md5 = "03b5dce01913d631647c71ecec9e9cb8"
    folder = "cifar-100-binary"
    python_folder = "cifar-100-python"
    split_files = {"train": ("train.bin",), "test": ("test.bin",)}
    # Record order is <coarse><fine>.
    label_limits = (20, 100)

    def label_column(self) -> int:
        return 1 if self.params.label == "fine" else 0

    @property
    def num_classes(self) -> int:
        return 100 if self.params.label == "fine" else 20
