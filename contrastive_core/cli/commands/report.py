"""``contrastive report RUN_DIR``: write the run's ``report.html`` (plots, results, recipe, provenance).

``contrastive run`` writes the same report at its end when matplotlib is installed; this command makes it
for runs made without matplotlib, for interrupted runs, or again after a resumed run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    report = commands.add_parser(
        "report",
        parents=[common],
        help="write a run's report.html (plots, results, recipe)",
        description="Write RUN_DIR/report.html: plots of every logged metric over the training steps, "
        "the results table, the resolved recipe and the manifest, with the images embedded. "
        "Needs matplotlib (pip install 'contrastive[report]').",
    )
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory (the --out of run)")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace, console: Console) -> int:
    from ...reports.report import write_report  # imports torch: not needed to build the parser

    path = write_report(
        args.run_dir,
        lambda problem: console.print(Text(f"warning: {problem}", style="yellow"), soft_wrap=True),
    )
    console.print(Text(f"wrote {path}"))
    return 0
