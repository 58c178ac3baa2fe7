"""The recipe's ``[run] precision`` for evaluation: autocast for forward passes, loss scaling for fp16.

Evaluation stages do not hand their models to ``accelerator.prepare`` (each process evaluates on its
own, see docs/evaluation.md), so they apply the precision themselves with plain torch.amp.
"""

from __future__ import annotations

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast context for ``precision`` ("no", "bf16", "fp16") on ``device``; disabled for "no"."""
    return torch.autocast(
        device.type, dtype=_DTYPES.get(precision, torch.bfloat16), enabled=precision in _DTYPES
    )


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaler that keeps fp16 gradients from underflowing; a pass-through for other precisions."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
