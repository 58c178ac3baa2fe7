"""Registration hooks of the moco plugin (entry point ``moco``): MoCo v2 and MoCo v3 (ResNet setting)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_methods() -> list[type]:
    from .moco_v2 import MoCoV2
    from .moco_v3 import MoCoV3

    return [MoCoV2, MoCoV3]
