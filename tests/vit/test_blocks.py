"""The transformer block against an independent float64 reference, and stochastic depth (drop path)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_plugins.vit.blocks import PreNormResidual
from contrastive_plugins.vit.drop_path import DropPath
from tests.vit import reference
from tests.vit.tiny import TINY, randomize, tiny_vit

EPS = 1e-6


def test_a_block_in_eval_mode_equals_the_reference_block():
    model = randomize(tiny_vit(drop_path_rate=0.3).double()).eval()
    weights = model.export_state_dict()
    tokens = torch.randn(
        3, 17, TINY["embed_dim"], dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    for index, block in enumerate(model.blocks):
        expected = reference.block(tokens, weights, f"blocks.{index}", TINY["num_heads"], EPS)
        torch.testing.assert_close(block(tokens), expected)


def test_the_whole_encoder_in_eval_mode_equals_the_reference():
    model = randomize(tiny_vit().double()).eval()
    images = torch.randn(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = reference.vit_cls_output(
        images,
        model.export_state_dict(),
        patch_size=4,
        depth=TINY["depth"],
        num_heads=TINY["num_heads"],
        eps=EPS,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(images), expected)


def test_drop_path_is_the_identity_in_eval_mode_and_at_rate_zero():
    branch = torch.randn(8, 5, 3)
    assert DropPath(0.5).eval()(branch) is branch
    assert DropPath(0.0).train()(branch) is branch
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)


def test_drop_path_drops_whole_samples_at_its_rate_and_preserves_the_mean():
    rate, samples = 0.25, 20_000
    branch = (
        torch.rand(samples, 3, 5) + 0.5
    )  # nonzero, so the ratio output / input shows each sample's factor
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dropped = DropPath(rate).train()(branch)
    factor = (dropped / branch).reshape(samples, -1)
    # One factor per sample, shared by every token and channel: 0 (dropped) or 1 / keep_prob (kept).
    torch.testing.assert_close(factor, factor[:, :1].expand_as(factor))
    per_sample = factor[:, 0]
    kept = per_sample != 0
    torch.testing.assert_close(per_sample[kept], torch.full_like(per_sample[kept], 1 / (1 - rate)))
    # Binomial standard deviation of the dropped fraction: sqrt(0.25 * 0.75 / 20000) = 0.0031; the
    # tolerances are 6 of them, while a wrong rate (0.2, 0.3), no 1 / keep_prob scaling (mean 0.75) or
    # never dropping (fraction 0) misses by far more.
    assert abs((~kept).double().mean().item() - rate) < 0.019
    assert abs(per_sample.double().mean().item() - 1.0) < 0.025


def test_a_dropped_residual_branch_leaves_the_sample_unchanged():
    dim, rate = 6, 0.5
    sublayer = PreNormResidual(dim, nn.Linear(dim, dim), drop_path_rate=rate, eps=EPS)
    tokens = torch.randn(64, 3, dim)
    with torch.no_grad():
        branch = sublayer.eval()(tokens) - tokens
        with torch.random.fork_rng():
            torch.manual_seed(0)
            trained = sublayer.train()(tokens) - tokens
    dropped = trained.flatten(1).abs().amax(dim=1) == 0
    assert 0 < dropped.sum() < len(dropped)  # both cases occur (a chance of 2 * 2^-64 otherwise)
    torch.testing.assert_close(trained[~dropped], branch[~dropped] / (1 - rate))


def test_the_drop_path_rate_rises_linearly_over_the_blocks():
    model = tiny_vit(depth=4, drop_path_rate=0.3)
    rates = [[m.rate for m in block.modules() if isinstance(m, DropPath)] for block in model.blocks]
    assert rates == [[pytest.approx(r)] * 2 for r in (0.0, 0.1, 0.2, 0.3)]
