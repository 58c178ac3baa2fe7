"""The SimCLR encoders: registration, output shapes, stem and init options, weight export, global BN."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file
from torch import nn

import contrastive_core
from contrastive_core import RecipeError, Registry, get_plugin_manager
from contrastive_plugins.simclr.encoders import ENCODERS, torchvision_state_dict

FEATURE_DIMS = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "wide_resnet50_2": 2048,
    "small_cnn": 128,
    "small_resnet": 128,
    "sk_resnet50": 2048,
    "sk_resnet101": 2048,
    "sk_resnet152": 2048,
}
#: Encoders built around other components' tables (tested in tests/simclr/test_with_head_layers.py).
COMPOSITES = ["with_head_layers"]


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The installed plugins' registry; lenient so that this file does not depend on the other kinds."""
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def build_encoder(registry: Registry, **params):
    return contrastive_core.build("encoder", params, registry=registry)


def batch_norm_types(module: nn.Module) -> set[type]:
    return {type(m) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def test_the_plugin_registers_every_encoder_without_problems(registry):
    assert sorted([*FEATURE_DIMS, *COMPOSITES]) == sorted(cls.name for cls in ENCODERS)
    simclr = [r.cls.name for r in registry.registrations("encoder") if r.plugin == "simclr"]
    assert sorted(simclr) == sorted([*FEATURE_DIMS, *COMPOSITES])  # other plugins (vit) register encoders too
    assert not [problem for problem in registry.problems if "register_encoders" in problem]


@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
def test_every_encoder_maps_a_batch_to_feature_dim_vectors(registry, name):
    encoder = build_encoder(registry, type=name).eval()
    with torch.no_grad():
        h = encoder(torch.randn(2, 3, 32, 32))
    assert encoder.feature_dim == FEATURE_DIMS[name]
    assert h.shape == (2, FEATURE_DIMS[name])
    assert torch.isfinite(h).all()


def test_resnets_have_no_classifier_and_random_weights(registry):
    first = build_encoder(registry, type="resnet18")
    second = build_encoder(registry, type="resnet18")
    assert isinstance(first.backbone.fc, nn.Identity)
    # Two builds differ: the weights are freshly initialised, never loaded from a checkpoint.
    assert not torch.equal(first.backbone.conv1.weight, second.backbone.conv1.weight)


def stem_output_size(backbone: torchvision.models.ResNet, images: torch.Tensor) -> tuple[int, int]:
    stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
    with torch.no_grad():
        return tuple(stem(images).shape[-2:])


def test_cifar_stem_is_a_stride_1_3x3_conv_without_max_pool(registry):
    images = torch.randn(2, 3, 32, 32)
    standard = build_encoder(registry, type="resnet18").eval()
    cifar = build_encoder(registry, type="resnet18", cifar_stem=True).eval()

    assert standard.backbone.conv1.kernel_size == (7, 7)
    assert stem_output_size(standard.backbone, images) == (8, 8)
    assert cifar.backbone.conv1.kernel_size == (3, 3)
    assert cifar.backbone.conv1.stride == (1, 1)
    assert isinstance(cifar.backbone.maxpool, nn.Identity)
    assert stem_output_size(cifar.backbone, images) == (32, 32)
    with torch.no_grad():
        assert cifar(images).shape == (2, 512)


@pytest.mark.parametrize(("name", "last_norm"), [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_zero_init_residual_zeroes_the_last_batch_norm_scale_of_every_block(registry, name, last_norm):
    zeroed = build_encoder(registry, type=name, zero_init_residual=True).backbone
    default = build_encoder(registry, type=name).backbone
    blocks = [
        block for stage in (zeroed.layer1, zeroed.layer2, zeroed.layer3, zeroed.layer4) for block in stage
    ]
    assert blocks
    for block in blocks:
        assert torch.count_nonzero(getattr(block, last_norm).weight) == 0
    assert torch.all(default.layer1[0].get_submodule(last_norm).weight == 1)


@pytest.mark.parametrize("cifar_stem", [False, True])
def test_grayscale_images_with_in_channels_1(registry, cifar_stem):
    encoder = build_encoder(registry, type="resnet18", in_channels=1, cifar_stem=cifar_stem).eval()
    assert encoder.backbone.conv1.in_channels == 1
    with torch.no_grad():
        assert encoder(torch.randn(2, 1, 28, 28)).shape == (2, 512)
    small = build_encoder(registry, type="small_cnn", in_channels=1).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 1, 28, 28)).shape == (2, 128)


def test_invalid_params_are_recipe_errors(registry):
    with pytest.raises(RecipeError, match="in_channels"):
        build_encoder(registry, type="resnet18", in_channels=0)
    with pytest.raises(RecipeError, match="channels_last"):
        build_encoder(registry, type="resnet50", channels_last=True)
    with pytest.raises(RecipeError, match="widths"):
        build_encoder(registry, type="small_cnn", widths=[])


def plain_torchvision_resnet18(
    *, cifar_stem: bool = False, in_channels: int = 3
) -> torchvision.models.ResNet:
    """What a user writes to receive exported weights: torchvision's model, fc removed, same stem."""
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Identity()
    if cifar_stem:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def train_batch_norm_statistics(encoder: nn.Module, in_channels: int) -> None:
    """Move running statistics away from their (0, 1) start so the comparison covers them too."""
    encoder.train()
    with torch.no_grad():
        encoder(torch.randn(4, in_channels, 32, 32) * 3 + 1)


@pytest.mark.parametrize(("cifar_stem", "in_channels"), [(False, 3), (True, 3), (True, 1)])
def test_exported_weights_load_strictly_into_torchvision_and_give_the_same_features(
    registry, cifar_stem, in_channels
):
    encoder = build_encoder(registry, type="resnet18", cifar_stem=cifar_stem, in_channels=in_channels)
    train_batch_norm_statistics(encoder, in_channels)
    encoder.eval()

    plain = plain_torchvision_resnet18(cifar_stem=cifar_stem, in_channels=in_channels)
    plain.load_state_dict(encoder.export_state_dict(), strict=True)
    plain.eval()

    images = torch.randn(3, in_channels, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain(images), encoder(images))


def test_export_against_torchvision_with_its_classifier_misses_only_fc(registry):
    state = torchvision_state_dict(build_encoder(registry, type="resnet50"))
    result = torchvision.models.resnet50(weights=None).load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert result.unexpected_keys == []


def test_small_cnn_exports_its_own_state_dict_and_is_no_torchvision_resnet(registry):
    encoder = build_encoder(registry, type="small_cnn")
    assert encoder.export_state_dict().keys() == encoder.state_dict().keys()
    with pytest.raises(TypeError, match="export_state_dict"):
        torchvision_state_dict(encoder)


@pytest.mark.parametrize("name", ["resnet18", "small_cnn", "small_resnet"])
def test_exported_weights_round_trip_through_safetensors(registry, tmp_path, name):
    source = build_encoder(registry, type=name, in_channels=1)
    train_batch_norm_statistics(source, in_channels=1)
    save_file(source.export_state_dict(), tmp_path / "encoder.safetensors")

    target = build_encoder(registry, type=name, in_channels=1)
    target.load_exported_state_dict(load_file(tmp_path / "encoder.safetensors"))
    images = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(images), source.eval()(images))


