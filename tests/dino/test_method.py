"""The DINO method: its loss and gradients against a from-scratch float64 reference, which network sees
which views, the schedules, the centre, the first-epoch freeze through the real step, 2 processes."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import Encoder, StepProgress, default_registry, validate_recipe
from contrastive_core.distributed import all_reduce_with_grad, rank, world_size
from tests.dino.networks import OUT, tiny_dino
from tests.dino.test_loss_and_head import reference_loss
from tests.engine.method_steps import CROP, cpu_training_step, recipe_for
from tests.engine.multi_crop import DTYPE, assert_processes_equal_one, multi_crop_views, rows_of_process
from tests.engine.tiny_networks import moved_apart
from tests.gloo_processes import run_on_gloo_processes

BATCH = 4


def reference_dino_loss(method, views, teacher_temperature):
    """Every view through the student and every global view through the teacher, one view at a time,
    then eq. 2-3 element by element with the method's centre."""
    per_view = [*views["global"].chunk(2)]
    if "local" in views:
        per_view += views["local"].chunk(views["local"].shape[0] // BATCH)
    student = torch.stack([method.head(method.encoder(view)) for view in per_view])
    with torch.no_grad():
        teacher = torch.stack([method.teacher.network(view) for view in per_view[:2]])
    return reference_loss(
        teacher, student, method.centre.value, teacher_temperature, method.params.student_temperature
    )


@pytest.mark.parametrize("local_views", [0, 3])
def test_loss_and_gradients_equal_the_reference(local_views):
    method = moved_apart(tiny_dino())  # the student away from the teacher, so the two differ
    with torch.no_grad():
        method.centre.value.copy_(torch.linspace(-0.2, 0.3, OUT, dtype=DTYPE))
    views = multi_crop_views(BATCH, local_views)
    progress = StepProgress(15, 100, 1)  # half-way through the 30-epoch warmup: tau_t = 0.055
    centre_before = method.centre.value.clone()
    loss = method(views, progress).loss
    loss.backward()
    ours = {name: p.grad.clone() for name, p in method.trainable().named_parameters()}
    method.zero_grad()
    with torch.no_grad():
        method.centre.value.copy_(centre_before)  # the loss uses the centre before this step's update
    expected = reference_dino_loss(method, views, 0.055)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
    expected.backward()
    for name, parameter in method.trainable().named_parameters():
        torch.testing.assert_close(ours[name], parameter.grad, rtol=1e-8, atol=1e-12, msg=name)
    assert all(p.grad is None for p in method.teacher.parameters())


def test_the_centre_moves_after_the_loss_towards_the_teachers_global_mean():
    method = tiny_dino()
    views = multi_crop_views(BATCH, 2)
    with torch.no_grad():
        teacher_mean = method.teacher.network(views["global"]).mean(dim=0)
    method(views, StepProgress(0, 10, 5))
    torch.testing.assert_close(method.centre.value, 0.1 * teacher_mean, rtol=1e-12, atol=1e-14)


def test_the_teacher_sees_the_global_views_and_the_student_every_resolution_once():
    method = tiny_dino()
    calls = {"student": [], "teacher": []}
    method.encoder.register_forward_hook(lambda m, args, out: calls["student"].append(tuple(args[0].shape)))
    method.teacher.network[0].register_forward_hook(
        lambda m, args, out: calls["teacher"].append(tuple(args[0].shape))
    )
    method(multi_crop_views(BATCH, 6), StepProgress(0, 10, 5))
    assert calls == {"student": [(8, 2, 6, 6), (24, 2, 4, 4)], "teacher": [(8, 2, 6, 6)]}


def test_the_schedules_are_the_papers():
    method = tiny_dino()
    temperatures = [method.teacher_temperature(StepProgress(step, 1000, 10)) for step in (0, 150, 300, 900)]
    assert temperatures == pytest.approx([0.04, 0.055, 0.07, 0.07])
    momenta = [method.momentum_updates(StepProgress(step, 100, 10))[0][1] for step in (0, 50, 100)]
    assert momenta == pytest.approx([0.996, 0.998, 1.0])
    assert method.momentum_updates(StepProgress(99, 100, 10))[0][1] < 1


def test_the_exported_encoder_is_the_teachers():
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", "dino")), registry=registry)
    parts, step = cpu_training_step(recipe, registry)
    exported = parts.method.exported_encoder()
    assert isinstance(exported, Encoder) and exported is parts.method.teacher.network[0]
    step(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8), StepProgress(0, 3, 3))
    student, teacher = dict(parts.method.encoder.named_parameters()), dict(exported.named_parameters())
    assert student.keys() == teacher.keys()
    assert any(not torch.equal(student[name], teacher[name]) for name in student)


