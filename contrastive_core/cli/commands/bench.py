"""``contrastive bench RECIPE``: where the recipe's training step spends its time, on this machine.

Measures, in one process on the recipe's device, the method's bare step, augmentation alone, loss alone,
optimizer step alone, data loading alone and the full pretrain step (see :mod:`contrastive_core.engine.benchmark`),
prints views/s and each part's share of the full step, and can write everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..arguments import add_overrides_argument, non_negative_int, positive_int, registry_from_args

if TYPE_CHECKING:
    from ...engine.benchmark import BenchmarkResult
    from ...engine.end_to_end_benchmark import EndToEndMeasurement

#: The fraction of the bare step's throughput that the full step should keep on a GPU (the project's goal).
TARGET_FULL_OVER_BARE = 0.9
#: The fraction of the full step's throughput that a real run (loop, logging, checkpoints, kNN monitor)
#: should keep.
TARGET_RUN_OVER_FULL = 0.95


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="measure the training step and its parts (views/s) on this machine",
        description="Measure, on the recipe's device and precision, the method's bare step, augmentation, "
        "loss, optimizer step and data loading alone, and the full pretrain step; print views/s and each "
        "part's share of the full step.",
    )
    bench.add_argument(
        "recipe", type=Path, help="the recipe TOML file (its first pretrain stage is measured)"
    )
    bench.add_argument(
        "--steps", type=positive_int, default=20, help="timed steps per measurement (default: 20)"
    )
    bench.add_argument("--warmup", type=non_negative_int, default=3, help="untimed steps before (default: 3)")
    bench.add_argument(
        "--rounds",
        type=positive_int,
        default=5,
        help="interleaved rounds the timed steps are split into; each part's time is its median round "
        "(default: 5)",
    )
    bench.add_argument(
        "--batch-size", type=positive_int, help="images per step (default: the pretrain stage's batch_size)"
    )
    bench.add_argument(
        "--synthetic-images",
        type=image_shape,
        metavar="C,H,W",
        help="use random uint8 images of this shape held on the device instead of the recipe's dataset",
    )
    bench.add_argument(
        "--end-to-end",
        action="store_true",
        help="also run the training stage itself (loader, logging, checkpoints, kNN monitor, trackers) for "
        "a few steps and report its views/s beside the full step's",
    )
    bench.add_argument(
        "--end-to-end-steps",
        type=positive_int,
        metavar="N",
        help="timed steps of the real run (default: enough to include one checkpoint write, at least 20)",
    )
    bench.add_argument(
        "--end-to-end-dir",
        type=Path,
        metavar="DIR",
        help="keep the real run's files in DIR, a new or empty folder (default: a temporary folder, deleted)",
    )
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    add_overrides_argument(bench, "stages[0].fused_augmentations=false")
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace, console: Console) -> int:
    from ...engine.benchmark import BenchSettings, run_benchmark
    from ...engine.end_to_end_benchmark import EndToEndRun, EndToEndSettings
    from ...errors import ContrastiveError
    from ...recipes.recipe import load_recipe

    if not args.end_to_end and (args.end_to_end_steps is not None or args.end_to_end_dir is not None):
        raise ContrastiveError("--end-to-end-steps and --end-to-end-dir go with --end-to-end")
    if args.end_to_end and args.synthetic_images is not None:
        raise ContrastiveError(
            "--end-to-end runs the training stage on the recipe's dataset; it cannot use --synthetic-images"
        )
    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    settings = BenchSettings(
        steps=args.steps,
        warmup=args.warmup,
        rounds=args.rounds,
        batch_size=args.batch_size,
        synthetic_images=args.synthetic_images,
    )
    progress = Console(file=sys.stderr, highlight=False)

    def say(line: str) -> None:
        progress.print(line, style="dim")

    with ExitStack() as held:
        real_run = None
        if args.end_to_end:
            # Its sessions run between the rounds: the real run and the step share the same stretches of time.
            real_run = held.enter_context(
                EndToEndRun(
                    recipe,
                    registry,
                    EndToEndSettings(
                        steps=args.end_to_end_steps,
                        sessions=min(args.rounds, args.steps),
                        warmup=args.warmup,
                        batch_size=args.batch_size,
                        run_dir=args.end_to_end_dir,
                    ),
                    console=progress,
                    report=say,
                )
            )
        result = run_benchmark(
            recipe,
            registry,
            settings,
            recipe_path=args.recipe,
            report=say,
            between_rounds=real_run.session if real_run is not None else None,
        )
        end_to_end = real_run.measure(result.settings["views_per_step"]) if real_run is not None else None
    result.settings["command"] = command_line(args)
    console.print(result_table(result))
    ratio = result.full_over_bare
    verdict = "meets" if ratio >= TARGET_FULL_OVER_BARE else "is below"
    console.print(
        f"full / bare = {ratio:.2f}: the full step keeps {ratio:.0%} of the bare step's throughput "
        f"({verdict} the GPU goal of {TARGET_FULL_OVER_BARE:.0%})"
    )
    # Like with like: the loop is the mean over its intervals, so the full step is the mean of its rounds.
    full_seconds = result.measurements["full"].mean_seconds_per_step
    if end_to_end is not None:
        console.print(end_to_end_table(result, end_to_end))
        run_ratio = full_seconds / end_to_end.run_seconds_per_step
        verdict = "meets" if run_ratio >= TARGET_RUN_OVER_FULL else "is below"
        console.print(
            f"run / full = {run_ratio:.2f}: a real run of the recipe keeps {run_ratio:.0%} of the full "
            f"step's throughput ({verdict} the goal of {TARGET_RUN_OVER_FULL:.0%})"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = result.to_json()
        if end_to_end is not None:
            document["end_to_end"] = end_to_end.to_json(full_seconds)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        console.print(Text(f"wrote {args.json}"))
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The ``contrastive bench`` command that repeats this measurement."""
    words = [
        "contrastive",
        "bench",
        str(args.recipe),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
    ]
    if args.batch_size is not None:
        words += ["--batch-size", str(args.batch_size)]
    if args.synthetic_images is not None:
        words += ["--synthetic-images", ",".join(map(str, args.synthetic_images))]
    if args.end_to_end:
        words.append("--end-to-end")
    if args.end_to_end_steps is not None:
        words += ["--end-to-end-steps", str(args.end_to_end_steps)]
    if args.end_to_end_dir is not None:
        words += ["--end-to-end-dir", str(args.end_to_end_dir)]
    for override in args.overrides:
        words += ["--set", override]
    for plugin in [*args.block, *args.block_after]:
        words += ["--block", plugin]
    return shlex.join(words)


