"""``contrastive_core.distributed.collectives`` on one process and on 2 real gloo processes (CPU, float64).

The distributed checks all follow the engine's convention: process r holds rows ``[r * n, (r + 1) * n)``
of the global batch and computes its loss from collectives; DDP would then average the gradients over
the W processes. Here that average is simulated by dividing each process's input gradient by W, and
the result must equal, row for row, the gradient computed by hand in this (single) process from the
whole global batch with plain autograd: no collective is involved in any reference.

One pair of processes runs every distributed check (spawning costs more than the checks) and saves
what it measured; the tests below compare it with the references.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.distributed as dist

from contrastive_core.distributed import (
    all_reduce_mean,
    all_reduce_with_grad,
    collectives,
    gather_with_grad,
    is_distributed,
    rank,
    world_size,
)
from tests.gloo_processes import run_on_gloo_processes

WORLD = 2
DTYPE = torch.float64
# Local shapes (n, ...) for the gather; the global batch has WORLD * n rows.
GATHER_SHAPES = ((3,), (2, 4), (3, 2, 5))
# Shapes of the statistic for the all-reduce with a different loss on every process.
REDUCE_SHAPES = ((), (4,), (2, 3))
OPS = ("sum", "mean")
# Barlow-Twins-like problem: n rows per process, d dimensions.
BT_LOCAL_BATCH, BT_DIM = 4, 3
EXACT = {"rtol": 1e-12, "atol": 1e-12}
GRADIENT = {"rtol": 1e-10, "atol": 1e-12}


def _generator(problem: int, case: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(1000 * problem + case)


# --- the problems, identical in every process ------------------------------------------------------


def gather_problem(case: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch (WORLD * n, ...) of gather case ``case`` and a fixed weight of the same shape."""
    n, *rest = GATHER_SHAPES[case]
    generator = _generator(1, case)
    x = torch.randn(WORLD * n, *rest, generator=generator, dtype=DTYPE)
    weight = torch.randn(WORLD * n, *rest, generator=generator, dtype=DTYPE)
    return x, weight


def gather_loss(anchors: torch.Tensor, candidates: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Every anchor row against every candidate row (NT-Xent-like), plus a term on the candidates.

    anchors (m, ...), candidates and weight (M, ...) -> scalar. The mean over the anchors makes the
    mean over processes of "own rows against the gathered batch" equal to "all rows against all rows".
    """
    a = anchors.reshape(anchors.shape[0], -1)
    c = candidates.reshape(candidates.shape[0], -1)
    return torch.logsumexp(a @ c.T, dim=1).mean() + (weight * candidates**3).sum()


def reduce_problem(case: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs x (WORLD, *shape), one per process, and per-process targets and weights of that shape."""
    shape = REDUCE_SHAPES[case]
    generator = _generator(2, case)
    x, targets, weights = (torch.randn(WORLD, *shape, generator=generator, dtype=DTYPE) for _ in range(3))
    return x, targets, weights.abs() + 0.5


def reduce_loss(y: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A loss of the reduced statistic that differs from process to process (its target and weight)."""
    return (weight * (y - target) ** 2).sum() + (y**3).sum()


def barlow_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """The two views' embeddings of the global batch, (WORLD * n, d) each."""
    generator = _generator(3)
    shape = (WORLD * BT_LOCAL_BATCH, BT_DIM)
    return torch.randn(*shape, generator=generator, dtype=DTYPE), torch.randn(
        *shape, generator=generator, dtype=DTYPE
    )


def barlow_twins_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor], op: str, world: int
) -> torch.Tensor:
    """Barlow-Twins-like loss: standardise each dimension over the batch, cross-correlate, penalise.

    Every statistic is a sum over rows passed through ``reduce``: the collective with ``op`` on a
    process, the identity (with ``world = 1``) in the single-process reference. With op "sum" the local
    sums are reduced then divided by the global count; with "mean" the local means are averaged.
    """
    n = z_a.shape[0]

    def batch_mean(local_sum: torch.Tensor) -> torch.Tensor:
        return reduce(local_sum) / (n * world) if op == "sum" else reduce(local_sum / n)

    def standardise(z: torch.Tensor) -> torch.Tensor:
        mean = batch_mean(z.sum(0))  # (d,)
        variance = batch_mean(((z - mean) ** 2).sum(0))  # (d,)
        return (z - mean) / torch.sqrt(variance + 1e-5)

    a, b = standardise(z_a), standardise(z_b)
    c = batch_mean(a.T @ b)  # (d, d) cross-correlation over the global batch
    on_diagonal = (torch.diagonal(c) - 1).pow(2).sum()
    off_diagonal = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diagonal + 0.3 * off_diagonal


