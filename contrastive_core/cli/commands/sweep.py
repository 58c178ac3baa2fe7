"""``contrastive sweep RECIPE --set KEY=V1,V2 ...``: a grid of runs of one recipe, then their comparison.

Every ``--set`` with comma-separated values is an axis of the grid (:mod:`contrastive_core.recipes.sweep_grid`);
every point of the grid is validated before anything runs, then the points run one after the other,
each an ordinary run directory ``SWEEP_DIR/<key=value__...>`` (resumable, with its report), and the
sweep ends with the ``compare`` table of all of them. ``SWEEP_DIR/sweep.json`` records the recipe and the
grid: running the same command again resumes the sweep (finished runs are skipped by their own
resumption, an interrupted one continues from its checkpoint), while another grid in the same folder is
refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ...errors import ContrastiveError, Problem, RecipeError
from ...run_directory.atomic import write_json_atomic
from ...run_directory.records import read_json_record
from .compare import comparison_table, metric_rows, read_results, select_metrics

if TYPE_CHECKING:
    from ...recipes.sweep_grid import SweepPoint

SWEEP_FILE = "sweep.json"


class SweepDirectoryError(ContrastiveError):
    """The sweep folder holds another sweep (another recipe or grid)."""


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sweep = commands.add_parser(
        "sweep",
        parents=[common],
        help="run a recipe over a grid of values, then compare the runs",
        description=(
            "Run RECIPE once per point of the grid the --set options span (comma-separated values: "
            "--set loss.temperature=0.1,0.2,0.5 --set optimizer.lr=0.3,0.6 is 6 runs), one after the "
            "other, each a resumable run directory under the sweep folder; then print their results side "
            "by side. Running the same command again resumes the sweep."
        ),
    )
    sweep.add_argument("recipe", type=Path, help="the recipe TOML file")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=V1[,V2...]",
        help="a recipe value, or several separated by commas (one axis of the grid); repeatable",
    )
    sweep.add_argument(
        "--out", type=Path, help="sweep folder (default: runs/<run.name or recipe stem>-sweep)"
    )
    sweep.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        default=[],
        metavar="[STAGE.]METRIC",
        help="show only this metric in the final table; repeatable",
    )
    sweep.set_defaults(handler=run_sweep)


def run_recipe(*args: Any, **kwargs: Any) -> Any:
    """The engine's :func:`~contrastive_core.engine.runner.run_recipe`, imported when a sweep runs (the
    engine imports torch, which building the parser must not)."""
    from ...engine.runner import run_recipe as engine_run_recipe

    return engine_run_recipe(*args, **kwargs)


def run_sweep(args: argparse.Namespace, console: Console) -> int:
    from ...recipes.sweep_grid import sweep_grid
    from ..arguments import registry_from_args

    registry = registry_from_args(args)
    try:
        points = sweep_grid(args.overrides)
    except ValueError as error:
        raise ContrastiveError(f"sweep: {error}") from None
    recipes = [_validated(args.recipe, point, registry) for point in points]
    folder = args.out or Path("runs") / f"{recipes[0].run.name or args.recipe.stem}-sweep"
    args.resume_command = _command(args, folder)  # what the interruption message tells the user to run
    _claim(folder, args.recipe, points)
    console.print(Text(f"sweep: {len(points)} run{'s' * (len(points) != 1)} in {folder}"))
    for number, (point, recipe) in enumerate(zip(points, recipes, strict=True), start=1):
        console.rule(Text(f"sweep {number}/{len(points)}: {point.name}"))
        run_recipe(
            recipe,
            registry=registry,
            run_dir=folder / point.name,
            console=console,
            recipe_path=args.recipe,
            command_line=[
                "contrastive",
                "run",
                str(args.recipe),
                *sum((["--set", o] for o in point.overrides), []),
            ],
        )
    runs = {point.name: read_results(folder / point.name) for point in points}
    console.print(comparison_table(runs, select_metrics(metric_rows(runs.values()), args.metrics)))
    return 0


def _validated(recipe_path: Path, point: SweepPoint, registry: Any) -> Any:
    """The recipe with the point's overrides, validated; a problem names the point."""
    from ...recipes.recipe import load_recipe

    try:
        return load_recipe(recipe_path, registry=registry, overrides=point.overrides)
    except RecipeError as error:
        problems = [
            Problem(problem.path, f"{problem.message} (sweep point {point.name})")
            for problem in error.problems
        ]
        raise RecipeError(error.source, problems) from None


def _claim(folder: Path, recipe_path: Path, points: list[SweepPoint]) -> None:
    """Record the sweep in ``folder/sweep.json``, or check that the folder's record is this sweep."""
    record = {
        "recipe": str(recipe_path.resolve()),
        "points": [{"name": point.name, "overrides": list(point.overrides)} for point in points],
    }
    path = folder / SWEEP_FILE
    if path.is_file():
        existing = read_json_record(path)
        if existing != record:
            raise SweepDirectoryError(
                f"{folder} holds another sweep ({existing.get('recipe')}, {len(existing.get('points', []))} "
                f"points: see {path}); give this sweep its own folder with --out, or delete that one"
            )
        return
    if folder.exists() and any(folder.iterdir()):
        raise SweepDirectoryError(f"{folder} exists and is not a sweep folder; give the sweep another --out")
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)


def _command(args: argparse.Namespace, folder: Path) -> list[str]:
    command = ["contrastive", "sweep", str(args.recipe), "--out", str(folder)]
    for override in args.overrides:
        command += ["--set", override]
    for plugin in [*args.block, *args.block_after]:
        command += ["--block", plugin]
    return command
