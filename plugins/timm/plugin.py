"""Registration hooks of the timm plugin (entry point ``timm``).

The encoder is registered only where timm is installed: without it ``contrastive list encoder`` does not
show it, and a recipe asking for ``type = "timm"`` is told to ``pip install 'contrastive[timm]'``
(:data:`contrastive_core.errors.OPTIONAL_COMPONENTS`). timm is looked up, not imported: importing it takes
seconds, and every command builds the registry; it is imported once a timm encoder is validated.
"""

from __future__ import annotations

import importlib.util

from contrastive_core import hookimpl


@hookimpl
def register_encoders() -> list[type]:
    if importlib.util.find_spec("timm") is None:
        return []
    from .encoder import TimmEncoder

    return [TimmEncoder]
