"""Registration hooks of the vicreg plugin (entry point ``vicreg``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import VICReg

    return [VICReg]
