"""One contrastive training step, the same code for the ``pretrain`` stage and ``contrastive bench``.

SimCLR's step (Chen et al., 2020, Algorithm 1): two random views of every image of the batch, one
forward pass of the encoder and head over all 2B views, the loss on the pairs of projections, a
backward pass and an optimiser (and schedule) step. The step never reads a value back from the
device, so the host can queue the next step while the accelerator is still busy with this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .augmentation_pipeline import AugmentationPipeline


@dataclass
class ContrastiveStep:
    """``step(images)`` trains on one uint8 batch (B, C, H, W) on the device and returns the loss (0-d, detached).

    ``model`` is the network as prepared by ``accelerator`` (encoder f then head g), ``generator`` the
    device generator the views are drawn from; ``channels_last`` converts the views to the memory format
    of a channels-last model; ``grad_clip_norm`` clips the global gradient norm before the update.
    """

    pipeline: AugmentationPipeline
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    accelerator: Any
    generator: torch.Generator
    channels_last: bool = False
    grad_clip_norm: float | None = None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            # (2B, C, H', W'): rows 0..B-1 are the first views, rows B..2B-1 the second ones.
            views = self.pipeline.stacked_views(images, 2, self.generator)
        if self.channels_last:
            views = views.contiguous(memory_format=torch.channels_last)
        with self.accelerator.autocast():
            z = self.model(views)
        z_a, z_b = z.chunk(2)  # row i of z_a and of z_b: the two views of image i
        loss = self.loss_fn(z_a, z_b)
        self.accelerator.backward(loss)
        if self.grad_clip_norm is not None:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()
