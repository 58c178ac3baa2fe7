"""Differentiable collectives for losses computed over the global batch of several processes.

With data parallelism each process sees only its local batch, yet many self-supervised objectives are
defined on the *global* batch: NT-Xent draws negatives from every process, Barlow Twins and VICReg
compute a cross-correlation or covariance over all samples, SwAV's Sinkhorn normalises over all samples,
and DINO's centre is a global mean. This module holds the collectives such losses are built from:

* :func:`rank`, :func:`world_size`, :func:`is_distributed`: where this process stands.
* :func:`gather_with_grad`: concatenate a tensor from every process, with a backward, so that samples
  held by other processes (negatives, say) still send gradient back to their owner.
* :func:`all_reduce_with_grad`: sum (or mean) a statistic over processes, with a backward.
* :func:`all_reduce_mean`: average a value over processes for reporting; no gradient.

Plain ``torch.distributed`` collectives have no backward: a loss written with them trains silently on
the local part of the graph only. Every function here degrades to a single process (rank 0, world
size 1, gather and reduce are the identity) when ``torch.distributed`` is unavailable or no process
group is initialised, so the same loss code runs on a laptop.

Gradient convention (the one used throughout the engine)
--------------------------------------------------------
Process ``s`` computes a loss ``L_s`` and calls ``backward`` on it; ``DistributedDataParallel`` then
*averages* parameter gradients over the ``W`` processes. The objective being minimised is therefore

    L = (1 / W) * sum_s L_s,

and in the usual case, where every process computes the same global loss from a reduced statistic,
simply ``L = L_s``. The backward of every collective here is chosen so that, after DDP's division by
``W``, each parameter receives exactly ``dL / dparameter``, the gradient of one process holding the
whole global batch. Equivalently: the gradient that reaches a process's local input is ``W`` times the
true gradient of ``L`` for that input, and DDP's ``1 / W`` restores it. A parameter gradient taken
without DDP (or any other averaging) must be divided by ``W`` by hand.

Rules that every caller must respect:

* every process calls the same collectives in the same order, in forward *and* in backward (a loss
  must not skip a gather on some processes only);
* :func:`gather_with_grad` needs the same shape on every process (equal local batches);
* :func:`all_reduce_with_grad` needs the same shape on every process.

Example for a plugin author: a Barlow-Twins-style loss on the global batch. ``z_a`` and ``z_b`` are
this process's ``(n, d)`` embeddings of the two views, every process has the same ``n``::

    import torch

    from contrastive_core.distributed import all_reduce_with_grad, world_size

    def barlow_twins_loss(z_a, z_b, off_diagonal_weight=5e-3):
        global_batch = z_a.shape[0] * world_size()
        # Standardise each dimension with the mean and variance of the global batch.
        def standardise(z):
            mean = all_reduce_with_grad(z.sum(0)) / global_batch                        # (d,)
            variance = all_reduce_with_grad(((z - mean) ** 2).sum(0)) / global_batch    # (d,)
            return (z - mean) / (variance + 1e-5).sqrt()
        z_a, z_b = standardise(z_a), standardise(z_b)
        c = all_reduce_with_grad(z_a.T @ z_b) / global_batch                            # (d, d)
        on_diagonal = (torch.diagonal(c) - 1).pow(2).sum()
        off_diagonal = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
        return on_diagonal + off_diagonal_weight * off_diagonal

Every process returns the same value, the loss of the global batch, and after DDP's averaging the
parameter gradients are those of one process holding all ``W * n`` samples.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import torch
import torch.distributed as dist

__all__ = [
    "all_reduce_mean",
    "all_reduce_with_grad",
    "gather_with_grad",
    "is_distributed",
    "rank",
    "world_size",
]

ReduceOpName = Literal["sum", "mean"]


def is_distributed() -> bool:
    """True when a default process group exists (``torch.distributed.init_process_group`` was called)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


