"""``contrastive compare RUN_DIR...``: the results of several runs side by side, optionally as plots.

Reads each run directory's ``results.json`` (the metrics of every finished stage) and prints one table
with a row per stage metric and a column per run. ``--plot FILE.png`` draws one small chart per metric
(matplotlib, the optional ``report`` extra) with a point per run, each with its own scale spanning the
values (accuracies, losses and throughputs do not share an axis, and an axis from 0 would hide 0.81 vs
0.82), then one chart per training curve of the stages' ``metrics.jsonl`` with every run's curve
overlaid.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...errors import ContrastiveError
from ...run_directory.atomic import write_atomic
from ...run_directory.names import MANIFEST_FILE, METRICS_FILE, RESULTS_FILE
from ...run_directory.records import read_json_record, read_metrics

#: (stage key, metric name): one row of the comparison.
MetricKey = tuple[str, str]


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="compare the results of several runs",
        description="Print the results (results.json) of several run directories side by side.",
    )
    compare.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories")
    compare.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        default=[],
        metavar="[STAGE.]METRIC",
        help="show only this metric, e.g. knn_eval.top1 or top1 (any stage); repeatable",
    )
    compare.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the results and the training curves into this PNG file",
    )
    compare.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace, console: Console) -> int:
    from ...reports.report import load_figure_class

    if args.plot is not None:
        load_figure_class("compare --plot")  # before reading anything: say at once what is missing
    runs = {
        label: read_results(path)
        for label, path in zip(run_labels(args.run_dirs), args.run_dirs, strict=True)
    }
    rows = select_metrics(metric_rows(runs.values()), args.metrics)
    console.print(comparison_table(runs, rows))
    if args.plot is not None:
        curves = {
            label: run_curves(path, list(runs[label]), args.metrics)
            for label, path in zip(runs, args.run_dirs, strict=True)
        }
        png = comparison_plot(runs, rows, curves)
        write_atomic(args.plot, lambda file: file.write(png))
        console.print(Text(f"wrote {args.plot}"))
    return 0


def read_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The ``results.json`` of a run directory: metrics by stage key."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        problem = (
            "no stage has finished yet"
            if (Path(run_dir) / MANIFEST_FILE).is_file()
            else "not a run directory"
        )
        raise ContrastiveError(f"{run_dir} has no {RESULTS_FILE} ({problem})")
    return read_json_record(path)


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Column names: each directory's last part, or the whole paths when those parts repeat."""
    names = [path.resolve().name for path in run_dirs]
    return names if len(set(names)) == len(names) else [str(path) for path in run_dirs]


def metric_rows(all_results: Any) -> list[MetricKey]:
    """Every (stage, metric) of any run, in the order the runs first report them."""
    rows: dict[MetricKey, None] = {}
    for results in all_results:
        for stage, metrics in results.items():
            for name in metrics:
                rows.setdefault((stage, name))
    return list(rows)


def select_metrics(rows: list[MetricKey], wanted: list[str]) -> list[MetricKey]:
    """The rows ``--metric`` asks for (``stage.metric`` or a bare ``metric``); all rows when none."""
    if not wanted:
        return rows
    selected = [row for row in rows if f"{row[0]}.{row[1]}" in wanted or row[1] in wanted]
    if not selected:
        known = ", ".join(f"{stage}.{name}" for stage, name in rows)
        raise ContrastiveError(f"no run has the metric(s) {', '.join(wanted)}; the runs have: {known}")
    return selected


def comparison_table(runs: dict[str, dict[str, dict[str, Any]]], rows: list[MetricKey]) -> Table:
    """A rich table: a row per (stage, metric), a column per run; '-' where a run lacks the metric."""
    from ...reports.report import format_value

    table = Table(title="results")
    table.add_column("stage")
    table.add_column("metric")
    for label in runs:
        table.add_column(Text(label), justify="right")
    previous_stage = None
    for stage, name in rows:
        values = [runs[label].get(stage, {}).get(name) for label in runs]
        cells = [Text("-" if value is None else format_value(value)) for value in values]
        table.add_row(Text(stage if stage != previous_stage else ""), Text(name), *cells)
        previous_stage = stage
    return table


