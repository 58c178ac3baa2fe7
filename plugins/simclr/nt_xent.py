"""NT-Xent, SimCLR's normalized temperature-scaled cross-entropy loss (Chen et al., 2020, Sec. 2.1, Eq. 1).

With the 2N projections of a batch of N images (two views each), sim(u, v) = u.v / (||u|| ||v||) and
temperature tau, the loss of the positive pair (i, j) is

    l(i, j) = -log( exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) )

and the batch loss averages it over both orderings of every positive pair, i.e. over all 2N anchors:
L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)]. Each anchor has one positive and 2N - 2 negatives.

google-research/simclr (``objective.py``, ``add_contrastive_loss``) returns twice that:
``reduce_mean(loss_a + loss_b)``, the mean over the N images of the sum of both directions. LARS cancels
the factor for the weights it adapts (the trust ratio divides by the gradient's norm), but not for the
parameters it exempts (BatchNorm and biases), which then train at half the reference's speed; the
``reduction`` param chooses between the two.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from contrastive_core import ComponentParams, Loss, Problem
from contrastive_core.components import check_temperature, temperature_warnings
from contrastive_core.distributed import all_reduce_mean, gather_with_grad, rank, world_size

from .blockwise_nt_xent import BlockwiseNTXentFunction

#: How the per-anchor losses become the batch loss: "mean" over the 2N anchors (the paper's Eq. and
#: Algorithm 1), or "sum_of_views": the mean over the N images of both directions summed, 2x "mean"
#: (google-research/simclr objective.py).
Reduction = Literal["mean", "sum_of_views"]


class NTXentParams(ComponentParams):
    type: Literal["nt_xent"] = "nt_xent"

    temperature: float = Field(default=0.1, gt=0)
    """Temperature tau dividing the cosine similarities; paper: 0.1 on ImageNet, 0.5 on CIFAR-10.
    Refused below 0.0001; outside 0.05 to 1.0 (the paper's ablation, Table 5) a warning is printed."""

    gather_across_processes: bool = True
    """With several processes, draw negatives from the global batch (gathered with grad), as the paper does."""

    block_size: int | None = Field(default=None, ge=1)
    """Compute the loss and its gradient in blocks of this many anchor rows, so the logits take
    O(2N x block) memory instead of O((2N)^2) (at 2N = 16k views a full float32 logit matrix is 1 GiB,
    and the backward keeps it and its softmax). Same loss and gradients (to float rounding), including
    across processes; the backward recomputes each block's logits, about one extra matrix product.
    None (default): one block."""

    reduction: Reduction = "mean"
    """"mean": L = 1/(2N) sum over the 2N anchors (SimCLR's Algorithm 1); "sum_of_views": 1/N sum over
    the N images of l(a, b) + l(b, a), twice as large, as google-research/simclr's objective.py
    computes it. Under LARS the two differ only for the parameters without trust ratio (BN, biases),
    which "sum_of_views" trains at the reference's speed (twice "mean"'s)."""

    @field_validator("temperature")
    @classmethod
    def _usable_temperature(cls, value: float) -> float:
        return check_temperature(value)

    def recipe_warnings(self) -> list[Problem]:
        return temperature_warnings(
            self.temperature,
            (0.05, 1.0),
            "SimCLR uses 0.1 on ImageNet and 0.5 on CIFAR-10; its Table 5 tries 0.05 to 1",
        )


class NTXent(Loss):
    """NT-Xent contrastive loss of SimCLR: cosine similarity / tau, 2N-2 negatives, both views as anchors.

    ``loss(z_a, z_b)``: ``z_a`` and ``z_b`` are ``(B, d)`` projections of the two views; row i of each comes
    from the same image. Returns a 0-d float32 (or float64 for float64 inputs) tensor.

    Numerics: computed in at least float32 with autocast disabled, whatever the input dtype, because the
    logits reach 1/tau = 100 at tau = 0.01 and bf16 keeps only ~3 significant digits. The softmax is
    evaluated by ``cross_entropy`` (log-sum-exp, max-shifted), never ``exp(1/tau)`` directly, and each
    anchor's similarity with itself is excluded by setting its logit to -inf.

    Distributed (``gather_across_processes`` and world size W > 1; every process must have the same B):
    the normalised embeddings of all processes are gathered with :func:`gather_with_grad`; process r
    computes the loss of its own 2B anchors against all 2WB candidates. Its gradient is that of the mean
    over its local anchors, and the gather's backward sums what every process sends back to r's rows, so
    r's input gradient is W times the global loss' gradient for its rows; DDP's average over W processes
    then gives exactly the gradient of one process holding the global batch. The *value* returned is the
    global-batch loss (the local means averaged over processes), identical on every process.
    """

    name: ClassVar[str] = "nt_xent"
    Params: ClassVar[type[ComponentParams]] = NTXentParams
    params: NTXentParams

    def forward(
        self,
        z_a: torch.Tensor,
        z_b: torch.Tensor,
        negatives: torch.Tensor | None = None,
        negatives_filled: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """z_a, z_b: (B, d) -> scalar: the mean of l(i, j) over the 2B (2WB when gathering) anchors,
        times 2 with ``reduction = "sum_of_views"``.

        ``negatives``: optional (K, d) extra negatives of every anchor, without gradient (SimCLRv2's
        memory of earlier batches, Chen et al. 2020b, Sec. 2): each anchor's denominator also sums
        exp(sim(z_i, n_k) / tau) over them. Only rows ``[0, negatives_filled)`` count (a queue's
        ``fill``; all rows when None).
        """
        if z_a.ndim != 2 or z_a.shape != z_b.shape:
            raise ValueError(
                f"nt_xent expects two (B, d) tensors of the same shape, got {tuple(z_a.shape)} and "
                f"{tuple(z_b.shape)}"
            )
        if negatives is not None and (negatives.ndim != 2 or negatives.shape[1] != z_a.shape[1]):
            raise ValueError(f"nt_xent's negatives must be (K, {z_a.shape[1]}), got {tuple(negatives.shape)}")
        compute_dtype = torch.promote_types(z_a.dtype, torch.float32)
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            extra = None
            if negatives is not None:
                extra = _usable_negatives(negatives.detach().to(compute_dtype), negatives_filled)
            local_loss = self._local_anchor_loss(z_a.to(compute_dtype), z_b.to(compute_dtype), extra)
            if self.params.reduction == "sum_of_views":
                # The mean over 2B anchors times 2 is the mean over B images of both directions' sum.
                local_loss = 2 * local_loss
        if not self._gathers():
            return local_loss
        # Report the global-batch loss while keeping the local gradient (see the class docstring): the
        # detached difference shifts the value without changing what backward sees.
        return local_loss + (all_reduce_mean(local_loss) - local_loss.detach())

    def _gathers(self) -> bool:
        return self.params.gather_across_processes and world_size() > 1

    def _local_anchor_loss(
        self, z_a: torch.Tensor, z_b: torch.Tensor, negatives: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """Mean NT-Xent of this process's 2B anchors; z_a, z_b: (B, d) in the compute dtype -> scalar.
        ``negatives``: (unit (K, d) rows, (K,) bool of rows in use) appended to every anchor's candidates."""
        batch = z_a.shape[0]
        # Normalising first makes every logit a cosine similarity: sim(u, v) = u_hat . v_hat.
        anchors = F.normalize(torch.cat([z_a, z_b]), dim=1)  # (2B, d): rows [a_0..a_B-1, b_0..b_B-1]
        if self._gathers():
            # One collective for both views: candidates are [a^0; b^0; a^1; b^1; ...] by rank, (2WB, d).
            candidates = gather_with_grad(anchors)
            first_row = rank() * 2 * batch
        else:
            candidates = anchors
            first_row = 0
        bias = None
        if negatives is not None:
            # The memory's rows join every anchor's candidates after the batch's; rows not yet written
            # get a logit of -inf (exp(-inf) = 0 in the denominator, no gradient).
            rows, in_use = negatives
            bias = torch.zeros(
                candidates.shape[0] + rows.shape[0], dtype=anchors.dtype, device=anchors.device
            )
            bias[candidates.shape[0] :] = torch.where(in_use, 0.0, float("-inf"))
            candidates = torch.cat([candidates, rows])
        if self.params.block_size is not None:  # the same loss, O(2B x block) logits at a time
            return BlockwiseNTXentFunction.apply(
                anchors, candidates, first_row, batch, self.params.temperature, self.params.block_size, bias
            )
        logits = anchors @ candidates.T / self.params.temperature  # (2B, 2WB [+ K])
        if bias is not None:
            logits = logits + bias
        own = torch.arange(2 * batch, device=logits.device)
        self_columns = first_row + own
        # The positive of a_i is b_i (B rows further) and the positive of b_i is a_i (B rows back).
        positive_columns = first_row + (own + batch) % (2 * batch)
        # -inf removes k = i from the softmax denominator exactly (exp(-inf) = 0); its gradient is 0.
        logits = logits.scatter(1, self_columns[:, None], float("-inf"))
        return F.cross_entropy(logits, positive_columns)


def _usable_negatives(
    negatives: torch.Tensor, filled: torch.Tensor | int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit rows of ``negatives`` (K, d) and which of them count: the first ``filled`` (all when None)."""
    rows = torch.arange(negatives.shape[0], device=negatives.device)
    in_use = rows < (negatives.shape[0] if filled is None else filled)  # on the device: no sync
    return F.normalize(negatives, dim=1), in_use
