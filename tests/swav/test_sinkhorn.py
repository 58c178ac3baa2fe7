"""Sinkhorn-Knopp codes against a float64 reference written from the paper's formulas, and their sums."""

from __future__ import annotations

import pytest
import torch

from contrastive_plugins.swav.sinkhorn import sinkhorn_knopp

DTYPE = torch.float64


def reference_codes(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """Q = diag(u) exp(S^T / eps) diag(v) (Caron et al. 2020, Sec. 3.1; Cuturi 2013), (N, K) rows = codes.

    Written in the scaling-vector form, element by element: ``iterations`` times, u makes every row of
    Q sum to 1 / K, then v makes every column sum to 1 / N; the codes are N Q^T.
    """
    samples, prototypes = scores.shape
    kernel = [[float(torch.exp(scores[n, k] / epsilon)) for n in range(samples)] for k in range(prototypes)]
    v = [1.0] * samples
    u = [1.0] * prototypes
    for _ in range(iterations):
        u = [(1 / prototypes) / sum(kernel[k][n] * v[n] for n in range(samples)) for k in range(prototypes)]
        v = [(1 / samples) / sum(kernel[k][n] * u[k] for k in range(prototypes)) for n in range(samples)]
    codes = [[samples * u[k] * kernel[k][n] * v[n] for k in range(prototypes)] for n in range(samples)]
    return torch.tensor(codes, dtype=DTYPE)


def cosines(samples: int, prototypes: int, seed: int) -> torch.Tensor:
    """Scores as SwAV computes them: unit embeddings against unit prototypes, (N, K) in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(samples, 5, generator=generator, dtype=DTYPE), dim=1)
    c = torch.nn.functional.normalize(torch.randn(prototypes, 5, generator=generator, dtype=DTYPE), dim=1)
    return z @ c.T


@pytest.mark.parametrize("samples", [1, 4, 9])
@pytest.mark.parametrize("prototypes", [1, 3, 7])
@pytest.mark.parametrize(("epsilon", "iterations"), [(0.05, 3), (0.3, 1), (1.0, 5)])
def test_codes_equal_the_reference(samples, prototypes, epsilon, iterations):
    scores = cosines(samples, prototypes, seed=samples * 10 + prototypes)
    codes = sinkhorn_knopp(scores, epsilon=epsilon, iterations=iterations)
    assert codes.dtype == DTYPE and codes.shape == (samples, prototypes)
    torch.testing.assert_close(codes, reference_codes(scores, epsilon, iterations), rtol=1e-10, atol=1e-12)


def test_every_code_is_a_distribution_and_prototypes_share_the_batch_equally():
    scores = cosines(12, 4, seed=3)
    codes = sinkhorn_knopp(scores, epsilon=0.05, iterations=3)
    # The last step normalises the columns: every sample's code sums to 1, exactly up to rounding.
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(12, dtype=DTYPE), rtol=0, atol=1e-12)
    assert (codes >= 0).all()
    # Iterated to convergence, each prototype also holds N / K of the batch (the equipartition).
    converged = sinkhorn_knopp(scores, epsilon=0.05, iterations=2000)
    torch.testing.assert_close(converged.sum(dim=0), torch.full((4,), 3.0, dtype=DTYPE), rtol=1e-6, atol=0)
    # Three iterations already move far from the plain softmax towards that partition.
    softmax_spread = torch.softmax(scores / 0.05, dim=1).sum(dim=0).std()
    assert codes.sum(dim=0).std() < 0.5 * softmax_spread


def test_shared_rows_join_the_partition_but_only_local_codes_come_back():
    queue, local = cosines(6, 5, seed=8), cosines(3, 5, seed=9)
    codes = sinkhorn_knopp(local, epsilon=0.1, iterations=3, shared_scores=queue)
    expected = reference_codes(torch.cat([queue, local]), 0.1, 3)[6:]
    torch.testing.assert_close(codes, expected, rtol=1e-10, atol=1e-12)


def test_large_scores_over_a_small_epsilon_stay_finite():
    # exp(1 / 0.01) overflows float32; the shift by the largest score keeps every entry in (0, 1].
    scores = cosines(8, 6, seed=1).float()
    codes = sinkhorn_knopp(scores, epsilon=0.01, iterations=3)
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(8), rtol=0, atol=1e-5)


def test_bfloat16_scores_are_computed_in_float32():
    codes = sinkhorn_knopp(cosines(4, 3, seed=2).bfloat16())
    assert codes.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"iterations": 0}, "iterations >= 1"), ({"epsilon": 0.0}, "epsilon > 0")],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sinkhorn_knopp(cosines(2, 2, seed=0), **kwargs)
