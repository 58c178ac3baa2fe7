"""The ``contrastive`` command line: ``main`` (the console script) and its subcommands.

* :mod:`.main`: the parser, ``run``, ``validate``, ``plugins``, ``list``, ``schema`` and error printing;
* :mod:`.commands`: the further subcommands (``preview``, ``report``, ``compare``, ``bench``), one
  module each with ``register(commands, common)``;
* :mod:`.arguments`: what the subcommands share (argument types, the registry ``--block`` selects).

``python -m contrastive_core.cli ...`` runs :func:`main` too (see ``__main__.py``), which is the form
launchers need: ``torchrun ... -m contrastive_core.cli run recipe.toml``.
"""

from __future__ import annotations

from .arguments import non_negative_int, positive_int, registry_from_args
from .main import EXIT_BAD_INPUT, EXIT_INTERRUPTED, describe_type, main, print_error

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "describe_type",
    "main",
    "non_negative_int",
    "positive_int",
    "print_error",
    "registry_from_args",
]
