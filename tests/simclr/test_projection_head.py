"""The SimCLR projection head g: layer structure, BN placement, shapes and the paper's formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import contrastive_core
from contrastive_core import RecipeError, Registry, get_plugin_manager
from contrastive_plugins.simclr.projection_head import ProjectionHead


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The installed plugins' registry; lenient so that this file does not depend on the other kinds."""
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def build_head(registry: Registry, in_dim: int, **params) -> ProjectionHead:
    return contrastive_core.build("head", {"type": "mlp", **params}, registry=registry, in_dim=in_dim)


def layer_kinds(head: ProjectionHead) -> list[str]:
    return [type(layer).__name__ for layer in head.layers]


def test_the_plugin_registers_the_mlp_head(registry):
    assert registry.get("head", "mlp") is ProjectionHead
    assert not [problem for problem in registry.problems if "register_heads" in problem]


def test_default_head_is_simclr_two_layers_with_batch_norm(registry):
    head = build_head(registry, in_dim=512)
    assert layer_kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    first, _, _, second, last_norm = head.layers
    assert (first.in_features, first.out_features) == (512, 2048)
    assert (second.in_features, second.out_features) == (2048, 128)
    # BatchNorm's shift replaces the bias of the linear layer before it.
    assert first.bias is None and second.bias is None
    assert head.out_dim == 128


def test_last_batch_norm_learns_a_scale_but_no_shift(registry):
    head = build_head(registry, in_dim=16, hidden_dim=32, out_dim=8)
    hidden_norm, last_norm = head.layers[1], head.layers[4]
    assert hidden_norm.weight.requires_grad and hidden_norm.bias.requires_grad
    assert last_norm.weight.requires_grad
    assert not last_norm.bias.requires_grad
    assert torch.count_nonzero(last_norm.bias) == 0

    head(torch.randn(6, 16)).sum().backward()
    assert last_norm.bias.grad is None
    assert last_norm.weight.grad is not None


@pytest.mark.parametrize(
    ("batch_norm", "expected"),
    [
        (True, ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]),
        (False, ["Linear", "ReLU", "Linear", "ReLU", "Linear"]),
    ],
)
def test_three_layers_as_in_simclr_v2(registry, batch_norm, expected):
    head = build_head(registry, in_dim=64, hidden_dim=48, out_dim=16, num_layers=3, batch_norm=batch_norm)
    assert layer_kinds(head) == expected
    linears = [layer for layer in head.layers if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(64, 48), (48, 48), (48, 16)]
    assert all((layer.bias is None) == batch_norm for layer in linears)
    assert head(torch.randn(5, 64)).shape == (5, 16)


def test_one_layer_is_a_linear_projection(registry):
    head = build_head(registry, in_dim=10, out_dim=4, num_layers=1, batch_norm=False)
    assert layer_kinds(head) == ["Linear"]
    assert head(torch.randn(3, 10)).shape == (3, 4)


@pytest.mark.parametrize("in_dim", [128, 2048])
def test_shapes(registry, in_dim):
    head = build_head(registry, in_dim=in_dim, hidden_dim=256, out_dim=64)
    z = head(torch.randn(4, in_dim))
    assert z.shape == (4, 64)
    assert head.in_dim == in_dim


def test_without_batch_norm_it_is_the_papers_formula(registry):
    torch.manual_seed(0)
    head = build_head(registry, in_dim=6, hidden_dim=5, out_dim=3, batch_norm=False)
    w1, b1 = head.layers[0].weight, head.layers[0].bias
    w2, b2 = head.layers[2].weight, head.layers[2].bias
    h = torch.randn(4, 6)
    # g(h) = W2 ReLU(W1 h + b1) + b2, written per sample with explicit sums.
    expected = torch.stack(
        [
            torch.stack(
                [
                    sum(
                        w2[k, j] * max(sum(w1[j, i] * h[n, i] for i in range(6)) + b1[j], 0) for j in range(5)
                    )
                    + b2[k]
                    for k in range(3)
                ]
            )
            for n in range(4)
        ]
    )
    torch.testing.assert_close(head(h), expected)


def test_with_batch_norm_the_training_output_is_standardised_per_dimension(registry):
    head = build_head(registry, in_dim=12, hidden_dim=24, out_dim=6).train()
    z = head(torch.randn(64, 12) * 5 + 3)
    # The last BN has unit scale and no shift at initialisation: batch mean 0, batch std 1 per dimension.
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(6), atol=1e-3, rtol=0)


def test_invalid_params_are_recipe_errors(registry):
    with pytest.raises(RecipeError, match="num_layers"):
        build_head(registry, in_dim=8, num_layers=0)
    with pytest.raises(RecipeError, match="out_dim"):
        build_head(registry, in_dim=8, out_dim=0)


@pytest.mark.parametrize(
    ("output_norm", "last"),
    [("scale", ["Linear", "BatchNorm1d"]), ("no_affine", ["Linear", "BatchNorm1d"]), ("none", ["Linear"])],
)
def test_the_output_layer_of_byol_and_moco_v3_projectors(registry, output_norm, last):
    head = build_head(registry, in_dim=16, hidden_dim=32, out_dim=8, output_norm=output_norm)
    assert layer_kinds(head) == ["Linear", "BatchNorm1d", "ReLU", *last]
    output_linear = head.layers[3]
    # A bias only where no BatchNorm follows (BYOL's projector and predictor end in a biased linear layer).
    assert (output_linear.bias is not None) == (output_norm == "none")
    if output_norm == "no_affine":
        assert not head.layers[4].affine and not list(head.layers[4].parameters())
        z = head.train()(torch.randn(64, 16))
        torch.testing.assert_close(z.mean(0), torch.zeros(8), atol=1e-5, rtol=0)


def test_output_norm_is_ignored_without_batch_norm(registry):
    head = build_head(
        registry, in_dim=16, hidden_dim=32, out_dim=8, batch_norm=False, output_norm="no_affine"
    )
    assert layer_kinds(head) == ["Linear", "ReLU", "Linear"]
