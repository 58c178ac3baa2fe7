"""The dataset kind: labelled or unlabelled images in their published splits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch.utils.data

from .component import Component, ComponentParams


class Dataset(Component):
    """A dataset component gives access to the splits of one image dataset.

    ``split(name)`` returns a ``torch.utils.data.Dataset`` whose items are ``(image, label)`` with
    ``image`` a uint8 tensor ``(C, H, W)``, one size for the whole split, and ``label`` an int (``-1``
    for unlabelled splits): what evaluation reads. ``training_split(name)`` is the same split as
    self-supervised training reads it, which for a dataset of photos of different sizes (image folders)
    keeps every photo whole, at its own size (a :class:`VariableSizeSplit`), so that the random crops
    are drawn from the photo rather than from a fixed square. Augmentation is not the dataset's job:
    the engine augments whole batches on the accelerator.
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

    def training_split(self, name: str) -> torch.utils.data.Dataset:
        """The split ``name`` as pretraining reads it: :meth:`split` unless the dataset's images differ in
        size, in which case a :class:`VariableSizeSplit` of the whole images. Datasets whose images all
        have one size (CIFAR, STL-10, Fashion-MNIST) need not override it."""
        return self.split(name)

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole split in memory as ``(images uint8 (N, C, H, W), labels int64 (N,))``, or None.

        Small datasets (CIFAR, STL-10, Fashion-MNIST) return tensors, which the engine may move to the
        accelerator once and index there; large ones (image folders) return None and are read by workers.
        """
        return None


class VariableSizeSplit(ABC):
    """A split whose images keep their own sizes: item i is ``(uint8 (C, h_i, w_i), label)`` with
    ``h_i, w_i <= canvas_side``.

    Items of a batch cannot be stacked, so the engine pads each batch into one uint8 canvas
    ``(B, C, canvas_side, canvas_side)``, image i in its top-left corner, and hands every image's
    ``(h_i, w_i)`` along with it (:class:`contrastive_core.engine.ImageBatch`); the first augmentation
    op must then be a crop that reads those sizes (see
    :attr:`~contrastive_core.components.augmentation.Augmentation.crops_within_sizes`). A fixed
    ``canvas_side`` keeps every batch's shape the same, whatever photos it holds.
    """

    @property
    @abstractmethod
    def canvas_side(self) -> int:
        """The side of the square canvas a batch is padded into: the largest side an image may have."""

    @property
    def fixed_size_setting(self) -> str:
        """The dataset setting that gives images of one size instead (for error messages), e.g.
        ``'train_images = "square"'``; empty when there is none."""
        return ""
