"""MoCo v2 as a method (Chen, Fan, Girshick, He 2020, "Improved Baselines with Momentum Contrastive
Learning", arXiv:2003.04297), built on MoCo (He, Fan, Wu, Xie, Girshick 2020, "Momentum Contrast for
Unsupervised Visual Representation Learning", arXiv:1911.05722, Algorithm 1).

A query encoder (encoder f and MLP head g, trained by gradient) and a key encoder (a momentum copy of
f and g, moved by EMA with a constant momentum m = 0.999) encode two views of every image:

    q = normalize(g(f(x_q))),   k = normalize(g'(f'(x_k))),

and q is classified against its positive key k among the negatives of a queue holding the last K keys
(those of the last K images; of the last K / 2 images with ``symmetric``, which enqueues both views) (InfoNCE, MoCo eq. 1, :func:`.queue_info_nce.queue_info_nce`). The current keys are then
pushed into the queue (:class:`~contrastive_core.distributed.GlobalQueue`), after the loss, so no key is its own negative. MoCo v2
adds to MoCo the MLP head (Table 1, a 2048-d hidden layer with ReLU), the stronger augmentation (blur)
and the cosine learning-rate schedule, and uses tau = 0.2 (Table 1); the latter two are the recipe's.

With several processes the key encoder runs on a shuffled regrouping of the global batch (shuffling BN,
MoCo Sec. 3.3, :func:`.shuffle_bn.shuffled_keys`) and every process writes the global batch of keys,
so the queue stays identical everywhere. The encoder f is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from contrastive_core import (
    ComponentParams,
    Method,
    MethodOutput,
    MethodParts,
    Problem,
    StepProgress,
    ViewGroup,
)
from contrastive_core.components import MomentumTarget, check_temperature, temperature_warnings
from contrastive_core.distributed import GlobalQueue, gather_with_grad
from contrastive_core.engine import at_least_float32, cosine_schedule

from .queue_info_nce import queue_info_nce
from .shuffle_bn import shuffled_keys

__all__ = ["MoCoV2", "MoCoV2Params"]

#: Base of the seeds of the shuffling-BN permutations (the step is added): a fixed constant, so that
#: every process draws the same permutation at the same step without communicating.
SHUFFLE_SEED = 0x4D6F436F  # "MoCo"


class MoCoV2Params(ComponentParams):
    type: Literal["moco_v2"] = "moco_v2"

    momentum: float = Field(0.999, ge=0, le=1)
    """m, the key encoder's EMA momentum at the first step (He et al. 2020, Sec. 3.2 and 4.1: m = 0.999,
    constant; its momentum ablation trains with 0.9 to 0.9999, best at 0.99 to 0.9999, and fails with 0)."""

    final_momentum: float | None = Field(None, ge=0, le=1)
    """None: m stays constant, as in MoCo. A value: m rises from ``momentum`` to it on a cosine over the
    steps, as solo-learn's "MoCo v2+" CIFAR setting does (0.99 to 0.999)."""

    queue_size: int = Field(65536, ge=1)
    """K, the number of keys in the queue (He et al. 2020, Sec. 4.1: K = 65536). It must be at least the
    global batch of keys written per step (twice the global batch with ``symmetric``)."""

    temperature: float = Field(0.2, gt=0)
    """tau of the InfoNCE (Chen et al. 2020, Sec. 2 and Table 1: 0.2 with the MLP head, where MoCo v1
    used 0.07)."""

    symmetric: bool = False
    """False: the paper's loss, view 1 as query and view 2 as key only (He et al. 2020, Algorithm 1).
    True: also view 2 as query and view 1 as key, the two losses averaged, and both views' keys enqueued
    into the one queue, which then holds the keys of K / 2 images (the two view orders as in MoCo v3's
    symmetrised loss, Chen, Xie, He 2021, Algorithm 1, which sums them; the average is solo-learn's
    "MoCo v2+", which keeps a queue per view). Both terms read the queue as it was before the step (cf. lightly-ai/lightly#564: keys
    enqueued between the two terms would be their own negatives). Doubles the encoder passes per step."""

    shuffle_bn: bool = True
    """Shuffling BN: with several processes the key encoder runs on a shuffled regrouping of the global
    batch, so that batch-norm statistics do not leak which sub-batch a key came from (He et al. 2020,
    Sec. 3.3). A no-op on one process; pointless (only costly) with the run's global batch norm."""

    @field_validator("temperature")
    @classmethod
    def _usable_temperature(cls, value: float) -> float:
        return check_temperature(value)

    def recipe_warnings(self) -> list[Problem]:
        return temperature_warnings(self.temperature, (0.05, 1.0), "MoCo: 0.07 in v1, 0.2 in v2")


