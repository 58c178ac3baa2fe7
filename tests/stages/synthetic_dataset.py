"""A test plugin registering ``synthetic_classes``: tiny in-memory images whose class shows in them.

Class c's images are a fixed random pattern (drawn from ``pattern_seed + c``) plus per-image noise,
so features of any encoder carry class information and an evaluation has something to find.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.utils.data
from pydantic import Field

from contrastive_core import ComponentParams, Dataset, hookimpl
from contrastive_plugins.datasets.in_memory import LabelledImages


class SyntheticClassesParams(ComponentParams):
    type: Literal["synthetic_classes"]
    num_classes: int = Field(3, ge=1)
    """Number of classes."""
    train_per_class: int = Field(8, ge=1)
    """Training images per class."""
    test_per_class: int = Field(4, ge=1)
    """Test images per class."""
    size: int = Field(12, ge=4)
    """Side of the square images."""
    channels: int = Field(1, ge=1)
    """Channels of the images."""
    pattern_seed: int = 0
    """Seed of the class patterns and the noise."""
    in_memory: bool = True
    """Offer whole splits as tensors; false: only item by item, like a dataset read from files."""


class ItemsOnly(torch.utils.data.Dataset):
    """A split readable only item by item (no tensors, no labels attribute)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self._items = [(image, int(label)) for image, label in zip(images, labels, strict=True)]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._items[index]


class SyntheticClasses(Dataset):
    """Tiny labelled images: one random pattern per class plus noise (splits train and test)."""

    name = "synthetic_classes"
    Params = SyntheticClassesParams
    params: SyntheticClassesParams

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test", "unlabeled")

    @property
    def num_classes(self) -> int:
        return self.params.num_classes

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.generate(name) if self.params.in_memory else None

    def generate(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 (N, C, S, S) and labels (N,) of split ``name``."""
        p = self.params
        shape = (p.channels, p.size, p.size)
        patterns = torch.stack(
            [
                torch.rand(shape, generator=torch.Generator().manual_seed(p.pattern_seed + c))
                for c in range(p.num_classes)
            ]
        )
        per_class = {"train": p.train_per_class, "test": p.test_per_class, "unlabeled": p.train_per_class}[
            name
        ]
        labels = torch.arange(p.num_classes).repeat_interleave(per_class)
        split_seed = p.pattern_seed + 1000 + self.splits.index(name)
        noise = torch.rand((len(labels), *shape), generator=torch.Generator().manual_seed(split_seed))
        images = ((0.7 * patterns[labels] + 0.3 * noise) * 255).round().to(torch.uint8)
        return images, (labels if name != "unlabeled" else torch.full_like(labels, -1))

    def split(self, name: str) -> torch.utils.data.Dataset:
        return (
            LabelledImages(*self.generate(name)) if self.params.in_memory else ItemsOnly(*self.generate(name))
        )


@hookimpl
def register_datasets() -> list[type]:
    return [SyntheticClasses]
