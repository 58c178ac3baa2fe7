"""The component interfaces: the abstract kinds plugins implement, and the parts a method is built of.

* :class:`Component` and :class:`ComponentParams`: the base of every registered component (a ``name``
  and a typed params model);
* one abstract base per kind: :class:`Method`, :class:`Augmentation`, :class:`Encoder` (with
  :class:`EncoderParams`, the fields every encoder has, and :class:`ExternalModel`, an encoder as
  another library's network), :class:`Head`,
  :class:`Loss`, :class:`Optimizer`, :class:`Scheduler`, :class:`Dataset` (with
  :class:`VariableSizeSplit`, a split of photos that keep their own sizes), :class:`Stage` (with the
  :class:`StageContext` the runner hands a stage);
* what the method interface speaks of: :class:`ViewGroup`, :class:`StepProgress`,
  :class:`MethodOutput`, :class:`MethodParts`, and the two building blocks its hooks return,
  :class:`MomentumTarget` (an EMA copy of a network) and :class:`FrozenForSteps` (parameters held
  still for the first steps).

Nothing here imports the rest of contrastive_core (only :mod:`contrastive_core.errors` is below it).
"""

from __future__ import annotations

from .augmentation import Augmentation
from .component import Component, ComponentParams
from .dataset import Dataset, VariableSizeSplit
from .encoder import Encoder, EncoderParams
from .external_model import ExternalModel
from .frozen_for_steps import FrozenForSteps
from .head import Head
from .loss import MIN_TEMPERATURE, Loss, check_temperature, temperature_warnings
from .method import Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from .momentum_target import MomentumTarget
from .optimizer import Optimizer
from .published_setting import PublishedSetting
from .scheduler import Scheduler
from .stage import Stage, StageContext

__all__ = [
    "MIN_TEMPERATURE",
    "Augmentation",
    "Component",
    "ComponentParams",
    "Dataset",
    "Encoder",
    "EncoderParams",
    "ExternalModel",
    "FrozenForSteps",
    "Head",
    "Loss",
    "Method",
    "MethodOutput",
    "MethodParts",
    "MomentumTarget",
    "Optimizer",
    "PublishedSetting",
    "Scheduler",
    "Stage",
    "StageContext",
    "StepProgress",
    "VariableSizeSplit",
    "ViewGroup",
    "check_temperature",
    "temperature_warnings",
]
