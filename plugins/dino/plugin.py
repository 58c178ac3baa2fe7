"""Registration hooks of the DINO plugin (entry point ``dino``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import DINO

    return [DINO]


@hookimpl
def register_heads() -> list[type]:
    from .head import DINOHead

    return [DINOHead]
