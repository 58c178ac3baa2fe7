"""The ``[run]`` section: settings of the run as a whole, shared by every stage."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The module each tracker's package provides (what must be importable to use it).
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


class RunSettings(BaseModel):
    """Settings that apply to every stage of a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str | None) -> str | None:
        # The name becomes runs/<name>: a path in it would write the run somewhere else.
        if name is not None and (
            not name
            or name.startswith(".")
            or any(character in name for character in "/\\")
            or any(ord(character) < 32 for character in name)
        ):
            raise ValueError(
                f"{name!r} is not a folder name: a run name may not be empty, start with '.', or hold "
                "'/', '\\' or control characters (use --out DIR to choose where the run goes)"
            )
        return name

    name: str | None = Field(None, max_length=200)
    """Run name; the default run directory is runs/<name> (else runs/<recipe file stem>). One folder
    name, never a path: no ``/`` or ``\\``, not starting with ``.``, no control characters."""
    seed: int = Field(0, ge=0, le=2**64 - 1)
    """Seed of every random number generator (data order, augmentations, initialisation); at most
    2^64 - 1, the range of torch's generators."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to run: 'auto' uses CUDA when available (one process per GPU under a launcher), else the CPU."""
    precision: Literal["no", "bf16", "fp16"] = "no"
    """Mixed precision for the encoder's forward and backward passes; losses are computed in fp32."""
    deterministic: bool = False
    """Ask torch for deterministic algorithms (slower on GPU; exact resume equality on CPU)."""
    trackers: tuple[Literal["tensorboard", "wandb", "mlflow"], ...] = ()
    """Experiment trackers the run reports to, any of "tensorboard" (event files in <run dir>/tensorboard),
    "wandb" (Weights & Biases; <run dir>/wandb, WANDB_MODE=offline for no network) and "mlflow"
    (MLFLOW_TRACKING_URI, else a file store in <run dir>/mlruns): the resolved recipe as
    hyperparameters, every stage's logged metrics and results. Each needs its package (pip install
    'contrastive[tensorboard]', '[wandb]', '[mlflow]'). Default: none."""
    tracker_project: str = Field("contrastive", min_length=1)
    """The W&B project and the MLflow experiment the run is logged in."""

    @field_validator("trackers")
    @classmethod
    def _installed_once_each(cls, trackers: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(trackers)) != len(trackers):
            raise ValueError(f"a tracker is listed twice: {list(trackers)}")
        missing = [name for name in trackers if importlib.util.find_spec(TRACKER_MODULES[name]) is None]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
                + " ".join(f"pip install 'contrastive[{name}]'" for name in missing)
            )
        return trackers

    collective_timeout_s: float = Field(1800.0, gt=0)
    """With several processes: how long a collective operation (a gradient all-reduce, a barrier) may
    wait for the other processes before the run stops, naming the processes that did not respond (a
    hung or dead rank) instead of hanging. torch's default for CPU process groups is 30 minutes; lower
    it for quick detection, keeping it above the longest step and checkpoint write."""
