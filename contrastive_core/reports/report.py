"""``report.html``: one self-contained page that shows a run (plots, results, recipe, provenance).

The page is built from the run directory's own records (see :mod:`contrastive_core.run_directory.names`):
``results.json`` for the results table, every stage's ``metrics.jsonl`` for the curves (loss, learning
rate, throughput, the online kNN accuracy when logged, and any other number a stage logs per step),
``recipe.resolved.toml`` and ``manifest.json``. The plots are PNGs drawn with matplotlib, an optional
extra (``pip install 'contrastive[report]'``), and embedded as base64 data URIs, so the single file can
be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ..errors import ContrastiveError
from ..run_directory.atomic import write_text_atomic
from ..run_directory.names import (
    MANIFEST_FILE,
    METRICS_FILE,
    REPORT_FILE,
    RESOLVED_RECIPE_FILE,
    RESULTS_FILE,
    STAGE_DONE_FILE,
)
from ..run_directory.records import RunRecordError, read_json_record, read_metrics

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

INSTALL_HINT = "pip install 'contrastive[report]'"

#: Curves with a known meaning, in the order the report shows them, with their axis labels.
KNOWN_CURVES = {
    "loss": "loss",
    "lr": "learning rate",
    "views_per_s": "throughput (views/s)",
    "knn_top1": "online kNN top-1 accuracy",
    "knn_top5": "online kNN top-5 accuracy",
}
#: Keys of a metrics record that place it rather than measure something.
POSITION_KEYS = ("step", "epoch")
#: Keys of a metrics record that time the loop itself (``contrastive bench --end-to-end`` reads them):
#: wall time since the loop started, and the checkpoint writes and kNN monitor passes in the interval.
TIMING_KEYS = ("elapsed_s", "checkpoint_s", "knn_monitor_s")
#: The prefix of an evaluation's random-initialisation baseline metrics (``random_init_top1``).
RANDOM_INIT_PREFIX = "random_init_"


class MatplotlibMissingError(ContrastiveError):
    """Plots need matplotlib, which is an optional extra."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs matplotlib, which is not installed. Install it with: {INSTALL_HINT}")


def load_figure_class(what: str = "plotting") -> type:
    """matplotlib's ``Figure`` (used directly, without pyplot's global state or a GUI backend).

    Raises :class:`MatplotlibMissingError` naming ``what`` needed it and how to install it.
    """
    try:
        import matplotlib  # noqa: F401 - imported first so a missing package is reported as such
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissingError(what) from None
    return Figure


def matplotlib_available() -> bool:
    try:
        load_figure_class()
    except MatplotlibMissingError:
        return False
    return True


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def format_value(value: Any) -> str:
    """A metric as the results tables show it: floats with 4 decimals, anything else as it is."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------ reading


@dataclass
class RunRecords:
    """What a run directory records about its run."""

    run_dir: Path
    results: dict[str, dict[str, Any]]
    manifest: dict[str, Any]
    resolved_recipe: str
    #: Per stage key (in stage order), the records of its ``metrics.jsonl``.
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Records that could not be read (damaged files), each naming its file; the report leaves them out.
    problems: list[str] = field(default_factory=list)
    #: Per finished stage key, the wall time in seconds of the session that finished it (if recorded).
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``run.name`` of the recipe, else the directory's name."""
        try:
            run = tomllib.loads(self.resolved_recipe).get("run")
        except (tomllib.TOMLDecodeError, RecursionError):  # damaged (or nested too deeply to read)
            run = None
        name = run.get("name") if isinstance(run, dict) else None
        return name if isinstance(name, str) and name else self.run_dir.resolve().name


def read_run(run_dir: Path) -> RunRecords:
    """Read a run directory's records; raises :class:`ContrastiveError` if it is not a run directory."""
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ContrastiveError(
            f"{run_dir} is not a run directory (no {MANIFEST_FILE}); give the --out directory of `contrastive run`"
        )
    problems: list[str] = []

    def readable(read: Any, path: Path, missing: Any) -> Any:
        """``read(path)``, or ``missing`` when the file is absent or damaged (then noted in ``problems``)."""
        if not path.is_file():
            return missing
        try:
            return read(path)
        except RunRecordError as error:
            problems.append(str(error))
            return missing

    results = readable(read_json_record, run_dir / RESULTS_FILE, {})
    results = {key: value for key, value in results.items() if isinstance(value, dict)}
    manifest = readable(read_json_record, manifest_path, {})
    resolved = readable(_read_recipe_text, run_dir / RESOLVED_RECIPE_FILE, "")
    # Finished stages in their run order, then stages that logged but did not finish (an interrupted run).
    logged = {path.parent.name for path in run_dir.glob(f"*/{METRICS_FILE}")}
    order = [key for key in results if key in logged] + sorted(logged - set(results))
    metrics = {key: readable(read_metrics, run_dir / key / METRICS_FILE, []) for key in order}
    stage_seconds = {}
    for key in results:
        seconds = readable(read_json_record, run_dir / key / STAGE_DONE_FILE, {}).get("seconds")
        if _is_number(seconds):
            stage_seconds[key] = float(seconds)
    return RunRecords(
        run_dir=run_dir,
        results=results,
        manifest=manifest,
        resolved_recipe=resolved,
        metrics={key: records for key, records in metrics.items() if records},
        problems=problems,
        stage_seconds=stage_seconds,
    )


