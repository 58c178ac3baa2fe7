"""Subcommands of ``contrastive`` beyond run/validate/plugins/list/schema, one module each.

``preview``, ``report``, ``compare`` and ``bench``; each module has ``register(commands, common)``,
which adds its subparser with a handler ``(args, console) -> exit code``. :mod:`contrastive_core.cli.main`
registers them in that order.
"""
