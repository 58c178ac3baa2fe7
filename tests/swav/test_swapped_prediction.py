"""SwAV's swapped prediction loss and its gradient against a float64 reference from the paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_plugins.swav.swapped_prediction import swapped_prediction_loss

DTYPE = torch.float64


def reference_loss(scores: torch.Tensor, codes: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 1-2 with multi-crop, written out: for each coded view a and every other view v, the mean over
    images of -sum_k q_ak log p_vk with p_v = softmax(s_v / tau); averaged over v != a, then over a."""
    views, batch, prototypes = scores.shape
    total = torch.zeros((), dtype=DTYPE)
    for a in range(codes.shape[0]):
        per_code = torch.zeros((), dtype=DTYPE)
        for v in range(views):
            if v == a:
                continue
            for b in range(batch):
                logits = [scores[v, b, k] / temperature for k in range(prototypes)]
                log_normaliser = torch.log(sum(torch.exp(logit) for logit in logits))
                per_code = (
                    per_code
                    - sum(codes[a, b, k] * (logits[k] - log_normaliser) for k in range(prototypes)) / batch
                )
        total = total + per_code / (views - 1)
    return total / codes.shape[0]


@pytest.mark.parametrize(("views", "coded"), [(2, 2), (6, 2), (3, 1), (4, 4)])
@pytest.mark.parametrize(("batch", "prototypes"), [(1, 2), (3, 5)])
@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_loss_and_gradient_equal_the_reference(views, coded, batch, prototypes, temperature):
    generator = torch.Generator().manual_seed(views * 100 + batch * 10 + prototypes)
    scores = torch.rand(views, batch, prototypes, generator=generator, dtype=DTYPE) * 2 - 1
    codes = torch.softmax(torch.randn(coded, batch, prototypes, generator=generator, dtype=DTYPE), -1)
    ours = scores.clone().requires_grad_()
    theirs = scores.clone().requires_grad_()
    loss = swapped_prediction_loss(ours, codes, temperature)
    expected = reference_loss(theirs, codes, temperature)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-12)


def test_two_views_are_the_swapped_loss_of_eq_1_halved():
    scores = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=DTYPE)  # (V=2, B=1, K=2)
    codes = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=DTYPE)  # each view is sure of its own
    # l(z_2, q_1) = -log softmax([0, 1] / tau)_0, and symmetrically for the other order.
    one_order = -math.log(math.exp(0.0) / (math.exp(0.0) + math.exp(10.0)))
    loss = swapped_prediction_loss(scores, codes, temperature=0.1)
    assert loss.item() == pytest.approx(one_order, rel=1e-12)


def test_shapes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="V >= 2"):
        swapped_prediction_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="1 <= A <= V"):
        swapped_prediction_loss(torch.zeros(2, 2, 3), torch.zeros(3, 2, 3))