def _views_text(settings: dict) -> str:
    """``6 views (global 2 x 1x28x28, local 4 x 1x14x14)``: every group's count and view size."""
    groups = settings.get("view_groups") or {"global": 2}
    sizes = settings.get("view_sizes") or {name: settings["views"] for name in groups}
    described = ", ".join(
        f"{name} {count} x {'x'.join(map(str, sizes.get(name, settings['views'])))}"
        for name, count in groups.items()
    )
    return f"{sum(groups.values())} views ({described})"


def result_table(result: BenchmarkResult) -> Table:
    """The measurements as a table: what each times, ms per step, views/s, share of the full step."""
    machine, settings = result.machine, result.settings
    device = machine.get("gpu", machine["cpu"]) + f" ({machine['device']})"
    micro = settings.get("micro_batch_size")
    caching = (
        f"gradient caching in micro-batches of {micro} ({settings.get('micro_batch_norm')} BatchNorm), "
        if micro
        else ""
    )
    memory = "CUDA max_memory_allocated" if "gpu" in machine else "peak resident set of the process"
    table = Table(
        title=f"{result.recipe}: {settings['batch_size']} images x {_views_text(settings)} per step on {device}",
        caption=f"{caching}{settings['encoder']}, precision "
        f"{settings['precision']}, channels_last {settings['channels_last']}, compile {settings['compile']}, "
        f"{settings['pipeline']}; torch {machine['torch']}, {result.date}, load average "
        f"{machine['load_average_1min']} on {machine['cpu_cores']} cores before the run; peak memory: "
        f"{memory} in an untimed round of the part after the timed ones, rise: above its start",
    )
    for column, justify in (
        ("part", "left"),
        ("what is timed", "left"),
        ("ms / step", "right"),
        ("views / s", "right"),
        ("share of full", "right"),
        ("peak MiB", "right"),
        ("rise MiB", "right"),
    ):
        table.add_column(column, justify=justify)
    for name, measurement in result.measurements.items():
        table.add_row(
            name,
            measurement.description,
            f"{1000 * measurement.seconds_per_step:.2f}",
            f"{measurement.views_per_s:,.0f}",
            f"{result.share_of_full(name):.0%}",
            _mebibytes(measurement.peak_memory_bytes),
            _mebibytes(measurement.memory_rise_bytes),
        )
    return table


