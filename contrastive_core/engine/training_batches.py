"""Which images each process trains on at each step, and getting them to the device as uint8.

Both batch sources yield :class:`~.image_batch.ImageBatch` objects: stacked images of one size, or, for a
split of photos of different sizes, a padded canvas with every image's size.

The order depends only on the seed, the epoch and the global batch size, never on the number of
processes: global batch ``s`` of epoch ``e`` is ``permutation_e[s*B:(s+1)*B]`` and process ``r`` of
``W`` takes its ``r``-th slice of ``B/W`` images. So 1 process with batch B and W processes with
B/W each see exactly the same images per step, and a resumed run continues from its (epoch, step).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.utils.data

from ..errors import ContrastiveError
from .file_batches import read_image_batches
from .image_batch import ImageBatch


class GlobalBatchOrder:
    """The per-epoch shuffled order of ``num_examples`` items in global batches (last partial batch dropped)."""

    def __init__(self, num_examples: int, global_batch: int, seed: int) -> None:
        if global_batch > num_examples:
            raise ContrastiveError(
                f"the global batch ({global_batch}) is larger than the dataset ({num_examples} images); "
                "lower the stage's batch_size"
            )
        self.num_examples = num_examples
        self.global_batch = global_batch
        self.seed = seed
        self.steps_per_epoch = num_examples // global_batch
        self._cached: tuple[int, torch.Tensor] | None = None

    def permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != epoch:
            # Modulo 2^64, the range of manual_seed: a large recipe seed must not overflow.
            generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**64)
            self._cached = (epoch, torch.randperm(self.num_examples, generator=generator))
        return self._cached[1]

    def local_indices(self, epoch: int, step: int, rank: int, world_size: int) -> torch.Tensor:
        """Indices (B/W,) of process ``rank``'s share of global batch ``step`` of ``epoch``."""
        local = self.global_batch // world_size
        start = step * self.global_batch + rank * local
        return self.permutation(epoch)[start : start + local]


class DeviceBatches:
    """Batches indexed straight out of a uint8 image tensor that lives on the training device."""

    def __init__(self, images: torch.Tensor, order: GlobalBatchOrder, rank: int, world_size: int) -> None:
        self.images = images
        self.order = order
        self.rank = rank
        self.world_size = world_size

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[ImageBatch]:
        """Batches of uint8 images (B/W, C, H, W) of ``epoch`` from ``start_step`` on (no sizes: every
        image of an in-memory dataset fills its H x W)."""
        device = self.images.device
        for step in range(start_step, self.order.steps_per_epoch):
            indices = self.order.local_indices(epoch, step, self.rank, self.world_size)
            yield ImageBatch(self.images.index_select(0, indices.to(device, non_blocking=True)))


class LoaderBatches:
    """Batches read by DataLoader workers (large datasets): see
    :func:`~contrastive_core.engine.file_batches.read_image_batches` for where the images are decoded
    (in the workers, or on the device when the split supports it) and how photos of different sizes
    are batched."""

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        order: GlobalBatchOrder,
        rank: int,
        world_size: int,
        device: torch.device,
        num_workers: int,
    ) -> None:
        self.dataset = dataset
        self.order = order
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.num_workers = num_workers

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[ImageBatch]:
        """Batches of B/W uint8 images of ``epoch`` from ``start_step`` on, on the device."""
        steps = range(start_step, self.order.steps_per_epoch)
        indices = [
            self.order.local_indices(epoch, step, self.rank, self.world_size).tolist() for step in steps
        ]
        for images, _ in read_image_batches(self.dataset, indices, self.device, self.num_workers):
            yield images
