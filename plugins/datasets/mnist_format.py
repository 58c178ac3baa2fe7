"""What MNIST and Fashion-MNIST share: four IDX files, 28x28 grey images, 10 classes.

Each split is an image file ``(N, 28, 28)`` uint8 and a label file ``(N,)`` uint8 in ``root``, named as
published, e.g. ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, each either plain or
gzip-compressed with a ``.gz`` suffix (the published form). Images come out as (N, 1, 28, 28).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import torch

from .download import fetch
from .errors import DatasetFormatError, DatasetNotFoundError
from .idx import read_idx
from .in_memory import InMemoryDataset

#: Split -> (image file, label file), without the optional ``.gz`` suffix.
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
NUM_CLASSES = 10


class MnistFormatDataset(InMemoryDataset):
    """Base of the datasets published as MNIST-style IDX files.

    Subclasses set ``base_url`` (where ``<file>.gz`` can be downloaded) and ``md5s`` (published
    checksums of the ``.gz`` files), and describe how to get the data in :meth:`remedy`. Their params
    have ``root`` and ``download``.
    """

    split_names: ClassVar[tuple[str, ...]] = ("train", "test")
    base_url: ClassVar[str]
    md5s: ClassVar[dict[str, str]]

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    @property
    def root(self) -> Path:
        return Path(self.params.root).expanduser()

    @abstractmethod
    def remedy(self) -> str:
        """How to get the files, for the message of a :class:`DatasetNotFoundError`."""

    def locate(self, stem: str) -> Path | None:
        """The file ``stem`` or ``stem.gz`` in ``root``, preferring the uncompressed one; None if neither."""
        for candidate in (self.root / stem, self.root / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def load(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        stems = IDX_FILES[name]
        for stem in stems:
            if self.params.download and self.locate(stem) is None:
                fetch(f"{self.base_url}{stem}.gz", self.root / f"{stem}.gz", self.md5s[stem])
        paths = [self.locate(stem) for stem in stems]
        missing = [
            f"{self.root / stem} or {self.root / stem}.gz"
            for stem, path in zip(stems, paths, strict=True)
            if path is None
        ]
        if missing:
            raise DatasetNotFoundError(self.name, missing, self.remedy())
        image_path, label_path = paths
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.dtype != torch.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DatasetFormatError(
                image_path,
                f"expected uint8 images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), found {images.dtype} "
                f"{tuple(images.shape)}",
            )
        if labels.dtype != torch.uint8 or labels.ndim != 1:
            raise DatasetFormatError(
                label_path, f"expected uint8 labels of shape (N,), found {tuple(labels.shape)}"
            )
        if labels.shape[0] != images.shape[0]:
            raise DatasetFormatError(
                label_path, f"{labels.shape[0]} labels for the {images.shape[0]} images of {image_path.name}"
            )
        if labels.numel() and int(labels.max()) >= NUM_CLASSES:
            raise DatasetFormatError(label_path, f"label {int(labels.max())} outside 0..{NUM_CLASSES - 1}")
        return images.unsqueeze(1), labels.long()
