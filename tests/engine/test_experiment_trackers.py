"""``[run] trackers``: a real run reports to TensorBoard, W&B (offline) and MLflow (a local file store),
each read back with its own reader; without trackers nothing is written; a missing package is a
recipe error with the install command."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from contrastive_core import RecipeError, cli, default_registry, validate_recipe
from contrastive_core.engine.experiment_trackers import flat_hyperparameters
from contrastive_core.run_directory import read_metrics
from tests.engine import wandb_records
from tests.engine.recipes import tiny_recipe

KNN = '\n[[stages]]\ntype = "knn_eval"\nk = 5\n'
ALL = ["tensorboard", "wandb", "mlflow"]
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ALL), reason="the tracker extras are not installed"
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """W&B without network or a home directory; MLflow without a tracking server."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb_home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def tracked_run(tmp_path: Path, trackers: list[str]) -> Path:
    recipe = tmp_path / "tracked.toml"
    text = tiny_recipe(epochs=2, extra_run=f'name = "tracked"\ntrackers = {json.dumps(trackers)}') + KNN
    recipe.write_text(text)
    run_dir = tmp_path / "run"
    assert cli.main(["run", str(recipe), "--out", str(run_dir)]) == 0
    return run_dir


def test_every_tracker_receives_the_curves_the_results_and_the_recipe(tmp_path, offline):
    run_dir = tracked_run(tmp_path, ALL)
    logged = read_metrics(run_dir / "pretrain" / "metrics.jsonl")
    losses = [(record["step"], record["loss"]) for record in logged]
    results = json.loads((run_dir / "results.json").read_text())
    top1 = results["knn_eval"]["top1"]
    assert len(losses) == 8  # 64 images / batch 16 x 2 epochs, every step logged

    # TensorBoard: the event files, read with TensorBoard's own loader.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    scalars = [(event.step, event.value) for event in events.Scalars("pretrain/loss")]
    assert [step for step, _ in scalars] == [step for step, _ in losses]
    assert [value for _, value in scalars] == pytest.approx([value for _, value in losses], rel=1e-6)
    assert events.Scalars("knn_eval/top1")[-1].value == pytest.approx(top1)
    assert events.Scalars("knn_eval/top1")[-1].step == losses[-1][0]  # results at the last step

    # MLflow: the file store in the run directory, read with MLflow's client.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("contrastive")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tracked"
    history = client.get_metric_history(run.info.run_id, "pretrain/loss")
    assert [m.step for m in history] == [step for step, _ in losses]
    assert [m.value for m in history] == pytest.approx([value for _, value in losses])
    assert run.data.metrics["knn_eval/top1"] == pytest.approx(top1)
    assert run.data.params["loss.temperature"] == "0.5"
    assert run.data.params["stages.0.batch_size"] == "16"

    # W&B: the offline run folder's transaction log, read with the plain reader of tests/engine.
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    rows = wandb_records.history(log)
    assert [row["pretrain/loss"] for row in rows if "pretrain/loss" in row] == pytest.approx(
        [value for _, value in losses]
    )
    assert [row["knn_eval/top1"] for row in rows if "knn_eval/top1" in row] == pytest.approx([top1])
    configuration = wandb_records.config(log)
    assert configuration["loss.temperature"] == 0.5 and configuration["stages.0.batch_size"] == 16


def test_without_trackers_nothing_is_written(tmp_path):
    run_dir = tracked_run(tmp_path, [])
    assert not any((run_dir / name).exists() for name in ("tensorboard", "wandb", "mlruns"))
    assert not (run_dir / "pretrain" / "tensorboard").exists()


def test_a_tracker_that_is_not_installed_is_a_recipe_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    recipe = {"run": {"trackers": ["wandb"]}, "stages": [{"type": "knn_eval"}]}
    with pytest.raises(
        RecipeError, match=r"run.trackers: .*wandb is not installed: pip install 'contrastive\[wandb\]'"
    ):
        validate_recipe(recipe, registry=default_registry())
    with pytest.raises(RecipeError, match="listed twice"):
        validate_recipe(
            {"run": {"trackers": ["mlflow", "mlflow"]}, "stages": [{"type": "knn_eval"}]},
            registry=default_registry(),
        )


def test_the_recipe_becomes_flat_hyperparameters():
    table = {
        "loss": {"temperature": 0.5},
        "stages": [{"type": "pretrain", "epochs": 3}],
        "aug": {"scale": [0.2, 1.0]},
        "x": None,
    }
    assert flat_hyperparameters(table) == {
        "loss.temperature": 0.5,
        "stages.0.type": "pretrain",
        "stages.0.epochs": 3,
        "aug.scale": "[0.2, 1.0]",
    }
