"""An encoder expressed as a model of another library (torchvision, timm): its weights and how to build it.

``contrastive export --format torchvision|timm`` writes such a model's weights and, in the model card,
the code that builds the network they load into, so a user of that library needs nothing of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ExternalModel:
    """One encoder as another library's network.

    ``state_dict``: the weights keyed as that library's model, with no classifier; they load with
    ``model.load_state_dict(state_dict, strict=True)`` into the network ``build_code`` makes.
    ``build_code``: Python statements that import what they use and leave that network in a variable
    ``model``, whose output on images ``(B, C, H, W)`` is the encoder's ``h`` ``(B, feature_dim)``.
    ``requirement``: the package the code needs (``"torchvision"``, ``"timm"``), for the model card.
    """

    state_dict: dict[str, torch.Tensor]
    build_code: str
    requirement: str
