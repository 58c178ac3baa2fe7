"""A method or loss returning something else than a 0-d loss with a gradient is named before backward."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import ContrastiveError, StepProgress, default_registry, validate_recipe
from tests.engine.method_steps import cpu_training_step, recipe_for

BAD_LOSSES = {
    "per-pair losses": (
        lambda z_a, z_b: ((z_a - z_b) ** 2).sum(dim=1),
        "a loss of shape (8,); it must be 0-d",
    ),
    "detached": (lambda z_a, z_b: ((z_a - z_b) ** 2).mean().detach(), "a loss without a gradient (detached"),
    "a float": (lambda z_a, z_b: 1.0, "a loss of type float; it must be a 0-d tensor"),
    "an integer tensor": (lambda z_a, z_b: torch.tensor(3), "a loss of dtype torch.int64"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOSSES))
def test_a_bad_loss_is_named_before_the_backward_pass(case, monkeypatch):
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", "simclr")), registry=registry)
    parts, step = cpu_training_step(recipe, registry)
    function, message = BAD_LOSSES[case]
    monkeypatch.setattr(parts.method.loss, "forward", function)
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    before = [p.detach().clone() for p in parts.method.trainable().parameters()]
    with pytest.raises(ContrastiveError) as raised:
        step(images, StepProgress(0, 3, 3))
    assert str(raised.value).startswith("method 'simclr' (with loss 'nt_xent') returned ")
    assert message in str(raised.value)
    # Refused before the optimizer step: nothing trained.
    assert all(torch.equal(a, b) for a, b in zip(before, parts.method.trainable().parameters(), strict=True))


def test_a_good_loss_passes_the_check():
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", "simclr")), registry=registry)
    _, step = cpu_training_step(recipe, registry)
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    for done in range(2):
        assert torch.isfinite(step(images, StepProgress(done, 3, 3)).loss)
