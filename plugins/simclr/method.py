"""SimCLR as a method (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", Algorithm 1; the seed's Algorithm 2).

Two views of every image from one augmentation list, one encoder f and projection head g shared by
both views (a single forward pass over all 2B views), and a two-view contrastive loss on the
projections: NT-Xent (``[loss] type = "nt_xent"``) in the paper, or any registered loss that takes
``loss(z_a, z_b)``. No predictor, no state: the encoder f is what is exported.

Optionally, SimCLRv2's memory of negatives (Chen, Kornblith, Swersky, Norouzi, Hinton 2020,
arXiv:2006.10029, Sec. 2, "we also incorporate the memory mechanism from MoCo"): a memory network, an
EMA copy of f and g (MoCo, He et al. 2020, Sec. 3.2), projects both views; its unit projections of the
last ``memory_size`` views, kept identical on every process by a
:class:`~contrastive_core.distributed.GlobalQueue`, are extra negatives of every anchor in NT-Xent's
denominator. The current batch's projections enter the memory after the loss, so no view is its own
negative.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from contrastive_core import (
    ComponentParams,
    Encoder,
    Method,
    MethodOutput,
    MethodParts,
    StepProgress,
    ViewGroup,
)
from contrastive_core.components import MomentumTarget, PublishedSetting
from contrastive_core.distributed import GlobalQueue, gather_with_grad, world_size
from contrastive_core.engine import at_least_float32
from contrastive_core.errors import ContrastiveError

from .encoders.with_head_layers import WithHeadLayers
from .projection_head import ProjectionHead
from .published_settings import SIMCLR_PUBLISHED_SETTINGS


class SimCLRParams(ComponentParams):
    type: Literal["simclr"] = "simclr"

    memory_size: int = Field(0, ge=0)
    """SimCLRv2's memory of negatives: the number of earlier views (over all processes) whose memory-
    network projections join every anchor's negatives; 0 (default, SimCLR v1) for none. SimCLRv2
    (Sec. 2) reports about +1% linear and 1%-label fine-tuning accuracy from it at its large batches; its
    text does not state the size, so MoCo's K = 65536 (He et al. 2020, Sec. 4.1) is a natural choice. It
    must hold at least one global batch (2N views)."""

    export_head_layers: int = Field(0, ge=0)
    """Export f followed by the first this many layers of the projection head (each linear layer with its
    BN and ReLU) instead of f alone, so later stages fine-tune and evaluate from there: SimCLRv2
    fine-tunes from the first layer of its 3-layer head (Sec. 2), i.e. 1. 0 (default, SimCLR): f alone,
    as the paper discards the head (Sec. 4.2). Needs an "mlp" head with at least that many layers."""

    memory_momentum: float = Field(0.999, ge=0, le=1)
    """m of the memory network's EMA of f and g (MoCo's default, He et al. 2020, Sec. 3.2 and 4.1;
    SimCLRv2 uses "a moving average of weights for stabilization" without giving m)."""


class SimCLR(Method):
    """SimCLR: z = g(f(x)) for both views in one pass, and the recipe's loss on the pairs (NT-Xent).

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image i. The forward is
    split (:meth:`embed`: the projections; :meth:`objective`: the loss), so gradient caching applies.
    """

    name: ClassVar[str] = "simclr"
    Params: ClassVar[type[ComponentParams]] = SimCLRParams
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head", "loss")
    published_settings: ClassVar[tuple[PublishedSetting, ...]] = SIMCLR_PUBLISHED_SETTINGS

    def __init__(self, params: SimCLRParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head
        self.loss = parts.loss
        if params.export_head_layers:
            layers = getattr(getattr(parts.head, "params", None), "num_layers", None)
            if not isinstance(parts.head, ProjectionHead) or params.export_head_layers > layers:
                raise ContrastiveError(
                    f"method 'simclr': export_head_layers = {params.export_head_layers} needs an 'mlp' "
                    f"[model.head] with at least that many layers (num_layers); the recipe's head "
                    f"{'has ' + str(layers) if layers else 'is not an mlp head'}"
                )
        if params.memory_size:
            if "negatives" not in inspect.signature(parts.loss.forward).parameters:
                raise ContrastiveError(
                    f"method 'simclr' with memory_size needs a loss that takes extra negatives "
                    f"(loss(z_a, z_b, negatives, negatives_filled), as nt_xent does); "
                    f"{type(parts.loss).name!r} does not"
                )
            # The memory network follows f then g. The Sequential only groups them for the copy.
            self.memory_network = MomentumTarget(nn.Sequential(self.encoder, self.head))
            self.memory = GlobalQueue(params.memory_size, parts.head.out_dim)

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"projections": (2B, d)}``: z = g(f(x)) of both views in one pass, rows i and B + i image i."""
        return {"projections": self.head(self.encoder(views["global"]))}

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> dict[str, torch.Tensor]:
        """With a memory: ``{"memory_projections": (2B, d)}``, the memory network's, laid out alike."""
        if not self.params.memory_size:
            return {}
        return {"memory_projections": self.memory_network(views["global"])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        z = embeddings["projections"]
        z_a, z_b = z.chunk(2)  # row i of z_a and of z_b: the two views of image i
        # The networks run in the run's mixed precision, the loss outside it: similarities over a
        # temperature need more than bf16's 8 significant bits (a loss may still choose its own dtype).
        with torch.autocast(device_type=z.device.type, enabled=False):
            if not self.params.memory_size:
                return MethodOutput(self.loss(z_a, z_b))
            # A snapshot: the write below changes the buffer in place, and the backward reads it.
            negatives, filled = self.memory.keys.clone(), self.memory.fill
            loss = self.loss(z_a, z_b, negatives=negatives, negatives_filled=filled)
            memorised = F.normalize(at_least_float32(embeddings["memory_projections"]), dim=1)
        views_per_step = memorised.shape[0] * world_size()  # host ints: no sync
        if views_per_step > self.memory.size:
            raise ContrastiveError(
                f"method 'simclr': memory_size {self.memory.size} cannot hold one step's {views_per_step} "
                "views; make it at least 2 x batch_size (MoCo's 65536, or 0 for no memory)"
            )
        with torch.no_grad():
            # Every process's views, in the order one process holding the global batch would have them:
            # view a of all images (rank order), then view b.
            everyone = gather_with_grad(memorised.to(self.memory.keys.dtype))  # (W 2B, d), rank-major
            dim = everyone.shape[1]
            by_view = everyone.view(-1, 2, memorised.shape[0] // 2, dim).transpose(0, 1).reshape(-1, dim)
        self.memory.enqueue_gathered(by_view)
        return MethodOutput(loss, {"memory_fill": self.memory.fill.float() / self.memory.size})

    def exported_encoder(self) -> Encoder:
        """f, or f with the head's first ``export_head_layers`` layers (SimCLRv2), sharing the weights."""
        if not self.params.export_head_layers:
            return self.encoder
        return WithHeadLayers.around(self.encoder, self.head, self.params.export_head_layers)

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        """The memory network (when there is a memory) with constant momentum, after every step."""
        if not self.params.memory_size:
            return []
        return [(self.memory_network, self.params.memory_momentum)]