def comparison_plot(
    runs: dict[str, dict[str, dict[str, Any]]],
    rows: list[MetricKey],
    curves: dict[str, dict[MetricKey, tuple[list[float], list[float]]]] | None = None,
) -> bytes:
    """PNG bytes: a chart per numeric (stage, metric) with a point per run, then a chart per training
    curve (stage, logged key) that a run has, overlaying every run's curve.

    A result chart's value axis spans the values (with a margin), not 0 to the maximum: 0.81 and 0.82
    must look different. ``curves``: per run label, (stage, key) -> (steps, values).
    """
    from ...reports.report import figure_png, load_figure_class

    plotted = [row for row in rows if any(_number(results, row) is not None for results in runs.values())]
    curve_rows = list(dict.fromkeys(row for run_curves in (curves or {}).values() for row in run_curves))
    if not plotted and not curve_rows:
        raise ContrastiveError("none of the selected metrics is a number; nothing to plot")
    Figure = load_figure_class("compare --plot")
    panels = len(plotted) + len(curve_rows)
    columns = min(3, panels)
    lines = math.ceil(panels / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * lines), layout="constrained")
    labels = list(runs)
    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    for index, (stage, name) in enumerate(plotted):
        axes = figure.add_subplot(lines, columns, index + 1)
        values = [_number(runs[label], (stage, name)) for label in labels]
        for position, (label, value) in enumerate(zip(labels, values, strict=True)):
            if value is None:
                continue
            axes.plot([position], [value], "o", color=colours[label], markersize=8)
            axes.annotate(
                f"{value:.4g}",
                (position, value),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
            )
        axes.set_xticks(range(len(labels)), labels)
        axes.set_xlim(-0.5, len(labels) - 0.5)
        axes.set_ylim(*value_range([value for value in values if value is not None]))
        axes.set_title(f"{stage}: {name}")
        axes.tick_params(axis="x", labelrotation=20, labelsize=8)
        axes.grid(True, axis="y", alpha=0.3)
    for index, (stage, key) in enumerate(curve_rows, start=len(plotted) + 1):
        axes = figure.add_subplot(lines, columns, index)
        for label in labels:
            steps, values = (curves or {}).get(label, {}).get((stage, key), ([], []))
            if steps:
                axes.plot(steps, values, color=colours[label], linewidth=1.5, label=label)
        axes.set_title(f"{stage}: {key} over steps")
        axes.set_xlabel("step")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7)
    return figure_png(figure)


def value_range(values: list[float]) -> tuple[float, float]:
    """The value axis of a result chart: the values' span plus 25% of it (room for the labels), or
    +-5% of the value (+-0.05 around 0) when every run has the same one."""
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        pad = abs(high) * 0.05 or 0.05
        return low - pad, high + pad
    return low - 0.25 * span, high + 0.25 * span


def run_curves(
    run_dir: Path, stages: list[str], wanted: list[str]
) -> dict[MetricKey, tuple[list[float], list[float]]]:
    """The training curves of a run's ``stages`` (their metrics.jsonl), the keys ``--metric`` asks for
    (all when none), as (stage, key) -> (steps, values)."""
    from ...reports.report import curve, curve_keys

    found: dict[MetricKey, tuple[list[float], list[float]]] = {}
    for stage in stages:
        path = Path(run_dir) / stage / METRICS_FILE
        if not path.is_file():
            continue
        records = read_metrics(path)
        for key in curve_keys(records):
            if wanted and key not in wanted and f"{stage}.{key}" not in wanted:
                continue
            steps, values = curve(records, key)
            if len(steps) > 1:  # one point is no curve
                found[(stage, key)] = (steps, values)
    return found


def _number(results: dict[str, dict[str, Any]], row: MetricKey) -> float | None:
    value = results.get(row[0], {}).get(row[1])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
