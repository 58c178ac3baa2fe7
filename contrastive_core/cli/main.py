"""The ``contrastive`` command: run, validate, lint, plugins, list, schema, and more.

Bad recipes and plugin problems print a message (no traceback) and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..distributed.collectives import is_distributed
from ..distributed.unresponsive import DistributedFailure, looks_like_a_collective_failure, unresponsive_ranks
from ..engine.interrupt import TrainingInterrupted
from ..engine.runner import run_recipe
from ..errors import ContrastiveError
from ..recipes.recipe import load_recipe, recipe_model, recipe_warnings
from ..registration.kinds import KINDS, kind_spec
from .arguments import add_overrides_argument, registry_from_args
from .commands import bench, compare, lint, preview, report, sweep

#: Modules of contrastive_core.cli.commands that add a subcommand each, in the order of the help.
EXTRA_COMMANDS = (lint, preview, report, compare, sweep, bench)
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
    except TrainingInterrupted as stopped:
        if os.environ.get("RANK", "0") == "0":  # under a launcher, one process says it
            errors.print(Text(f"{stopped}\n{_resume_hint(args)}"), soft_wrap=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        errors.print("interrupted")
        return EXIT_INTERRUPTED
    except RuntimeError as error:
        if not (is_distributed() and looks_like_a_collective_failure(error)):
            raise
        print_error(errors, DistributedFailure.explain(error, unresponsive_ranks()))
        return DistributedFailure.exit_code


def print_error(console: Console, error: Exception) -> None:
    """'error: ' in red, then the message verbatim (no rich markup: messages contain [brackets])."""
    text = Text("error: ", style="bold red")
    text.append(str(error))
    console.print(text, soft_wrap=True)


def print_warnings(console: Console, recipe: BaseModel) -> None:
    """The recipe's valid but implausible values (:func:`recipe_warnings`), one yellow line each."""
    for warning in recipe_warnings(recipe):
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Outside a terminal (CI logs, pipes) rich would wrap at 80 columns; tables read better wider.
    return Console(file=stream, width=None if stream.isatty() else 160, highlight=False)


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
    listing.add_argument("kind", nargs="?", help=f"one kind: {', '.join(KINDS)}")
    listing.set_defaults(handler=_list)

    schema = commands.add_parser("schema", parents=[common], help="print the JSON Schema of recipes")
    schema.set_defaults(handler=_schema)

    # Further commands live in contrastive_core/cli/commands/, one module each, with
    # ``register(commands, common)`` adding its subparser and handler ``(args, console) -> exit code``.
    for module in EXTRA_COMMANDS:
        module.register(commands, common)
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
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
    return EXIT_BAD_INPUT if registry.problems else 0


def _list(args: argparse.Namespace, console: Console) -> int:
    registry = registry_from_args(args)
    specs = [kind_spec(args.kind)] if args.kind else list(KINDS.values())
    for spec in specs:
        table = Table(title=f"{spec.plural}", show_lines=True)
        for column in ("name", "plugin", "parameter", "type", "default", "description"):
            table.add_column(column, overflow="fold")
        for registration in registry.registrations(spec.name):
            component = registration.cls
            table.add_row(component.name, registration.plugin, "", "", "", Text(component.summary()))
            for field_name, field in component.Params.model_fields.items():
                if field_name == "type":
                    continue
                description = " ".join((field.description or "").split())  # docstrings wrap; tables re-wrap
                cells = (field_name, describe_type(field.annotation), _default(field), description)
                table.add_row("", "", *(Text(cell) for cell in cells))  # Text: '[...]' is not markup
        console.print(table)
    return 0


def _default(field) -> str:
    if field.default is PydanticUndefined:
        return "(required)" if field.default_factory is None else repr(field.default_factory())
    return repr(field.default)


def describe_type(annotation: object) -> str:
    """A short readable type: Literal['a', 'b'] -> 'a' | 'b', Optional[int] -> int | None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(describe_type(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(describe_type(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _schema(args: argparse.Namespace, console: Console) -> int:
    schema = recipe_model(registry_from_args(args)).model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0
