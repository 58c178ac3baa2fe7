"""The Barlow Twins loss on 2 gloo processes equals the loss of one process holding the global batch."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from contrastive_plugins.barlow_twins.loss import barlow_twins_loss
from tests.barlow_twins.reference import barlow_twins_terms
from tests.barlow_twins.two_processes import BARLOW_TWINS, CASES, WORLD, problem, rows_of, two_process_results

EXACT = {"rtol": 1e-12, "atol": 1e-12}
CLOSE = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return two_process_results(tmp_path_factory)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_process_gets_the_global_loss_and_its_rows_gradients(
    two_processes: list[dict[str, Any]], case: int
) -> None:
    z_a, z_b = problem(case)
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    reference = barlow_twins_terms(a, b, **BARLOW_TWINS)
    reference[0].backward()
    one_process = torch.stack(list(barlow_twins_loss(z_a, z_b, **BARLOW_TWINS)))
    for process, result in enumerate(two_processes):
        assert result["rank_world"] == (process, WORLD)
        measured = result["barlow_twins", case]
        torch.testing.assert_close(measured["terms"], one_process, **EXACT)
        torch.testing.assert_close(measured["terms"], torch.stack(reference).detach(), **CLOSE)
        # DDP divides by W: each process's rows then get the gradient of the global-batch loss.
        rows = rows_of(process, case)
        torch.testing.assert_close(measured["grad_a"] / WORLD, a.grad[rows], **CLOSE)
        torch.testing.assert_close(measured["grad_b"] / WORLD, b.grad[rows], **CLOSE)


@pytest.mark.parametrize("case", [case for case, (n, _) in enumerate(CASES) if n > 1])
def test_per_process_statistics_would_give_another_loss(
    two_processes: list[dict[str, Any]], case: int
) -> None:
    # Standardising and cross-correlating each half on its own, then averaging (what DDP would optimise
    # without the gather), is a different objective: the halves have different means and scales.
    z_a, z_b = problem(case)
    halves = [
        barlow_twins_loss(z_a[rows_of(r, case)], z_b[rows_of(r, case)], **BARLOW_TWINS).loss
        for r in range(WORLD)
    ]
    per_process = torch.stack(halves).mean()
    measured = two_processes[0]["barlow_twins", case]["terms"][0]
    assert abs(measured - per_process) > 0.05 * abs(measured)
