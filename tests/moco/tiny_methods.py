"""MoCo methods over the tiny float64 networks of ``tests.engine.tiny_networks``, in eval mode.

Built from a fixed seed, so every process (and every call) gets the same weights. In eval mode batch
norm uses its running statistics, so a row's output does not depend on the rows batched with it.
"""

from __future__ import annotations

from contrastive_core import Method
from contrastive_plugins.moco.moco_v2 import MoCoV2, MoCoV2Params
from contrastive_plugins.moco.moco_v3 import MoCoV3, MoCoV3Params
from tests.engine.tiny_networks import IMAGE, tiny_parts

__all__ = ["IMAGE", "tiny_method"]


def tiny_method(kind: str, **params) -> Method:
    """``kind`` ("moco_v2" or "moco_v3") with ``params``: (2B, *IMAGE) views -> loss; projections of size 4."""
    if kind == "moco_v2":
        method = MoCoV2(MoCoV2Params(**params), tiny_parts())
    else:
        method = MoCoV3(MoCoV3Params(**params), tiny_parts(predictor=True))
    return method.double().eval()
