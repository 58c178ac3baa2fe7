"""The ``contrastive`` command: run, validate, lint, plugins, list, schema, and more.

Bad recipes and plugin problems print a message (no traceback) and exit with code 2.

This module imports no torch at module level, so that building the parser (also for ``--help`` and
``--version``) costs only what the command modules import: a handler imports the registry or the
engine when it runs (the rule of :mod:`.commands`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import ContrastiveError
from ..version import describe_versions
from .arguments import add_overrides_argument, registry_from_args
from .commands import bench, compare, export, lint, preview, recipes, report, sweep
from .component_listing import list_components

if TYPE_CHECKING:
    from pydantic import BaseModel

#: Modules of contrastive_core.cli.commands that add a subcommand each, in the order of the help.
EXTRA_COMMANDS = (recipes, lint, preview, report, compare, export, sweep, bench)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = _console()
    errors = _console(stderr=True)
    try:
        return args.handler(args, console)
    except ContrastiveError as error:
        print_error(errors, error)
        return error.exit_code
    except KeyboardInterrupt:
        errors.print("interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:
        exit_code = _engine_stop(error, args, errors)
        if exit_code is None:
            raise
        return exit_code


def _engine_stop(error: Exception, args: argparse.Namespace, errors: Console) -> int | None:
    """The exit code of a run that the engine stopped on purpose (a stop request honoured) or that a
    failed collective ended across processes, after saying so; None for any other error.

    The engine's modules are imported here, not at the top: only a command that ran the engine raises
    these, and importing it (torch) would slow every other command down.
    """
    from ..distributed.collectives import is_distributed
    from ..distributed.unresponsive import (
        DistributedFailure,
        looks_like_a_collective_failure,
        unresponsive_ranks,
    )
    from ..engine.interrupt import TrainingInterrupted

    if isinstance(error, TrainingInterrupted):
        if os.environ.get("RANK", "0") == "0":  # under a launcher, one process says it
            errors.print(Text(f"{error}\n{_resume_hint(args)}"), soft_wrap=True)
        return EXIT_INTERRUPTED
    if isinstance(error, RuntimeError) and is_distributed() and looks_like_a_collective_failure(error):
        print_error(errors, DistributedFailure.explain(error, unresponsive_ranks()))
        return DistributedFailure.exit_code
    return None


def print_error(console: Console, error: Exception) -> None:
    """'error: ' in red, then the message verbatim (no rich markup: messages contain [brackets])."""
    text = Text("error: ", style="bold red")
    text.append(str(error))
    console.print(text, soft_wrap=True)


def print_warnings(console: Console, recipe: BaseModel) -> None:
    """The recipe's valid but implausible values (:func:`recipe_warnings`), one yellow line each."""
    from ..recipes.recipe import recipe_warnings

    for warning in recipe_warnings(recipe):
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Outside a terminal (CI logs, pipes) rich would wrap at 80 columns; tables read better wider.
    return Console(file=stream, width=None if stream.isatty() else 160, highlight=False)


