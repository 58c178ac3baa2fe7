"""The stage kind: one step of a recipe's ``[[stages]]`` list (pretraining, an evaluation, ...)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .component import Component, ComponentParams

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class StageContext:
    """What the stage runner hands each stage.

    ``results`` holds the metrics of the stages that ran before this one (key -> metrics), and
    ``artifacts`` the files they produced (key -> {artifact name -> path}), e.g. the exported encoder
    of a preceding pretrain stage, so evaluation stages can pick it up.

    ``recipe`` is the validated recipe (an instance of ``recipe_model(registry)``) and ``registry`` the
    :class:`~contrastive_core.Registry` it was validated against. The registry is typed ``Any`` here: the
    registry's table of kinds names :class:`Stage`, so this module, below the registry, cannot name it.
    """

    recipe: BaseModel
    registry: Any
    run_dir: Path
    stage_dir: Path
    key: str
    index: int
    console: Console
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Path]] = field(default_factory=dict)
    log_metrics: Callable[[dict[str, Any], int], None] = lambda values, step: None
    """Send one step's metrics of this stage (name -> number, the stage's own step) to the run's
    experiment trackers (``[run] trackers``); does nothing when the run has none."""


class Stage(Component):
    """A stage runs once per recipe run, in order, and returns its metrics.

    ``requires`` names the shared recipe sections the stage reads (dotted for nested ones, e.g.
    ``"model.head"``); validation reports a recipe that lacks one of them before anything runs. ``run`` returns a JSON-serialisable dict of metrics that
    goes into ``results.json`` under the stage's key, and may record files it wrote in
    ``context.artifacts[context.key]``. A stage that finished is not run again when the same recipe is
    resumed in the same run directory; its recorded metrics and artifacts are restored instead.
    """

    kind: ClassVar[str] = "stage"
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ComponentParams) -> None:
        self.params = params

    @abstractmethod
    def run(self, context: StageContext) -> dict[str, Any]:
        """Do the stage's work; return its metrics."""
