"""``contrastive export`` through the real CLI, on a tiny pretrained run: the folder format loads back
with the same features, the model card holds the results and working code, formats an encoder is not
are refused, existing folders are never silently replaced and a failed export leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import contrastive_core
from contrastive_core import Registry, get_plugin_manager
from contrastive_core.cli import main as cli_main
from contrastive_core.engine import export_encoder, load_encoder
from contrastive_core.reports import format_value
from contrastive_core.run_directory import write_directory_atomic
from tests.engine.recipes import tiny_recipe


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugin_manager(get_plugin_manager(), strict=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small_cnn pretrained for one epoch on the Fashion-MNIST fixture, then k-NN evaluated."""
    root = tmp_path_factory.mktemp("export")
    recipe = root / "tiny.toml"
    recipe.write_text(tiny_recipe(epochs=1) + '\n[[stages]]\ntype = "knn_eval"\n')
    assert cli_main(["run", str(recipe), "--out", str(root / "run")]) == 0
    return root / "run"


def python_block(readme: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def features(model: torch.nn.Module) -> torch.Tensor:
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.eval()(images)


def test_the_folder_format_loads_back_with_the_encoders_features_and_a_model_card(
    run_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "published"
    assert cli_main(["export", str(run_dir), "--format", "folder", "--out", str(out)]) == 0
    assert (
        f"exported the encoder of stage 'pretrain' (small_cnn) as folder to {out}" in capsys.readouterr().out
    )
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["encoder.safetensors", "encoder.json", "recipe.toml", "README.md", "export.json"]
    )
    pretrain = run_dir / "pretrain"
    assert (out / "encoder.safetensors").read_bytes() == (pretrain / "encoder.safetensors").read_bytes()
    assert (out / "recipe.toml").read_text() == (run_dir / "recipe.resolved.toml").read_text()
    expected = features(load_encoder(pretrain))
    torch.testing.assert_close(features(load_encoder(out)), expected, rtol=0, atol=0)

    readme = (out / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: contrastive\n")
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) == {"pretrain", "knn_eval"}
    for stage, metrics in results.items():
        for name, value in metrics.items():
            assert f"| {stage} | {name} | {format_value(value)} |" in readme
    assert "| model.encoder | small_cnn (widths = [8, 16], feature_dim = 16, in_channels = 1) |" in readme
    assert "| stages | pretrain (epochs = 1, batch_size = 16), knn_eval |" in readme
    # The card's code, run in the folder as it says, loads the same encoder.
    monkeypatch.chdir(out)
    namespace: dict = {}
    exec(python_block(readme), namespace)
    torch.testing.assert_close(features(namespace["model"]), expected, rtol=0, atol=0)
    marker = json.loads((out / "export.json").read_text())
    assert (marker["export_format"], marker["stage"], marker["encoder"]["type"]) == (
        "folder",
        "pretrain",
        "small_cnn",
    )


@pytest.mark.parametrize("export_format", ["torchvision", "timm"])
def test_a_format_the_encoder_is_not_is_refused_and_writes_nothing(run_dir, tmp_path, capsys, export_format):
    out = tmp_path / "out"
    assert cli_main(["export", str(run_dir), "--format", export_format, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"the encoder of stage 'pretrain' (small_cnn) is no {export_format} network" in error
    assert "its formats: folder" in error
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_default_folder_is_inside_the_run_and_replaced_only_with_force(run_dir, capsys):
    default = run_dir / "export-pretrain-folder"
    try:
        assert cli_main(["export", str(run_dir), "--format", "folder"]) == 0
        (default / "README.md").write_text("edited")
        assert cli_main(["export", str(run_dir), "--format", "folder"]) == 2
        assert "exists; choose another --out, or --force" in capsys.readouterr().err
        assert (default / "README.md").read_text() == "edited"
        assert cli_main(["export", str(run_dir), "--format", "folder", "--force"]) == 0
        assert (default / "README.md").read_text().startswith("---\n")
        assert [path.name for path in run_dir.iterdir() if path.name.startswith(".")] == []  # no leftovers
    finally:
        shutil.rmtree(default, ignore_errors=True)


def test_force_replaces_only_an_earlier_export_never_a_run_or_other_files(run_dir, tmp_path, capsys):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    for target in (other, run_dir, run_dir / "pretrain"):
        assert cli_main(["export", str(run_dir), "--format", "folder", "--out", str(target), "--force"]) == 2
        assert "is not an export of contrastive" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine" and (
        run_dir / "pretrain" / "encoder.safetensors"
    ).is_file()


def test_stage_choice_and_unusable_runs_are_explained(run_dir, tmp_path, registry, capsys):
    assert (
        cli_main(
            [
                "export",
                str(run_dir),
                "--format",
                "folder",
                "--stage",
                "knn_eval",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 2
    )
    assert (
        "has no finished stage 'knn_eval' with an exported encoder; stages with one: pretrain"
        in capsys.readouterr().err
    )
    assert cli_main(["export", str(tmp_path), "--format", "folder"]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    # An encoder file changed after its stage finished is not that run's encoder.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    torch.manual_seed(99)
    other = contrastive_core.build(
        "encoder", load_encoder(run_dir / "pretrain").params.model_dump(), registry=registry
    )
    export_encoder(other, copy / "pretrain")
    assert cli_main(["export", str(copy), "--format", "folder", "--out", str(tmp_path / "b")]) == 2
    assert "differs from the SHA-256 recorded in" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_a_folder_write_that_fails_leaves_no_folder_and_keeps_the_one_it_would_replace(tmp_path):
    target = tmp_path / "export"
    # The second name cannot be created (no such subfolder): the write fails after the first file.
    broken = {"a.txt": b"first", "missing/b.txt": b"second"}
    with pytest.raises(FileNotFoundError):
        write_directory_atomic(target, broken)
    assert list(tmp_path.iterdir()) == []
    write_directory_atomic(target, {"a.txt": b"old"})
    with pytest.raises(FileNotFoundError):
        write_directory_atomic(target, broken, replace=True)
    assert [path.name for path in tmp_path.iterdir()] == ["export"] and (
        target / "a.txt"
    ).read_bytes() == b"old"
    with pytest.raises(FileExistsError):
        write_directory_atomic(target, {"a.txt": b"new"})
    write_directory_atomic(target, {"a.txt": b"new"}, replace=True)
    assert [path.name for path in tmp_path.iterdir()] == ["export"] and (
        target / "a.txt"
    ).read_bytes() == b"new"


def test_the_parser_offers_the_engines_formats():
    from contrastive_core.cli.commands import export
    from contrastive_core.engine import EXPORT_FORMATS

    assert export.FORMATS == EXPORT_FORMATS
