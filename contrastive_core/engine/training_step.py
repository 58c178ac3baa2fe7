"""One self-supervised training step, the same code for the ``pretrain`` stage and ``contrastive bench``.

The step of every method, in the order of the papers' algorithms (SimCLR, Chen et al. 2020, Algorithm
1; BYOL, Grill et al. 2020, Algorithm 1; DINO, Caron et al. 2021, Algorithm 1):

1. make each view group's views of the uint8 batch on the device (one batched transform per group;
   a batch of photos of different sizes is one padded canvas whose sizes go to the pipelines, so each
   view is cropped from its whole photo);
2. the method's forward: its networks on the views and its loss (with ``micro_batch_size``: by gradient
   caching, :mod:`.gradient_cache`, which also does the backward);
3. backward; cancel the gradients of parts still frozen; clip; the optimizer step; the schedule;
4. move the momentum targets towards the online networks.

The step never reads a value back from the device, so the host can queue the next step while the
accelerator is still busy with this one; schedules (learning rate, EMA momentum) are host floats
computed from the step count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..components.method import Method, MethodOutput, StepProgress
from .augmentation_pipeline import AugmentationPipeline
from .gradient_cache import GradientCache
from .image_batch import ImageBatch
from .method_output_check import check_method_loss
from .micro_batch_norm import MicroBatchNorm


@dataclass
class TrainingStep:
    """``step(images, progress)`` trains on one batch of uint8 images on the device: an
    :class:`~.image_batch.ImageBatch` (a padded canvas with each image's size, or stacked images), or a
    plain (B, C, H, W) tensor of images that fill it.

    ``method`` is the method as prepared by ``accelerator`` (possibly wrapped for data parallelism) and
    ``unwrapped`` the same module unwrapped, whose ``momentum_updates`` and ``frozen_parts`` the step
    reads; ``views`` holds one pipeline per view group; ``generator`` is the device generator the views
    are drawn from; ``channels_last`` converts the views to the memory format of a channels-last model;
    ``grad_clip_norm`` clips the global gradient norm of the trained parameters before the update, or
    with ``grad_clip_per_parameter`` each parameter's gradient norm on its own (DINO's reference code).
    ``micro_batch_size`` (images per process) runs the method's forward and backward by gradient caching
    (:mod:`.gradient_cache`, BatchNorm per ``micro_batch_norm``): the same loss over the whole batch with
    the activation memory of a micro-batch. ``progress`` counts the steps done before this one. Returns
    the method's output, detached.
    """

    views: Mapping[str, AugmentationPipeline]
    method: nn.Module
    unwrapped: Method
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    accelerator: Any
    generator: torch.Generator
    channels_last: bool = False
    grad_clip_norm: float | None = None
    grad_clip_per_parameter: bool = False
    micro_batch_size: int | None = None
    micro_batch_norm: MicroBatchNorm = "per_micro_batch"

    def __post_init__(self) -> None:
        self._trained = [p for p in self.unwrapped.trainable().parameters()]
        self._cache = None
        if self.micro_batch_size is not None:
            counts = {name: pipeline.view_count for name, pipeline in self.views.items()}
            self._cache = GradientCache(
                self.unwrapped, self.micro_batch_size, counts, self.accelerator, self.micro_batch_norm
            )
        self._frozen: list | None = None  # built at the first step, which knows the epoch's length
        self._loss_checked = False

    def make_views(self, images: ImageBatch | torch.Tensor) -> dict[str, torch.Tensor]:
        """Each group's views of ``images``: name -> (count * B, C, H', W'), rows v B ... (v + 1) B - 1 view v.

        Made once per step, before the method (also under gradient caching, whose micro-batches take
        rows of these views). A batch's ``sizes`` go to every group's pipeline: its crops are drawn
        within each image's own size."""
        batch = images if isinstance(images, ImageBatch) else ImageBatch(images)
        with torch.no_grad():
            views = {
                name: pipeline.stacked_views(batch.pixels, None, self.generator, sizes=batch.sizes)
                for name, pipeline in self.views.items()
            }
        if self.channels_last:
            views = {name: view.contiguous(memory_format=torch.channels_last) for name, view in views.items()}
        return views

    def __call__(self, images: ImageBatch | torch.Tensor, progress: StepProgress) -> MethodOutput:
        views = self.make_views(images)
        if self._cache is not None:  # gradient caching: forward and backward in micro-batches
            output = self._cache(views, progress)
        else:
            with self.accelerator.autocast():
                output = self.method(views, progress)
            if not self._loss_checked:  # once: from the tensor's metadata, which needs no host sync
                check_method_loss(output, self.unwrapped)
                self._loss_checked = True
            self.accelerator.backward(output.loss)
        if self._frozen is None:
            self._frozen = list(self.unwrapped.frozen_parts(progress.steps_per_epoch))
        for part in self._frozen:
            part.cancel_gradients(progress.step)
        if self.grad_clip_norm is not None and self.grad_clip_per_parameter:
            self.accelerator.unscale_gradients(self.optimizer)
            clip_each_gradient(self._trained, self.grad_clip_norm)
        elif self.grad_clip_norm is not None:
            self.accelerator.clip_grad_norm_(self._trained, self.grad_clip_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        done = StepProgress(progress.step + 1, progress.total_steps, progress.steps_per_epoch)
        for target, momentum in self.unwrapped.momentum_updates(done):
            target.update(momentum)
        return MethodOutput(
            output.loss.detach(), {name: value.detach() for name, value in output.metrics.items()}
        )


def clip_each_gradient(parameters: list[torch.Tensor], max_norm: float) -> None:
    """Scale every parameter's gradient whose L2 norm exceeds ``max_norm`` down to ``max_norm``, each on
    its own: ``g <- g * min(1, max_norm / (||g|| + 1e-6))`` (DINO's ``clip_gradients``, written without
    the host-side comparison, so no synchronisation). Parameters without a gradient are skipped."""
    gradients = [p.grad for p in parameters if p.grad is not None]
    if not gradients:
        return
    with torch.no_grad():
        factors = torch._foreach_add(torch._foreach_norm(gradients), 1e-6)  # a few fused kernels in all
        torch._foreach_reciprocal_(factors)
        torch._foreach_mul_(factors, max_norm)
        torch._foreach_clamp_max_(factors, 1.0)
        torch._foreach_mul_(gradients, factors)
