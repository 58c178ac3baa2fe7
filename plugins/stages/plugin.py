"""Registration hooks of the built-in stages (entry point ``stages``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_stages() -> list[type]:
    from .pretrain import Pretrain

    return [Pretrain]
