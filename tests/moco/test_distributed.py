"""MoCo v2 and v3 on 2 real gloo processes (CPU, float64) against one process holding the global batch.

Process r holds rows ``[r n, (r + 1) n)`` of every global tensor. DDP's average of the gradients over the
W processes is simulated by averaging (or dividing by W) what each process measured. One pair of
processes runs every check (spawning costs more than the checks) and saves what it measured:

* the queue: different keys on each process, several enqueues; the queue must be the same on both and
  equal to a one-process queue fed the global batch in rank order;
* MoCo v3's loss: the value on each process is the global batch's loss, the query gradients / W are the
  global batch's (the reference of test_losses, a per-row loop);
* MoCo v2's queue InfoNCE: likewise;
* shuffling BN: in eval mode the shuffled keys equal the key network on the global batch (the shuffle
  must be undone row for row); in train mode they equal the key network run on the sub-batches the
  permutation made (batch-norm statistics of a regrouped batch);
* both methods end to end (eval mode, so that batch norm does not depend on the grouping): the losses
  of two steps, the queue, and the averaged parameter gradients equal those of one process.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from contrastive_core import StepProgress
from contrastive_core.distributed import GlobalQueue, rank, world_size
from contrastive_plugins.moco.contrastive_loss import contrastive_loss
from contrastive_plugins.moco.queue_info_nce import queue_info_nce
from contrastive_plugins.moco.shuffle_bn import shuffled_keys
from tests.gloo_processes import run_on_gloo_processes
from tests.moco.references import ctr_reference, info_nce_reference
from tests.moco.tiny_methods import IMAGE, tiny_method

WORLD = 2
DTYPE = torch.float64
EXACT = {"rtol": 1e-12, "atol": 1e-12}
CLOSE = {"rtol": 1e-10, "atol": 1e-12}

QUEUE_SIZE, QUEUE_DIM, QUEUE_LOCAL, QUEUE_STEPS = 7, 3, 2, 4  # 4 keys a step into 7 rows: wraps twice
LOSS_LOCAL, LOSS_DIM = 3, 5
NEGATIVES, FILLED = 6, 4
SHUFFLE_LOCAL, SHUFFLE_SEED = 4, 5
METHOD_LOCAL, METHOD_STEPS = 3, 2
METHODS = {
    "moco_v2": ("moco_v2", {"queue_size": 17}),
    "moco_v2_symmetric": ("moco_v2", {"queue_size": 17, "symmetric": True}),
    "moco_v2_no_shuffle": ("moco_v2", {"queue_size": 17, "shuffle_bn": False}),
    "moco_v3": ("moco_v3", {"temperature": 0.5}),
}


def rows(process: int, local: int) -> slice:
    return slice(process * local, (process + 1) * local)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the problems, identical in every process ------------------------------------------------------


def queue_keys(step: int, process: int) -> torch.Tensor:
    """The keys process ``process`` writes at ``step``: (QUEUE_LOCAL, QUEUE_DIM), different everywhere."""
    return torch.randn(QUEUE_LOCAL, QUEUE_DIM, generator=_generator(100 * step + process), dtype=DTYPE)


def loss_problem() -> tuple[torch.Tensor, ...]:
    """q1, q2, k1, k2 of the global batch (WORLD * LOSS_LOCAL, LOSS_DIM), unit negatives (NEGATIVES, d)."""
    generator = _generator(1)
    shape = (WORLD * LOSS_LOCAL, LOSS_DIM)
    q1, q2, k1, k2 = (torch.randn(*shape, generator=generator, dtype=DTYPE) for _ in range(4))
    negatives = nn.functional.normalize(
        torch.randn(NEGATIVES, LOSS_DIM, generator=generator, dtype=DTYPE), dim=1
    )
    return q1, q2, k1, k2, negatives


def shuffle_problem() -> tuple[nn.Module, torch.Tensor]:
    """A key network with batch norm and the global batch of images (WORLD * SHUFFLE_LOCAL, *IMAGE)."""
    torch.manual_seed(2)
    network = nn.Sequential(nn.Flatten(), nn.Linear(18, 5), nn.BatchNorm1d(5)).double()
    images = torch.randn(WORLD * SHUFFLE_LOCAL, *IMAGE, generator=_generator(3), dtype=DTYPE)
    return network, images


def method_views(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views of the global batch at ``step``: (WORLD * METHOD_LOCAL, *IMAGE) each."""
    generator = _generator(10 + step)
    shape = (WORLD * METHOD_LOCAL, *IMAGE)
    return torch.randn(*shape, generator=generator, dtype=DTYPE), torch.randn(
        *shape, generator=generator, dtype=DTYPE
    )


