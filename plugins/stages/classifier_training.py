"""Training an encoder and a linear classifier together with labels, then testing them: the seed's
fine-tuning protocol, shared by the ``finetune``, ``semi_supervised`` and ``supervised`` stages.

    min_{theta, W}  (1/N) sum_i CE(W^T f_theta(x_i) + b, y_i)

Optimiser: SGD with Nesterov momentum (as Chen et al., 2020, Appendix B.5, fine-tune), optional L2
weight decay on every parameter, learning rate decayed to 0 along a cosine per step. Each epoch sees the
training examples in a seeded order (last partial batch dropped). A checkpoint (model, optimiser,
schedule, random states) is written with :class:`~contrastive_core.engine.CheckpointManager` at the
end of every epoch and when Ctrl-C/SIGTERM stops the run; running the recipe again resumes from it.
"""

from __future__ import annotations

import math
import time
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
    StopRequest,
    TrainingInterrupted,
    augmentation_generator,
    capture_rng,
    cosine_schedule,
    restore_rng,
)

from .evaluation_stage import EvaluationSetup
from .labelled_split import LabelledSplit
from .metrics import TopKAccuracy
from .mixed_precision import autocast, grad_scaler
from .preprocessing import EvalPreprocessing, crop_and_flip
from .pretrain import NonFiniteLossError


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
    """Train on random resized crops (scale 0.08-1) with random horizontal flips instead of the eval view."""
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


def train_and_test(
    encoder: Encoder,
    setup: EvaluationSetup,
    params: ClassifierTrainingParams,
    *,
    checkpoint_dir: Path,
    label: str,
    train_indices: torch.Tensor | None = None,
) -> dict[str, float]:
    """Train ``encoder`` + a new linear classifier on ``train_indices`` of the training split (default:
    all of it), then return their top-1/top-5 accuracy on the test split. ``label`` names the run in
    console lines."""
    device, seed, say = setup.device, setup.seed, setup.say
    train, test = setup.train_split(params.train_split), setup.split(params.test_split)
    indices = torch.arange(len(train)) if train_indices is None else train_indices
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncoderClassifier(encoder, train.num_classes)
    model.to(device)
    side = setup.resize or train.image_shape[-1]
    augmentation = crop_and_flip(side, setup.context.registry) if params.augment else None
    preprocessing = EvalPreprocessing(setup.normalization, setup.resize, augmentation).to(device)

    batch_size = min(params.batch_size, len(indices))
    if batch_size < params.batch_size:
        say(f"{label}: batch_size {params.batch_size} > {len(indices)} training examples; using {batch_size}")
    order = GlobalBatchOrder(len(indices), batch_size, seed)
    steps_per_epoch = order.steps_per_epoch
    total_steps = params.epochs * steps_per_epoch
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=params.lr,
        momentum=params.momentum,
        nesterov=params.momentum > 0,
        weight_decay=params.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(cosine_schedule, 1.0, 0.0, total_steps=total_steps)
    )
    scaler = grad_scaler(device, setup.precision)
    generator = augmentation_generator(seed, device)

    # Only the main process writes; every process resumes from the main process's checkpoints (they all
    # run the same computation, see evaluation_stage).
    checkpoints = CheckpointManager(checkpoint_dir, keep_last=params.keep_checkpoints)
    if setup.is_main:
        checkpoints.remove_stale_temporaries()
    step = 0
    latest = checkpoints.latest()
    if latest is not None:
        state, rng = checkpoints.load(latest, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step = state["step"]
        restore_rng(rng, generator)
        say(f"{label}: resuming from {latest} (step {step} of {total_steps})")

    def save_checkpoint() -> None:
        if setup.is_main:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
            }
            checkpoints.save(step, state, capture_rng(generator))

    def check_finite(loss_sum: torch.Tensor, epoch: int) -> float:
        """The summed loss as a float; stops before a NaN/inf state can be checkpointed."""
        value = float(loss_sum)
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"{label}: the loss became NaN or infinite in epoch {epoch + 1}; stopped without saving that "
                f"state. Last good checkpoint: {checkpoints.latest() or 'none'}. Lower lr and run again."
            )
        return value

    with StopRequest() as stop:
        while step < total_steps:
            epoch, start_step = divmod(step, steps_per_epoch)
            batches = [
                indices[order.local_indices(epoch, s, 0, 1)] for s in range(start_step, steps_per_epoch)
            ]
            model.train()
            epoch_loss, epoch_steps, started = torch.zeros((), device=device), 0, time.monotonic()
            for images, labels in train.batches(batches):
                with autocast(device, setup.precision):
                    logits = model(preprocessing.train_view(images, generator))
                loss = F.cross_entropy(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                epoch_loss += loss.detach()
                epoch_steps += 1
                if stop.requested is not None:
                    check_finite(epoch_loss, epoch)
                    save_checkpoint()
                    raise TrainingInterrupted(
                        f"stopped by {stop.requested} at step {step} of {total_steps}; checkpoint saved in "
                        f"{checkpoints.latest()}"
                    )
            mean_loss = check_finite(epoch_loss, epoch) / max(epoch_steps, 1)  # one host sync per epoch
            save_checkpoint()
            seconds = max(time.monotonic() - started, 1e-9)
            say(
                f"{label} epoch {epoch + 1}/{params.epochs} loss {mean_loss:.4f} "
                f"lr {scheduler.get_last_lr()[0]:.4g} {epoch_steps * batch_size / seconds:.0f} images/s"
            )
    return classifier_accuracy(
        model, test, setup.preprocessing, batch_size=setup.eval_batch_size, precision=setup.precision
    )
