"""Registration hooks of the Vision Transformer plugin (entry point ``vit``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_encoders() -> list[type]:
    from .encoder import VisionTransformer

    return [VisionTransformer]
