"""SwAV as a method (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments", arXiv:2006.09882, Sec. 3 and Appendix A.1).

Every view x of an image is embedded as z = normalize(g(f(x))) and scored against K prototypes,
s = C^T z (:class:`.prototypes.Prototypes`). The two global (full-resolution) views get *codes* q, soft
assignments of the batch to the prototypes in equal shares computed by Sinkhorn-Knopp over the global
batch (:func:`.sinkhorn.sinkhorn_knopp`), and every other view predicts them: the swapped prediction
loss (:func:`.swapped_prediction.swapped_prediction_loss`). No pairwise comparisons: the prototypes
stand in for the negatives.

Multi-crop (Sec. 3.2): besides the two global views, V small crops at a lower resolution (6 x 96 px on
ImageNet) predict the global views' codes; they are never coded themselves. The encoder runs once per
resolution group (once on the 2B global views, once on the VB local ones), and the head once on all of
them together, as the reference code batches them.

Two stabilisers: the prototypes are frozen during the first epoch (their gradients cancelled, so they
do not move at all; :meth:`SwAV.frozen_parts`), and with small batches a queue of the global views'
embeddings from the last few batches (:class:`~contrastive_core.distributed.GlobalQueue`, written with
the global batch so it is the same on every process, and saved in checkpoints) joins the Sinkhorn step
from ``queue_start_epoch`` on, once it is full, so that the batch can spread over 3,000 prototypes
(Sec. 4.1 and the reference README: 3,840 embeddings at batch 256, from epoch 15). The encoder f is what
is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from contrastive_core import ComponentParams, Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from contrastive_core.components import FrozenForSteps
from contrastive_core.distributed import GlobalQueue, world_size
from contrastive_core.engine import at_least_float32

from .prototypes import Prototypes
from .sinkhorn import sinkhorn_knopp
from .swapped_prediction import swapped_prediction_loss

__all__ = ["SwAV", "SwAVParams"]

#: The views with codes: the two global views (Sec. 3.2; the reference code's crops_for_assign 0 1).
CODED_VIEWS = 2


class SwAVParams(ComponentParams):
    type: Literal["swav"] = "swav"

    prototypes: int = Field(3000, ge=1)
    """K, the number of prototypes (Caron et al. 2020, Sec. 4 and Appendix A.1: 3000 for ImageNet; the
    ablation of Table 10 finds 300 to 30,000 within 0.3 points)."""

    temperature: float = Field(0.1, gt=0)
    """tau of the softmax over the prototypes' scores (Appendix A.1: 0.1)."""

    epsilon: float = Field(0.05, gt=0)
    """The entropy weight of the Sinkhorn step (Appendix A.1: 0.05; larger values make softer codes and
    collapse, Table 11)."""

    sinkhorn_iterations: int = Field(3, ge=1)
    """Rescalings of the Sinkhorn-Knopp algorithm (Sec. 3.1 and Appendix A.1: 3 are enough)."""

    freeze_prototypes_epochs: float = Field(1.0, ge=0)
    """The prototypes get no update during this many epochs (Appendix A.1: frozen during the first epoch;
    the reference code's freeze_prototypes_niters 313, one epoch of ImageNet at batch 4096)."""

    queue_size: int = Field(0, ge=0)
    """Embeddings of earlier batches kept for the Sinkhorn step, over all processes; 0 for none (Sec. 4.1
    and the reference README: 3,840 at batch 256, none at batch 4,096). It must be at least the global
    batch."""

    queue_start_epoch: float = Field(15.0, ge=0)
    """The epoch from which the queue is filled; it joins the Sinkhorn step once full (reference README:
    epoch 15, "to avoid using outdated embeddings from a very different network")."""


