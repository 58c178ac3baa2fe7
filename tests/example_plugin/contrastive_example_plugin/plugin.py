"""The plugin module named by this package's ``contrastive.plugins`` entry point."""

from contrastive_core import hookimpl

from .decoupled_loss import DecoupledContrastiveLoss
from .momentum_predictor import MomentumPredictor
from .random_cutout import RandomCutout


@hookimpl
def register_methods():
    return [MomentumPredictor]


@hookimpl
def register_losses():
    return [DecoupledContrastiveLoss]


@hookimpl
def register_augmentations():
    return [RandomCutout]