def run_method(case: str, process: int | None) -> dict[str, Any]:
    """METHOD_STEPS forwards and backwards of the case's method on ``process``'s rows (None: all rows)."""
    kind, params = METHODS[case]
    method = tiny_method(kind, **params)
    losses = []
    for step in range(METHOD_STEPS):
        first, second = method_views(step)
        if process is not None:
            first, second = first[rows(process, METHOD_LOCAL)], second[rows(process, METHOD_LOCAL)]
        output = method(
            {"global": torch.cat([first, second])}, StepProgress(step, METHOD_STEPS, METHOD_STEPS)
        )
        output.loss.backward()  # gradients accumulate over the steps (no optimizer step)
        losses.append(output.loss.detach())
    found: dict[str, Any] = {
        "losses": torch.stack(losses),
        "grads": {name: p.grad for name, p in method.trainable().named_parameters() if p.grad is not None},
    }
    if hasattr(method, "queue"):
        found["queue"] = {name: buffer.clone() for name, buffer in method.queue.named_buffers()}
    return found


# --- what each of the 2 processes runs --------------------------------------------------------------


def _queue_check(process: int) -> dict[str, torch.Tensor]:
    queue = GlobalQueue(QUEUE_SIZE, QUEUE_DIM, dtype=DTYPE)
    for step in range(QUEUE_STEPS):
        queue.enqueue(queue_keys(step, process))
    return {name: buffer.clone() for name, buffer in queue.named_buffers()}


def _loss_checks(process: int) -> dict[str, torch.Tensor]:
    q1, q2, k1, k2, negatives = loss_problem()
    mine = rows(process, LOSS_LOCAL)
    local_q1, local_q2 = q1[mine].clone().requires_grad_(), q2[mine].clone().requires_grad_()
    ctr = contrastive_loss(local_q1, k2[mine], 0.5) + contrastive_loss(local_q2, k1[mine], 0.5)
    ctr.backward()
    queue_q = q1[mine].clone().requires_grad_()
    info_nce = queue_info_nce(queue_q, k2[mine], negatives, torch.tensor(FILLED), 0.2)
    info_nce.backward()
    return {
        "ctr": ctr.detach(),
        "ctr_grad_q1": local_q1.grad,
        "ctr_grad_q2": local_q2.grad,
        "info_nce": info_nce.detach(),
        "info_nce_grad": queue_q.grad,
    }


def _shuffle_checks(process: int) -> dict[str, torch.Tensor]:
    network, images = shuffle_problem()
    local = images[rows(process, SHUFFLE_LOCAL)]
    found = {}
    for mode in ("eval", "train"):
        network.train(mode == "train")
        mine, everyone = shuffled_keys(network, local, _generator(SHUFFLE_SEED))
        found[f"{mode}_mine"], found[f"{mode}_everyone"] = mine, everyone
    return found


