"""The dataset kind: labelled or unlabelled images in their published splits."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch.utils.data

from .component import Component, ComponentParams


class Dataset(Component):
    """A dataset component gives access to the splits of one image dataset.

    ``split(name)`` returns a ``torch.utils.data.Dataset`` whose items are ``(image, label)`` with
    ``image`` a uint8 tensor ``(C, H, W)`` and ``label`` an int (``-1`` for unlabelled splits).
    Augmentation is not the dataset's job: the engine augments whole batches on the accelerator.
    """

    kind: ClassVar[str] = "dataset"

    def __init__(self, params: ComponentParams) -> None:
        self.params = params

    @property
    @abstractmethod
    def splits(self) -> tuple[str, ...]:
        """Names of the available splits, e.g. ``("train", "test")``."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Number of label classes (for evaluation heads); 0 for a dataset without labels."""

    @abstractmethod
    def split(self, name: str) -> torch.utils.data.Dataset:
        """The split ``name``; raises a clear error naming the files looked for when data is missing."""

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole split in memory as ``(images uint8 (N, C, H, W), labels int64 (N,))``, or None.

        Small datasets (CIFAR, STL-10, Fashion-MNIST) return tensors, which the engine may move to the
        accelerator once and index there; large ones (image folders) return None and are read by workers.
        """
        return None
