"""Encoders as torchvision's and timm's networks (``Encoder.external_models``): the build code each
declares makes a network that loads the weights strictly and computes the encoder's features."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import contrastive_core
from contrastive_core import Registry, get_plugin_manager
from contrastive_plugins.simclr.encoders import RESNET_ENCODERS
from contrastive_plugins.timm.external_models import TORCHVISION_RESNETS

#: (encoder params, the formats it has).
ENCODERS = [
    ({"type": "resnet18"}, {"torchvision", "timm"}),
    ({"type": "resnet18", "cifar_stem": True, "in_channels": 1}, {"torchvision", "timm"}),
    ({"type": "resnet18", "in_channels": 1}, {"torchvision", "timm"}),
    ({"type": "resnet50", "cifar_stem": True}, {"torchvision", "timm"}),
    ({"type": "timm", "model": "resnet18"}, {"torchvision", "timm"}),
    ({"type": "timm", "model": "resnet18", "cifar_stem": True, "in_channels": 1}, {"torchvision", "timm"}),
    ({"type": "timm", "model": "resnet18", "in_channels": 1}, {"torchvision", "timm"}),
    ({"type": "timm", "model": "vit_tiny_patch16_224", "img_size": 32, "in_channels": 1}, {"timm"}),
    ({"type": "timm", "model": "convnext_atto"}, {"timm"}),
    ({"type": "timm", "model": "vit_tiny_patch16_224", "img_size": 32, "dynamic_img_size": True}, {"timm"}),
    (
        {"type": "vit", "arch": "vit_tiny", "depth": 2, "patch_size": 8, "image_size": 32, "in_channels": 1},
        {"timm"},
    ),
    (
        {
            "type": "vit",
            "arch": None,
            "embed_dim": 48,
            "depth": 2,
            "num_heads": 3,
            "image_size": 32,
            "mlp_ratio": 2.5,
            "qkv_bias": False,
        },
        {"timm"},
    ),
    ({"type": "vit", "arch": "vit_tiny", "depth": 1, "image_size": 32, "layer_norm_eps": 1e-5}, set()),
    ({"type": "small_cnn"}, set()),
    ({"type": "sk_resnet50"}, set()),
]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def scramble_batch_norm_statistics(module: torch.nn.Module) -> None:
    """Running statistics and affine weights away from their initial 0 / 1 (and a residual block's
    zero-initialised last scale), so that a network that ignored them would compute something else."""
    generator = torch.Generator().manual_seed(0)
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            for tensor in (layer.running_mean, layer.weight, layer.bias):
                tensor.data.copy_(torch.randn(tensor.shape, generator=generator) * 0.2)
            layer.running_var.copy_(torch.rand(layer.running_var.shape, generator=generator) + 0.5)


@pytest.mark.parametrize(("params", "formats"), ENCODERS, ids=lambda case: str(case))
def test_each_format_builds_the_network_the_weights_load_into_with_the_same_features(
    registry, params, formats
):
    torch.manual_seed(0)
    encoder = contrastive_core.build("encoder", params, registry=registry)
    scramble_batch_norm_statistics(encoder)
    encoder.eval()
    external = encoder.external_models()
    assert set(external) == formats
    images = torch.randn(2, params.get("in_channels", 3), 32, 32)
    for name, model_format in external.items():
        namespace: dict = {}
        exec(model_format.build_code, namespace)  # the code the model card shows, as it is
        model = namespace["model"]
        model.load_state_dict(model_format.state_dict, strict=True)
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(model(images), encoder(images), msg=name)
        assert model_format.requirement == name


@pytest.mark.parametrize("name", sorted(TORCHVISION_RESNETS))
def test_timm_resnets_offered_as_torchvision_have_its_key_names_and_shapes(name):
    with torch.device("meta"):
        ours = timm.create_model(name, pretrained=False, num_classes=0)
        theirs = getattr(torchvision.models, name)(weights=None)
        theirs.fc = torch.nn.Identity()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


@pytest.mark.parametrize("encoder", RESNET_ENCODERS, ids=lambda encoder: encoder.name)
def test_every_resnet_encoder_has_a_timm_model_of_its_name(encoder):
    with torch.device("meta"):
        theirs = timm.create_model(encoder.name, pretrained=False, num_classes=0)
        ours = encoder(encoder.Params(type=encoder.name))
    assert {k: v.shape for k, v in ours.export_state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
