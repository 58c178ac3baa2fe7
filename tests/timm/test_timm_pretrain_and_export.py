"""A timm encoder pretrained through the real CLI on the Fashion-MNIST fixture, then exported in each
format it has: the weights load into timm's and torchvision's own networks (by the model card's code)
and into this library's ``load_encoder``, all with the pretrained encoder's features."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from contrastive_core.cli import main as cli_main
from contrastive_core.engine import load_encoder
from tests.engine.recipes import tiny_recipe

#: timm's ResNet-18 for 1-channel images: its standard stem keeps the CPU run short (28 px -> 7 px).
ENCODER = 'type = "timm"\nmodel = "resnet18"\nin_channels = 1'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("timm_run")
    recipe = tiny_recipe(epochs=1, batch_size=8, extra_stage="max_steps = 2")
    recipe = recipe.replace(
        'type = "small_cnn"\nin_channels = 1\nwidths = [8, 16]\nfeature_dim = 16', ENCODER
    )
    assert ENCODER in recipe
    (root / "timm.toml").write_text(recipe + '\n[[stages]]\ntype = "knn_eval"\n')
    assert cli_main(["run", str(root / "timm.toml"), "--out", str(root / "run")]) == 0
    return root / "run"


def test_the_run_pretrained_and_evaluated_a_timm_encoder(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    assert results["pretrain"]["steps"] == 2 and 0 <= results["knn_eval"]["top1"] <= 1
    config = json.loads((run_dir / "pretrain" / "encoder.json").read_text())
    assert config["encoder"] == {
        "type": "timm",
        "model": "resnet18",
        "in_channels": 1,
        "cifar_stem": False,
        "img_size": None,
        "dynamic_img_size": False,
        "drop_path_rate": 0.0,
    }
    assert config["feature_dim"] == 512


@pytest.mark.parametrize("export_format", ["timm", "torchvision", "folder"])
def test_each_export_loads_back_with_the_pretrained_features(run_dir, tmp_path, monkeypatch, export_format):
    out = tmp_path / export_format
    assert cli_main(["export", str(run_dir), "--format", export_format, "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert (
        f"| knn_eval | top1 | {json.loads((run_dir / 'results.json').read_text())['knn_eval']['top1']:.4f} |"
        in readme
    )
    assert '| model.encoder | timm (model = "resnet18", in_channels = 1, cifar_stem = false' in readme
    (code,) = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    monkeypatch.chdir(out)
    namespace: dict = {}
    exec(code, namespace)  # the model card's own code: timm / torchvision / contrastive, in the folder
    model = namespace["model"].eval()
    if export_format != "folder":
        assert type(model).__module__.split(".")[0] == export_format
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    pretrained = load_encoder(run_dir / "pretrain").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(images), pretrained(images))
