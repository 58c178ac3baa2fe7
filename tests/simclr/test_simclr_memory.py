"""SimCLRv2's memory of negatives (``[method] memory_size``): NT-Xent with extra negatives against a
plain float64 implementation of the formula, the memory's contents, gradient caching with it, and 2
processes against 1.

With negatives n_1..n_K (unit, no gradient) the loss of anchor i with positive j is

    l(i, j) = -log( exp(s_ij / tau) / (sum_{k != i} exp(s_ik / tau) + sum_q exp(sim(z_i, n_q) / tau)) )

averaged over the 2N anchors, only the memory's written rows counting.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from contrastive_core import MethodParts, StepProgress
from contrastive_core.engine.gradient_cache import GradientCache
from contrastive_plugins.simclr.method import SimCLR, SimCLRParams
from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams
from contrastive_plugins.simclr.projection_head import ProjectionHead, ProjectionHeadParams
from tests.engine.test_gradient_cache import PlainAccelerator, gradients, rows_of, views
from tests.simclr.test_nt_xent import random_views


def reference_loss(z_a, z_b, negatives, filled, tau) -> float:
    """The formula above, element by element in float64 Python arithmetic."""
    z = [row / row.norm() for row in torch.cat([z_a, z_b]).double()]
    memory = [row / row.norm() for row in negatives.double()[:filled]]
    n, total = len(z_a), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        denominator += sum(math.exp(float(z[i] @ m) / tau) for m in memory)
        total += -(float(z[i] @ z[j]) / tau - math.log(denominator))
    return total / (2 * n)


@pytest.mark.parametrize("block", [None, 1, 3])
@pytest.mark.parametrize(("n", "k", "filled"), [(1, 4, 4), (3, 5, 0), (3, 5, 2), (6, 8, 8)])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_with_negatives_matches_the_formula(n, k, filled, tau, block):
    z_a, z_b = random_views(n, 4, seed=10 * n + k)
    negatives = torch.randn(k, 4, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    loss_fn = NTXent(NTXentParams(temperature=tau, block_size=block))
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    loss = loss_fn(a, b, negatives=negatives, negatives_filled=torch.tensor(filled))
    assert loss.item() == pytest.approx(
        reference_loss(z_a, z_b, negatives, filled, tau), rel=1e-10, abs=1e-12
    )
    loss.backward()
    # The gradient against the one-block loss' autograd (itself checked against the seed elsewhere).
    a2, b2 = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    NTXent(NTXentParams(temperature=tau))(a2, b2, negatives=negatives, negatives_filled=filled).backward()
    torch.testing.assert_close(a.grad, a2.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(b.grad, b2.grad, rtol=1e-9, atol=1e-12)
    if filled == 0:  # an empty memory is no memory
        plain = NTXent(NTXentParams(temperature=tau))(z_a, z_b)
        torch.testing.assert_close(loss.detach(), plain, rtol=1e-12, atol=0)


def simclr_with_memory(size: int = 32) -> SimCLR:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(18, 6), nn.ReLU())
    head = ProjectionHead(
        ProjectionHeadParams(type="mlp", hidden_dim=8, out_dim=4, batch_norm=False), in_dim=6
    )
    parts = MethodParts(encoder=encoder, head=head, loss=NTXent(NTXentParams(temperature=0.5)))
    return SimCLR(SimCLRParams(memory_size=size), parts).double()


def test_the_memory_holds_the_memory_networks_unit_projections_of_both_views():
    method = simclr_with_memory()
    inputs = views(batch=4)
    output = method(inputs, StepProgress(0, 10, 10))
    assert int(method.memory.fill) == 8 and output.metrics["memory_fill"].item() == 8 / 32
    with torch.no_grad():
        expected = nn.functional.normalize(method.memory_network(inputs["global"]), dim=1)
    torch.testing.assert_close(method.memory.keys[:8], expected)
    # The next step's loss counts them as negatives: larger than without them.
    second = views(batch=4, seed=5)
    with_memory = method(second, StepProgress(1, 10, 10)).loss
    without = method.loss(*method.head(method.encoder(second["global"])).chunk(2))  # the plain loss

    assert with_memory > without
    # The memory network is a momentum target: not trained, moved by EMA after the step.
    assert not any(
        p is q for p in method.trainable().parameters() for q in method.memory_network.parameters()
    )
    assert method.momentum_updates(StepProgress(1, 10, 10))[0][1] == 0.999


def test_a_memory_smaller_than_a_step_and_a_loss_without_negatives_are_clear_errors():
    from contrastive_core import ContrastiveError

    method = simclr_with_memory(size=4)
    with pytest.raises(ContrastiveError, match="cannot hold one step's 8 views"):
        method(views(batch=4), StepProgress(0, 10, 10))

    class TwoViewsOnly(NTXent):
        name = "two_views_only"

        def forward(self, z_a, z_b):
            return super().forward(z_a, z_b)

    parts = MethodParts(
        encoder=nn.Linear(2, 2), head=ProjectionHead(ProjectionHeadParams(type="mlp"), in_dim=2)
    )
    parts.loss = TwoViewsOnly(NTXentParams())
    with pytest.raises(ContrastiveError, match="needs a loss that takes extra negatives"):
        SimCLR(SimCLRParams(memory_size=8), parts)


def test_gradient_caching_with_the_memory_equals_the_plain_step():
    reference, cached = simclr_with_memory(), simclr_with_memory()
    for step in range(3):  # from step 1 on the memory's negatives are in the loss
        inputs = views(batch=8, seed=step)
        progress = StepProgress(step, 10, 10)
        reference.zero_grad(set_to_none=True)
        cached.zero_grad(set_to_none=True)
        expected = reference(inputs, progress).loss
        expected.backward()
        output = GradientCache(cached, 3, {"global": 2}, PlainAccelerator())(inputs, progress)
        torch.testing.assert_close(output.loss, expected, rtol=1e-10, atol=1e-12)
        for name, gradient in gradients(reference).items():
            torch.testing.assert_close(gradients(cached)[name], gradient, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(cached.memory.keys, reference.memory.keys, rtol=1e-12, atol=0)


def _process_memory(process: int) -> dict:
    method = simclr_with_memory()
    for step in range(3):
        mine = {
            "global": rows_of(views(batch=8, seed=step)["global"], 8, slice(4 * process, 4 * process + 4), 2)
        }
        method(mine, StepProgress(step, 10, 10))
    return {"keys": method.memory.keys.clone(), "fill": method.memory.fill.clone()}


def test_the_memory_is_the_same_on_two_processes_and_equals_one_process(tmp_path):
    from tests.gloo_processes import run_on_gloo_processes

    results = run_on_gloo_processes(_process_memory, tmp_path)
    single = simclr_with_memory()
    for step in range(3):
        single(views(batch=8, seed=step), StepProgress(step, 10, 10))
    for result in results:
        assert int(result["fill"]) == 32
        torch.testing.assert_close(result["keys"], single.memory.keys, rtol=1e-12, atol=1e-14)
    assert torch.equal(results[0]["keys"], results[1]["keys"])
