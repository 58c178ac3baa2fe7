"""The timm encoder: registration (only with timm installed), shapes and gradients of a few small
architectures, the CIFAR stem, recipe errors, meta-device builds and the exported weights."""

from __future__ import annotations

import json
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest
import timm
import torch
from torch import nn

import contrastive_core
from contrastive_core import RecipeError, Registry, default_registry, get_plugin_manager, validate_recipe
from contrastive_core.cli import main as cli_main
from contrastive_core.distributed import (
    BatchNormNotConvertibleError,
    GlobalBatchNorm,
    convert_to_global_batchnorm,
)
from contrastive_core.engine import export_encoder, load_encoder
from contrastive_plugins.timm import plugin
from contrastive_plugins.timm.encoder import TimmEncoder
from tests.engine.method_steps import cpu_training_step, recipe_for
from tests.engine.recipes import tiny_recipe

#: (params, input side, feature_dim): small architectures of each family, with the options.
CASES = [
    ({"model": "resnet18"}, 32, 512),
    ({"model": "resnet18", "cifar_stem": True}, 32, 512),
    ({"model": "resnet18", "cifar_stem": True, "in_channels": 1}, 28, 512),
    ({"model": "resnet18", "in_channels": 1}, 28, 512),
    ({"model": "vit_tiny_patch16_224", "img_size": 32, "drop_path_rate": 0.1}, 32, 192),
    ({"model": "vit_tiny_patch16_224", "img_size": 32, "in_channels": 1}, 32, 192),
    ({"model": "vit_tiny_patch16_224", "img_size": 32, "dynamic_img_size": True}, 48, 192),
    ({"model": "convnext_atto", "drop_path_rate": 0.1}, 64, 320),
    ({"model": "convnext_atto", "in_channels": 1}, 64, 320),
    # timm puts a 1024-wide pre-logits layer after the 288-channel pooling: h is that layer's output.
    ({"model": "mobilenetv3_small_050"}, 32, 1024),
]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def build(registry, **params):
    return contrastive_core.build("encoder", {"type": "timm", **params}, registry=registry)


def test_the_installed_plugin_registers_the_encoder(registry):
    registration = registry.registration("encoder", "timm")
    assert registration.cls is TimmEncoder and registration.plugin == "timm"
    assert not [problem for problem in registry.problems if "timm" in problem]


@pytest.mark.parametrize(("params", "side", "feature_dim"), CASES, ids=lambda case: str(case))
def test_each_architecture_maps_images_to_feature_dim_vectors_with_gradients(
    registry, params, side, feature_dim
):
    torch.manual_seed(0)
    encoder = build(registry, **params).train()
    images = torch.randn(2, params.get("in_channels", 3), side, side)
    h = encoder(images)
    assert encoder.feature_dim == feature_dim
    assert h.shape == (2, feature_dim) and torch.isfinite(h).all()
    h.square().mean().backward()
    # Every parameter is in the graph (none frozen, no unused classifier), and the gradient reaches the
    # input side. (Some are exactly 0 at initialisation: timm starts each residual block's last norm at
    # zero, which cuts the block's own layers off until that norm's scale moves.)
    parameters = list(encoder.named_parameters())
    assert [name for name, p in parameters if p.grad is None] == []
    assert parameters[0][1].grad.abs().sum() > 0


def test_the_network_has_no_classifier_and_random_weights(registry):
    first, second = build(registry, model="resnet18"), build(registry, model="resnet18")
    assert first.model.num_classes == 0 and isinstance(first.model.get_classifier(), nn.Identity)
    assert not torch.equal(first.model.conv1.weight, second.model.conv1.weight)


def test_the_cifar_stem_keeps_the_resolution_of_small_images(registry):
    standard = build(registry, model="resnet18").model
    cifar = build(registry, model="resnet18", cifar_stem=True, in_channels=1).model
    assert standard.conv1.kernel_size == (7, 7) and isinstance(standard.maxpool, nn.MaxPool2d)
    assert (cifar.conv1.kernel_size, cifar.conv1.stride, cifar.conv1.in_channels) == ((3, 3), (1, 1), 1)
    assert isinstance(cifar.maxpool, nn.Identity)
    stem = nn.Sequential(cifar.conv1, cifar.bn1, cifar.act1, cifar.maxpool)
    assert stem(torch.randn(1, 1, 28, 28)).shape[-2:] == (28, 28)


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"model": "resnet_18"}, "model.encoder.model", "did you mean 'resnet18'"),
        ({"model": "hf-hub:timm/resnet18.a1_in1k"}, "model.encoder.model", "'hf-hub:'"),
        (
            {"model": "convnext_atto", "img_size": 32},
            "model.encoder",
            "img_size: the timm architecture 'convnext_atto'",
        ),
        (
            {"model": "resnet50d", "cifar_stem": True},
            "model.encoder",
            "cifar_stem: not for model 'resnet50d'",
        ),
        ({"model": "vit_tiny_patch16_224", "cifar_stem": True}, "model.encoder", "VisionTransformer"),
        ({"model": "resnet18", "drop_path_rate": 1.0}, "model.encoder.drop_path_rate", "less than 1"),
        (
            {"model": "vgg11", "drop_path_rate": 0.1},
            "model.encoder",
            "drop_path_rate: the timm architecture 'vgg11'",
        ),
        ({"model": "convnext_atto", "dynamic_img_size": True}, "model.encoder", "dynamic_img_size: the timm"),
    ],
)
def test_settings_the_architecture_does_not_take_are_recipe_errors(registry, params, path, message):
    data = _recipe(params)
    with pytest.raises(RecipeError) as error:
        validate_recipe(data, registry=registry, source="timm.toml")
    assert [problem.path for problem in error.value.problems] == [path]
    assert message in str(error.value)