def end_to_end_table(result: BenchmarkResult, measured: EndToEndMeasurement) -> Table:
    """The real run beside the full step: the loop, checkpoints, kNN monitor and the projected run."""
    full = result.measurements["full"].mean_seconds_per_step
    views = measured.views_per_step
    table = Table(
        title=f"end to end: stage {measured.stage!r} of {result.recipe} run for real in {measured.sessions} "
        f"session{'s' if measured.sessions != 1 else ''} between the rounds, {measured.steps} steps timed",
        caption="loop: the timed log intervals, their checkpoint writes and monitor passes taken out; run: "
        f"the recipe's whole stage at the measured costs{f'; files kept in {measured.run_dir}' if measured.run_dir else ''}",
    )
    for column, justify in (
        ("part", "left"),
        ("what is timed", "left"),
        ("ms / step", "right"),
        ("views / s", "right"),
        ("of full's views/s", "right"),
    ):
        table.add_column(column, justify=justify)

    def rate(seconds: float) -> tuple[str, str]:
        return f"{views / seconds:,.0f}", f"{full / seconds:.0%}"

    table.add_row(
        "full", "bench's full step (above), the mean of its rounds", f"{1000 * full:.2f}", *rate(full)
    )
    loop = measured.loop_seconds_per_step
    table.add_row(
        "loop",
        f"{len(measured.interval_seconds_per_step)} log intervals of the real run together: loader, step, "
        f"logging (median interval: {1000 * measured.median_interval_seconds_per_step:.2f} ms)",
        f"{1000 * loop:.2f}",
        *rate(loop),
    )
    table.add_row(
        "checkpoint",
        (
            f"none inside the run: its last rewritten, {measured.checkpoint_seconds:.3f} s"
            if measured.checkpoint_source == "rewrite" and measured.checkpoint_seconds is not None
            else _event_text("checkpoint write", measured.checkpoint_seconds, measured.checkpoints_measured)
        )
        + f"; the recipe's {measured.run_checkpoints:,} over its {measured.run_steps:,} steps",
        f"{1000 * measured.checkpoint_seconds_per_step:.2f}",
        "",
        "",
    )
    if measured.run_knn_monitor_passes or measured.knn_monitor_passes_measured:
        table.add_row(
            "knn_monitor",
            _event_text(
                "kNN monitor pass", measured.knn_monitor_seconds, measured.knn_monitor_passes_measured
            )
            + f"; the recipe's {measured.run_knn_monitor_passes:,}",
            f"{1000 * measured.knn_monitor_seconds_per_step:.2f}",
            "",
            "",
        )
    run = measured.run_seconds_per_step
    table.add_row("run", "projected: loop + checkpoints + monitor, per step", f"{1000 * run:.2f}", *rate(run))
    return table


def _event_text(what: str, seconds: float | None, count: int) -> str:
    if seconds is None:
        return f"no {what} inside the run (not counted: give more --end-to-end-steps)"
    plural = what + ("es" if what.endswith("s") else "s") if count != 1 else what
    return f"{count} {plural} measured, {seconds:.3f} s each"


def _mebibytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


def image_shape(text: str) -> tuple[int, int, int]:
    """'3,256,256' (or '3x256x256') -> (3, 256, 256)."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return shape  # type: ignore[return-value]
