"""Float64 references of the MoCo losses, written from the papers' formulas with per-row loops.

Nothing here calls the plugin: every norm, dot product, exponential and logarithm is spelled out, so that
a test comparing the plugin with these functions compares two independent derivations.
"""

from __future__ import annotations

import torch


def unit(vector: torch.Tensor) -> torch.Tensor:
    """vector (d,) / its Euclidean norm."""
    return vector / torch.sqrt((vector * vector).sum())


def info_nce_reference(
    queries: torch.Tensor, positives: torch.Tensor, negatives: list[torch.Tensor], temperature: float
) -> torch.Tensor:
    """MoCo eq. 1 averaged over the batch: queries, positives (B, d); negatives a list of (d,) unit keys.

    L_i = -log( exp(q_i . k_i / tau) / (exp(q_i . k_i / tau) + sum_j exp(q_i . n_j / tau)) ).
    """
    total = torch.zeros((), dtype=torch.float64)
    for i in range(queries.shape[0]):
        q = unit(queries[i])
        positive = torch.exp((q * unit(positives[i])).sum() / temperature)
        denominator = positive
        for negative in negatives:
            denominator = denominator + torch.exp((q * negative).sum() / temperature)
        total = total - torch.log(positive / denominator)
    return total / queries.shape[0]


def ctr_reference(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo v3's ctr(q, k) (Algorithm 1) on one batch: queries, keys (N, d) -> 2 tau * mean_i CE_i.

    CE_i = -log( exp(q_i . k_i / tau) / sum_j exp(q_i . k_j / tau) ), all vectors normalised.
    """
    total = torch.zeros((), dtype=torch.float64)
    count = queries.shape[0]
    for i in range(count):
        q = unit(queries[i])
        terms = [torch.exp((q * unit(keys[j])).sum() / temperature) for j in range(count)]
        denominator = terms[0]
        for term in terms[1:]:
            denominator = denominator + term
        total = total - torch.log(terms[i] / denominator)
    return 2 * temperature * total / count
