"""NT-Xent's ``reduction = "sum_of_views"`` equals google-research/simclr's ``add_contrastive_loss``
(objective.py), written here from that code's formulas in plain float64 torch, and its effect under LARS:
the parameters LARS adapts take the same step, the exempt ones (BatchNorm, biases) twice the step.

Reference (one process): h1, h2 unit rows (N, d); logits_ab = h1 h2^T / tau, logits_aa = h1 h1^T / tau
with the diagonal removed, likewise ba, bb; loss_a = CE([logits_ab, logits_aa], i), loss_b likewise;
loss = mean_i (loss_a + loss_b).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams
from contrastive_plugins.simclr.optim.lars_component import LARSOptimizer, LARSOptimizerParams


def reference_contrastive_loss(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    h1 = z_a / z_a.norm(dim=1, keepdim=True)
    h2 = z_b / z_b.norm(dim=1, keepdim=True)
    n = h1.shape[0]
    diagonal = torch.eye(n, dtype=z_a.dtype)
    large = 1e9
    logits_aa = h1 @ h1.T / tau - diagonal * large
    logits_bb = h2 @ h2.T / tau - diagonal * large
    logits_ab = h1 @ h2.T / tau
    logits_ba = h2 @ h1.T / tau
    loss_a = -torch.log_softmax(torch.cat([logits_ab, logits_aa], 1), 1).diagonal()
    loss_b = -torch.log_softmax(torch.cat([logits_ba, logits_bb], 1), 1).diagonal()
    return (loss_a + loss_b).mean()


@pytest.mark.parametrize("n", [1, 2, 5, 16])
@pytest.mark.parametrize("d", [3, 32])
@pytest.mark.parametrize("tau", [0.1, 0.5])
@pytest.mark.parametrize("block_size", [None, 3])
def test_sum_of_views_equals_the_reference_loss_and_gradient(
    n: int, d: int, tau: float, block_size: int | None
) -> None:
    generator = torch.Generator().manual_seed(n * 100 + d)
    z_a = torch.randn(n, d, dtype=torch.float64, generator=generator, requires_grad=True)
    z_b = torch.randn(n, d, dtype=torch.float64, generator=generator, requires_grad=True)
    loss = NTXent(NTXentParams(temperature=tau, reduction="sum_of_views", block_size=block_size))(z_a, z_b)
    grads = torch.autograd.grad(loss, (z_a, z_b))
    expected = reference_contrastive_loss(z_a, z_b, tau)
    expected_grads = torch.autograd.grad(expected, (z_a, z_b))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)
    mean = NTXent(NTXentParams(temperature=tau))(z_a, z_b)
    torch.testing.assert_close(loss, 2 * mean, rtol=1e-12, atol=0)


class ProjectionNet(nn.Module):
    """linear + BN + linear: weights LARS adapts, and BN/bias parameters it exempts."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8, bias=False)  # BN would cancel its bias (gradient ~0)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def first_step(reduction: str) -> dict[str, torch.Tensor]:
    """Each parameter's change after one LARS step (SimCLR's settings) on NT-Xent of two views."""
    torch.manual_seed(0)
    model = ProjectionNet().double()
    before = copy.deepcopy(dict(model.named_parameters()))
    optimizer = LARSOptimizer.from_params(LARSOptimizerParams(lr=0.3, lr_scaling="none"), model=model)
    x = torch.randn(2, 12, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = NTXent(NTXentParams(temperature=0.1, reduction=reduction))(model(x[0]), model(x[1]))
    loss.backward()
    optimizer.step()
    return {name: (param - before[name]).detach() for name, param in model.named_parameters()}


def test_under_lars_the_exempt_parameters_move_twice_as_far_and_the_weights_alike() -> None:
    mean, summed = first_step("mean"), first_step("sum_of_views")
    for name in ("fc1.weight", "fc2.weight"):
        # Adapted: the trust ratio cancels the loss scale, up to its denominator's wd ||w|| term (1e-6).
        torch.testing.assert_close(summed[name], mean[name], rtol=1e-4, atol=1e-15)
    for name in ("bn.weight", "bn.bias", "fc2.bias"):  # exempt: plain lr * gradient
        ratio = summed[name].norm() / mean[name].norm()
        assert ratio == pytest.approx(2.0, rel=1e-9), name
