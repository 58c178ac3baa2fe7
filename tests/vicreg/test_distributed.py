"""The VICReg loss on 2 gloo processes equals the loss of one process holding the global batch."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from contrastive_plugins.vicreg.loss import vicreg_loss
from tests.barlow_twins.two_processes import CASES, VICREG, WORLD, problem, rows_of, two_process_results
from tests.vicreg.reference import vicreg_terms

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
    reference = vicreg_terms(a, b, **VICREG)
    reference[0].backward()
    one_process = torch.stack(list(vicreg_loss(z_a, z_b, **VICREG)))
    for process, result in enumerate(two_processes):
        assert result["rank_world"] == (process, WORLD)
        measured = result["vicreg", case]
        torch.testing.assert_close(measured["terms"], one_process, **EXACT)
        torch.testing.assert_close(measured["terms"], torch.stack(reference).detach(), **CLOSE)
        # DDP divides by W: each process's rows then get the gradient of the global-batch loss.
        rows = rows_of(process, case)
        torch.testing.assert_close(measured["grad_a"] / WORLD, a.grad[rows], **CLOSE)
        torch.testing.assert_close(measured["grad_b"] / WORLD, b.grad[rows], **CLOSE)


def test_the_problems_variance_hinges_are_partly_active() -> None:
    # Otherwise the gradients compared above would not exercise the max(0, .) of the variance term.
    stds = torch.cat([torch.cat(problem(case), dim=1).std(dim=0) for case in range(len(CASES))])
    assert (stds < VICREG["gamma"]).any() and (stds > VICREG["gamma"]).any()


@pytest.mark.parametrize("case", [case for case, (n, _) in enumerate(CASES) if n > 1])
def test_per_process_statistics_would_give_another_loss(
    two_processes: list[dict[str, Any]], case: int
) -> None:
    # Variances and covariances of each half on its own, then averaged (what DDP would optimise without
    # the gather), are a different objective: the halves have different means and scales. (The
    # invariance alone is the same either way: it compares rows with their own pair.)
    z_a, z_b = problem(case)
    halves = [vicreg_loss(z_a[rows_of(r, case)], z_b[rows_of(r, case)], **VICREG) for r in range(WORLD)]
    measured = two_processes[0]["vicreg", case]["terms"]
    per_process = torch.stack([torch.stack(list(terms)) for terms in halves]).mean(0)
    torch.testing.assert_close(measured[1], per_process[1], **CLOSE)  # invariance: a mean over rows
    for term in (2, 3):  # the variance and covariance terms, and so the loss, are not
        assert abs(measured[term] - per_process[term]) > 0.01 * abs(measured[term])
    assert abs(measured[0] - per_process[0]) > 0.01 * abs(measured[0])
