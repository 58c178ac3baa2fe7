"""Finished runs of a tiny recipe over the real Fashion-MNIST fixture, shared by the report and compare tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from contrastive_core import cli
from tests.engine.recipes import tiny_recipe

#: Pretraining with the online kNN monitor (so metrics.jsonl has knn_top1), then a kNN evaluation.
MONITORED_RECIPE = (
    tiny_recipe(epochs=2, extra_stage="knn_monitor_every_epochs = 1\nknn_monitor_examples = [64, 32]")
    + """
[[stages]]
type = "knn_eval"
k = 5
"""
)


@pytest.fixture(scope="session")
def monitored_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "monitored.toml"
    path.write_text(MONITORED_RECIPE)
    return path


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory, monitored_recipe) -> tuple[Path, Path]:
    """Two finished run directories of the recipe: temperature 0.5 ('t05') and 0.2 ('t02').

    Run through the real `contrastive run` (in process), so each also got its automatic report.html.
    """
    root = tmp_path_factory.mktemp("runs")
    t05, t02 = root / "t05", root / "t02"
    assert cli.main(["run", str(monitored_recipe), "--out", str(t05)]) == 0
    assert cli.main(["run", str(monitored_recipe), "--out", str(t02), "--set", "loss.temperature=0.2"]) == 0
    return t05, t02