def measure(process: int) -> dict[str, Any]:
    """Everything one of the 2 processes measures."""
    return {
        "rank_world": (rank(), world_size()),
        "queue": _queue_check(process),
        "losses": _loss_checks(process),
        "shuffle": _shuffle_checks(process),
        "methods": {case: run_method(case, process) for case in METHODS},
    }


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of 2 gloo processes measured, indexed by rank."""
    return run_on_gloo_processes(measure, tmp_path_factory.mktemp("moco"), WORLD)


# --- the checks ---------------------------------------------------------------------------------------


def test_processes_know_their_rank(two_processes):
    assert [result["rank_world"] for result in two_processes] == [(0, WORLD), (1, WORLD)]


def test_the_queue_is_the_same_everywhere_and_holds_the_global_batch_in_rank_order(two_processes):
    reference = GlobalQueue(QUEUE_SIZE, QUEUE_DIM, dtype=DTYPE)
    for step in range(QUEUE_STEPS):
        reference.enqueue(torch.cat([queue_keys(step, process) for process in range(WORLD)]))
    for result in two_processes:
        for name, buffer in reference.named_buffers():
            assert torch.equal(result["queue"][name], buffer), name
    # The reference itself: 16 keys through 7 rows, the last 7 written in FIFO positions.
    written = torch.cat([queue_keys(s, p) for s in range(QUEUE_STEPS) for p in range(WORLD)])
    assert torch.equal(reference.keys, written[[14, 15, 9, 10, 11, 12, 13]])


def test_moco_v3_loss_and_query_gradients_are_the_global_batch_ones(two_processes):
    q1, q2, k1, k2, _ = loss_problem()
    r1, r2 = q1.clone().requires_grad_(), q2.clone().requires_grad_()
    reference = ctr_reference(r1, k2, 0.5) + ctr_reference(r2, k1, 0.5)
    reference.backward()
    for process, result in enumerate(two_processes):
        measured = result["losses"]
        torch.testing.assert_close(measured["ctr"], reference.detach(), **CLOSE)
        mine = rows(process, LOSS_LOCAL)
        torch.testing.assert_close(measured["ctr_grad_q1"] / WORLD, r1.grad[mine], **CLOSE)
        torch.testing.assert_close(measured["ctr_grad_q2"] / WORLD, r2.grad[mine], **CLOSE)


def test_moco_v2_loss_and_query_gradients_are_the_global_batch_ones(two_processes):
    q1, _, _, k2, negatives = loss_problem()
    reference_q = q1.clone().requires_grad_()
    reference = info_nce_reference(reference_q, k2, list(negatives[:FILLED]), 0.2)
    reference.backward()
    for process, result in enumerate(two_processes):
        measured = result["losses"]
        torch.testing.assert_close(measured["info_nce"], reference.detach(), **CLOSE)
        torch.testing.assert_close(
            measured["info_nce_grad"] / WORLD, reference_q.grad[rows(process, LOSS_LOCAL)], **CLOSE
        )


def test_shuffled_keys_in_eval_mode_are_the_key_network_on_the_global_batch(two_processes):
    network, images = shuffle_problem()
    with torch.no_grad():
        expected = network.eval()(images)
    for process, result in enumerate(two_processes):
        torch.testing.assert_close(result["shuffle"]["eval_everyone"], expected, **EXACT)
        torch.testing.assert_close(
            result["shuffle"]["eval_mine"], expected[rows(process, SHUFFLE_LOCAL)], **EXACT
        )


def test_shuffled_keys_in_train_mode_use_the_statistics_of_the_shuffled_sub_batches(two_processes):
    network, images = shuffle_problem()
    network.train()
    permutation = torch.randperm(WORLD * SHUFFLE_LOCAL, generator=_generator(SHUFFLE_SEED))
    # The permutation regroups the images (else this test could not tell shuffled from unshuffled).
    assert set(permutation[:SHUFFLE_LOCAL].tolist()) != set(range(SHUFFLE_LOCAL))
    expected = torch.empty(WORLD * SHUFFLE_LOCAL, 5, dtype=DTYPE)
    unshuffled = torch.empty_like(expected)
    with torch.no_grad():
        for process in range(WORLD):
            regrouped = permutation[rows(process, SHUFFLE_LOCAL)]
            expected[regrouped] = network(images[regrouped])
            unshuffled[rows(process, SHUFFLE_LOCAL)] = network(images[rows(process, SHUFFLE_LOCAL)])
    assert not torch.allclose(expected, unshuffled)
    for process, result in enumerate(two_processes):
        torch.testing.assert_close(result["shuffle"]["train_everyone"], expected, **EXACT)
        torch.testing.assert_close(
            result["shuffle"]["train_mine"], expected[rows(process, SHUFFLE_LOCAL)], **EXACT
        )


@pytest.mark.parametrize("case", sorted(METHODS))
def test_a_method_on_two_processes_equals_one_process_on_the_global_batch(two_processes, case):
    reference = run_method(case, None)
    for result in two_processes:
        measured = result["methods"][case]
        torch.testing.assert_close(measured["losses"], reference["losses"], **CLOSE)
        assert measured["losses"][1] != 0  # the second step has negatives (v2: from the queue)
        if "queue" in reference:
            for name, buffer in reference["queue"].items():
                torch.testing.assert_close(measured["queue"][name], buffer, **EXACT)
    assert set(two_processes[0]["methods"][case]["grads"]) == set(reference["grads"])
    for name, grad in reference["grads"].items():
        averaged = sum(result["methods"][case]["grads"][name] for result in two_processes) / WORLD
        torch.testing.assert_close(averaged, grad, **CLOSE, msg=name)
