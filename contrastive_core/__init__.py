"""contrastive: contrastive self-supervised learning of visual representations.

The public API of the engine:

* the component kinds plugins implement: :class:`Augmentation`, :class:`Encoder`, :class:`Head`,
  :class:`Loss`, :class:`Method`, :class:`Optimizer`, :class:`Scheduler`, :class:`Dataset`, :class:`Stage`, each with a
  :class:`ComponentParams` model (:class:`ComponentTable` marks a field holding another component's table);
* :data:`hookimpl`, the marker of plugin hook implementations;
* :func:`get_plugin_manager` and :class:`Registry` to load plugins, :func:`build` to make a component
  from a params dict, :func:`load_recipe` / :func:`validate_recipe` for recipes.

Layout: one concept per module, grouped in subpackages, each listed from the bottom of the import
graph up (a subpackage imports only from the ones above it in this list):

* :mod:`.errors` (the errors users see; everything uses them) and :mod:`.version`;
* :mod:`.components`: the component interfaces (the kinds above, the method's view groups, momentum
  targets, frozen parameters);
* :mod:`.registration`: plugin machinery (hooks, plugin manager, kinds, registry, :func:`build`);
* :mod:`.recipes`: the recipe model, its validation, ``--set`` overrides, view groups, TOML output;
* :mod:`.run_directory`: the run directory's file names, atomic writes, manifest, records;
* :mod:`.distributed`: differentiable collectives and global batch norm;
* :mod:`.reports`: ``report.html`` and image grids;
* :mod:`.engine`: the training engine (runner, training step, data, checkpoints, benchmark);
* :mod:`.cli`: the ``contrastive`` command.

Import rules (``tests/test_import_graph.py`` checks them):

* inside ``contrastive_core`` no module imports the package root (``from contrastive_core import ...``,
  or ``from .. import X`` where X is a name of an ``__init__``): import from the defining module,
  relatively (``from ..registration.registry import Registry``);
* there are no import cycles between the modules of ``contrastive_core``, counting every import
  statement anywhere in a file: at module level, inside functions and under ``TYPE_CHECKING``. An
  import of ``a.b.c`` counts as importing ``a.b`` (its ``__init__``, which re-exports its modules) as
  well, so the subpackages form layers too;
* plugins and tests import only the public API: ``contrastive_core`` itself and the subpackages
  (``from contrastive_core.engine import TrainingStep``), never ``contrastive_core.<subpackage>.<module>``
  (a test of a module's private internals may, rarely).
"""

from .components.augmentation import Augmentation
from .components.component import Component, ComponentParams
from .components.dataset import Dataset
from .components.encoder import Encoder
from .components.head import Head
from .components.loss import Loss
from .components.method import Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from .components.optimizer import Optimizer
from .components.published_setting import PublishedSetting
from .components.scheduler import Scheduler
from .components.stage import Stage, StageContext
from .errors import ContrastiveError, PluginError, Problem, RecipeError, UnknownComponentError
from .recipes.component_table import ComponentTable
from .recipes.recipe import load_recipe, recipe_model, validate_recipe
from .registration.build import build
from .registration.hookspecs import hookimpl, hookspec
from .registration.kinds import KINDS
from .registration.plugin_manager import ENTRY_POINT_GROUP, PluginManager, get_plugin_manager
from .registration.registry import Registry, default_registry
from .version import __version__

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
    "PublishedSetting",
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
