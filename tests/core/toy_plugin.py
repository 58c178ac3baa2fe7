"""A minimal plugin with one component of every kind, so the core is tested without the built-ins."""

from __future__ import annotations

import json
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from contrastive_core import (
    Augmentation,
    ComponentParams,
    Dataset,
    Encoder,
    Head,
    Loss,
    Optimizer,
    Scheduler,
    Stage,
    hookimpl,
)


class ToyAugmentationParams(ComponentParams):
    type: Literal["toy_flip"]
    p: float = Field(0.5, ge=0, le=1)
    """Probability of flipping an image."""


class ToyFlip(Augmentation):
    """Flip images horizontally with probability p."""

    name = "toy_flip"
    Params = ToyAugmentationParams

    def forward(self, images, generator=None):
        flip = torch.rand(images.shape[0], generator=generator) < self.params.p
        return torch.where(flip[:, None, None, None], images.flip(-1), images)


class ToyEncoderParams(ComponentParams):
    type: Literal["toy_encoder"]
    width: int = Field(4, gt=0)
    """Number of output features."""


class ToyEncoder(Encoder):
    """Global average pooling followed by a linear map."""

    name = "toy_encoder"
    Params = ToyEncoderParams

    def __init__(self, params):
        super().__init__(params)
        self.linear = nn.LazyLinear(params.width)

    @property
    def feature_dim(self):
        return self.params.width

    def forward(self, images):
        return self.linear(images.mean(dim=(2, 3)))


class ToyHeadParams(ComponentParams):
    type: Literal["toy_head"]
    out_dim: int = Field(2, gt=0)
    """Size of the projection."""


class ToyHead(Head):
    """One linear layer."""

    name = "toy_head"
    Params = ToyHeadParams

    def __init__(self, params, in_dim):
        super().__init__(params, in_dim)
        self.linear = nn.Linear(in_dim, params.out_dim)

    @property
    def out_dim(self):
        return self.params.out_dim

    def forward(self, h):
        return self.linear(h)


class ToyLossParams(ComponentParams):
    type: Literal["toy_loss"]
    temperature: float = Field(0.5, gt=0)
    """Divides the squared distance."""
    reduction: Literal["mean", "sum"] = "mean"
    """How the per-pair losses are combined."""


class ToyLoss(Loss):
    """Squared distance between the two views' projections."""

    name = "toy_loss"
    Params = ToyLossParams

    def forward(self, z_a, z_b):
        per_pair = ((z_a - z_b) ** 2).sum(dim=1) / self.params.temperature
        return per_pair.mean() if self.params.reduction == "mean" else per_pair.sum()


class ToySGDParams(ComponentParams):
    type: Literal["toy_sgd"]
    lr: float = Field(0.1, gt=0)
    """Learning rate."""


class ToySGD(Optimizer):
    """Plain SGD."""

    name = "toy_sgd"
    Params = ToySGDParams

    @classmethod
    def from_params(cls, params, *, model, batch_size=256, **context):
        return torch.optim.SGD(model.parameters(), lr=params.lr)


class ToyConstantParams(ComponentParams):
    type: Literal["toy_constant"]


class ToyConstant(Scheduler):
    """A constant learning rate."""

    name = "toy_constant"
    Params = ToyConstantParams

    @classmethod
    def from_params(cls, params, *, optimizer, total_steps, steps_per_epoch, **context):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class ToyDatasetParams(ComponentParams):
    type: Literal["toy_data"]
    size: int = Field(8, gt=0)
    """Number of images."""
    root: str = "/nonexistent"
    """Where the data would be."""


class ToyDataset(Dataset):
    """Random uint8 images with labels 0/1."""

    name = "toy_data"
    Params = ToyDatasetParams

    @property
    def splits(self):
        return ("train",)

    @property
    def num_classes(self):
        return 2

    def split(self, name):
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (self.params.size, 1, 4, 4), dtype=torch.uint8, generator=generator)
        return torch.utils.data.TensorDataset(images, torch.arange(self.params.size) % 2)


class ToyStageParams(ComponentParams):
    type: Literal["toy_stage"]
    value: float = 1.0
    """The metric this stage reports."""
    fail: bool = False
    """Raise instead of finishing (to test resuming)."""


class ToyStage(Stage):
    """Writes an artifact and reports a metric; counts its runs in the run directory."""

    name = "toy_stage"
    Params = ToyStageParams
    requires = ("loss",)

    def run(self, context):
        counter = context.run_dir / "toy_runs.json"
        runs = json.loads(counter.read_text()) if counter.exists() else []
        runs.append(context.key)
        counter.write_text(json.dumps(runs))
        if self.params.fail:
            raise RuntimeError("toy stage failed on purpose")
        artifact = context.stage_dir / "artifact.txt"
        artifact.write_text(f"{context.key} saw {sorted(context.results)}")
        context.artifacts[context.key] = {"artifact": artifact}
        return {"value": self.params.value, "previous": len(context.results)}


@hookimpl
def register_augmentations():
    return [ToyFlip]


@hookimpl
def register_encoders():
    return [ToyEncoder]


@hookimpl
def register_heads():
    return [ToyHead]


@hookimpl
def register_losses():
    return [ToyLoss]


@hookimpl
def register_optimizers():
    return [ToySGD]


@hookimpl
def register_schedulers():
    return [ToyConstant]


@hookimpl
def register_datasets():
    return [ToyDataset]


@hookimpl
def register_stages():
    return [ToyStage]
