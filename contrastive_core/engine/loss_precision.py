"""The precision a method computes its loss in: at least float32, whatever the run's autocast produced.

Networks run under the run's mixed precision (bf16 or fp16 autocast), but similarities over a
temperature, cosines, and cross-correlations or covariances summed over a batch need more than bf16's
8 significant bits. A method turns autocast off around its loss and feeds it its outputs through
:func:`at_least_float32`: bf16 and fp16 become float32, while float32 and float64 stay as they are (so
float64 tests of a method compare at float64 precision).
"""

from __future__ import annotations

import torch

__all__ = ["at_least_float32"]


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is in a narrower floating type (bf16, fp16), else unchanged."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))
