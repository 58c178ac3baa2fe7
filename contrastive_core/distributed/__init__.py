"""Training over several processes: differentiable collectives and batch norm over the global batch.

* :mod:`.collectives`: :func:`rank`, :func:`world_size`, :func:`gather_with_grad`,
  :func:`all_reduce_with_grad`, :func:`all_reduce_mean` (each the identity in a single process);
* :mod:`.global_queue`: :class:`GlobalQueue`, a FIFO of vectors from the global batch, the same on
  every process (MoCo's keys, SwAV's embeddings);
* :mod:`.global_batch_norm`: :class:`GlobalBatchNorm` for CPU process groups and
  :func:`convert_to_global_batchnorm`.
"""

from __future__ import annotations

from .collectives import (
    all_reduce_mean,
    all_reduce_with_grad,
    gather_with_grad,
    is_distributed,
    rank,
    world_size,
)
from .global_batch_norm import BatchNormNotConvertibleError, GlobalBatchNorm, convert_to_global_batchnorm
from .global_queue import GlobalQueue

__all__ = [
    "BatchNormNotConvertibleError",
    "GlobalBatchNorm",
    "GlobalQueue",
    "all_reduce_mean",
    "all_reduce_with_grad",
    "convert_to_global_batchnorm",
    "gather_with_grad",
    "is_distributed",
    "rank",
    "world_size",
]
