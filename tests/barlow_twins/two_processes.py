"""Barlow Twins and VICReg losses on 2 real gloo processes (CPU, float64), for the tests of both plugins.

Process r holds rows ``[r * n, (r + 1) * n)`` of a global batch of both views, computes the loss of its
method from those rows (the loss gathers the rest) and backpropagates to its own rows. The tests compare
what each process measured with one process holding the whole batch: the same loss on every process,
and input gradients that, divided by W (DDP's average), are the single-process gradients of those rows.

One pair of processes serves both plugins' tests (spawning costs more than the checks): the first test
module to ask starts it, and later ones reuse the saved results within the same pytest session.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from contrastive_core.distributed import rank, world_size
from contrastive_plugins.barlow_twins.loss import barlow_twins_loss
from contrastive_plugins.vicreg.loss import vicreg_loss
from tests.gloo_processes import run_on_gloo_processes

WORLD = 2
DTYPE = torch.float64
# (rows per process n, dimensions d) of each problem; the global batch has WORLD * n rows.
CASES = ((3, 4), (4, 5), (1, 6))
BARLOW_TWINS = {"lambda_offdiagonal": 0.3, "eps": 1e-5}
VICREG = {"lambda_invariance": 25.0, "mu_variance": 25.0, "nu_covariance": 1.0, "gamma": 1.0, "eps": 1e-4}
LOSSES = {"barlow_twins": (barlow_twins_loss, BARLOW_TWINS), "vicreg": (vicreg_loss, VICREG)}


def problem(case: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views of the global batch of ``case``, (WORLD * n, d) each, identical in every process.

    The two halves are drawn with different means and scales, so that statistics of one half differ
    clearly from those of the whole batch (and the stds lie on both sides of VICReg's gamma = 1).
    """
    n, d = CASES[case]
    generator = torch.Generator().manual_seed(100 + case)
    views = []
    for _ in range(2):
        halves = []
        for half in range(WORLD):
            scale = torch.linspace(0.3, 2.0, d, dtype=DTYPE) * (1 + half)
            halves.append(torch.randn(n, d, generator=generator, dtype=DTYPE) * scale + 3 * half)
        views.append(torch.cat(halves))
    shared = torch.randn(WORLD * n, d, generator=generator, dtype=DTYPE)
    return views[0] + shared, views[1] + shared


def rows_of(process: int, case: int) -> slice:
    n = CASES[case][0]
    return slice(process * n, (process + 1) * n)


def measure(process: int) -> dict[str, Any]:
    """Both losses over every case, on this process's rows of the global batch."""
    result: dict[str, Any] = {"rank_world": (rank(), world_size())}
    for name, (loss_function, coefficients) in LOSSES.items():
        for case in range(len(CASES)):
            z_a, z_b = problem(case)
            local_a = z_a[rows_of(process, case)].clone().requires_grad_()
            local_b = z_b[rows_of(process, case)].clone().requires_grad_()
            terms = loss_function(local_a, local_b, **coefficients)
            terms.loss.backward()
            result[name, case] = {
                "terms": torch.stack([term.detach() for term in terms]),
                "grad_a": local_a.grad,
                "grad_b": local_b.grad,
            }
    return result


_RESULTS: list[dict[str, Any]] = []


def two_process_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of the 2 gloo processes measured, indexed by rank (spawned once per session)."""
    if not _RESULTS:
        directory = tmp_path_factory.mktemp("barlow_twins_vicreg_two_processes")
        _RESULTS.extend(run_on_gloo_processes(measure, directory, WORLD))
    return _RESULTS
