"""Subcommands of ``contrastive`` beyond run/validate/plugins/list/schema, one module each.

``recipes``, ``lint``, ``preview``, ``report``, ``compare``, ``export``, ``sweep`` and ``bench``; each
module has ``register(commands, common)``, which adds its subparser with a handler
``(args, console) -> exit code``.
:mod:`contrastive_core.cli.main` registers them in that order.

Every module is imported to build the parser, also for ``contrastive --help``, so at module level a
command imports only what its parser needs (argparse, rich, ``errors``, light helpers). What its handler
needs from the registry, the recipes or the engine, which import torch, it imports in the handler.
"""