class SwAV(Method):
    """SwAV: prototype scores of every view predict the Sinkhorn codes of the global views.

    ``views["global"]`` is ``(2B, C, H, W)`` (rows i and B + i: image i) and the
    optional ``views["local"]`` is ``(VB, C, h, w)``, smaller crops of the same images in the same order.
    """

    name: ClassVar[str] = "swav"
    Params: ClassVar[type[ComponentParams]] = SwAVParams
    views: ClassVar[tuple[ViewGroup, ...]] = (
        ViewGroup("global", CODED_VIEWS),
        ViewGroup("local", None, optional=True),
    )
    requires: ClassVar[tuple[str, ...]] = ("model.head",)

    def __init__(self, params: SwAVParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head  # g: (N, F) -> (N, D), normalised below
        self.prototypes = Prototypes(parts.head.out_dim, params.prototypes)  # (N, D) -> (N, K)
        # One queue per coded view, as in the reference code (each view's codes use its own history).
        self.queues = nn.ModuleList(
            GlobalQueue(params.queue_size, parts.head.out_dim)
            for _ in range(CODED_VIEWS if params.queue_size else 0)
        )

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"global": (2 B, D), "local": (L B, D)}``: unit g(f(x)) of every view, view-major ("local"
        only when the recipe has local crops)."""
        groups = [views["global"]] + ([views["local"]] if "local" in views else [])
        # The encoder once per resolution group, the head once on every view.
        features = torch.cat([self.encoder(group) for group in groups])  # (V B, F)
        embeddings = F.normalize(self.head(features), dim=1)  # (V B, D)
        coded_rows = views["global"].shape[0]
        if "local" not in views:
            return {"global": embeddings}
        return {"global": embeddings[:coded_rows], "local": embeddings[coded_rows:]}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        batch = embeddings["global"].shape[0] // CODED_VIEWS
        embeddings = torch.cat(
            [embeddings["global"]] + ([embeddings["local"]] if "local" in embeddings else [])
        )
        # Normalised before every use, as in the reference (and before the scores of gradient caching).
        self.prototypes.normalize_()
        queue_used, queue_written = self._queue_state(progress, batch)
        # Exponentials of scores / epsilon need float32 at least (bf16 keeps 8 bits of a cosine).
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            embeddings = at_least_float32(embeddings)
            scores = self.prototypes(embeddings).view(-1, batch, self.params.prototypes)  # (V, B, K)
            with torch.no_grad():
                codes = torch.stack(
                    [
                        sinkhorn_knopp(
                            scores[view],
                            epsilon=self.params.epsilon,
                            iterations=self.params.sinkhorn_iterations,
                            shared_scores=self.prototypes(self.queues[view].keys) if queue_used else None,
                        )
                        for view in range(CODED_VIEWS)
                    ]
                )  # (2, B, K)
            loss = swapped_prediction_loss(scores, codes, self.params.temperature)
        if queue_written:
            for view, queue in enumerate(self.queues):
                queue.enqueue(embeddings[view * batch : (view + 1) * batch].detach())
        return MethodOutput(loss)

    def _queue_state(self, progress: StepProgress, batch: int) -> tuple[bool, bool]:
        """(whether this step's Sinkhorn uses the queue, whether it writes this batch to it), from host
        counts only: the queue is written from ``queue_start_epoch`` on and full after
        ``queue_size / global batch`` writes, so reading its fill level back is never needed."""
        if not self.queues:
            return False, False
        global_batch = batch * world_size()
        if global_batch > self.params.queue_size:  # checked from the first step, not when the queue starts
            raise ValueError(
                f"swav: queue_size = {self.params.queue_size} is smaller than the global batch of "
                f"{global_batch} embeddings written per step; raise method.queue_size or set it to 0"
            )
        start = round(self.params.queue_start_epoch * progress.steps_per_epoch)
        if progress.step < start:
            return False, False
        return (progress.step - start) * global_batch >= self.params.queue_size, True

    def frozen_parts(self, steps_per_epoch: int) -> list[FrozenForSteps]:
        """The prototypes, for ``freeze_prototypes_epochs`` epochs of optimizer steps."""
        steps = round(self.params.freeze_prototypes_epochs * steps_per_epoch)
        return [FrozenForSteps(self.prototypes, steps)]
