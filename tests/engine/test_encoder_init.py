"""An encoder's ``init`` file: the layouts and wrappings it is read from, what is reported, what is
refused, and where it is (and is not) applied."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import contrastive_core
from contrastive_core import RecipeError, Registry, get_plugin_manager, validate_recipe
from contrastive_core.engine import (
    EncoderInitError,
    build_encoder,
    build_training_parts,
    export_encoder,
    initialise_encoder,
    load_encoder,
)
from contrastive_core.recipes import recipe_warnings
from tests.engine.recipes import tiny_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SMALL = {"type": "small_cnn", "in_channels": 1, "widths": [4, 8], "feature_dim": 8}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


def build(registry, params, seed=0):
    torch.manual_seed(seed)
    return contrastive_core.build("encoder", params, registry=registry)


def assert_same_weights(encoder, reference_state: dict[str, torch.Tensor]) -> None:
    state = encoder.export_state_dict()
    assert set(state) == set(reference_state)
    for name, tensor in reference_state.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0, msg=name)


def torchvision_resnet18() -> torch.nn.Module:
    torch.manual_seed(7)
    return torchvision.models.resnet18(weights=None)


@pytest.mark.parametrize("point_at", ["folder", "file"])
def test_an_exported_encoder_initialises_the_same_architecture(registry, tmp_path, point_at):
    trained = build(registry, SMALL, seed=1)
    export_encoder(trained, tmp_path / "exported")
    path = tmp_path / "exported" if point_at == "folder" else tmp_path / "exported" / "encoder.safetensors"
    encoder = build(registry, SMALL, seed=2)
    report = initialise_encoder(encoder, path, where="model.encoder.init")
    assert_same_weights(encoder, trained.export_state_dict())
    assert (report.loaded, report.total) == (18, 18)
    assert not (report.missing or report.unexpected or report.dropped or report.problems())
    assert report.summary() == (
        f"model.encoder.init: loaded 18 of the encoder's 18 tensors from {tmp_path / 'exported' / 'encoder.safetensors'}"
    )


@pytest.mark.parametrize("encoder_type", ["resnet18", "timm"])
def test_a_wrapped_torchvision_checkpoint_with_a_prefix_loads_without_its_classifier(
    registry, tmp_path, encoder_type
):
    reference = torchvision_resnet18().state_dict()
    checkpoint = {"epoch": 90, "state_dict": {f"module.{name}": tensor for name, tensor in reference.items()}}
    torch.save(checkpoint, tmp_path / "resnet18.pth")
    params = {"type": "resnet18"} if encoder_type == "resnet18" else {"type": "timm", "model": "resnet18"}
    encoder = build(registry, params)
    report = initialise_encoder(encoder, tmp_path / "resnet18.pth", where="model.encoder.init")
    assert_same_weights(encoder, {k: v for k, v in reference.items() if not k.startswith("fc.")})
    assert report.dropped == ("module.fc.weight", "module.fc.bias") and report.unexpected == ()
    assert 'under "state_dict", prefix "module." removed' in report.summary()
    assert "dropped its classifier (module.fc.weight, module.fc.bias)" in report.summary()


def test_a_timm_training_checkpoint_loads_from_its_state_dict(registry, tmp_path):
    torch.manual_seed(3)
    network = timm.create_model("convnext_atto", pretrained=False, num_classes=10)
    # timm's train.py saves its argparse.Namespace next to the weights (and a model's EMA copy).
    checkpoint = {
        "epoch": 3,
        "arch": "convnext_atto",
        "state_dict": network.state_dict(),
        "args": argparse.Namespace(lr=0.1, model="convnext_atto"),
    }
    torch.save(checkpoint, tmp_path / "checkpoint.pth.tar")
    encoder = build(registry, {"type": "timm", "model": "convnext_atto"})
    report = initialise_encoder(encoder, tmp_path / "checkpoint.pth.tar", where="model.encoder.init")
    # head.norm is the encoder's own (the norm after the pooling); only the classifier head.fc goes.
    assert report.dropped == ("head.fc.weight", "head.fc.bias") and report.loaded == report.total
    expected = {k: v for k, v in network.state_dict().items() if not k.startswith("head.fc.")}
    assert_same_weights(encoder, expected)


def test_our_own_module_layout_loads_too(registry, tmp_path):
    """A ResNet encoder's ``state_dict`` (``backbone.conv1.weight``, as a pretrain checkpoint's model
    holds it) rather than the exported torchvision keys."""
    trained = build(registry, {"type": "resnet18"}, seed=4)
    save_file(trained.state_dict(), tmp_path / "module.safetensors")
    encoder = build(registry, {"type": "resnet18"}, seed=5)
    report = initialise_encoder(encoder, tmp_path / "module.safetensors", where="w")
    assert_same_weights(encoder, trained.export_state_dict())
    assert report.loaded == report.total and not report.problems()


def test_missing_and_unexpected_tensors_are_reported_and_the_missing_keep_their_values(registry, tmp_path):
    reference = torchvision_resnet18().state_dict()
    partial = {k: v for k, v in reference.items() if not k.startswith("layer4.")}
    partial["projector.0.weight"] = torch.zeros(3, 3)
    torch.save(partial, tmp_path / "partial.pt")
    encoder = build(registry, {"type": "resnet18"})
    before = {k: v.clone() for k, v in encoder.export_state_dict().items()}
    report = initialise_encoder(encoder, tmp_path / "partial.pt", where="model.encoder.init")
    after = encoder.export_state_dict()
    layer4 = [name for name in before if name.startswith("layer4.")]
    assert layer4 and all(torch.equal(after[name], before[name]) for name in layer4)
    torch.testing.assert_close(after["conv1.weight"], reference["conv1.weight"], rtol=0, atol=0)
    assert report.unexpected == ("projector.0.weight",)
    assert set(report.missing) == {name for name in layer4 if not name.endswith("num_batches_tracked")}
    missing, unexpected = report.problems()
    assert missing.startswith(
        f"model.encoder.init: {len(report.missing)} tensors of the encoder are not in {tmp_path / 'partial.pt'}"
    )
    assert "keep their random initialisation: layer4.0.conv1.weight" in missing
    assert unexpected == (
        f"model.encoder.init: 1 tensors of {tmp_path / 'partial.pt'} are not the encoder's and are ignored: "
        "projector.0.weight"
    )


def test_a_tensor_of_another_shape_is_an_error_naming_the_setting_the_file_and_the_first_key(
    registry, tmp_path
):
    torch.save(torchvision_resnet18().state_dict(), tmp_path / "rgb.pth")
    encoder = build(registry, {"type": "resnet18", "in_channels": 1})
    before = encoder.export_state_dict()["bn1.weight"].clone()
    with pytest.raises(EncoderInitError) as error:
        initialise_encoder(encoder, tmp_path / "rgb.pth", where="model.encoder.init")
    assert str(error.value).startswith(
        f"model.encoder.init = '{tmp_path / 'rgb.pth'}': conv1.weight is [64, 3, 7, 7] in {tmp_path / 'rgb.pth'} "
        "but [64, 1, 7, 7] in the encoder (resnet18)"
    )
    assert torch.equal(encoder.export_state_dict()["bn1.weight"], before)  # nothing was loaded


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such weights file"),
        (
            {"epoch": 1, "optimizer": {"lr": 0.1}},
            "holds no state dict: its top-level keys are 'epoch', 'optimizer'",
        ),
        ([torch.zeros(1)], "holds a list, not a state dict"),
        (
            argparse.ArgumentParser,
            "weights_only=True",
        ),  # a class: pickled by reference, refused by weights_only
        ({"conv.weight": torch.zeros(1)}, "none of the 1 tensors of"),
    ],
    ids=["missing", "no_state_dict", "a_list", "code", "other_architecture"],
)
def test_files_that_hold_no_usable_weights_are_errors_naming_the_file(registry, tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(EncoderInitError) as error:
        initialise_encoder(build(registry, SMALL), path, where="stages[2].student.init")
    assert str(error.value).startswith(f"stages[2].student.init = '{path}': ")
    assert message in str(error.value)


def test_pretraining_starts_from_the_init_file_and_everything_else_as_without_it(registry, tmp_path):
    trained = build(registry, SMALL, seed=11)
    export_encoder(trained, tmp_path / "trained")
    data = tomllib.loads(tiny_recipe())
    data["model"]["encoder"] = dict(SMALL)

    def parts(recipe_data, reports):
        torch.manual_seed(0)
        return build_training_parts(
            validate_recipe(recipe_data, registry=registry),
            registry,
            device=torch.device("cpu"),
            batch_size=16,
            total_steps=1,
            steps_per_epoch=1,
            warn=reports.append,
        )

    plain_reports, init_reports = [], []
    plain = parts(data, plain_reports)
    data["model"]["encoder"]["init"] = str(tmp_path / "trained")
    started = parts(data, init_reports)
    assert_same_weights(started.method.encoder, trained.export_state_dict())
    # Loading draws no random numbers: the head starts where it starts without an init file.
    for name, tensor in plain.method.head.state_dict().items():
        assert torch.equal(started.method.head.state_dict()[name], tensor), name
    assert plain_reports == [] and init_reports == [
        f"model.encoder.init: loaded 18 of the encoder's 18 tensors from {tmp_path / 'trained' / 'encoder.safetensors'}"
    ]


def test_build_encoder_reports_and_load_encoder_never_applies_init(registry, tmp_path):
    trained = build(registry, SMALL, seed=12)
    export_encoder(trained, tmp_path / "trained")
    lines: list[str] = []
    encoder = build_encoder(
        {**SMALL, "init": str(tmp_path / "trained")}, registry, where="model.encoder", report=lines.append
    )
    assert_same_weights(encoder, trained.export_state_dict())
    assert len(lines) == 1 and lines[0].startswith(
        "model.encoder.init: loaded 18 of the encoder's 18 tensors"
    )
    # The export does not carry the init file on: its own weights replace it, wherever it is loaded.
    export_encoder(encoder, tmp_path / "again")
    assert "init" not in json.loads((tmp_path / "again" / "encoder.json").read_text())["encoder"]
    (tmp_path / "trained" / "encoder.safetensors").unlink()
    assert_same_weights(load_encoder(tmp_path / "again", registry=registry), trained.export_state_dict())


def test_every_built_in_encoder_accepts_init(registry):
    for registration in registry.registrations("encoder"):
        assert "init" in registration.cls.Params.model_fields, registration.cls.name


def test_init_inside_with_head_layers_is_refused_as_it_would_be_ignored(registry):
    table = {
        "type": "with_head_layers",
        "encoder": {**SMALL, "init": "weights.pth"},
        "head": {"type": "mlp", "hidden_dim": 8, "out_dim": 4},
    }
    with pytest.raises(
        RecipeError, match="encoder.init is not applied to the encoder inside with_head_layers"
    ):
        contrastive_core.build("encoder", table, registry=registry)


def test_validation_warns_of_an_init_file_that_is_not_there(registry, tmp_path):
    data = tomllib.loads(tiny_recipe())
    data["model"]["encoder"] = {**SMALL, "init": str(tmp_path / "absent.pth")}
    warnings = recipe_warnings(validate_recipe(data, registry=registry))
    assert [(w.path, w.message.split(" (")[0]) for w in warnings] == [
        ("model.encoder.init", "no such file or folder")
    ]
    data["model"]["encoder"]["init"] = str(tmp_path)
    assert recipe_warnings(validate_recipe(data, registry=registry)) == []
