"""NT-Xent in row blocks: the loss and its exact gradient in O(N x block) memory instead of O(N^2).

The plain loss materialises the (2N, 2N) logit matrix (2N x 2WN across W processes) for the forward and
keeps it, plus its softmax, for the backward: at N = 16k views that is 1 GiB per float32 copy. Here the
logits exist one block of ``block`` anchor rows at a time. The forward keeps only each anchor's
log-sum-exp; the backward recomputes each block's logits and turns them into the gradient of the
cross-entropy, which for anchor i and candidate j is

    dL/dlogit_ij = (softmax_ij - [j = pos(i)]) / A        (A: the anchors averaged over)

so that, with logit_ij = a_i . c_j / tau,

    dL/da_i = sum_j dL/dlogit_ij c_j / tau,     dL/dc_j = sum_i dL/dlogit_ij a_i / tau.

Both are accumulated block by block. The candidates c may be the anchors themselves (one process) or
all processes' anchors gathered with :func:`~contrastive_core.distributed.gather_with_grad`, whose own
backward returns every process's share of dL/dc to its owner, so the cross-process gradient is exact.
"""

from __future__ import annotations

from typing import Any

import torch


class BlockwiseNTXentFunction(torch.autograd.Function):
    """``apply(anchors, candidates, first_row, batch, temperature, block, bias)`` -> the mean anchor loss.

    ``anchors``: (2B, d) unit rows ``[a_0..a_B-1, b_0..b_B-1]`` of this process; ``candidates``:
    (M, d) unit rows in which anchor k sits at row ``first_row + k`` (M = 2B, or 2WB gathered, plus
    any extra negatives after them); the positive of anchor k is ``first_row + (k + B) mod 2B``;
    ``block``: anchor rows per block; ``bias``: None or (M,) added to every anchor's logits (-inf
    removes a candidate, as for unwritten rows of a memory of negatives).
    """

    @staticmethod
    def forward(
        ctx: Any,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        first_row: int,
        batch: int,
        temperature: float,
        block: int,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        count = anchors.shape[0]
        log_normalisers = torch.empty(count, dtype=anchors.dtype, device=anchors.device)
        positives = torch.empty(count, dtype=anchors.dtype, device=anchors.device)
        for start in range(0, count, block):
            rows = torch.arange(start, min(start + block, count), device=anchors.device)
            logits = _block_logits(anchors, candidates, rows, first_row, temperature, bias)
            positive_columns = first_row + (rows + batch) % count
            positives[rows] = logits.gather(1, positive_columns[:, None]).squeeze(1)
            log_normalisers[rows] = torch.logsumexp(logits, dim=1)
        ctx.save_for_backward(anchors, candidates, log_normalisers)
        ctx.bias = bias
        ctx.settings = (first_row, batch, temperature, block)
        return (log_normalisers - positives).mean()

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        anchors, candidates, log_normalisers = ctx.saved_tensors
        # A backward called under autocast would run the products below in bf16: keep the loss' dtype.
        with torch.autocast(device_type=anchors.device.type, enabled=False):
            return BlockwiseNTXentFunction._gradients(
                grad_loss, anchors, candidates, log_normalisers, ctx.bias, *ctx.settings
            )

    @staticmethod
    def _gradients(
        grad_loss: torch.Tensor,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        log_normalisers: torch.Tensor,
        bias: torch.Tensor | None,
        first_row: int,
        batch: int,
        temperature: float,
        block: int,
    ) -> tuple[torch.Tensor | None, ...]:
        count = anchors.shape[0]
        grad_anchors = torch.zeros_like(anchors)
        grad_candidates = torch.zeros_like(candidates)
        scale = grad_loss / (count * temperature)  # the mean over anchors, and the 1/tau of the logits
        for start in range(0, count, block):
            rows = torch.arange(start, min(start + block, count), device=anchors.device)
            # softmax - one-hot of the positive: the cross-entropy's gradient with respect to the logits,
            # computed in place in the block's one logit buffer (exp(-inf) = 0 on the own column).
            weights = _block_logits(anchors, candidates, rows, first_row, temperature, bias)
            weights.sub_(log_normalisers[rows, None]).exp_()
            positive_columns = first_row + (rows + batch) % count
            weights[torch.arange(len(rows), device=anchors.device), positive_columns] -= 1.0
            weights.mul_(scale)
            grad_anchors[rows] = weights @ candidates
            grad_candidates.addmm_(weights.T, anchors[rows])
        return grad_anchors, grad_candidates, None, None, None, None, None


def _block_logits(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    rows: torch.Tensor,
    first_row: int,
    temperature: float,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """(len(rows), M) logits of anchors ``rows`` (plus ``bias``), each anchor's own column set to -inf
    (one new buffer)."""
    logits = (anchors[rows] @ candidates.T).div_(temperature)
    if bias is not None:
        logits.add_(bias)
    logits[torch.arange(len(rows), device=logits.device), first_row + rows] = float("-inf")
    return logits