# --- what each of the 2 processes runs --------------------------------------------------------------


def _measure_gloo() -> dict[str, Any]:
    """Try the flat collectives on gloo directly: supported, and with the right result?"""
    found: dict[str, Any] = {}
    local = torch.arange(6, dtype=DTYPE).reshape(3, 2) + 100 * rank()
    everyone = [torch.arange(6, dtype=DTYPE).reshape(3, 2) + 100 * r for r in range(WORLD)]
    with warnings.catch_warnings():  # the old names are deprecated aliases in recent torch
        warnings.simplefilter("ignore", FutureWarning)
        try:
            full = torch.cat([local, local + 1])  # (WORLD * 3, 2): rows for rank 0, then rank 1
            out = torch.empty(3, 2, dtype=DTYPE)
            dist.reduce_scatter_tensor(out, full)
            expected = sum(torch.cat([e, e + 1]) for e in everyone)[rank() * 3 : (rank() + 1) * 3]
            found["reduce_scatter_tensor"] = bool(torch.equal(out, expected))
        except (RuntimeError, NotImplementedError) as error:
            found["reduce_scatter_tensor"] = f"{type(error).__name__}: {error}"
        try:
            gathered = torch.empty(WORLD * 3, 2, dtype=DTYPE)
            dist.all_gather_into_tensor(gathered, local)
            found["all_gather_into_tensor"] = bool(torch.equal(gathered, torch.cat(everyone)))
        except (RuntimeError, NotImplementedError) as error:
            found["all_gather_into_tensor"] = f"{type(error).__name__}: {error}"
    return found


def _gather_checks() -> list[dict[str, torch.Tensor]]:
    results = []
    for case, (n, *_) in enumerate(GATHER_SHAPES):
        x, weight = gather_problem(case)
        rows = slice(rank() * n, (rank() + 1) * n)
        result = {}
        for kind in ("own_rows", "global"):
            local = x[rows].clone().requires_grad_()
            gathered = gather_with_grad(local)
            # "own_rows": this process's rows against the gathered batch (NT-Xent's pattern); "global":
            # every process computes the whole loss from the gathered batch.
            anchors = local if kind == "own_rows" else gathered
            gather_loss(anchors, gathered, weight).backward()
            result[f"{kind}_gathered"] = gathered.detach()
            result[f"{kind}_grad"] = local.grad
        results.append(result)
    return results


def _reduce_checks() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for op in OPS:
        for case in range(len(REDUCE_SHAPES)):
            x, targets, weights = reduce_problem(case)
            local = x[rank()].clone().requires_grad_()
            y = all_reduce_with_grad(local, op)
            reduce_loss(y, targets[rank()], weights[rank()]).backward()
            found[f"{op}_{case}"] = {"y": y.detach(), "grad": local.grad}
        z_a, z_b = barlow_problem()
        rows = slice(rank() * BT_LOCAL_BATCH, (rank() + 1) * BT_LOCAL_BATCH)
        local_a = z_a[rows].clone().requires_grad_()
        local_b = z_b[rows].clone().requires_grad_()
        loss = barlow_twins_loss(
            local_a, local_b, lambda t, op=op: all_reduce_with_grad(t, op), op, world_size()
        )
        loss.backward()
        found[f"barlow_{op}"] = {"loss": loss.detach(), "grad_a": local_a.grad, "grad_b": local_b.grad}
    return found


