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

import importlib
from typing import TYPE_CHECKING, Any

# Light modules (no torch): imported at once.
from .errors import ContrastiveError, PluginError, Problem, RecipeError, UnknownComponentError
from .version import __version__

#: Where each further public name is defined. They are imported on first use (PEP 562 ``__getattr__``),
#: so ``import contrastive_core`` and the command line's ``--help`` and ``--version`` do not import torch;
#: ``from contrastive_core import Encoder`` works as with any attribute.
_LAZY = {
    "Augmentation": ".components.augmentation",
    "Component": ".components.component",
    "ComponentParams": ".components.component",
    "Dataset": ".components.dataset",
    "Encoder": ".components.encoder",
    "EncoderParams": ".components.encoder",
    "ExternalModel": ".components.external_model",
    "Head": ".components.head",
    "Loss": ".components.loss",
    "Method": ".components.method",
    "MethodOutput": ".components.method",
    "MethodParts": ".components.method",
    "StepProgress": ".components.method",
    "ViewGroup": ".components.method",
    "Optimizer": ".components.optimizer",
    "PublishedSetting": ".components.published_setting",
    "Scheduler": ".components.scheduler",
    "Stage": ".components.stage",
    "StageContext": ".components.stage",
    "ComponentTable": ".recipes.component_table",
    "load_recipe": ".recipes.recipe",
    "recipe_model": ".recipes.recipe",
    "validate_recipe": ".recipes.recipe",
    "build": ".registration.build",
    "hookimpl": ".registration.hookspecs",
    "hookspec": ".registration.hookspecs",
    "KINDS": ".registration.kinds",
    "ENTRY_POINT_GROUP": ".registration.plugin_manager",
    "PluginManager": ".registration.plugin_manager",
    "get_plugin_manager": ".registration.plugin_manager",
    "Registry": ".registration.registry",
    "default_registry": ".registration.registry",
}

if TYPE_CHECKING:  # the same names, for type checkers and IDEs (they do not run __getattr__)
    from .components.augmentation import Augmentation
    from .components.component import Component, ComponentParams
    from .components.dataset import Dataset
    from .components.encoder import Encoder, EncoderParams
    from .components.external_model import ExternalModel
    from .components.head import Head
    from .components.loss import Loss
    from .components.method import Method, MethodOutput, MethodParts, StepProgress, ViewGroup
    from .components.optimizer import Optimizer
    from .components.published_setting import PublishedSetting
    from .components.scheduler import Scheduler
    from .components.stage import Stage, StageContext
    from .recipes.component_table import ComponentTable
    from .recipes.recipe import load_recipe, recipe_model, validate_recipe
    from .registration.build import build
    from .registration.hookspecs import hookimpl, hookspec
    from .registration.kinds import KINDS
    from .registration.plugin_manager import ENTRY_POINT_GROUP, PluginManager, get_plugin_manager
    from .registration.registry import Registry, default_registry


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "EncoderParams",
    "ExternalModel",
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
