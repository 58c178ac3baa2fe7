"""Per-parameter gradient clipping (DINO's reference ``clip_gradients``) against a float64 reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_core import RecipeError, StepProgress, default_registry, validate_recipe
from contrastive_core.engine.training_step import clip_each_gradient
from tests.engine.method_steps import cpu_training_step, recipe_for


def test_each_gradient_is_clipped_on_its_own():
    parameters = [nn.Parameter(torch.zeros(shape, dtype=torch.float64)) for shape in ((3,), (2, 2), (4,))]
    generator = torch.Generator().manual_seed(0)
    for scale, parameter in zip((10.0, 0.1, 5.0), parameters, strict=True):
        parameter.grad = scale * torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
    parameters.append(nn.Parameter(torch.zeros(2, dtype=torch.float64)))  # no gradient: skipped
    before = [p.grad.clone() if p.grad is not None else None for p in parameters]
    clip_each_gradient(parameters, 3.0)
    for parameter, gradient in zip(parameters[:3], before[:3], strict=True):
        norm = float(gradient.norm())
        expected = gradient * (3.0 / (norm + 1e-6)) if 3.0 / (norm + 1e-6) < 1 else gradient
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-12, atol=0)
    assert parameters[3].grad is None
    norms = [float(p.grad.norm()) for p in parameters[:3]]
    assert norms[0] < 3.0 + 1e-9 and norms[2] < 3.0 + 1e-9 and norms[1] < 1.0  # the small one is untouched


def test_the_pretrain_stage_clips_per_parameter_when_asked():
    registry = default_registry()
    data = recipe_for(registry.get("method", "simclr"))
    data["stages"][0] |= {"grad_clip_norm": 1e-3, "grad_clip_per_parameter": True}
    recipe = validate_recipe(data, registry=registry)
    assert recipe.stages[0].grad_clip_per_parameter is True
    _, step = cpu_training_step(recipe, registry)
    # cpu_training_step leaves clipping off; the pretrain stage passes its settings like this:
    step.grad_clip_norm = recipe.stages[0].grad_clip_norm
    step.grad_clip_per_parameter = recipe.stages[0].grad_clip_per_parameter
    seen: list[list[float]] = []
    optimizer_step = step.optimizer.step

    def recording_step(*args, **kwargs):  # what the optimizer receives, after the clipping
        seen.append([float(p.grad.norm()) for p in step._trained if p.grad is not None])
        return optimizer_step(*args, **kwargs)

    step.optimizer.step = recording_step
    step(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8), StepProgress(0, 3, 3))
    assert seen and 0 < max(seen[0]) <= 1e-3 * (1 + 1e-5)


def test_per_parameter_clipping_without_a_norm_is_a_recipe_error():
    registry = default_registry()
    data = recipe_for(registry.get("method", "simclr"))
    data["stages"][0]["grad_clip_per_parameter"] = True
    with pytest.raises(RecipeError, match="grad_clip_per_parameter = true needs grad_clip_norm"):
        validate_recipe(data, registry=registry)
