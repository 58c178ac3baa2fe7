"""NT-Xent forward + backward alone: time and working memory, plain against blockwise (docs/performance.md).

Each setting runs in a fresh process (a process's memory high-water mark would carry over), with 2 x N
random projections of 128 dimensions, tau 0.5: 2 untimed passes, then 3 timed, the rise of the peak
memory over them (:mod:`contrastive_core.engine.peak_memory`) and the mean time per pass:

    .venv/bin/python scripts/nt_xent_memory.py 4096 --block 0 256 1024     # 0: the plain loss
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch


def one(images: int, block: int | None) -> str:
    from contrastive_core.engine.peak_memory import PeakMemory
    from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams

    projections = torch.randn(2 * images, 128, generator=torch.Generator().manual_seed(0)).requires_grad_()
    loss = NTXent(NTXentParams(temperature=0.5, block_size=block))
    for _ in range(2):
        projections.grad = None
        loss(*projections.chunk(2)).backward()
    memory = PeakMemory(torch.device("cpu"))
    memory.reset()
    start = time.perf_counter()
    for _ in range(3):
        projections.grad = None
        loss(*projections.chunk(2)).backward()
    milliseconds = (time.perf_counter() - start) / 3 * 1000
    rise = "n/a" if memory.rise is None else f"{memory.rise / 2**20:.0f}"
    return f"| {2 * images} | {block or '-'} | {milliseconds:.0f} | {rise} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=int, nargs="+", help="images per batch (2 views each)")
    parser.add_argument("--block", type=int, nargs="+", default=[0, 256, 1024], help="block sizes; 0: plain")
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # internal: one setting
    args = parser.parse_args()
    if args.one:
        print(one(args.one[0], args.one[1] or None), flush=True)
        return 0
    print("| views | block_size | ms per fwd+bwd | rise MiB |\n|---:|---:|---:|---:|", flush=True)
    for images in args.images:
        for block in args.block:
            subprocess.run([sys.executable, __file__, "0", "--one", str(images), str(block)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
