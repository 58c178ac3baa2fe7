"""The vit encoder: registration, shapes, initialisation, params, weight export, activation checkpointing."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

import contrastive_core
from contrastive_core import RecipeError, Registry, get_plugin_manager
from contrastive_core.engine import checkpoint_blocks
from contrastive_plugins.vit import plugin
from contrastive_plugins.vit.encoder import VisionTransformer, VisionTransformerParams
from tests.vit.tiny import TINY, randomize, tiny_vit


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The installed plugins' registry; lenient so that this file does not depend on the other plugins."""
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def test_the_installed_vit_plugin_registers_the_encoder(registry):
    registration = registry.registration("encoder", "vit")
    assert registration.cls is VisionTransformer and registration.plugin == "vit"
    assert not [problem for problem in registry.problems if "'vit'" in problem]


def test_the_plugin_module_alone_registers_the_encoder():
    manager = get_plugin_manager(autoload=False)
    manager.register(plugin, name="vit")
    assert Registry.from_plugin_manager(manager).names("encoder") == ["vit"]


def test_the_encoder_maps_a_batch_to_feature_dim_vectors(registry):
    encoder = contrastive_core.build("encoder", {"type": "vit", **TINY}, registry=registry).eval()
    with torch.no_grad():
        h = encoder(torch.randn(5, 3, 16, 16))
    assert encoder.feature_dim == TINY["embed_dim"] == h.shape[1]
    assert h.shape == (5, 32) and torch.isfinite(h).all()
    assert tiny_vit(in_channels=1)(torch.randn(2, 1, 16, 16)).shape == (2, 32)


def test_parameters_are_initialised_as_dino_does():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tiny_vit(embed_dim=64, num_heads=4, depth=2)
    assert model.pos_embed.shape == (1, 1 + 4 * 4, 64) and model.cls_token.shape == (1, 1, 64)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(linears) == 4 * 2 and len(norms) == 2 * 2 + 1
    # Trunc-normal with std 0.02 (its cut at +-2 is 100 std away, so the std stays 0.02); each group has
    # over 1000 values, so the sample std is within 2.2% (1 sigma) of 0.02, and PyTorch's defaults are not.
    tokens = torch.cat([model.pos_embed.flatten(), model.cls_token.flatten()])
    for values in [tokens, *(m.weight.flatten() for m in linears)]:
        assert 0.018 < values.std().item() < 0.022, values.numel()
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears)
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in norms)
    assert all(m.eps == 1e-6 for m in norms)


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({}, (384, 12, 6)),
        ({"arch": "vit_tiny"}, (192, 12, 3)),
        ({"arch": "vit_small"}, (384, 12, 6)),
        ({"arch": "vit_base"}, (768, 12, 12)),
        ({"arch": "vit_small", "depth": 4}, (384, 4, 6)),
        ({"arch": "vit_base", "embed_dim": 96, "num_heads": 3}, (96, 12, 3)),
        ({"arch": None, "embed_dim": 32, "depth": 2, "num_heads": 4}, (32, 2, 4)),
    ],
)
def test_presets_and_explicit_sizes(params, shape):
    resolved = VisionTransformerParams.model_validate({"type": "vit", **params})
    assert tuple(resolved.shape) == shape
    assert (resolved.patch_size, resolved.image_size, resolved.mlp_ratio) == (16, 224, 4.0)
    assert (resolved.qkv_bias, resolved.drop_path_rate, resolved.layer_norm_eps) == (True, 0.1, 1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"arch": None},
            "arch is none, so embed_dim, depth and num_heads are all required; "
            "missing: embed_dim, depth, num_heads",
        ),
        ({"arch": None, "embed_dim": 32, "depth": 2}, "missing: num_heads"),
        ({"embed_dim": 100, "num_heads": 6}, "embed_dim 100 is not divisible by num_heads 6"),
        ({"arch": "vit_tiny", "num_heads": 5}, "embed_dim 192 is not divisible by num_heads 5"),
        ({"image_size": 100}, "image_size 100 is not a multiple of patch_size 16"),
        ({"arch": "vit_huge"}, "arch"),
        ({"depth": 0}, "depth"),
        ({"drop_path_rate": 1.0}, "drop_path_rate"),
        ({"patch_sise": 8}, "did you mean 'patch_size'"),
    ],
)
def test_bad_combinations_are_recipe_errors_that_say_what_is_wrong(registry, params, message):
    with pytest.raises(RecipeError, match=message):
        contrastive_core.build("encoder", {"type": "vit", **params}, registry=registry)


def test_params_are_immutable_once_validated():
    params = VisionTransformerParams.model_validate({"type": "vit"})
    with pytest.raises(ValidationError):
        params.depth = 3  # type: ignore[misc]


DINO_KEYS = [
    "cls_token",
    "pos_embed",
    "patch_embed.proj.weight",
    "patch_embed.proj.bias",
    *(
        f"blocks.{i}.{name}"
        for i in range(2)
        for name in (
            "norm1.weight",
            "norm1.bias",
            "attn.qkv.weight",
            "attn.qkv.bias",
            "attn.proj.weight",
            "attn.proj.bias",
            "norm2.weight",
            "norm2.bias",
            "mlp.fc1.weight",
            "mlp.fc1.bias",
            "mlp.fc2.weight",
            "mlp.fc2.bias",
        )
    ),
    "norm.weight",
    "norm.bias",
]


def test_weights_are_exported_keyed_as_dinos_vision_transformer():
    """The key layout of facebookresearch/dino's vision_transformer.VisionTransformer (no classifier)."""
    exported = tiny_vit().export_state_dict()
    assert list(exported) == DINO_KEYS
    assert exported["blocks.1.attn.qkv.weight"].shape == (3 * 32, 32)
    assert exported["blocks.1.mlp.fc1.weight"].shape == (4 * 32, 32)


def test_exported_weights_round_trip_through_safetensors(tmp_path):
    source = randomize(tiny_vit(), seed=3).eval()
    save_file(source.export_state_dict(), tmp_path / "encoder.safetensors")
    copy = tiny_vit().eval()
    copy.load_exported_state_dict(load_file(tmp_path / "encoder.safetensors"))
    for (name, a), (_, b) in zip(source.state_dict().items(), copy.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    images = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(copy(images), source(images), rtol=0, atol=0)


def test_loading_weights_of_another_layout_fails_strictly():
    model = tiny_vit()
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_exported_state_dict(model.state_dict())  # this module's own keys, not the exported ones
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_exported_state_dict(tiny_vit(image_size=8).export_state_dict())


def test_activation_checkpointing_recomputes_each_block_with_the_same_gradients():
    plain, checkpointed = tiny_vit(depth=3, drop_path_rate=0.5), tiny_vit(depth=3, drop_path_rate=0.5)
    checkpointed.load_state_dict(plain.state_dict())
    names = set(checkpointed.state_dict())
    assert checkpoint_blocks(checkpointed) == 3
    assert set(checkpointed.state_dict()) == names
    images = torch.randn(4, 3, 16, 16)
    for model in (plain, checkpointed):
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same drop path draws; the recomputation replays them
            model.train()(images).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
