"""One labelled split of a dataset as evaluation reads it: labels up front, images in batches.

Splits small enough to be held in memory (``Dataset.tensors``) are moved to the evaluation device once
and indexed there; others (image folders) are read by DataLoader workers batch by batch, as in
pretraining (:func:`~contrastive_core.engine.read_batches`: decoded by the workers, or on the
device where the split supports it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch
import torch.utils.data

from contrastive_core import Dataset
from contrastive_core.engine import read_batches
from contrastive_core.errors import ContrastiveError


class UnlabelledSplitError(ContrastiveError):
    """An evaluation was asked to use a split without (valid) labels."""


class LabelledSplit:
    """Images uint8 (N, C, H, W) and labels int64 (N,) of split ``name`` of ``dataset``."""

    def __init__(
        self, dataset: Dataset, name: str, device: torch.device, *, num_workers: int = 4, where: str = ""
    ) -> None:
        self.name = name
        self.device = device
        self.num_workers = num_workers
        self.num_classes = dataset.num_classes
        in_memory = dataset.tensors(name)
        if in_memory is not None:
            images, labels = in_memory
            self.images: torch.Tensor | None = images.to(device)
            self.items: torch.utils.data.Dataset | None = None
            self.labels = labels.to("cpu", torch.int64)
        else:
            self.images = None
            self.items = dataset.split(name)
            self.labels = _labels_of(self.items, num_workers)
        self._labels_on_device = self.labels.to(device)
        self._check_labels(dataset, where)

    def _check_labels(self, dataset: Dataset, where: str) -> None:
        prefix = f"{where}: " if where else ""
        if len(self.labels) == 0:
            raise UnlabelledSplitError(f"{prefix}split {self.name!r} of dataset {dataset.name!r} is empty")
        if self.num_classes < 1 or int(self.labels.min()) < 0:
            raise UnlabelledSplitError(
                f"{prefix}split {self.name!r} of dataset {dataset.name!r} has no labels; evaluation needs a "
                f"labelled split (available splits: {', '.join(dataset.splits)})"
            )
        if int(self.labels.max()) >= self.num_classes:
            raise UnlabelledSplitError(
                f"{prefix}split {self.name!r} of dataset {dataset.name!r} has label {int(self.labels.max())} "
                f"but the dataset declares {self.num_classes} classes"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def restricted(self, indices: torch.Tensor) -> LabelledSplit:
        """The same split limited to the examples ``indices`` (int64, (M,)), in that order."""
        subset = copy.copy(self)
        subset.labels = self.labels.index_select(0, indices)
        subset._labels_on_device = subset.labels.to(self.device)
        if self.images is not None:
            subset.images = self.images.index_select(0, indices.to(self.device))
        else:
            subset.items = torch.utils.data.Subset(self.items, indices.tolist())
        return subset

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the split's images."""
        if self.images is not None:
            return tuple(self.images.shape[1:])  # type: ignore[return-value]
        return tuple(self.items[0][0].shape)  # type: ignore[index]

    def batches(self, index_batches: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """For each int64 index tensor (B,): (images uint8 (B, C, H, W), labels int64 (B,)) on the device."""
        if self.images is not None:
            for indices in index_batches:
                on_device = indices.to(self.device, non_blocking=True)
                yield (
                    self.images.index_select(0, on_device),
                    self._labels_on_device.index_select(0, on_device),
                )
            return
        yield from read_batches(
            self.items, [indices.tolist() for indices in index_batches], self.device, self.num_workers
        )

    def in_order(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in its order, in batches of ``batch_size`` (the last one may be smaller)."""
        return self.batches(torch.arange(len(self)).split(batch_size))


def _labels_of(items: torch.utils.data.Dataset, num_workers: int) -> torch.Tensor:
    """All labels of a file-backed split: its ``labels`` tensor if it has one (image folders do), else
    read item by item (which decodes every image once)."""
    labels = getattr(items, "labels", None)
    if isinstance(labels, torch.Tensor) and labels.ndim == 1 and len(labels) == len(items):
        return labels.to("cpu", torch.int64)
    loader = torch.utils.data.DataLoader(items, batch_size=256, num_workers=num_workers)
    return torch.cat([torch.as_tensor(batch_labels, dtype=torch.int64) for _, batch_labels in loader])
