"""The table of component kinds: each kind's base class, registration hook and recipe wording."""

from __future__ import annotations

from dataclasses import dataclass

from ..components.augmentation import Augmentation
from ..components.component import Component
from ..components.dataset import Dataset
from ..components.encoder import Encoder
from ..components.head import Head
from ..components.loss import Loss
from ..components.method import Method
from ..components.optimizer import Optimizer
from ..components.scheduler import Scheduler
from ..components.stage import Stage
from ..errors import ContrastiveError


class UnknownKindError(ContrastiveError, ValueError):
    """A component kind that does not exist (e.g. ``contrastive list lossess``)."""


@dataclass(frozen=True)
class KindSpec:
    """One component kind: its name, its abstract base class and the hook that registers it."""

    name: str
    base: type[Component]
    hook: str
    plural: str


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec("method", Method, "register_methods", "methods"),
        KindSpec("augmentation", Augmentation, "register_augmentations", "augmentations"),
        KindSpec("encoder", Encoder, "register_encoders", "encoders"),
        KindSpec("head", Head, "register_heads", "heads"),
        KindSpec("loss", Loss, "register_losses", "losses"),
        KindSpec("optimizer", Optimizer, "register_optimizers", "optimizers"),
        KindSpec("scheduler", Scheduler, "register_schedulers", "schedulers"),
        KindSpec("dataset", Dataset, "register_datasets", "datasets"),
        KindSpec("stage", Stage, "register_stages", "stages"),
    )
}


def kind_spec(kind: str) -> KindSpec:
    """The spec of ``kind``; accepts the plural too (``losses``). Raises :class:`UnknownKindError` otherwise."""
    for spec in KINDS.values():
        if kind in (spec.name, spec.plural):
            return spec
    raise UnknownKindError(f"unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}")
