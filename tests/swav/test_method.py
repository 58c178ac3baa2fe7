"""The SwAV method: its loss and gradient against a from-scratch float64 reference, multi-crop passes,
the prototypes' normalisation and first-epoch freeze through the real step, the queue, 2 processes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_core import StepProgress, default_registry, validate_recipe
from contrastive_core.distributed import all_reduce_with_grad, rank, world_size
from tests.engine.method_steps import CROP, cpu_training_step, recipe_for
from tests.engine.multi_crop import DTYPE, assert_processes_equal_one, rows_of_process
from tests.engine.multi_crop import multi_crop_views as views_of
from tests.gloo_processes import run_on_gloo_processes
from tests.swav.networks import tiny_swav
from tests.swav.test_sinkhorn import reference_codes
from tests.swav.test_swapped_prediction import reference_loss

BATCH = 4


def reference_swav_loss(method, views, queue_keys=None) -> torch.Tensor:
    """The loss computed from the method's parts by hand: every view on its own through f and g,
    normalised, scored against the normalised prototypes; codes of the two global views by the
    reference Sinkhorn (with the queue's rows first, when given); the reference swapped prediction."""
    params = method.params
    # The paper projects the prototypes back to the sphere before the step, outside the graph: the
    # gradient is that of the plain scores at unit rows (the method's forward has normalised them).
    prototypes = method.prototypes.weight
    torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(len(prototypes), dtype=DTYPE))
    per_view = [
        *views["global"].chunk(2),
        *(views["local"].chunk(views["local"].shape[0] // BATCH) if "local" in views else ()),
    ]
    scores = torch.stack(
        [F.normalize(method.head(method.encoder(view)), dim=1) @ prototypes.T for view in per_view]
    )
    codes = []
    for view in range(2):
        detached = scores[view].detach()
        if queue_keys is not None:
            shared = queue_keys[view] @ prototypes.detach().T
            codes.append(
                reference_codes(torch.cat([shared, detached]), params.epsilon, params.sinkhorn_iterations)[
                    len(shared) :
                ]
            )
        else:
            codes.append(reference_codes(detached, params.epsilon, params.sinkhorn_iterations))
    return reference_loss(scores, torch.stack(codes), params.temperature)


PROGRESS = StepProgress(0, 10, 5)


@pytest.mark.parametrize("local_views", [0, 3])
def test_loss_and_gradients_equal_the_reference(local_views):
    method = tiny_swav(epsilon=0.3)
    views = views_of(BATCH, local_views)
    loss = method(views, PROGRESS).loss
    loss.backward()
    ours = {name: p.grad.clone() for name, p in method.named_parameters()}
    method.zero_grad()
    reference_swav_loss(method, views).backward()
    torch.testing.assert_close(loss, reference_swav_loss(method, views), rtol=1e-10, atol=1e-12)
    for name, parameter in method.named_parameters():
        torch.testing.assert_close(ours[name], parameter.grad, rtol=1e-8, atol=1e-12, msg=name)


def test_prototypes_are_unit_vectors_after_every_forward():
    method = tiny_swav()
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)
    method(views_of(BATCH, 0), PROGRESS)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(5, dtype=DTYPE))


def test_the_encoder_runs_once_per_resolution_group():
    method = tiny_swav()
    batches = []
    method.encoder.register_forward_hook(lambda module, args, output: batches.append(tuple(args[0].shape)))
    method(views_of(BATCH, 6), PROGRESS)
    assert batches == [(2 * BATCH, 2, 6, 6), (6 * BATCH, 2, 4, 4)]