def _detection_checks() -> dict[str, Any]:
    """A backend refusing the flat collectives makes the gather fall back; other errors propagate."""
    found: dict[str, Any] = {}
    saved = collectives._reduce_scatter_flat, set(collectives._UNSUPPORTED)

    def refuses(output: torch.Tensor, tensor: torch.Tensor) -> None:
        raise RuntimeError("Backend gloo does not support reduce_scatter")

    def breaks(output: torch.Tensor, tensor: torch.Tensor) -> None:
        raise RuntimeError("connection reset by peer")

    try:
        collectives._UNSUPPORTED.clear()
        collectives._reduce_scatter_flat = refuses
        local = torch.ones(2, 3, dtype=DTYPE, requires_grad=True)
        (gather_with_grad(local) * (rank() + 1)).sum().backward()
        found["fallback_grad"] = local.grad
        found["remembered"] = sorted(collectives._UNSUPPORTED)
        collectives._UNSUPPORTED.clear()
        collectives._reduce_scatter_flat = breaks
        local = torch.ones(2, 3, dtype=DTYPE, requires_grad=True)
        try:
            gather_with_grad(local).sum().backward()
            found["other_error"] = "not raised"
        except RuntimeError as error:
            found["other_error"] = str(error)
    finally:
        collectives._reduce_scatter_flat = saved[0]
        collectives._UNSUPPORTED.clear()
        collectives._UNSUPPORTED.update(saved[1])
    return found


