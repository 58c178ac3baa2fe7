"""Datasets small enough to hold whole splits in memory as tensors (CIFAR, STL-10, (Fashion-)MNIST).

The engine can move such a split to the accelerator once and index it there, which is much faster for
32x32 images than a worker pipeline; see :meth:`contrastive_core.Dataset.tensors`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
import torch.utils.data

from contrastive_core import ComponentParams, Dataset

from .errors import UnknownSplitError


class LabelledImages(torch.utils.data.Dataset):
    """Indexable view of ``images`` uint8 (N, C, H, W) and ``labels`` int64 (N,): item i is
    ``(images[i], int(labels[i]))``, like ``TensorDataset`` but with a plain int label."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class InMemoryDataset(Dataset):
    """A dataset whose splits are read completely on first use and cached.

    Subclasses set ``split_names`` and implement :meth:`load`, which reads one split from disk.
    """

    split_names: ClassVar[tuple[str, ...]]

    def __init__(self, params: ComponentParams) -> None:
        super().__init__(params)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def splits(self) -> tuple[str, ...]:
        return self.split_names

    @abstractmethod
    def load(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Read split ``name`` (a valid name) as ``(uint8 (N, C, H, W), int64 (N,))`` from disk."""

    def check_split(self, name: str) -> None:
        """Raise :class:`UnknownSplitError` listing the valid splits if ``name`` is not one of them."""
        if name not in self.split_names:
            raise UnknownSplitError(self.name, name, self.split_names)

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split ``name``: images uint8 (N, C, H, W) and labels int64 (N,), -1 if unlabelled.

        Read from disk on the first call and cached, so later calls (and :meth:`split`) are free.
        """
        self.check_split(name)
        if name not in self._cache:
            images, labels = self.load(name)
            # The engine relies on this contract; a loader breaking it is a bug here, not a user error.
            assert images.dtype == torch.uint8 and images.ndim == 4, (images.dtype, images.shape)
            assert labels.dtype == torch.int64 and labels.shape == images.shape[:1], (
                labels.dtype,
                labels.shape,
            )
            self._cache[name] = (images, labels)
        return self._cache[name]

    def split(self, name: str) -> LabelledImages:
        """The split ``name`` as a map-style dataset of ``(uint8 (C, H, W), int)`` items."""
        return LabelledImages(*self.tensors(name))
