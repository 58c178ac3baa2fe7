"""Registration hooks of the SwAV plugin (entry point ``swav``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import SwAV

    return [SwAV]
