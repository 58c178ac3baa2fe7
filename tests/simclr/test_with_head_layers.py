"""SimCLRv2's fine-tuning from a head layer: ``[method] export_head_layers`` exports f followed by the
head's first layers (``with_head_layers``), which loads back exactly and is what later stages use."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from contrastive_core import ContrastiveError, build, default_registry, validate_recipe
from contrastive_core.engine import export_encoder, load_encoder, run_recipe
from contrastive_plugins.simclr.encoders.with_head_layers import WithHeadLayers
from tests.engine.method_steps import recipe_for

ENCODER = {"type": "small_cnn", "in_channels": 1, "widths": [8, 16], "feature_dim": 16}
HEAD = {"type": "mlp", "hidden_dim": 12, "out_dim": 6, "num_layers": 3}


@pytest.mark.parametrize(("layers", "width"), [(1, 12), (2, 12), (3, 6)])
def test_the_composite_is_the_encoder_then_the_heads_leading_layers(layers, width, tmp_path):
    registry = default_registry()
    torch.manual_seed(0)
    encoder = build("encoder", ENCODER, registry=registry)
    head = build("head", HEAD, registry=registry, in_dim=16)
    composite = WithHeadLayers.around(encoder, head, layers).eval()
    assert composite.feature_dim == width
    images = torch.rand(5, 1, 28, 28)
    expected = head.layers[: len(composite.head_layers)](encoder(images))
    torch.testing.assert_close(composite(images), expected)
    if layers == 3:
        torch.testing.assert_close(composite(images), head(encoder(images)))
    export_encoder(composite, tmp_path)
    loaded = load_encoder(tmp_path, registry=registry).eval()
    assert isinstance(loaded, WithHeadLayers) and loaded.feature_dim == width
    torch.testing.assert_close(loaded(images), composite(images))
    # The encoder's own keys stay those it exports alone (torchvision's for a ResNet).
    assert set(composite.export_state_dict()) >= {f"encoder.{k}" for k in encoder.export_state_dict()}


def test_pretrain_exports_the_head_layer_and_finetune_trains_from_it(tmp_path):
    registry = default_registry()
    data = recipe_for(registry.get("method", "simclr"))
    data["model"] = {"encoder": ENCODER, "head": HEAD}
    data["method"]["export_head_layers"] = 1
    data["stages"] = [
        {"type": "pretrain", "epochs": 1, "batch_size": 16, "max_steps": 2},
        {"type": "finetune", "epochs": 1, "batch_size": 16},
    ]
    recipe = validate_recipe(data, registry=registry)
    results = run_recipe(recipe, registry=registry, run_dir=tmp_path / "run", console=Console(quiet=True))
    config = json.loads((tmp_path / "run" / "pretrain" / "encoder.json").read_text())
    assert config["encoder"]["type"] == "with_head_layers" and config["feature_dim"] == 12
    assert config["encoder"]["encoder"]["type"] == "small_cnn" and config["encoder"]["head_layers"] == 1
    assert 0 <= results["finetune"]["top1"] <= 1
    finetuned = load_encoder(tmp_path / "run" / "finetune" / "classifier", registry=registry)
    assert isinstance(finetuned, WithHeadLayers)


def test_more_head_layers_than_the_head_has_is_a_clear_error(tmp_path):
    registry = default_registry()
    data = recipe_for(registry.get("method", "simclr"))
    data["method"]["export_head_layers"] = 3  # the default mlp head has 2
    recipe = validate_recipe(data, registry=registry)
    with pytest.raises(
        ContrastiveError, match="export_head_layers = 3 needs an 'mlp' \\[model.head\\] with at least"
    ):
        run_recipe(recipe, registry=registry, run_dir=tmp_path / "run", console=Console(quiet=True))
