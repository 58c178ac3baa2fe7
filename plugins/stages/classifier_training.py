"""Training an encoder and a linear classifier together with labels, then testing them: the seed's
fine-tuning protocol, shared by the ``finetune``, ``semi_supervised`` and ``supervised`` stages.

    min_{theta, W}  (1/N) sum_i CE(W^T f_theta(x_i) + b, y_i)

Optimiser: SGD with Nesterov momentum (as Chen et al., 2020, Appendix B.5, fine-tune), optional L2
weight decay on every parameter, learning rate decayed to 0 along a cosine per step. Each epoch sees the
training examples in a seeded order (last partial batch dropped). A checkpoint (model, optimiser,
schedule, random states) is written by :class:`~contrastive_core.engine.TrainingLoop` at the end of
every epoch and when Ctrl-C/SIGTERM stops the run; running the recipe again resumes from it. A NaN or
infinite loss stops the run at the end of its epoch, before that state is saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from contrastive_core import ComponentParams, Encoder
from contrastive_core.engine import (
    CheckpointManager,
    GlobalBatchOrder,
    TrainingLoop,
    augmentation_generator,
    cosine_schedule,
)

from .evaluation_stage import EvaluationSetup
from .labelled_split import LabelledSplit
from .metrics import TopKAccuracy
from .mixed_precision import autocast, grad_scaler
from .preprocessing import EvalPreprocessing, TrainCrop, training_augmentation


class ClassifierTrainingParams(ComponentParams):
    """Params of training an encoder with a linear classifier."""

    epochs: int = Field(30, ge=1)
    """Passes over the (labelled) training examples."""
    batch_size: int = Field(256, ge=1)
    """Images per SGD step (clipped to the number of labelled training examples)."""
    lr: float = Field(0.05, gt=0)
    """Initial learning rate; decays to 0 along a cosine over all steps."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """Nesterov momentum of SGD (plain SGD when 0)."""
    weight_decay: float = Field(0.0, ge=0)
    """L2 weight decay on all parameters (the paper fine-tunes without it)."""
    augment: bool = True
    """Train on random crops with random horizontal flips (``train_crop``) instead of the eval view."""
    train_crop: TrainCrop = "inception"
    """The training crop: "inception" (random resized crop, area 0.08-1, the paper's), "padded" (4 px
    zero padding and a random crop back, the usual supervised CIFAR augmentation, He et al. 2016), or
    "auto" ("padded" for images of at most 64 px a side, else "inception")."""
    train_split: str = "train"
    """Split the model is trained on."""
    test_split: str = "test"
    """Split the reported accuracies are measured on."""
    keep_checkpoints: int = Field(1, ge=1)
    """How many of the most recent end-of-epoch checkpoints to keep."""


class EncoderClassifier(nn.Module):
    """logits = W f(x) + b: images (B, C, H, W) -> (B, num_classes)."""

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(images))


class FrozenEncoderClassifier(EncoderClassifier):
    """logits = W f(x) + b with f frozen: the linear protocol trained on augmented images.

    f runs without gradients and stays in eval mode whatever ``train()`` asks (BatchNorm uses its
    running statistics and never updates them), so only W and b train and f is left exactly as it was.
    The classifier starts at zero (google-research/simclr's ``zero_init_logits_layer``, which its
    linear-evaluation commands set): every class starts with the same logit.
    """

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__(encoder, num_classes)
        encoder.requires_grad_(False)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def train(self, mode: bool = True) -> FrozenEncoderClassifier:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.encoder(images)
        return self.classifier(features.float())


@torch.no_grad()
def classifier_accuracy(
    model: nn.Module, split: LabelledSplit, preprocessing: nn.Module, *, batch_size: int, precision: str
) -> dict[str, float]:
    """Top-1/top-5 accuracy of ``model`` (eval mode, eval view) over the whole ``split``."""
    model.eval()
    accuracy = TopKAccuracy()
    for images, labels in split.in_order(batch_size):
        with autocast(split.device, precision):
            logits = model(preprocessing(images))
        accuracy.update(logits.float(), labels)
    return accuracy.compute()


#: A training objective other than the labels' cross-entropy: (logits float32 (B, K), the training view
#: (B, C, H, W), labels int64 (B,), the examples' indices in the training split int64 (B,)) -> 0-d loss.
Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def classifier_test_accuracy(
    model: nn.Module, setup: EvaluationSetup, params: ClassifierTrainingParams
) -> dict[str, float]:
    """Top-1/top-5 of a trained classifier on the test split, on the eval view."""
    return classifier_accuracy(
        model,
        setup.split(params.test_split),
        setup.preprocessing,
        batch_size=setup.eval_batch_size,
        precision=setup.precision,
    )


def train_classifier(
    encoder: Encoder,
    setup: EvaluationSetup,
    params: ClassifierTrainingParams,
    *,
    checkpoint_dir: Path,
    label: str,
    train_indices: torch.Tensor | None = None,
    objective: Objective | None = None,
    frozen_encoder: bool = False,
) -> EncoderClassifier:
    """Train ``encoder`` + a new linear classifier on ``train_indices`` of the training split (default:
    all of it) with the labels' cross-entropy, or ``objective``; returns the trained model (in eval
    mode after the last step's checkpoint).

    ``frozen_encoder``: train only the classifier (:class:`FrozenEncoderClassifier`), with
    ``params.weight_decay`` on its weight matrix alone (not its bias), as SGD's decay
    (gradient + wd W, i.e. the penalty wd/2 ||W||^2)."""
    device, seed, say = setup.device, setup.seed, setup.say
    train = setup.train_split(params.train_split)
    indices = torch.arange(len(train)) if train_indices is None else train_indices
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (FrozenEncoderClassifier if frozen_encoder else EncoderClassifier)(encoder, train.num_classes)
    model.to(device)
    side = setup.resize or train.image_shape[-1]
    augmentation = (
        training_augmentation(params.train_crop, side, setup.context.registry) if params.augment else None
    )
    preprocessing = EvalPreprocessing(setup.normalization, setup.resize, augmentation).to(device)

    batch_size = min(params.batch_size, len(indices))
    if batch_size < params.batch_size:
        say(f"{label}: batch_size {params.batch_size} > {len(indices)} training examples; using {batch_size}")
    order = GlobalBatchOrder(len(indices), batch_size, seed)
    steps_per_epoch = order.steps_per_epoch
    total_steps = params.epochs * steps_per_epoch
    if frozen_encoder:
        trained: list[dict] = [
            {"params": [model.classifier.weight], "weight_decay": params.weight_decay},
            {"params": [model.classifier.bias], "weight_decay": 0.0},
        ]
    else:
        trained = [{"params": list(model.parameters()), "weight_decay": params.weight_decay}]
    optimizer = torch.optim.SGD(
        trained,
        lr=params.lr,
        momentum=params.momentum,
        nesterov=params.momentum > 0,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(cosine_schedule, 1.0, 0.0, total_steps=total_steps)
    )
    scaler = grad_scaler(device, setup.precision)
    generator = augmentation_generator(seed, device)

    loop = TrainingLoop(
        CheckpointManager(checkpoint_dir, keep_last=params.keep_checkpoints),
        {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler},
        generator,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        device=device,
        # Only the main process writes; every process resumes from the main process's checkpoints (they
        # all run the same computation and communicate with none, see evaluation_stage).
        saves=setup.is_main,
        map_location=device,
        say=say,
        label=label,
        non_finite_at="epoch",
        non_finite_advice="Lower lr and run again.",
    )
    loop.resume()

    def epoch_batches(epoch: int, first: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        rows = [indices[order.local_indices(epoch, step, 0, 1)] for step in range(first, steps_per_epoch)]
        for (images, labels), batch_rows in zip(train.batches(rows), rows, strict=True):
            yield images, labels, batch_rows.to(device, non_blocking=True)

    model.train()
    started = time.monotonic()
    with loop:
        for epoch, (images, labels, rows) in loop.batches(epoch_batches):
            view = preprocessing.train_view(images, generator)
            with autocast(device, setup.precision):
                logits = model(view)
            if objective is None:
                loss = F.cross_entropy(logits.float(), labels)
            else:
                loss = objective(logits.float(), view, labels, rows)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loop.record(loss)
            loop.stop_if_requested()
            if loop.end_of_epoch:
                means = loop.take_means()  # the NaN/inf guard and the mean loss: one host sync per epoch
                loop.save()
                seconds = max(time.monotonic() - started, 1e-9)
                say(
                    f"{label} epoch {epoch + 1}/{params.epochs} loss {means.loss:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.4g} {means.steps * batch_size / seconds:.0f} images/s"
                )
                started = time.monotonic()
    model.eval()
    return model