def test_small_cnn_trains_end_to_end(registry):
    torch.manual_seed(0)
    encoder = build_encoder(registry, type="small_cnn", widths=[8, 16], feature_dim=24, in_channels=1)
    h = encoder(torch.randn(4, 1, 28, 28))
    assert h.shape == (4, 24) == (4, encoder.feature_dim)
    h.square().mean().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and torch.count_nonzero(parameter.grad) > 0, name


def test_small_cnn_downsamples_once_per_block_after_the_first(registry):
    encoder = build_encoder(registry, type="small_cnn")
    strides = [block[0].stride for block in encoder.features]
    assert strides == [(1, 1), (2, 2), (2, 2), (2, 2)]
    with torch.no_grad():
        assert tuple(encoder.features.eval()(torch.randn(1, 3, 28, 28)).shape) == (1, 128, 4, 4)


@pytest.mark.parametrize(("device", "norm"), [("cpu", "GlobalBatchNorm"), ("cuda", "SyncBatchNorm")])
def test_global_batchnorm_encoder_exports_torchvision_keys(registry, device, norm):
    """The pretrain stage converts BatchNorm for multi-process runs; exports keep torchvision keys.

    Converting for CUDA only swaps module classes, so this runs without a GPU.
    """
    from contrastive_core.distributed import convert_to_global_batchnorm

    encoder = convert_to_global_batchnorm(build_encoder(registry, type="resnet18"), torch.device(device))
    assert {t.__name__ for t in batch_norm_types(encoder)} == {norm}
    plain = plain_torchvision_resnet18()
    plain.load_state_dict(torchvision_state_dict(encoder), strict=True)


def test_small_resnet_has_a_stride_2_stem_and_one_residual_block_per_stage(registry):
    encoder = build_encoder(registry, type="small_resnet", in_channels=1)
    assert encoder.stem[0].stride == (2, 2) and encoder.stem[0].in_channels == 1
    assert [block.conv1.stride for block in encoder.stages] == [(1, 1), (2, 2), (2, 2)]
    # the first block keeps its channels (identity shortcut); the others project with a strided 1x1 conv
    assert isinstance(encoder.stages[0].shortcut, nn.Identity)
    assert [block.shortcut[0].stride for block in encoder.stages[1:]] == [(2, 2), (2, 2)]
    with torch.no_grad():
        encoder.eval()
        trunk = encoder.stages(encoder.stem(torch.randn(1, 1, 28, 28)))
    assert tuple(trunk.shape) == (1, 128, 4, 4)  # 28 -> 14 -> 14 -> 7 -> 4
    deeper = build_encoder(registry, type="small_resnet", widths=[8, 16], blocks_per_stage=2)
    assert len(deeper.stages) == 4 and deeper.feature_dim == 16


def test_small_resnet_blocks_add_their_shortcut(registry):
    """With zero_init_residual every block starts as relu(shortcut(x)): for the identity shortcut of the
    first block on non-negative inputs, exactly its input."""
    encoder = build_encoder(registry, type="small_resnet", zero_init_residual=True).eval()
    block = encoder.stages[0]
    assert torch.all(block.bn2.weight == 0)
    x = torch.rand(2, 32, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
        projected = encoder.stages[1]
        torch.testing.assert_close(projected(x), torch.relu(projected.shortcut(x)))


def test_small_resnet_trains_end_to_end(registry):
    torch.manual_seed(0)
    encoder = build_encoder(registry, type="small_resnet", widths=[8, 16], in_channels=1)
    h = encoder(torch.randn(4, 1, 28, 28))
    assert h.shape == (4, 16) == (4, encoder.feature_dim)
    h.square().mean().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and torch.count_nonzero(parameter.grad) > 0, name