def measure(process: int) -> dict[str, Any]:
    """Everything one of the 2 processes measures."""
    result: dict[str, Any] = {
        "rank_world": (rank(), world_size(), is_distributed()),
        "backend": dist.get_backend(),
        "gloo": _measure_gloo(),
    }
    result["gather"] = _gather_checks()
    result["unsupported_after_native"] = sorted(collectives._UNSUPPORTED)
    # The same checks through the fallbacks (list all_gather + cat; all_reduce + slice).
    backend = str(dist.get_backend())
    collectives._UNSUPPORTED.update({("all_gather", backend, "cpu"), ("reduce_scatter", backend, "cpu")})
    result["gather_fallback"] = _gather_checks()
    collectives._UNSUPPORTED.clear()
    result["reduce"] = _reduce_checks()
    result["detection"] = _detection_checks()
    result["mean"] = all_reduce_mean(torch.tensor([1.0, 2.0], dtype=DTYPE, requires_grad=True) * rank())
    return result


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of 2 gloo processes measured, indexed by rank."""
    return run_on_gloo_processes(measure, tmp_path_factory.mktemp("collectives"), WORLD)


# --- one process: everything is the identity --------------------------------------------------------


def test_single_process_is_rank_0_of_1() -> None:
    assert (is_distributed(), rank(), world_size()) == (False, 0, 1)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (3, 2, 5)])
def test_single_process_gather_is_the_identity_and_passes_gradients(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=DTYPE, requires_grad=True)
    gathered = gather_with_grad(x)
    assert gathered is x
    (gathered * 3).sum().backward()
    torch.testing.assert_close(x.grad, torch.full(shape, 3.0, dtype=DTYPE))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_single_process_all_reduce_is_the_identity_and_passes_gradients(
    op: str, shape: tuple[int, ...]
) -> None:
    x = torch.randn(shape, dtype=DTYPE, requires_grad=True)
    reduced = all_reduce_with_grad(x, op)
    assert reduced is x
    (reduced**2).sum().backward()
    torch.testing.assert_close(x.grad, 2 * x.detach())


def test_single_process_all_reduce_mean_is_the_detached_value() -> None:
    x = torch.randn(3, dtype=DTYPE, requires_grad=True)
    mean = all_reduce_mean(x * 2)
    assert not mean.requires_grad
    torch.testing.assert_close(mean, 2 * x.detach())


def test_gather_refuses_a_0d_tensor() -> None:
    with pytest.raises(ValueError, match="0-d"):
        gather_with_grad(torch.tensor(1.0))


def test_all_reduce_refuses_an_unknown_op() -> None:
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        all_reduce_with_grad(torch.ones(2), "max")  # type: ignore[arg-type]


# --- two processes ----------------------------------------------------------------------------------


def test_processes_know_their_rank(two_processes: list[dict[str, Any]]) -> None:
    for process, result in enumerate(two_processes):
        assert result["rank_world"] == (process, WORLD, True)
        assert result["backend"] == "gloo"


def test_the_gather_uses_the_flat_collectives_exactly_where_gloo_has_them(
    two_processes: list[dict[str, Any]],
) -> None:
    for result in two_processes:
        measured = result["gloo"]
        # Measured, not assumed: a collective is either there and correct, or refused with an error.
        for name in ("reduce_scatter_tensor", "all_gather_into_tensor"):
            assert measured[name] is True or "support" in str(measured[name]), measured
        expected_missing = sorted(
            (collective, "gloo", "cpu")
            for collective, name in (
                ("all_gather", "all_gather_into_tensor"),
                ("reduce_scatter", "reduce_scatter_tensor"),
            )
            if measured[name] is not True
        )
        assert result["unsupported_after_native"] == expected_missing
    if torch.__version__.startswith("2.14."):
        # What torch 2.14's gloo offers (measured by this test when it was written).
        assert two_processes[0]["gloo"] == {"reduce_scatter_tensor": True, "all_gather_into_tensor": True}


@pytest.mark.parametrize("path", ["gather", "gather_fallback"])
@pytest.mark.parametrize("case", range(len(GATHER_SHAPES)))
def test_gather_matches_one_process_holding_the_global_batch(
    two_processes: list[dict[str, Any]], case: int, path: str
) -> None:
    x, weight = gather_problem(case)
    n = GATHER_SHAPES[case][0]
    reference_x = x.clone().requires_grad_()
    gather_loss(reference_x, reference_x, weight).backward()
    for process, result in enumerate(two_processes):
        rows = slice(process * n, (process + 1) * n)
        measured = result[path][case]
        for kind in ("own_rows", "global"):
            assert measured[f"{kind}_gathered"].shape == x.shape
            torch.testing.assert_close(measured[f"{kind}_gathered"], x, **EXACT)
            # DDP would divide by W: after that, each process's rows get the global-batch gradient.
            torch.testing.assert_close(measured[f"{kind}_grad"] / WORLD, reference_x.grad[rows], **GRADIENT)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", range(len(REDUCE_SHAPES)))
def test_all_reduce_with_a_different_loss_per_process(
    two_processes: list[dict[str, Any]], op: str, case: int
) -> None:
    x, targets, weights = reduce_problem(case)
    reference_x = x.clone().requires_grad_()
    y = reference_x.sum(0) if op == "sum" else reference_x.mean(0)
    # The objective DDP optimises: the mean of the processes' losses.
    torch.stack([reduce_loss(y, targets[s], weights[s]) for s in range(WORLD)]).mean().backward()
    for process, result in enumerate(two_processes):
        measured = result["reduce"][f"{op}_{case}"]
        torch.testing.assert_close(measured["y"], y.detach(), **EXACT)
        torch.testing.assert_close(measured["grad"] / WORLD, reference_x.grad[process], **GRADIENT)


@pytest.mark.parametrize("op", OPS)
def test_barlow_twins_on_the_all_reduced_cross_correlation(
    two_processes: list[dict[str, Any]], op: str
) -> None:
    z_a, z_b = barlow_problem()
    z_a.requires_grad_()
    z_b.requires_grad_()
    reference = barlow_twins_loss(z_a, z_b, lambda t: t, op, 1)
    reference.backward()
    for process, result in enumerate(two_processes):
        rows = slice(process * BT_LOCAL_BATCH, (process + 1) * BT_LOCAL_BATCH)
        measured = result["reduce"][f"barlow_{op}"]
        torch.testing.assert_close(measured["loss"], reference.detach(), **EXACT)
        torch.testing.assert_close(measured["grad_a"] / WORLD, z_a.grad[rows], **GRADIENT)
        torch.testing.assert_close(measured["grad_b"] / WORLD, z_b.grad[rows], **GRADIENT)


def test_a_backend_without_reduce_scatter_falls_back(two_processes: list[dict[str, Any]]) -> None:
    for result in two_processes:
        detection = result["detection"]
        # Rank s weights the gathered batch by s + 1, so every row's summed gradient is 1 + 2 = 3.
        torch.testing.assert_close(detection["fallback_grad"], torch.full((2, 3), 3.0, dtype=DTYPE))
        assert detection["remembered"] == [("reduce_scatter", "gloo", "cpu")]
        assert detection["other_error"] == "connection reset by peer"


def test_all_reduce_mean_averages_without_gradient(two_processes: list[dict[str, Any]]) -> None:
    for result in two_processes:
        assert not result["mean"].requires_grad
        torch.testing.assert_close(result["mean"], torch.tensor([0.5, 1.0], dtype=DTYPE))