class MoCoV2(Method):
    """MoCo v2: InfoNCE of q = g(f(x1)) against the EMA key g'(f'(x2)) and a queue of K earlier keys.

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image i. Each view runs through the networks on its own (B rows per pass), as in the paper's
    implementation, so that batch-norm statistics are those of one view's batch.
    """

    name: ClassVar[str] = "moco_v2"
    Params: ClassVar[type[ComponentParams]] = MoCoV2Params
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head",)

    params: MoCoV2Params

    def __init__(self, params: MoCoV2Params, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head  # g: (B, F) -> (B, d)
        # The key encoder follows f then g. The Sequential only groups them for the copy: it is not kept
        # as a submodule, so each online layer is saved once in the method's state.
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))
        self.queue = GlobalQueue(params.queue_size, parts.head.out_dim)

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"queries": (V B, d)}``: g(f(x)) of view 1 (and of view 2 with ``symmetric``: V = 2)."""
        first, second = views["global"].chunk(2)  # two (B, C, H, W) views, row i of each of image i
        queried = (first, second) if self.params.symmetric else (first,)
        return {"queries": torch.cat([self.head(self.encoder(view)) for view in queried])}

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> dict[str, torch.Tensor]:
        """``{"keys": (V B, d)}``: unit keys of view 2 (then of view 1 with ``symmetric``), the positives of
        the queries row by row, from the momentum encoder run on a shuffled regrouping of the global batch
        when ``shuffle_bn``."""
        first, second = views["global"].chunk(2)
        # The same permutations on every process: a host generator seeded from the step.
        generator = torch.Generator().manual_seed(SHUFFLE_SEED + progress.step)
        keyed = (second, first) if self.params.symmetric else (second,)
        return {"keys": torch.cat([self._keys(view, generator) for view in keyed])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        queries, keys = embeddings["queries"], embeddings["keys"]  # (V B, d) each, row by row positives
        pairs = 2 if self.params.symmetric else 1
        # Snapshot of the negatives: the enqueue below writes the buffer in place, and the backward
        # reads the keys the logits were computed with.
        negatives = self.queue.keys.clone()
        filled = self.queue.fill  # read by a comparison in the forward only: no snapshot needed
        temperature = self.params.temperature
        loss = (
            sum(
                queue_info_nce(query, key, negatives, filled, temperature)
                for query, key in zip(queries.chunk(pairs), keys.chunk(pairs), strict=True)
            )
            / pairs
        )
        # After the loss: this step's keys are negatives from the next step on, never their own. The
        # queue receives the global batch's keys of each keyed view in turn, each in rank order.
        with torch.no_grad():
            everyone = gather_with_grad(keys.detach())  # (W V B, d): process r's V B rows together
            dim = everyone.shape[-1]
            batch = keys.shape[0] // pairs
            by_view = everyone.view(-1, pairs, batch, dim).transpose(0, 1).reshape(-1, dim)
        self.queue.enqueue_gathered(by_view)
        return MethodOutput(loss, {"queue_fill": self.queue.fill.float() / self.queue.size})

    def _keys(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Unit keys ``(B, d)`` of this process's ``images`` (B, C, H, W), without gradient."""
        if self.params.shuffle_bn:
            return shuffled_keys(self._key_network, images, generator)[0]
        return self._key_network(images)

    def _key_network(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, d) unit-norm keys of the momentum encoder (at least float32), without gradient."""
        keys = self.target(images)  # under the run's autocast; no gradient
        with torch.autocast(device_type=keys.device.type, enabled=False):
            return F.normalize(at_least_float32(keys), dim=1)

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        """The key encoder with momentum m (constant, or on a cosine to ``final_momentum``), after every step."""
        if self.params.final_momentum is None:
            return [(self.target, self.params.momentum)]
        momentum = cosine_schedule(
            self.params.momentum, self.params.final_momentum, progress.step, progress.total_steps
        )
        return [(self.target, momentum)]
