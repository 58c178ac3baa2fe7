"""Registration hooks of the BYOL plugin (entry point ``byol``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .method import BYOL

    return [BYOL]