class _VersionAction(argparse.Action):
    """``--version``: print :func:`describe_versions` and exit. Unlike argparse's own version action it
    looks the versions up only when asked, not each time the parser is built."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, help: str | None = None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(describe_versions())  # on stdout, as argparse's own version action prints
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    block_help = "do not load this plugin (repeatable; also CONTRASTIVE_BLOCK_PLUGINS=a,b)"
    # --block is accepted before and after the command; the two lists are merged in registry_from_args().
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--block", dest="block_after", action="append", default=[], metavar="PLUGIN", help=block_help
    )
    parser = argparse.ArgumentParser(
        prog="contrastive",
        description="Contrastive self-supervised learning of visual representations.",
    )
    parser.add_argument("--block", action="append", default=[], metavar="PLUGIN", help=block_help)
    parser.add_argument("--version", action=_VersionAction, help="print the versions and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run a recipe's stages in order")
    run.add_argument("recipe", type=Path, help="the recipe TOML file")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<run.name or recipe file stem>)")
    add_overrides_argument(run, "loss.temperature=0.2")
    run.add_argument("--fresh", action="store_true", help="start the run directory over instead of resuming")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", parents=[common], help="check recipes without running them")
    validate.add_argument("recipes", type=Path, nargs="+", help="recipe TOML files")
    add_overrides_argument(validate, "loss.temperature=0.2")
    validate.set_defaults(handler=_validate)

    plugins = commands.add_parser(
        "plugins", parents=[common], help="list loaded plugins and what they register"
    )
    plugins.set_defaults(handler=_plugins)

    listing = commands.add_parser(
        "list", parents=[common], help="list registered components and their params"
    )
    listing.add_argument("kind", nargs="?", help="only this kind, e.g. loss or losses (default: every kind)")
    listing.add_argument(
        "--json", action="store_true", help="print kinds, components and params as one JSON document"
    )
    listing.set_defaults(handler=list_components)

    schema = commands.add_parser("schema", parents=[common], help="print the JSON Schema of recipes")
    schema.set_defaults(handler=_schema)

    # Further commands live in contrastive_core/cli/commands/, one module each, with
    # ``register(commands, common)`` adding its subparser and handler ``(args, console) -> exit code``.
    for module in EXTRA_COMMANDS:
        module.register(commands, common)
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..engine.runner import run_recipe
    from ..recipes.recipe import load_recipe

    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    run_dir = args.out or Path("runs") / (recipe.run.name or args.recipe.stem)
    args.out_resolved = run_dir
    run_recipe(
        recipe,
        registry=registry,
        run_dir=run_dir,
        console=console,
        recipe_path=args.recipe,
        command_line=["contrastive", *sys.argv[1:]],
        fresh=args.fresh,
    )
    return 0


def _resume_hint(args: argparse.Namespace) -> str:
    command = shlex.join(_resume_command(args))
    if "LOCAL_RANK" in os.environ:  # started by torchrun / accelerate launch
        return f"Resume by running the same launcher command again (its run part: {command})"
    return f"Resume with the same command: {command}"


def _resume_command(args: argparse.Namespace) -> list[str]:
    """The command that resumes an interrupted run: same recipe, overrides and run directory (a command
    that runs several recipes, such as ``sweep``, sets its own as ``args.resume_command``)."""
    if getattr(args, "resume_command", None):
        return args.resume_command
    command = ["contrastive", "run", str(args.recipe), "--out", str(args.out_resolved)]
    for override in args.overrides:
        command += ["--set", override]
    for plugin in [*args.block, *args.block_after]:
        command += ["--block", plugin]
    return command


def _validate(args: argparse.Namespace, console: Console) -> int:
    from ..recipes.recipe import load_recipe

    registry = registry_from_args(args)
    failed = 0
    errors = _console(stderr=True)
    for path in args.recipes:
        try:
            recipe = load_recipe(path, registry=registry, overrides=args.overrides)
        except ContrastiveError as error:
            failed += 1
            print_error(errors, error)
            continue
        stages = len(recipe.stages)
        console.print(
            Text("ok", style="green") + Text(f" {path} ({stages} stage{'s' if stages != 1 else ''})")
        )
        print_warnings(console, recipe)
    return EXIT_BAD_INPUT if failed else 0


def _plugins(args: argparse.Namespace, console: Console) -> int:
    from ..registration.kinds import KINDS

    registry = registry_from_args(args, strict=False)
    table = Table(title="plugins")
    for column in ("plugin", "distribution", "module", "registers"):
        table.add_column(column)
    for info in registry.plugins:
        if info.blocked:
            registers = "[yellow]blocked[/yellow]"
        elif info.error:
            registers = Text(f"failed: {info.error}", style="red")
        else:
            registers = (
                "\n".join(
                    f"{spec.name}: {', '.join(names)}"
                    for spec in KINDS.values()
                    if (
                        names := [
                            r.cls.name for r in registry.registrations(spec.name) if r.plugin == info.name
                        ]
                    )
                )
                or "(nothing)"
            )
        table.add_row(info.name, info.origin, info.module or "", registers)
    console.print(table)
    for problem in registry.problems:
        console.print(Text("problem: ", style="red") + Text(problem), soft_wrap=True)
    for warning in registry.warnings:  # registered, but short of something (a field's description)
        console.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)
    return EXIT_BAD_INPUT if registry.problems else 0


def _schema(args: argparse.Namespace, console: Console) -> int:
    from ..recipes.recipe import recipe_model

    schema = recipe_model(registry_from_args(args)).model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0