def test_the_queue_joins_the_sinkhorn_step_once_full_from_its_start_epoch():
    # Steps of 4 images, 5 per epoch; the queue holds 8 and starts at epoch 0.4 = step 2.
    method = tiny_swav(queue_size=8, queue_start_epoch=0.4, epsilon=0.3)
    seen = []
    for step in range(6):
        views = views_of(BATCH, 2, seed=step)
        before = torch.stack([queue.keys.clone() for queue in method.queues])
        loss = method(views, StepProgress(step, 30, 5)).loss
        used = step >= 4  # written at steps 2 and 3: full (8 rows) from step 4
        expected = reference_swav_loss(method, views, before if used else None)
        torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12, msg=f"step {step}")
        seen.append([int(queue.fill) for queue in method.queues])
    assert seen == [[0, 0], [0, 0], [4, 4], [8, 8], [8, 8], [8, 8]]
    # What the queue holds: the normalised embeddings of each global view of the last two batches.
    for view, queue in enumerate(method.queues):
        embeddings = [
            F.normalize(
                method.head(method.encoder(views_of(BATCH, 2, seed=step)["global"].chunk(2)[view])), dim=1
            )
            for step in (4, 5)
        ]
        torch.testing.assert_close(queue.keys, torch.cat(embeddings), rtol=1e-10, atol=1e-12)


def test_a_queue_smaller_than_the_global_batch_is_refused_with_its_fix():
    method = tiny_swav(queue_size=3, queue_start_epoch=0)
    with pytest.raises(ValueError, match="queue_size = 3 is smaller than the global batch of 4"):
        method(views_of(BATCH, 0), PROGRESS)


def test_prototypes_stay_frozen_for_exactly_the_first_epoch_of_steps():
    registry = default_registry()
    data = recipe_for(registry.get("method", "swav"))
    # 3 steps per epoch here; two thirds of an epoch is 2 steps.
    data["method"] |= {"prototypes": 7, "freeze_prototypes_epochs": 2 / 3}
    data["views"] = [{"name": "global", "augmentations": CROP}]
    parts, step = cpu_training_step(validate_recipe(data, registry=registry), registry, total_steps=6)
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    prototypes = parts.method.prototypes.weight
    encoder_weight = next(parts.method.encoder.parameters())
    history = []
    for done in range(4):
        before, encoder_before = prototypes.detach().clone(), encoder_weight.detach().clone()
        step(images, StepProgress(done, 6, 3))
        # The forward renormalises the rows; the optimizer step moves them only when unfrozen.
        normalised = F.normalize(before, dim=1)
        history.append(not torch.equal(prototypes, normalised))
        assert not torch.equal(encoder_weight, encoder_before)  # the rest trains from the first step
    assert history == [False, False, True, True]


# --- 2 processes equal 1 -------------------------------------------------------------------------------
WORLD = 2
GLOBAL_BATCH = 4
STEPS = 3


def _train(method, views_per_step, world: int) -> dict:
    """Forward and backward at three steps (the queue starts at step 0 and is full from step 1)."""
    result = {"losses": [], "grads": []}
    for step, views in enumerate(views_per_step):
        method.zero_grad()
        loss = method(views, StepProgress(step, 30, 10)).loss
        loss.backward()
        result["losses"].append(loss.detach())
        with torch.no_grad():  # DDP's average of the processes' gradients, then an SGD step
            grads = {n: all_reduce_with_grad(p.grad) / world for n, p in method.named_parameters()}
            for name, parameter in method.named_parameters():
                parameter.sub_(0.5 * grads[name])
        result["grads"].append(grads)
    result["queues"] = [queue.keys.clone() for queue in method.queues]
    return result


def _all_views() -> list[dict[str, torch.Tensor]]:
    return [views_of(GLOBAL_BATCH, 2, seed=20 + step) for step in range(STEPS)]


def measure_process(process: int) -> dict:
    method = tiny_swav(queue_size=GLOBAL_BATCH, queue_start_epoch=0, epsilon=0.3)
    local = [rows_of_process(views, GLOBAL_BATCH, process, world_size()) for views in _all_views()]
    return {"rank_world": (rank(), world_size()), **_train(method, local, world_size())}


def test_two_processes_equal_one(tmp_path):
    single = _train(tiny_swav(queue_size=GLOBAL_BATCH, queue_start_epoch=0, epsilon=0.3), _all_views(), 1)
    results = run_on_gloo_processes(measure_process, tmp_path, WORLD)
    assert_processes_equal_one(results, single, WORLD)
    for view in range(2):  # the queue: the global batch, the same on every process
        for r in results:
            torch.testing.assert_close(r["queues"][view], single["queues"][view], rtol=1e-10, atol=1e-12)
