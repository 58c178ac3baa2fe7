"""The ``contrastive`` command line: ``main`` (the console script) and its subcommands.

* :mod:`.main`: the parser, ``run``, ``validate``, ``plugins``, ``schema``, ``--version`` and error
  printing;
* :mod:`.component_listing`: ``list`` (tables and ``--json``; types and TOML defaults of params);
* :mod:`.commands`: the further subcommands (``recipes``, ``lint``, ``preview``, ``report``, ``compare``,
  ``sweep``, ``bench``), one module each with ``register(commands, common)``;
* :mod:`.recipe_catalog`: the recipes shipped in the package (``contrastive recipes``);
* :mod:`.arguments`: what the subcommands share (argument types, the registry ``--block`` selects).

``python -m contrastive_core ...`` and ``python -m contrastive_core.cli ...`` run :func:`main` too (see
the ``__main__.py`` files); the second is the form launchers need:
``torchrun ... -m contrastive_core.cli run recipe.toml``.
"""

from __future__ import annotations

from .arguments import non_negative_int, positive_int, registry_from_args
from .component_listing import describe_type, toml_value
from .main import EXIT_BAD_INPUT, EXIT_INTERRUPTED, main, print_error

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "describe_type",
    "main",
    "non_negative_int",
    "positive_int",
    "print_error",
    "registry_from_args",
    "toml_value",
]
