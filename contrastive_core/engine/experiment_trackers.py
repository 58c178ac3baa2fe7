"""Experiment trackers (TensorBoard, Weights & Biases, MLflow) through Accelerate's tracker API.

``[run] trackers = ["tensorboard", "wandb", "mlflow"]`` (any subset) sends the run to them:

* the resolved recipe, flattened to ``section.key`` hyperparameters (``loss.temperature``,
  ``stages.0.batch_size``), when the run starts;
* every record a stage logs per step (pretraining's loss, learning rate, throughput and the online kNN
  accuracy), as ``<stage key>/<metric>``;
* every stage's results when it finishes (``linear_eval/top1``), but those that are already one of its
  curves (pretraining's final loss).

Steps: each stage's steps follow the previous stages' within one session, so one run's step never
goes backwards (W&B refuses that); a stage's results are logged at the last step seen. Where each
tracker writes:

* TensorBoard: event files in ``<run dir>/tensorboard/``;
* W&B: ``<run dir>/wandb/`` (``WANDB_MODE`` as set, e.g. ``offline``; the project is
  ``[run] tracker_project``);
* MLflow: the tracking server of ``MLFLOW_TRACKING_URI`` when set, else a local file store in
  ``<run dir>/mlruns/`` (the experiment is ``tracker_project``, the run the run's name).

Only the main process tracks; a session that resumes a run starts a new tracker run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..run_directory.names import MLFLOW_DIR, TENSORBOARD_DIR


class ExperimentTrackers:
    """The run's trackers: ``start(config)``, ``log(stage, values, step)``, ``log_results(stage, results)``,
    ``finish()``. With no tracker names every call does nothing."""

    def __init__(self, names: Sequence[str], run_dir: Path, run_name: str, project: str) -> None:
        self.names = tuple(names)
        self.run_dir = Path(run_dir)
        self.run_name = run_name
        self.project = project
        self._trackers: list[Any] = []
        self._offsets: dict[str, int] = {}
        self._curves: dict[str, set[str]] = {}  # per stage, the keys it logged per step
        self._last_step = 0

    def start(self, config: Mapping[str, Any]) -> None:
        """Start every tracker and store ``config`` (a flat mapping) as the run's hyperparameters."""
        for name in self.names:
            tracker = self._make(name)
            tracker.start()
            tracker.store_init_configuration(dict(config))
            self._trackers.append(tracker)

    def _make(self, name: str) -> Any:
        from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

        if name == "tensorboard":
            # Accelerate writes to <logging_dir>/<run_name>: <run dir>/tensorboard.
            return TensorBoardTracker(TENSORBOARD_DIR, self.run_dir)
        if name == "wandb":
            # wandb.init(dir=D) writes its run folders to D/wandb: <run dir>/wandb.
            return WandBTracker(self.project, name=self.run_name, dir=str(self.run_dir.resolve()))
        if name == "mlflow":
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                import mlflow

                # MLflow keeps its file store only on request; a run directory is the place for one.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                mlflow.set_tracking_uri((self.run_dir / MLFLOW_DIR).resolve().as_uri())
            return MLflowTracker(self.project, run_name=self.run_name)
        raise ValueError(f"unknown tracker {name!r}")

    def log(self, stage: str, values: Mapping[str, Any], step: int) -> None:
        """One step's metrics of ``stage`` (its own step count); non-numbers are left out."""
        if not self._trackers:
            return
        if stage not in self._offsets:
            self._offsets[stage] = self._last_step
        global_step = self._offsets[stage] + step
        self._last_step = max(self._last_step, global_step)
        self._curves.setdefault(stage, set()).update(values)
        self._send({f"{stage}/{key}": value for key, value in values.items()}, global_step)

    def log_results(self, stage: str, results: Mapping[str, Any]) -> None:
        """A finished stage's results, at the last step logged; a result that is also one of the stage's
        curves (pretraining's final loss) is already there and is not logged twice."""
        if self._trackers:
            curves = self._curves.get(stage, set())
            values = {f"{stage}/{key}": value for key, value in results.items() if key not in curves}
            self._send(values, self._last_step)

    def _send(self, values: dict[str, Any], step: int) -> None:
        numbers = {key: value for key, value in values.items() if _is_number(value)}
        if numbers:
            for tracker in self._trackers:
                tracker.log(numbers, step=step)

    def finish(self) -> None:
        for tracker in self._trackers:
            tracker.finish()
        self._trackers = []


def flat_hyperparameters(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested recipe table as ``a.b.c`` / ``a.0.b`` keys (no brackets: MLflow refuses them) with scalar values (lists of scalars as
    JSON text), which every tracker accepts as hyperparameters."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flat_hyperparameters(value, path))
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                flat.update(flat_hyperparameters(item, f"{path}.{index}"))
        elif isinstance(value, list | tuple):
            flat[path] = json.dumps(list(value))
        elif value is not None:
            flat[path] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