def test_the_last_layer_stays_frozen_for_exactly_the_first_epoch():
    registry = default_registry()
    data = recipe_for(registry.get("method", "dino"))
    data["model"]["head"] = {"type": "dino_head", "hidden_dim": 16, "bottleneck_dim": 8, "out_dim": 32}
    data["views"] = [
        {"name": "global", "augmentations": CROP},
        {"name": "local", "count": 2, "augmentations": [{**CROP[0], "size": 14}, CROP[1]]},
    ]
    parts, step = cpu_training_step(validate_recipe(data, registry=registry), registry, total_steps=6)
    # cpu_training_step makes every run one epoch of total_steps: 6 steps here, so freeze for half.
    parts.method.params = parts.method.params.model_copy(update={"freeze_last_layer_epochs": 0.5})
    step._frozen = None
    last_layer = parts.method.head.last_layer.direction
    first_mlp_layer = parts.method.head.mlp[0].weight
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    moved = []
    for done in range(5):
        before, mlp_before = last_layer.detach().clone(), first_mlp_layer.detach().clone()
        step(images, StepProgress(done, 6, 6))
        moved.append(not torch.equal(last_layer, before))
        assert not torch.equal(first_mlp_layer, mlp_before)  # the rest of the head trains throughout
    assert moved == [False, False, False, True, True]


# --- 2 processes equal 1 -------------------------------------------------------------------------------
WORLD = 2
STEPS = 3


def _train(method, views_per_step) -> dict:
    result = {"losses": [], "grads": [], "centres": []}
    for step, views in enumerate(views_per_step):
        method.zero_grad()
        progress = StepProgress(step, 30, 10)
        loss = method(views, progress).loss
        loss.backward()
        with torch.no_grad():  # DDP's average of the processes' gradients, an SGD step, the EMA
            grads = {
                n: all_reduce_with_grad(p.grad) / world_size()
                for n, p in method.trainable().named_parameters()
            }
            for name, parameter in method.trainable().named_parameters():
                parameter.sub_(0.5 * grads[name])
        for target, momentum in method.momentum_updates(StepProgress(step + 1, 30, 10)):
            target.update(momentum)
        result["losses"].append(loss.detach())
        result["grads"].append(grads)
        result["centres"].append(method.centre.value.clone())
    return result


def _all_views() -> list[dict[str, torch.Tensor]]:
    return [multi_crop_views(BATCH, 2, seed=30 + step) for step in range(STEPS)]


def measure_process(process: int) -> dict:
    local = [rows_of_process(views, BATCH, process, world_size()) for views in _all_views()]
    return {"rank_world": (rank(), world_size()), **_train(tiny_dino(), local)}


def test_two_processes_equal_one(tmp_path):
    single = _train(tiny_dino(), _all_views())
    results = run_on_gloo_processes(measure_process, tmp_path, WORLD)
    assert_processes_equal_one(results, single, WORLD)
    for step, centre in enumerate(single["centres"]):  # the centre: the global mean, on every process
        for r in results:
            torch.testing.assert_close(r["centres"][step], centre, rtol=1e-10, atol=1e-14)


def test_the_teacher_has_no_stochastic_depth_and_the_student_keeps_it():
    registry = default_registry()
    data = recipe_for(registry.get("method", "dino"))
    data["model"]["encoder"] = {
        "type": "vit",
        "arch": None,
        "embed_dim": 16,
        "depth": 2,
        "num_heads": 2,
        "patch_size": 7,
        "image_size": 28,
        "in_channels": 1,
        "drop_path_rate": 0.5,
    }
    parts, _ = cpu_training_step(validate_recipe(data, registry=registry), registry)
    method = parts.method.train()
    images = torch.rand(16, 1, 28, 28)
    teacher = [method.teacher(images) for _ in range(2)]
    torch.testing.assert_close(teacher[0], teacher[1], rtol=0, atol=0)  # the same targets every time
    with torch.no_grad():
        student = [method.head(method.encoder(images)) for _ in range(2)]
    assert not torch.equal(student[0], student[1])  # the student is still regularised
