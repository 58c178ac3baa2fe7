"""Fixed-seed 50-step SimCLR loss curves, compared with the curves the engine gave before methods were plugins.

``python -m tests.engine.loss_curves`` writes ``tests/engine/fixtures/simclr_loss_curves.json``. The
committed file was written by the SimCLR-only engine (commit fc16dac, before the ``method`` kind
existed, with the recipes below minus their ``[method]`` table), so ``test_loss_curves.py`` proves that
moving SimCLR into a method plugin changed no number: the same initial weights, the same views, the
same losses and updates, to float rounding.

Two runs of 50 steps, the loss logged after every step:

* ``quickstart``: ``recipes/quickstart.toml`` as shipped (full Fashion-MNIST, small ResNet, bf16
  autocast, AdamW, warmup + cosine) with only its pretrain stage, stopped after 50 steps;
* ``fixture``: the same recipe in float32 on the 64-image committed Fashion-MNIST fixture, batch 16,
  with the whole SimCLR augmentation list (crop, flip, colour jitter, grayscale, blur, solarize), 13 epochs of
  4 steps cut at 50.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from contrastive_core.run_directory import read_metrics

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "fashion_mnist" / "gzip"
CURVES = Path(__file__).resolve().parent / "fixtures" / "simclr_loss_curves.json"
STEPS = 50
#: The fixture was written with 2 CPU threads (this project's machines have 2 cores); CPU kernels split
#: their sums by thread, so the last bits of a curve depend on the thread count.
CURVE_THREADS = 2

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def quickstart_recipe() -> dict[str, Any]:
    """The shipped quickstart, pretraining only, 50 steps, the loss of every step logged."""
    data = tomllib.loads((ROOT / "recipes" / "quickstart.toml").read_text())
    data.setdefault("method", {"type": "simclr"})
    data["stages"] = [
        data["stages"][0] | {"max_steps": STEPS, "log_every_steps": 1, "checkpoint_every_steps": STEPS}
    ]
    return data


def fixture_recipe() -> dict[str, Any]:
    """The quickstart in float32 on the committed fixture, with every SimCLR augmentation."""
    data = quickstart_recipe()
    data["run"] = data["run"] | {"precision": "no", "device": "cpu"}
    data["data"] = {"type": "fashion_mnist", "root": str(FIXTURE_DATA)}
    data["augmentations"] = [
        {"type": "random_resized_crop", "size": 28, "scale": [0.2, 1.0]},
        {"type": "horizontal_flip"},
        {"type": "color_jitter", "strength": 0.5, "p": 0.8},
        {"type": "random_grayscale", "p": 0.2},
        {"type": "gaussian_blur", "p": 0.5},
        {"type": "solarize", "p": 0.2},
    ]
    data["stages"] = [data["stages"][0] | {"batch_size": 16, "epochs": 13}]  # 4 steps an epoch
    return data


RECIPES = {"quickstart": quickstart_recipe, "fixture": fixture_recipe}


def loss_curve(recipe_data: dict[str, Any], run_dir: Path) -> list[float]:
    """Run the recipe's pretrain stage in ``run_dir``; the logged loss of each step."""
    from contrastive_core import Registry, get_plugin_manager, validate_recipe
    from contrastive_core.engine import run_recipe

    registry = Registry.from_plugin_manager(get_plugin_manager())
    recipe = validate_recipe(recipe_data, registry=registry)
    run_recipe(recipe, registry=registry, run_dir=run_dir, console=Console(quiet=True))
    return [record["loss"] for record in read_metrics(run_dir / "pretrain" / "metrics.jsonl")]


def main() -> None:
    torch.set_num_threads(CURVE_THREADS)
    curves = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, make in RECIPES.items():
            curves[name] = loss_curve(make(), Path(scratch) / name)
            print(name, curves[name][:3], "...", curves[name][-1])
    CURVES.parent.mkdir(parents=True, exist_ok=True)
    CURVES.write_text(json.dumps(curves, indent=1) + "\n")


if __name__ == "__main__":
    main()
