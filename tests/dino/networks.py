"""A float64 DINO on the tiny multi-crop parts (tests/engine/multi_crop.py) with a small DINO head."""

from __future__ import annotations

import torch

from contrastive_core import MethodParts
from contrastive_plugins.dino.head import DINOHead, DINOHeadParams
from contrastive_plugins.dino.method import DINO, DINOParams
from tests.engine.multi_crop import FEATURES, pooled_encoder

#: K, the tiny head's output dimension.
OUT = 7


def tiny_head(**params) -> DINOHead:
    return DINOHead(
        DINOHeadParams(
            **{"type": "dino_head", "hidden_dim": 8, "bottleneck_dim": 5, "out_dim": OUT, **params}
        ),
        in_dim=FEATURES,
    )


def tiny_dino(head: dict | None = None, **params) -> DINO:
    """A float64 DINO (``params`` override the method's defaults, ``head`` the head's)."""
    torch.manual_seed(0)
    parts = MethodParts(encoder=pooled_encoder(), head=tiny_head(**(head or {})))
    return DINO(DINOParams(**params), parts).double()
