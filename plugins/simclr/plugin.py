"""Registration hooks of the built-in SimCLR plugin set (entry point ``simclr``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import SimCLR

    return [SimCLR]


@hookimpl
def register_augmentations() -> list[type]:
    from . import fused_pipeline  # noqa: F401 - importing it offers the fused pipeline to the ops
    from .augmentations import AUGMENTATIONS

    return AUGMENTATIONS


@hookimpl
def register_encoders() -> list[type]:
    from .encoders import ENCODERS

    return ENCODERS


@hookimpl
def register_heads() -> list[type]:
    from .projection_head import ProjectionHead

    return [ProjectionHead]


@hookimpl
def register_losses() -> list[type]:
    from .nt_xent import NTXent

    return [NTXent]


@hookimpl
def register_optimizers() -> list[type]:
    from .optim import OPTIMIZERS

    return OPTIMIZERS


@hookimpl
def register_schedulers() -> list[type]:
    from .optim import SCHEDULERS

    return SCHEDULERS