def test_an_image_size_the_architecture_is_not_made_for_is_a_value_error_naming_the_settings(registry):
    encoder = build(registry, model="vit_tiny_patch16_224", img_size=32).eval()
    with pytest.raises(
        ValueError, match=r"'vit_tiny_patch16_224': Input height \(48\) doesn't match model \(32\)"
    ):
        encoder(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="Set img_size to the images' size"):
        encoder(torch.randn(1, 3, 48, 48))


def test_a_pretrained_tag_is_accepted_and_downloads_nothing(registry, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("timm tried to download weights")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", no_download)
    encoder = build(registry, model="resnet18.a1_in1k")
    assert encoder.feature_dim == 512


def test_the_encoder_builds_on_the_meta_device(registry):
    with torch.device("meta"):
        encoder = build(registry, model="vit_tiny_patch16_224", img_size=32, drop_path_rate=0.1)
    assert {p.device.type for p in encoder.parameters()} == {"meta"}


@pytest.mark.parametrize(
    "params",
    [
        {"model": "resnet18", "cifar_stem": True, "in_channels": 1},
        {"model": "vit_tiny_patch16_224", "img_size": 32},
        {"model": "convnext_atto"},
    ],
    ids=lambda params: params["model"],
)
def test_an_exported_encoder_loads_back_with_the_same_features(registry, tmp_path, params):
    torch.manual_seed(1)
    encoder = build(registry, **params).eval()
    export_encoder(encoder, tmp_path)
    # timm's own key names: the file loads into timm's network without this library.
    plain = timm.create_model(
        params["model"], pretrained=False, num_classes=0, in_chans=params.get("in_channels", 3)
    )
    assert set(encoder.export_state_dict()) == set(plain.state_dict())
    loaded = load_encoder(tmp_path, registry=registry).eval()
    images = torch.randn(2, params.get("in_channels", 3), 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), encoder(images), rtol=0, atol=0)


def test_without_timm_the_encoder_is_not_registered_and_a_recipe_is_told_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # find_spec then finds nothing; import raises
    manager = get_plugin_manager(autoload=False)
    manager.register(plugin, name="timm")
    assert Registry.from_plugin_manager(manager).names("encoder") == []

    monkeypatch.delenv("CONTRASTIVE_BLOCK_PLUGINS", raising=False)
    assert cli_main(["list", "encoder", "--json"]) == 0
    listed = [entry["name"] for entry in json.loads(capsys.readouterr().out)["kinds"]["encoder"]]
    assert "resnet18" in listed and "timm" not in listed

    registry = Registry.from_plugin_manager(get_plugin_manager(), strict=False)
    with pytest.raises(RecipeError) as error:
        validate_recipe(_recipe({"model": "resnet18"}), registry=registry, source="timm.toml")
    assert error.value.problems[0].path == "model.encoder.type"
    assert "pip install 'contrastive[timm]'" in str(error.value)


def _recipe(encoder: dict) -> dict:
    data = tomllib.loads(tiny_recipe())
    data["model"]["encoder"] = {"type": "timm", **encoder}
    return data


def test_global_batchnorm_converts_plain_batchnorm_and_refuses_timms_batchnorm_with_activation(registry):
    for plain in (nn.BatchNorm1d(4), nn.BatchNorm2d(4), nn.BatchNorm3d(4)):
        assert isinstance(convert_to_global_batchnorm(plain, torch.device("cpu")), GlobalBatchNorm)
    resnet = convert_to_global_batchnorm(build(registry, model="resnet18"), torch.device("cpu"))
    assert isinstance(resnet.model.bn1, GlobalBatchNorm)
    # MobileNetV3's norms are timm BatchNormAct2d: BatchNorm, then an activation in the same forward.
    mobilenet = build(registry, model="mobilenetv3_small_050")
    for device in ("cpu", "cuda"):  # the CUDA path (SyncBatchNorm) is refused before anything moves
        with pytest.raises(BatchNormNotConvertibleError, match=r"BatchNormAct2d.*global_batchnorm = false"):
            convert_to_global_batchnorm(mobilenet, torch.device(device))


def test_dino_builds_its_teacher_from_a_timm_vit_without_stochastic_depth():
    registry = default_registry()
    data = recipe_for(registry.get("method", "dino"))
    # timm's smallest ViT (16 px patches); DINO's local crops are smaller than its global ones.
    data["model"]["encoder"] = {
        "type": "timm",
        "model": "test_vit",
        "img_size": 32,
        "dynamic_img_size": True,
        "in_channels": 1,
        "drop_path_rate": 0.5,
    }
    for group in data["views"]:
        size = 32 if group["name"] == "global" else 16
        group["augmentations"] = [{"type": "random_resized_crop", "size": size, "scale": [0.5, 1.0]}]
    parts, _ = cpu_training_step(validate_recipe(data, registry=registry), registry)
    method = parts.method.train()
    images = torch.rand(8, 1, 32, 32)
    with torch.no_grad():
        teacher = [method.teacher(images) for _ in range(2)]
        student = [method.head(method.encoder(images)) for _ in range(2)]
    torch.testing.assert_close(teacher[0], teacher[1], rtol=0, atol=0)  # the same targets every time
    assert not torch.equal(student[0], student[1])  # the student is still regularised
