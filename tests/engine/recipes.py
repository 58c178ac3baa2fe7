"""Small pretraining recipes over the committed Fashion-MNIST fixture (real images, idx format)."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fashion_mnist" / "gzip"


def tiny_recipe(
    *,
    epochs: int = 3,
    batch_size: int = 16,
    augmentations: str = "crop",
    lr: float = 0.5,
    extra_run: str = "",
    extra_stage: str = "",
    loss: str = 'type = "nt_xent"\ntemperature = 0.5',
) -> str:
    """A recipe that pretrains a tiny small_cnn on the 64-image fixture in a few seconds."""
    if augmentations == "crop":
        ops = """
[[augmentations]]
type = "random_resized_crop"
size = 28
scale = [0.3, 1.0]

[[augmentations]]
type = "horizontal_flip"
"""
    else:  # deterministic: exact comparisons across process counts
        ops = """
[[augmentations]]
type = "normalize"
mean = [0.5]
std = [0.25]
"""
    return f"""
[run]
seed = 0
device = "cpu"
deterministic = true
{extra_run}

[data]
type = "fashion_mnist"
root = "{FIXTURE}"
{ops}
[model.encoder]
type = "small_cnn"
in_channels = 1
widths = [8, 16]
feature_dim = 16

[model.head]
type = "mlp"
hidden_dim = 32
out_dim = 16

[method]
type = "simclr"

[loss]
{loss}

[optimizer]
type = "sgd"
lr = {lr}

[[stages]]
type = "pretrain"
epochs = {epochs}
batch_size = {batch_size}
log_every_steps = 1
checkpoint_every_steps = 1
{extra_stage}
"""