def _read_recipe_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunRecordError(f"cannot read {path}: {error}") from None


# ----------------------------------------------------------------------------------------- plotting


def curve_keys(records: Iterable[dict[str, Any]]) -> list[str]:
    """Keys to plot: the known curves present, then every other numeric key in first-seen order."""
    present: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in POSITION_KEYS and key not in TIMING_KEYS and _is_number(value):
                present.setdefault(key)
    return [key for key in KNOWN_CURVES if key in present] + [
        key for key in present if key not in KNOWN_CURVES
    ]


def curve(records: Iterable[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over the records that have it (some metrics are logged less often)."""
    points = [
        (record["step"], record[key])
        for record in records
        if "step" in record and _is_number(record.get(key))
    ]
    return [step for step, _ in points], [value for _, value in points]


def plot_curve(steps: list[float], values: list[float], title: str, ylabel: str) -> bytes:
    """One metric over training steps as a PNG (6.4 x 3.2 inches at 100 dpi)."""
    Figure = load_figure_class("contrastive report")
    figure = Figure(figsize=(6.4, 3.2))
    # Fixed margins rather than a layout engine: as readable here, and half the drawing time, which
    # every `contrastive run` pays at its end.
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)
    axes = figure.add_subplot()
    # Markers only where they stay readable: short runs log few points, long ones thousands.
    axes.plot(steps, values, marker="o" if len(steps) <= 40 else None, markersize=3, linewidth=1.5)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure_png(figure)


def run_plots(run: RunRecords) -> list[tuple[str, str, bytes]]:
    """(stage key, metric label, PNG) of every curve in the run's metrics logs."""
    plots = []
    for key, records in run.metrics.items():
        for metric in curve_keys(records):
            steps, values = curve(records, metric)
            label = KNOWN_CURVES.get(metric, metric)
            plots.append((key, label, plot_curve(steps, values, f"{key}: {label}", label)))
    return plots


# ------------------------------------------------------------------------------------------ the page

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
.plots img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.muted { color: #666; }
"""


def render_html(run: RunRecords, plots: list[tuple[str, str, bytes]]) -> str:
    """The report page: results, curves (embedded PNGs), provenance, and the resolved recipe."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>contrastive report: {_escape(run.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_escape(run.name)}</h1>",
        f'<p class="muted">run directory <code>{_escape(run.run_dir.resolve())}</code>, '
        f"started {_escape(run.manifest.get('started_at', 'at an unknown time'))}</p>",
        _problems_section(run.problems),
        "<h2>Results</h2>",
        _results_table(run.results),
        _wall_time_table(run.stage_seconds),
        "<h2>Training curves</h2>",
        _plots_section(plots),
        "<h2>Run</h2>",
        _manifest_table(run.manifest),
        "<h2>Recipe</h2>",
        f'<p class="muted">{RESOLVED_RECIPE_FILE}: the recipe as run, every default filled in</p>',
        f"<pre>{_escape(run.resolved_recipe)}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _problems_section(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{_escape(problem)}</li>" for problem in problems)
    return f"<h2>Records left out</h2><p>These files could not be read; the report shows the rest:</p><ul>{items}</ul>"


def _results_table(results: dict[str, dict[str, Any]]) -> str:
    """A row per stage metric; a metric with a random-init baseline (``random_init_<metric>``) shows the
    baseline and the difference beside it instead of a row of its own."""
    if not results:
        return f'<p class="muted">No stage has finished yet ({RESULTS_FILE} is absent or empty).</p>'
    with_baseline = any(
        RANDOM_INIT_PREFIX + name in metrics for metrics in results.values() for name in metrics
    )
    rows = []
    for key, metrics in results.items():
        shown = [name for name in metrics if not _is_baseline_of_a_shown_metric(name, metrics)]
        for index, name in enumerate(shown):
            stage_cell = f'<td rowspan="{len(shown)}">{_escape(key)}</td>' if index == 0 else ""
            cells = f'<td class="number">{_escape(format_value(metrics[name]))}</td>'
            if with_baseline:
                baseline = metrics.get(RANDOM_INIT_PREFIX + name)
                difference = (
                    format_difference(metrics[name] - baseline)
                    if _is_number(baseline) and _is_number(metrics[name])
                    else ""
                )
                baseline_text = format_value(baseline) if baseline is not None else ""
                cells += f'<td class="number">{_escape(baseline_text)}</td><td class="number">{_escape(difference)}</td>'
            rows.append(f"<tr>{stage_cell}<td>{_escape(name)}</td>{cells}</tr>")
    header = "<tr><th>stage</th><th>metric</th><th>value</th>"
    if with_baseline:
        header += "<th>random init</th><th>difference</th>"
    return f"<table>{header}</tr>" + "".join(rows) + "</table>"


def _is_baseline_of_a_shown_metric(name: str, metrics: dict[str, Any]) -> bool:
    return name.startswith(RANDOM_INIT_PREFIX) and name.removeprefix(RANDOM_INIT_PREFIX) in metrics


def format_difference(value: float) -> str:
    """A signed difference, e.g. ``+0.0420``."""
    return f"{value:+.4f}"


def _wall_time_table(stage_seconds: dict[str, float]) -> str:
    if not stage_seconds:
        return ""
    rows = "".join(
        f'<tr><td>{_escape(key)}</td><td class="number">{_escape(format_duration(seconds))}</td></tr>'
        for key, seconds in stage_seconds.items()
    )
    total = format_duration(sum(stage_seconds.values()))
    return (
        "<h3>Wall time</h3><table><tr><th>stage</th><th>wall time</th></tr>"
        + rows
        + f'<tr><th>total</th><td class="number">{_escape(total)}</td></tr></table>'
        + '<p class="muted">of the session that finished each stage (a resumed stage\'s earlier sessions are not counted)</p>'
    )


def format_duration(seconds: float) -> str:
    """``42.0 s``, ``3 min 05 s`` or ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second:02d} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute:02d} min"


def _plots_section(plots: list[tuple[str, str, bytes]]) -> str:
    if not plots:
        return f'<p class="muted">No stage of this run logged {METRICS_FILE}.</p>'
    images = [
        f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
        f'alt="{_escape(f"{key}: {label} over steps")}">'
        for key, label, png in plots
    ]
    return '<div class="plots">' + "".join(images) + "</div>"


def _manifest_table(manifest: dict[str, Any]) -> str:
    git = manifest.get("git")
    rows = {
        "command": shlex.join(manifest["command_line"]) if manifest.get("command_line") else None,
        "recipe file": manifest.get("recipe"),
        "started": manifest.get("started_at"),
        "host": manifest.get("host"),
        "processes": manifest.get("processes"),
        "device": manifest.get("device"),
        "contrastive": manifest.get("contrastive"),
        "python": manifest.get("python"),
        "torch": manifest.get("torch"),
        # The CUDA version torch was built for: worth showing only where the run used CUDA.
        "torch CUDA build": manifest.get("cuda")
        if str(manifest.get("device", "cuda")).startswith("cuda")
        else None,
        "platform": manifest.get("platform"),
        "git": f"{git['commit']}{' (uncommitted changes)' if git.get('dirty') else ''}" if git else None,
        "plugins": ", ".join(
            f"{plugin['name']} ({plugin.get('distribution')} {plugin.get('version')})"
            for plugin in manifest.get("plugins", [])
        ),
    }
    cells = "".join(
        f"<tr><th>{_escape(name)}</th><td>{_escape(value)}</td></tr>"
        for name, value in rows.items()
        if value not in (None, "")
    )
    return f"<table>{cells}</table>"


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------- writing


def write_report(run_dir: Path, warn: Callable[[str], None] | None = None) -> Path:
    """Render ``<run_dir>/report.html`` from the run's records; returns its path.

    Damaged records (each named to ``warn``, and listed in the page) are left out; the rest is shown.
    """
    load_figure_class("contrastive report")  # fail before reading anything when plots are impossible
    run = read_run(run_dir)
    for problem in run.problems:
        if warn is not None:
            warn(f"left out of the report: {problem}")
    path = Path(run_dir) / REPORT_FILE
    write_text_atomic(path, render_html(run, run_plots(run)))
    return path


def report_after_run(run_dir: Path, console: Console) -> None:
    """Write the report at the end of ``contrastive run`` when matplotlib is installed.

    Never raises: the run has finished and its results are saved, so a failing report only warns.
    """
    if not matplotlib_available():
        console.print(
            Text(f"{REPORT_FILE} skipped: its plots need matplotlib ({INSTALL_HINT})", style="dim"),
            soft_wrap=True,
        )
        return
    try:
        path = write_report(
            run_dir,
            lambda problem: console.print(Text(f"warning: {problem}", style="yellow"), soft_wrap=True),
        )
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the run itself succeeded
        console.print(
            Text(f"warning: {REPORT_FILE} not written: {type(error).__name__}: {error}", style="yellow"),
            soft_wrap=True,
        )
        return
    console.print(Text(f"report: {path}"))
