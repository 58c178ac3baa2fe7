"""Peak memory and views/s against batch size, with and without gradient caching (docs/performance.md).

Runs ``contrastive bench`` once per (batch size, micro-batch size) in a fresh process each (so one
configuration's memory high-water mark cannot leak into the next), reads the JSON it writes and prints
a Markdown table: the full step's and the bare step's time, views/s, and the full step's peak memory
and rise above its start. Run it with nothing else on the machine:

    .venv/bin/python scripts/gradient_cache_figures.py recipes/quickstart.toml --batches 256 512 1024 \
        2048 4096 --micro 256 --json-dir /tmp/gradient_cache
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def bench(recipe: str, batch: int, micro: int | None, steps: int, out: Path, block: int | None) -> dict:
    command = [
        str(BIN / "contrastive"),
        "bench",
        recipe,
        "--batch-size",
        str(batch),
        "--steps",
        str(steps),
        "--warmup",
        "1",
        "--rounds",
        str(steps),
        "--json",
        str(out),
    ]
    if micro is not None:
        command += ["--set", f"stages[0].micro_batch_size={micro}"]
    if block is not None:
        command += ["--set", f"loss.block_size={block}"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--micro", type=int, default=256, help="micro_batch_size of the cached runs")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--block", type=int, help="also set the loss' block_size (nt_xent) in the cached runs"
    )
    parser.add_argument("--cached-only", action="store_true", help="leave out the runs without caching")
    parser.add_argument("--json-dir", type=Path, default=Path("gradient_cache_figures"))
    args = parser.parse_args()
    args.json_dir.mkdir(parents=True, exist_ok=True)

    print(
        "| batch | micro_batch_size | full ms/step | full views/s | bare ms/step | full / bare "
        "| full peak MiB | full rise MiB | loss block | loss fwd+bwd ms | loss rise MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch in args.batches:
        for micro in (args.micro,) if args.cached_only else (None, args.micro):
            if micro is not None and micro >= batch:
                continue
            block = args.block if micro is not None else None
            name = f"batch{batch}_micro{micro or 'none'}_block{block or 'none'}.json"
            result = bench(args.recipe, batch, micro, args.steps, args.json_dir / name, block)
            full, bare = result["measurements"]["full"], result["measurements"]["bare"]
            loss = result["measurements"]["loss"]
            print(
                f"| {batch} | {micro or '-'} | {1000 * full['seconds_per_step']:.0f} | "
                f"{full['views_per_s']:,.0f} | {1000 * bare['seconds_per_step']:.0f} | "
                f"{result['full_over_bare']:.2f} | {_mib(full['peak_memory_bytes'])} | "
                f"{_mib(full['memory_rise_bytes'])} | {block or '-'} | "
                f"{1000 * loss['seconds_per_step']:.0f} | {_mib(loss['memory_rise_bytes'])} |",
                flush=True,
            )
    return 0


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