# Flat-tensor collectives, under their current names where this torch has them (in torch 2.14 the
# older names are deprecated aliases that warn).
_all_gather_flat = getattr(dist, "all_gather_single", None) or getattr(dist, "all_gather_into_tensor", None)
_reduce_scatter_flat = getattr(dist, "reduce_scatter_single", None) or getattr(
    dist, "reduce_scatter_tensor", None
)

# (collective, backend, device type) combinations found missing at run time; the fallback is used for
# them from then on. NCCL has both flat collectives, and so has the gloo backend of torch 2.14
# (tests/engine/test_collectives.py measures it); backends of older releases may lack them.
_UNSUPPORTED: set[tuple[str, str, str]] = set()
_UNSUPPORTED_MESSAGE = re.compile(
    r"(does not|doesn't|no) support|not (implemented|supported)|unsupported", re.I
)


def _capability_key(collective: str, tensor: torch.Tensor) -> tuple[str, str, str]:
    return (collective, str(dist.get_backend()), tensor.device.type)


def _try_flat(collective: str, function: Any, output: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Run a flat collective; False (and remembered) when the backend does not implement it.

    A backend that lacks a collective refuses it before communicating, on every process alike, so
    every process takes the same fallback and the processes stay in step. Any other error propagates.
    """
    key = _capability_key(collective, tensor)
    if function is None or key in _UNSUPPORTED:
        return False
    try:
        function(output, tensor)
    except (RuntimeError, NotImplementedError) as error:
        if not _UNSUPPORTED_MESSAGE.search(str(error)):
            raise
        _UNSUPPORTED.add(key)
        return False
    return True


def _all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """(n, ...) contiguous -> (W * n, ...), rank r's rows at [r * n, (r + 1) * n)."""
    gathered = tensor.new_empty((world_size() * tensor.shape[0], *tensor.shape[1:]))
    if not _try_flat("all_gather", _all_gather_flat, gathered, tensor):
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(parts, tensor)
        torch.cat(parts, dim=0, out=gathered)
    return gathered


def _reduce_scatter_rows(tensor: torch.Tensor) -> torch.Tensor:
    """(W * n, ...) contiguous -> (n, ...): rows [r * n, (r + 1) * n) summed over processes, on rank r."""
    rows = tensor.shape[0] // world_size()
    local = tensor.new_empty((rows, *tensor.shape[1:]))
    if not _try_flat("reduce_scatter", _reduce_scatter_flat, local, tensor):
        # Same result, W times the traffic: every process receives every row, then keeps its own.
        summed = tensor.clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        start = rank() * rows
        local.copy_(summed[start : start + rows])
    return local


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns to each process the gradient of its own rows.

    Forward on process r: ``x_r`` of shape ``(n, ...)`` -> ``y = [x_0; x_1; ...; x_{W-1}]`` of shape
    ``(W * n, ...)``. Backward: process s holds ``g_s = dL_s / dy`` for *all* ``W * n`` rows. The rows of
    ``x_r`` appear in every ``L_s``, so

        d(sum_s L_s) / dx_r = sum_s g_s[r * n:(r + 1) * n],

    a reduce-scatter (sum) of the incoming gradients. By the module's convention the objective is
    ``(1 / W) sum_s L_s``; its true gradient is this sum divided by W, which DDP's averaging supplies.
    A reduce-scatter sends each process only its own n rows, W times less than all-reducing all
    ``W * n`` rows and then keeping a slice (the fallback for backends without it).
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return _all_gather_rows(tensor.contiguous())

    @staticmethod
    def backward(ctx: Any, grad_gathered: torch.Tensor) -> torch.Tensor:
        # The collective only reads its input, but the fallback clones before all-reducing in place.
        return _reduce_scatter_rows(grad_gathered.contiguous())


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process in rank order, differentiably.

    Args:
        tensor: ``(n, ...)``, at least one dimension; any dimensions after the first. Every process
            must pass the same shape, dtype and device type (equal local batches).

    Returns:
        ``(world_size() * n, ...)``; rows ``[r * n, (r + 1) * n)`` are process r's ``tensor``. When not
        distributed, or with a single process, ``tensor`` itself.

    Backward: the gradient reaching process r's ``tensor`` is the *sum* over processes of the gradient
    each one sends to r's rows (a reduce-scatter). With DDP averaging parameter gradients over W
    processes, the result is the gradient of the mean of the processes' losses; see the module
    docstring.

    Raises:
        ValueError: for a 0-d tensor, which has no rows to concatenate.
    """
    if tensor.ndim == 0:
        raise ValueError(
            "gather_with_grad concatenates along dim 0 and needs a tensor of shape (n, ...), got a 0-d "
            "tensor; use all_reduce_with_grad for a scalar, or unsqueeze(0) it"
        )
    if world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def _check_op(op: str) -> None:
    if op not in ("sum", "mean"):
        raise ValueError(f"op must be 'sum' or 'mean', got {op!r}")


def _all_reduce(tensor: torch.Tensor, op: ReduceOpName) -> torch.Tensor:
    """A new tensor: ``tensor`` summed (or averaged) over processes; ``tensor`` is left untouched."""
    total = tensor.contiguous().clone()  # all_reduce works in place
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / world_size() if op == "mean" else total


class _AllReduceWithGrad(torch.autograd.Function):
    """All-reduce (sum or mean) whose backward all-reduces the incoming gradient with the same op.

    See :func:`all_reduce_with_grad` for the derivation.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, op: ReduceOpName) -> torch.Tensor:
        ctx.op = op
        return _all_reduce(tensor, op)

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _all_reduce(grad_total, ctx.op), None


