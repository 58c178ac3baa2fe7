"""Blockwise NT-Xent (``block_size``) equals the seed's equations and the one-block loss, in value and
gradient, over a grid of batch sizes, dimensions, temperatures and block sizes, and across 2 processes.

The float64 references are the seed-formula implementations of :mod:`tests.simclr.test_nt_xent`.
"""

from __future__ import annotations

import sys

import pytest
import torch

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from contrastive_core import RecipeError, default_registry, validate_recipe
from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams
from tests.engine.recipes import tiny_recipe
from tests.simclr.test_nt_xent import random_views, seed_loss, seed_total_gradient, unit

BATCH_SIZES = (1, 2, 7, 16)
DIMENSIONS = (3, 32)
TEMPERATURES = (0.05, 0.5, 1.0)


def block_sizes(n: int) -> list[int]:
    """One row, a size that does not divide 2n, 2n - 1, exactly 2n, and more than 2n."""
    return sorted({1, 3, max(1, 2 * n - 1), 2 * n, 4 * n + 1})


@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_blockwise_loss_and_gradients_match_the_seed_equations(n, d, tau):
    z_a, z_b = (unit(z) for z in random_views(n, d, seed=100 * n + d))  # the seed's gradient is for unit z
    expected_loss = seed_loss(z_a.numpy(), z_b.numpy(), tau)
    # The seed's gradient is with respect to unit vectors; through the loss' normalisation only its
    # component tangent to each unit row remains.
    expected = [
        torch.from_numpy(g) - (torch.from_numpy(g) * u).sum(dim=1, keepdim=True) * u
        for g, u in zip(seed_total_gradient(z_a.numpy(), z_b.numpy(), tau), (z_a, z_b), strict=True)
    ]
    for block in block_sizes(n):
        a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
        loss = NTXent(NTXentParams(temperature=tau, block_size=block))(a, b)
        loss.backward()
        assert loss.item() == pytest.approx(expected_loss, rel=1e-10, abs=1e-10), f"block {block}"
        torch.testing.assert_close(a.grad, expected[0], rtol=1e-9, atol=1e-12, msg=f"block {block}")
        torch.testing.assert_close(b.grad, expected[1], rtol=1e-9, atol=1e-12, msg=f"block {block}")


@pytest.mark.parametrize("block", (1, 5, 64))
def test_blockwise_equals_one_block_in_float32(block):
    z_a, z_b = random_views(32, 16, seed=7, dtype=torch.float32)
    results = []
    for block_size in (None, block):
        a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
        loss = NTXent(NTXentParams(temperature=0.1, block_size=block_size))(a, b)
        loss.backward()
        results.append((loss.detach(), a.grad, b.grad))
    for plain, blockwise in zip(*results, strict=True):
        torch.testing.assert_close(blockwise, plain, rtol=1e-5, atol=1e-6)


def test_a_block_size_below_one_is_a_recipe_error():
    text = tiny_recipe(loss='type = "nt_xent"\ntemperature = 0.5\nblock_size = 0')
    with pytest.raises(RecipeError, match="loss.block_size"):
        validate_recipe(tomllib.loads(text), registry=default_registry())


WORLD, LOCAL = 2, 3


def _process_loss(process: int) -> dict:
    z_a, z_b = random_views(WORLD * LOCAL, 5, seed=42)
    rows = slice(process * LOCAL, (process + 1) * LOCAL)
    a, b = z_a[rows].clone().requires_grad_(), z_b[rows].clone().requires_grad_()
    loss = NTXent(NTXentParams(temperature=0.2, block_size=2))(a, b)
    loss.backward()
    return {"loss": loss.detach(), "grad_a": a.grad, "grad_b": b.grad}


def test_blockwise_across_two_processes_equals_the_plain_loss_of_the_whole_batch(tmp_path):
    from tests.gloo_processes import run_on_gloo_processes

    results = run_on_gloo_processes(_process_loss, tmp_path, WORLD)
    z_a, z_b = random_views(WORLD * LOCAL, 5, seed=42)
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    reference = NTXent(NTXentParams(temperature=0.2))(a, b)
    reference.backward()
    for process, result in enumerate(results):
        rows = slice(process * LOCAL, (process + 1) * LOCAL)
        torch.testing.assert_close(result["loss"], reference.detach(), rtol=1e-12, atol=1e-12)
        # Each process's input gradient is W times the global loss' for its rows (DDP divides by W).
        torch.testing.assert_close(result["grad_a"] / WORLD, a.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_b"] / WORLD, b.grad[rows], rtol=1e-10, atol=1e-12)


def test_blockwise_runs_forward_and_backward_under_bf16_autocast():
    """The pretrain step calls backward inside autocast: the blocks must still be computed in float32."""
    z_a, z_b = random_views(8, 16, seed=3, dtype=torch.float32)
    results = []
    for block_size in (None, 3):
        a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = NTXent(NTXentParams(temperature=0.1, block_size=block_size))(a.bfloat16(), b.bfloat16())
            loss.backward()
        assert loss.dtype == torch.float32
        results.append((loss.detach(), a.grad, b.grad))
    (plain_loss, *plain_grads), (block_loss, *block_grads) = results
    torch.testing.assert_close(block_loss, plain_loss, rtol=1e-5, atol=1e-6)
    for plain, blockwise in zip(plain_grads, block_grads, strict=True):  # rounded to bf16 on the way back
        torch.testing.assert_close(blockwise, plain, rtol=2e-2, atol=2e-3)
