"""contrastive: contrastive self-supervised learning of visual representations.

The public API of the engine:

* the component kinds plugins implement: :class:`Augmentation`, :class:`Encoder`, :class:`Head`,
  :class:`Loss`, :class:`Method`, :class:`Optimizer`, :class:`Scheduler`, :class:`Dataset`, :class:`Stage`, each with a
  :class:`ComponentParams` model (:class:`ComponentTable` marks a field holding another component's table);
* :data:`hookimpl`, the marker of plugin hook implementations;
* :func:`get_plugin_manager` and :class:`Registry` to load plugins, :func:`build` to make a component
  from a params dict, :func:`load_recipe` / :func:`validate_recipe` for recipes.
"""

__version__ = "0.1.0"

from .augmentation import Augmentation
from .build import build
from .component import Component, ComponentParams
from .component_table import ComponentTable
from .dataset import Dataset
from .encoder import Encoder
from .errors import ContrastiveError, PluginError, Problem, RecipeError, UnknownComponentError
from .head import Head
from .hookspecs import hookimpl, hookspec
from .kinds import KINDS
from .loss import Loss
from .method import Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from .optimizer import Optimizer
from .plugin_manager import ENTRY_POINT_GROUP, PluginManager, get_plugin_manager
from .recipe import load_recipe, recipe_model, validate_recipe
from .registry import Registry, default_registry
from .scheduler import Scheduler
from .stage import Stage, StageContext

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "Augmentation",
    "Component",
    "ComponentParams",
    "ComponentTable",
    "ContrastiveError",
    "Dataset",
    "Encoder",
    "Head",
    "Loss",
    "Method",
    "MethodOutput",
    "MethodParts",
    "Optimizer",
    "PluginError",
    "PluginManager",
    "Problem",
    "RecipeError",
    "Registry",
    "Scheduler",
    "Stage",
    "StageContext",
    "StepProgress",
    "UnknownComponentError",
    "ViewGroup",
    "__version__",
    "build",
    "default_registry",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "load_recipe",
    "recipe_model",
    "validate_recipe",
]
