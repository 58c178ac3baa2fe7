"""BYOL's loss is eq. 2 over its own networks: each view's online prediction against the other view's target."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress
from contrastive_plugins.byol.method import BYOL, BYOLParams
from tests.byol.test_regression_loss import reference_term
from tests.engine.tiny_networks import moved_apart, tiny_parts, two_views


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_the_loss_crosses_views_and_networks(batch: int) -> None:
    method = moved_apart(BYOL(BYOLParams(), tiny_parts(predictor=True)).double().eval())
    view_a, view_b = two_views(batch)
    loss = method({"global": torch.cat([view_a, view_b])}, StepProgress(0, 10, 10)).loss

    def online(view: torch.Tensor) -> list[list[float]]:
        return method.predictor(method.head(method.encoder(view))).tolist()

    def target(view: torch.Tensor) -> list[list[float]]:
        with torch.no_grad():
            return method.target.network(view).tolist()

    expected = reference_term(online(view_a), target(view_b)) + reference_term(online(view_b), target(view_a))
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    # The target differs from the online network, so pairing a view with its own target, or using the
    # online projection as the target, or skipping the predictor, would each give another value.
    own_view = reference_term(online(view_a), target(view_a)) + reference_term(online(view_b), target(view_b))
    assert abs(own_view - expected) > 1e-3


def test_gradients_reach_the_online_networks_only() -> None:
    method = moved_apart(BYOL(BYOLParams(), tiny_parts(predictor=True)).double().train())
    view_a, view_b = two_views(4)
    method({"global": torch.cat([view_a, view_b])}, StepProgress(0, 10, 10)).loss.backward()
    for network in (method.encoder, method.head, method.predictor):
        assert all(
            p.grad is not None and torch.count_nonzero(p.grad)
            for p in network.parameters()
            if p.requires_grad
        )
    assert all(p.grad is None and not p.requires_grad for p in method.target.parameters())
    assert {id(p) for p in method.trainable().parameters()}.isdisjoint(
        id(p) for p in method.target.parameters()
    )
