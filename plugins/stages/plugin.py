"""Registration hooks of the built-in stages (entry point ``stages``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_stages() -> list[type]:
    from .alignment import Alignment
    from .distill import Distill
    from .finetune import Finetune
    from .knn_eval import KnnEval
    from .linear_eval import LinearEval
    from .pretrain import Pretrain
    from .semi_supervised import SemiSupervised
    from .supervised import Supervised

    return [Pretrain, KnnEval, LinearEval, Finetune, SemiSupervised, Supervised, Alignment, Distill]
