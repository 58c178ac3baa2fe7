"""Process-group helpers for losses that need the whole global batch: rank, world size, gather with grad.

SimCLR (Chen et al., 2020, Sec. 2.2 "Training with large batch size") trains with batches of up to 8192
images spread over up to 128 TPU cores, and its reference implementation draws every anchor's negatives
from the *global* batch (a cross-replica concatenation). The gather used for that must be differentiable:
the loss on one process depends on the embeddings computed by every other process, and those processes
need the gradient of that dependency.

All helpers behave as a single process (rank 0, world size 1, gather = identity) when
``torch.distributed`` is unavailable or not initialised, so the same loss code runs on a laptop.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a default process group exists (``torch.distributed.init_process_group`` was called)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward routes every process's gradient back to the rows' owner.

    Forward on process r: ``(n, ...)`` -> ``(W * n, ...)``, rows ``[r * n, (r + 1) * n)`` being its own.
    Backward: process s holds ``dL_s / d gathered`` for *all* rows. The rows owned by process r
    influenced every ``L_s``, so r's input gradient is ``sum_s dL_s / d gathered[r * n:(r + 1) * n]``:
    an all-reduce (sum) of the incoming gradient followed by taking the local slice. The plain
    ``torch.distributed.all_gather`` has no backward at all, so negatives from other processes would
    silently receive no gradient.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.local_rows = tensor.shape[0]
        ctx.rank = rank()
        tensor = tensor.contiguous()
        gathered = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(gathered, tensor)
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx: Any, grad_gathered: torch.Tensor) -> torch.Tensor:
        # all_reduce works in place; the incoming gradient may be shared with other graph branches.
        summed = grad_gathered.contiguous().clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.local_rows
        return summed[start : start + ctx.local_rows]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (n, ...) from every process in rank order: -> (world_size * n, ...).

    Differentiable: the gradient reaching a process's input is the sum of the gradients that every
    process's loss sends to those rows. Every process must pass the same shape (equal local batches),
    which is what ``torch.distributed.all_gather`` requires. Returns ``tensor`` itself when not
    distributed or when the world has one process.
    """
    if world_size() == 1:
        return tensor
    return _AllGatherWithGrad.apply(tensor)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over processes, without gradient (for reporting); ``value`` when not distributed."""
    if world_size() == 1:
        return value.detach()
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / world_size()
