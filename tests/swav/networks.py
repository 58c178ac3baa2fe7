"""A float64 SwAV on the tiny multi-crop parts (tests/engine/multi_crop.py)."""

from __future__ import annotations

import torch

from contrastive_core import MethodParts
from contrastive_plugins.simclr.projection_head import ProjectionHead, ProjectionHeadParams
from contrastive_plugins.swav.method import SwAV, SwAVParams
from tests.engine.multi_crop import FEATURES, pooled_encoder


def tiny_swav(**params) -> SwAV:
    """A float64 SwAV with 5 prototypes of dimension 4 (``params`` override the method's defaults)."""
    torch.manual_seed(0)
    head = ProjectionHead(
        ProjectionHeadParams(type="mlp", hidden_dim=8, out_dim=4, batch_norm=False), in_dim=FEATURES
    )
    parts = MethodParts(encoder=pooled_encoder(), head=head)
    return SwAV(SwAVParams(**{"prototypes": 5, **params}), parts).double()
