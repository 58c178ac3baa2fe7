"""Where an evaluation's encoder comes from: stage keys, paths, the nearest preceding export, and the
random-initialisation fallback."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from contrastive_core import StageContext, build, validate_recipe
from contrastive_plugins.stages.encoder_source import EncoderSourceError, random_init_like, resolve_encoder
from tests.stages.conftest import TINY_ENCODER, export_random_encoder, recipe

KNN = {"type": "knn_eval"}


def context(registry, tmp_path, artifacts, index=2, model=True):
    validated = validate_recipe(recipe(KNN, KNN, KNN, with_model=model), registry=registry)
    keys = ["knn_eval", "knn_eval_2", "knn_eval_3"]
    return StageContext(
        recipe=validated,
        registry=registry,
        run_dir=tmp_path,
        stage_dir=tmp_path / keys[index],
        key=keys[index],
        index=index,
        console=Console(file=io.StringIO()),
        artifacts=artifacts,
    )


def weights_equal(encoder, directory) -> bool:
    exported = load_file(directory / "encoder.safetensors")
    return all(torch.equal(encoder.export_state_dict()[name], value) for name, value in exported.items())


@pytest.fixture
def two_exports(registry, tmp_path):
    first = export_random_encoder(registry, tmp_path / "first", seed=1)
    second = export_random_encoder(registry, tmp_path / "second", seed=2)
    return {
        "knn_eval": {"encoder": first / "encoder.safetensors"},
        "knn_eval_2": {"encoder": second / "encoder.safetensors"},
    }


def test_default_is_the_nearest_preceding_export(registry, tmp_path, two_exports):
    source = resolve_encoder(None, context(registry, tmp_path, two_exports))
    assert source.pretrained and "knn_eval_2" in source.description
    assert weights_equal(source.encoder, tmp_path / "second")


def test_a_stage_key_or_a_path_selects_that_encoder(registry, tmp_path, two_exports):
    by_key = resolve_encoder("knn_eval", context(registry, tmp_path, two_exports))
    assert weights_equal(by_key.encoder, tmp_path / "first")
    by_path = resolve_encoder(str(tmp_path / "first"), context(registry, tmp_path, two_exports))
    assert weights_equal(by_path.encoder, tmp_path / "first") and by_path.pretrained


def test_unusable_references_are_explained(registry, tmp_path, two_exports):
    with pytest.raises(
        EncoderSourceError, match=r"stages\[1\]\.encoder = 'knn_eval_3': that stage runs later"
    ):
        resolve_encoder("knn_eval_3", context(registry, tmp_path, two_exports, index=1))
    with pytest.raises(EncoderSourceError, match="that stage is this one"):
        resolve_encoder("knn_eval_3", context(registry, tmp_path, two_exports))
    without = {"knn_eval": {}, "knn_eval_2": two_exports["knn_eval_2"]}
    with pytest.raises(EncoderSourceError, match="exported no encoder.*knn_eval_2"):
        resolve_encoder("knn_eval", context(registry, tmp_path, without))
    with pytest.raises(EncoderSourceError, match="neither the key of a stage.*nor an existing path"):
        resolve_encoder(str(tmp_path / "missing"), context(registry, tmp_path, two_exports))
    with pytest.raises(EncoderSourceError, match=r"target: required"):
        resolve_encoder(None, context(registry, tmp_path, {}), param="target", random_fallback=False)


def test_without_any_export_the_recipe_encoder_is_randomly_initialised(registry, tmp_path):
    source = resolve_encoder(None, context(registry, tmp_path, {}))
    assert not source.pretrained and "RANDOM INITIALISATION" in source.description
    expected = random_init_like(TINY_ENCODER, registry, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(source.encoder.state_dict().values(), expected.state_dict().values(), strict=True)
    )
    with pytest.raises(EncoderSourceError, match="no encoder to evaluate"):
        resolve_encoder(None, context(registry, tmp_path, {}, model=False))


def test_random_init_is_the_pretraining_start_and_leaves_the_global_rng_alone(registry):
    torch.manual_seed(5)  # what the pretrain stage does before building its encoder
    pretraining_start = build("encoder", TINY_ENCODER, registry=registry)
    state = torch.get_rng_state()
    baseline = random_init_like(TINY_ENCODER, registry, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(pretraining_start.state_dict().values(), baseline.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_without_any_export_a_recipe_encoder_with_init_starts_from_its_file(registry, tmp_path):
    trained = export_random_encoder(registry, tmp_path / "trained", seed=9)
    validated = validate_recipe(
        recipe(KNN, with_model=True) | {"model": {"encoder": {**TINY_ENCODER, "init": str(trained)}}},
        registry=registry,
    )
    stage_context = StageContext(
        recipe=validated,
        registry=registry,
        run_dir=tmp_path,
        stage_dir=tmp_path / "knn_eval",
        key="knn_eval",
        index=0,
        console=Console(file=io.StringIO()),
        artifacts={},
    )
    source = resolve_encoder(None, stage_context)
    assert source.pretrained and weights_equal(source.encoder, trained)
    assert source.description.startswith(
        f"[model.encoder] (small_cnn) initialised from its init file {trained}"
    )
    assert "model.encoder.init: loaded 12 of the encoder's 12 tensors" in source.description
    # The random-init baseline of such an evaluation stays random: it is built from the params alone.
    baseline = random_init_like(source.encoder.params, registry, seed=0)
    assert not weights_equal(baseline, trained)
