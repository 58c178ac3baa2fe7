"""DINO's loss against a float64 reference from eq. 2-3, its head's layers, and the centre update."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastive_plugins.dino.centre import Centre
from contrastive_plugins.dino.loss import dino_loss
from tests.dino.networks import OUT, tiny_head

DTYPE = torch.float64


def reference_loss(teacher_logits, student_logits, centre, teacher_temperature, student_temperature):
    """Eq. 2-3 written out element by element: P_t = softmax((g_t - c) / tau_t) of each global view,
    log P_s = log softmax(g_s / tau_s) of every view, H averaged over images, then over the
    (global, other view) pairs."""
    global_views, batch, dim = teacher_logits.shape
    views = student_logits.shape[0]
    total, pairs = torch.zeros((), dtype=DTYPE), 0
    for g in range(global_views):
        for v in range(views):
            if v == g:
                continue
            for b in range(batch):
                t = [(teacher_logits[g, b, k] - centre[k]) / teacher_temperature for k in range(dim)]
                t_norm = sum(torch.exp(x) for x in t)
                s = [student_logits[v, b, k] / student_temperature for k in range(dim)]
                s_log_norm = torch.log(sum(torch.exp(x) for x in s))
                total = (
                    total - sum(torch.exp(t[k]) / t_norm * (s[k] - s_log_norm) for k in range(dim)) / batch
                )
            pairs += 1
    return total / pairs


@pytest.mark.parametrize("views", [2, 3, 6])
@pytest.mark.parametrize(("batch", "dim"), [(1, 3), (4, 5)])
@pytest.mark.parametrize(("teacher_temperature", "student_temperature"), [(0.04, 0.1), (1.0, 0.5)])
def test_loss_and_student_gradient_equal_the_reference(
    views, batch, dim, teacher_temperature, student_temperature
):
    generator = torch.Generator().manual_seed(views * 10 + batch)
    teacher = torch.randn(2, batch, dim, generator=generator, dtype=DTYPE)
    student = torch.randn(views, batch, dim, generator=generator, dtype=DTYPE)
    centre = torch.randn(dim, generator=generator, dtype=DTYPE) * 0.3
    ours, theirs = student.clone().requires_grad_(), student.clone().requires_grad_()
    probabilities = torch.softmax((teacher - centre) / teacher_temperature, dim=-1)
    loss = dino_loss(probabilities, torch.log_softmax(ours / student_temperature, dim=-1))
    expected = reference_loss(teacher, theirs, centre, teacher_temperature, student_temperature)
    torch.testing.assert_close(loss, expected, rtol=1e-11, atol=1e-12)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-9, atol=1e-12)


def test_the_same_crop_is_never_a_pair():
    # Two views that are each perfectly predicted by the other would give 0 only if the diagonal is left out.
    sure = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=DTYPE)
    log_student = torch.log(torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]], dtype=DTYPE))
    assert dino_loss(sure, log_student).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="at least two views"):
        dino_loss(sure[:1], log_student[:1])


def test_the_head_is_mlp_then_l2_then_a_weight_normalised_layer():
    head = tiny_head().double()
    h = torch.randn(3, 6, dtype=DTYPE)
    bottleneck = F.normalize(head.mlp(h), dim=-1)
    direction = head.last_layer.direction
    expected = bottleneck @ (direction / direction.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(head(h), expected)
    # g = 1 fixed: every logit is a cosine, in [-1, 1]; the only last-layer parameter is the direction.
    assert [name for name, _ in head.last_layer.named_parameters()] == ["direction"]
    assert head(torch.randn(50, 6, dtype=DTYPE) * 100).abs().max() <= 1 + 1e-12
    layers = [type(layer).__name__ for layer in head.mlp]
    assert layers == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert head.out_dim == OUT


def test_the_head_options_batch_norm_and_a_learnt_scale():
    head = tiny_head(batch_norm=True, norm_last_layer=False, num_layers=2).double()
    assert [type(layer).__name__ for layer in head.mlp] == ["Linear", "BatchNorm1d", "GELU", "Linear"]
    with torch.no_grad():
        head.last_layer.scale.fill_(2.0)
    assert head.eval()(torch.randn(50, 6, dtype=DTYPE) * 100).abs().max() > 1.5


def test_the_centre_is_an_ema_of_the_batch_mean():
    centre = Centre(3).double()
    first = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=DTYPE)
    centre.update(first, momentum=0.9)
    torch.testing.assert_close(centre.value, 0.1 * torch.tensor([2.0, 2.0, 2.0], dtype=DTYPE))
    second = torch.tensor([[0.0, 0.0, 6.0]], dtype=DTYPE)
    centre.update(second, momentum=0.9)
    torch.testing.assert_close(centre.value, 0.9 * 0.2 + 0.1 * torch.tensor([0.0, 0.0, 6.0], dtype=DTYPE))
    assert "value" in centre.state_dict()
