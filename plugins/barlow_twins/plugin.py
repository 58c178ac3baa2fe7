"""Registration hooks of the barlow_twins plugin (entry point ``barlow_twins``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import BarlowTwins

    return [BarlowTwins]
