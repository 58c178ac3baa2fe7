"""Learning-rate scaling with the batch size: the recipe gives a base rate, the optimizer gets the scaled one.

SimCLR (Chen et al., 2020, Sec. 2.3 and Appendix B.1) uses linear scaling (Goyal et al., 2017),
lr = 0.3 x BatchSize / 256, i.e. 4.8 at batch 4096; for small batches and long training its appendix
finds square-root scaling, lr = 0.075 x sqrt(BatchSize), works better (Appendix B.1).
``BatchSize`` is the number of images per step over all processes (N, not the 2N views).
"""

from __future__ import annotations

import math
from typing import Literal

LrScaling = Literal["linear", "sqrt", "none"]

REFERENCE_BATCH_SIZE = 256
"""The batch size at which linear scaling leaves the base rate unchanged (Goyal et al., 2017)."""


def scaled_learning_rate(base_lr: float, batch_size: int, rule: LrScaling) -> float:
    """``base_lr`` scaled for a global batch of ``batch_size`` images.

    linear: base * batch / 256; sqrt: base * sqrt(batch); none: base.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 to scale the learning rate, got {batch_size}")
    if rule == "linear":
        return base_lr * batch_size / REFERENCE_BATCH_SIZE
    if rule == "sqrt":
        return base_lr * math.sqrt(batch_size)
    if rule == "none":
        return base_lr
    raise ValueError(f"unknown learning-rate scaling rule {rule!r}; expected 'linear', 'sqrt' or 'none'")
