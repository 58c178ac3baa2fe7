"""The plugin hooks: one registration hook per component kind.

Hooks are *registration* hooks only: each returns a list of component classes and is called once when
a registry is built. There are no hooks inside the training step. A plugin module implements any
subset of them, marking each function with :data:`contrastive_core.hookimpl`::

    from contrastive_core import hookimpl

    @hookimpl
    def register_losses():
        return [MyLoss]
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "contrastive"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_methods() -> list[type]:
    """Return :class:`contrastive_core.Method` subclasses (self-supervised methods: views, networks, objective)."""


@hookspec
def register_augmentations() -> list[type]:
    """Return :class:`contrastive_core.Augmentation` subclasses (batched, per-sample random image ops)."""


@hookspec
def register_encoders() -> list[type]:
    """Return :class:`contrastive_core.Encoder` subclasses (networks images -> representations h)."""


@hookspec
def register_heads() -> list[type]:
    """Return :class:`contrastive_core.Head` subclasses (projection heads h -> z)."""


@hookspec
def register_losses() -> list[type]:
    """Return :class:`contrastive_core.Loss` subclasses (objectives over two views' projections)."""


@hookspec
def register_optimizers() -> list[type]:
    """Return :class:`contrastive_core.Optimizer` subclasses (builders of ``torch.optim.Optimizer``)."""


@hookspec
def register_schedulers() -> list[type]:
    """Return :class:`contrastive_core.Scheduler` subclasses (per-step learning-rate schedules)."""


@hookspec
def register_datasets() -> list[type]:
    """Return :class:`contrastive_core.Dataset` subclasses (image datasets and their splits)."""


@hookspec
def register_stages() -> list[type]:
    """Return :class:`contrastive_core.Stage` subclasses (pretraining, evaluation protocols, ...)."""