def all_reduce_with_grad(tensor: torch.Tensor, op: ReduceOpName = "sum") -> torch.Tensor:
    """The sum (or mean) of ``tensor`` over processes, differentiably.

    Args:
        tensor: any shape, including 0-d; the same shape on every process. Typically a statistic of the
            local batch: a per-dimension sum ``(d,)``, a cross-correlation ``z_a.T @ z_b`` ``(d, d)``.
        op: ``"sum"``: ``y = sum_r x_r``; ``"mean"``: ``y = (1 / W) sum_r x_r``.

    Returns:
        ``y``, the same shape as ``tensor`` and identical on every process. When not distributed, or
        with a single process, ``tensor`` itself (the sum and the mean of one term).

    Backward: the incoming gradient is all-reduced with the same op. Why this is the right rule under
    DDP averaging: process s holds ``g_s = dL_s / dy``; the objective is ``L = (1 / W) sum_s L_s``
    and DDP divides the gradient reaching each parameter by W, so process r's input must receive
    ``W * dL / dx_r``.

    * ``"sum"``: ``dy / dx_r = 1``, so ``dL / dx_r = (1 / W) sum_s g_s`` and r must receive
      ``sum_s g_s``: the all-reduce (sum) of the incoming gradients. In the common case where every
      process computes the same global loss from ``y``, each holds the same ``g = dL / dy``, the true
      gradient of ``x_r`` is ``g``, the all-reduce makes it ``W * g`` and DDP's ``1 / W`` restores ``g``.
    * ``"mean"``: ``dy / dx_r = 1 / W``, so ``dL / dx_r = (1 / W**2) sum_s g_s`` and r must receive
      ``(1 / W) sum_s g_s``: the all-reduce (mean) of the incoming gradients. With the same ``g`` on
      every process the true gradient is ``g / W``, r receives ``g`` and DDP's ``1 / W`` gives ``g / W``.

    Raises:
        ValueError: for an ``op`` other than ``"sum"`` or ``"mean"``.
    """
    _check_op(op)
    if world_size() == 1:
        return tensor
    return _AllReduceWithGrad.apply(tensor, op)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` (any shape) over processes, detached: for reporting, no gradient.

    Returns a new tensor of ``value``'s shape, identical on every process; ``value.detach()`` when not
    distributed or with a single process.
    """
    if world_size() == 1:
        return value.detach()
    return _all_reduce(value.detach(), "mean")
