"""MoCo v2's queue InfoNCE and MoCo v3's ctr against float64 references written from the formulas.

Losses and gradients with respect to the queries must agree to ~1e-10 over a grid of batch sizes,
dimensions, queue sizes (one not a multiple of any batch) and fill levels (empty, partly filled, wrapped).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from contrastive_core.distributed import GlobalQueue
from contrastive_plugins.moco.contrastive_loss import contrastive_loss
from contrastive_plugins.moco.queue_info_nce import queue_info_nce
from tests.moco.references import ctr_reference, info_nce_reference

DTYPE = torch.float64
CLOSE = {"rtol": 1e-10, "atol": 1e-12}
BATCHES = (1, 3, 8)
DIMS = (4, 16)


def _generator(*case: int) -> torch.Generator:
    return torch.Generator().manual_seed(hash(case) % (2**31))


def _rows(count: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(count, dim, generator=generator, dtype=DTYPE)


def _unit_rows(count: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    return nn.functional.normalize(_rows(count, dim, generator), dim=1)


# --- MoCo v2: InfoNCE against the queue ------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "dim", "queue_size", "enqueues"),
    list(itertools.product(BATCHES, DIMS, (13, 24), (0, 1, 4))),
)
def test_queue_info_nce_matches_the_reference(batch, dim, queue_size, enqueues):
    generator = _generator(batch, dim, queue_size, enqueues)
    queue = GlobalQueue(queue_size, dim, dtype=DTYPE)
    written: list[torch.Tensor] = []
    for _ in range(enqueues):
        keys = _unit_rows(batch, dim, generator)
        queue.enqueue(keys)
        written.extend(keys)
    negatives = written[-queue_size:]  # the keys a FIFO of K keeps: the last K written
    assert int(queue.fill) == len(negatives)
    queries = _rows(batch, dim, generator).requires_grad_()
    positives = _rows(batch, dim, generator)
    temperature = 0.2

    loss = queue_info_nce(queries, positives, queue.keys, queue.fill, temperature)
    loss.backward()
    reference_queries = queries.detach().clone().requires_grad_()
    reference = info_nce_reference(reference_queries, positives, negatives, temperature)
    reference.backward()

    assert loss.dtype == DTYPE and loss.ndim == 0
    torch.testing.assert_close(loss, reference, **CLOSE)
    torch.testing.assert_close(queries.grad, reference_queries.grad, **CLOSE)


@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_the_temperature_divides_every_logit(temperature):
    generator = _generator(7)
    queries, positives = _rows(5, 6, generator), _rows(5, 6, generator)
    negatives = _unit_rows(9, 6, generator)
    loss = queue_info_nce(queries, positives, negatives, 9, temperature)
    reference = info_nce_reference(queries, positives, list(negatives), temperature)
    torch.testing.assert_close(loss, reference, **CLOSE)


def test_rows_not_yet_written_are_no_negatives():
    generator = _generator(11)
    batch, dim, size, filled = 4, 5, 10, 6
    queries = _rows(batch, dim, generator)
    positives = _rows(batch, dim, generator)
    keys = _unit_rows(size, dim, generator)
    # Rows from `filled` on hold garbage the mask must hide: the queries themselves (the strongest
    # possible negatives) and huge values.
    keys[filled : filled + batch] = nn.functional.normalize(queries, dim=1)
    keys[filled + batch :] = 1e3
    loss = queue_info_nce(queries, positives, keys, torch.tensor(filled), 0.2)
    reference = info_nce_reference(queries, positives, list(keys[:filled]), 0.2)
    torch.testing.assert_close(loss, reference, **CLOSE)
    # Without the mask the garbage would count (the check above can fail).
    unmasked = queue_info_nce(queries, positives, keys, torch.tensor(size), 0.2)
    assert not torch.allclose(unmasked, reference)


def test_an_empty_queue_leaves_only_the_positive():
    generator = _generator(12)
    queries = _rows(3, 4, generator).requires_grad_()
    loss = queue_info_nce(queries, _rows(3, 4, generator), torch.zeros(8, 4, dtype=DTYPE), 0, 0.2)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(queries.grad) == 0


def test_no_gradient_reaches_the_keys_or_the_queue():
    generator = _generator(13)
    queries = _rows(3, 4, generator).requires_grad_()
    positives = _rows(3, 4, generator).requires_grad_()
    negatives = _unit_rows(5, 4, generator).requires_grad_()
    queue_info_nce(queries, positives, negatives, 5, 0.2).backward()
    assert queries.grad is not None
    assert positives.grad is None and negatives.grad is None


def test_queue_info_nce_runs_in_float32_under_autocast():
    generator = torch.Generator().manual_seed(14)
    queries = torch.randn(4, 8, generator=generator).bfloat16()
    positives = torch.randn(4, 8, generator=generator).bfloat16()
    negatives = nn.functional.normalize(torch.randn(6, 8, generator=generator), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = queue_info_nce(queries, positives, negatives, 6, 0.2)
    assert loss.dtype == torch.float32
    expected = queue_info_nce(queries.float(), positives.float(), negatives, 6, 0.2)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(
    ("queries", "positives", "negatives"),
    [((3, 4), (2, 4), (5, 4)), ((3, 4), (3, 4), (5, 3)), ((4,), (4,), (5, 4))],
)
def test_queue_info_nce_refuses_mismatched_shapes(queries, positives, negatives):
    with pytest.raises(ValueError, match="queue_info_nce expects"):
        queue_info_nce(torch.ones(queries), torch.ones(positives), torch.ones(negatives), 1, 0.2)


# --- MoCo v3: ctr(q1, k2) + ctr(q2, k1) ----------------------------------------------------------------


@pytest.mark.parametrize(("batch", "dim", "temperature"), list(itertools.product(BATCHES, DIMS, (1.0, 0.2))))
def test_the_symmetrised_contrastive_loss_matches_the_reference(batch, dim, temperature):
    generator = _generator(batch, dim, int(temperature * 10))
    q1, q2 = (_rows(batch, dim, generator).requires_grad_() for _ in range(2))
    k1, k2 = _rows(batch, dim, generator), _rows(batch, dim, generator)

    loss = contrastive_loss(q1, k2, temperature) + contrastive_loss(q2, k1, temperature)
    loss.backward()
    r1, r2 = (q.detach().clone().requires_grad_() for q in (q1, q2))
    reference = ctr_reference(r1, k2, temperature) + ctr_reference(r2, k1, temperature)
    reference.backward()

    assert loss.dtype == DTYPE and loss.ndim == 0
    torch.testing.assert_close(loss, reference, **CLOSE)
    torch.testing.assert_close(q1.grad, r1.grad, **CLOSE)
    torch.testing.assert_close(q2.grad, r2.grad, **CLOSE)


def test_ctr_is_scaled_by_two_tau():
    """At a perfect match (each query its own key, orthogonal keys) CE_i = log(1 + (N-1) e^{-1/tau})."""
    keys = torch.eye(3, dtype=DTYPE)
    for temperature in (0.5, 1.0):
        expected = 2 * temperature * torch.log(1 + 2 * torch.exp(torch.tensor(-1 / temperature, dtype=DTYPE)))
        torch.testing.assert_close(contrastive_loss(3 * keys, keys, temperature), expected, **CLOSE)


def test_no_gradient_reaches_the_keys():
    generator = _generator(21)
    queries = _rows(4, 3, generator).requires_grad_()
    keys = _rows(4, 3, generator).requires_grad_()
    contrastive_loss(queries, keys, 1.0).backward()
    assert queries.grad is not None and keys.grad is None


def test_contrastive_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="contrastive_loss expects"):
        contrastive_loss(torch.ones(3, 4), torch.ones(2, 4), 1.0)
