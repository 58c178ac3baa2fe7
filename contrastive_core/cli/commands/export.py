"""``contrastive export RUN_DIR --format torchvision|timm|folder``: a run's encoder, ready to publish.

Writes a folder with the encoder's weights in that format, the resolved recipe and a model card
(``README.md``: recipe, results, loading code); see :mod:`contrastive_core.engine.run_export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..arguments import registry_from_args

#: The formats (the engine's ``EXPORT_FORMATS``, repeated here: the parser must not import torch).
FORMATS = ("torchvision", "timm", "folder")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser(
        "export",
        parents=[common],
        help="export a run's encoder for torchvision, timm or contrastive, with a model card",
        description="Write a run's pretrained encoder as a folder to publish (e.g. on a model hub): its "
        "weights as torchvision's or timm's network (model.safetensors, with that library's key names) or "
        "in this library's own format (encoder.safetensors and encoder.json), the resolved recipe "
        "(recipe.toml) and a model card (README.md) with the recipe, the results and the code that loads "
        "the weights. A format the encoder is not (torchvision for a small_cnn) is refused.",
    )
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory (the --out of run)")
    export.add_argument(
        "--format",
        dest="export_format",
        required=True,
        choices=FORMATS,
        help="torchvision: a ResNet's weights for torchvision.models; timm: for timm.create_model(..., "
        "num_classes=0); folder: for contrastive's load_encoder",
    )
    export.add_argument(
        "--out", type=Path, metavar="DIR", help="the folder to write (default: RUN_DIR/export-STAGE-FORMAT)"
    )
    export.add_argument(
        "--stage",
        metavar="KEY",
        help="the stage whose exported encoder to take (default: the first that exported one, e.g. pretrain)",
    )
    export.add_argument(
        "--force", action="store_true", help="replace the --out folder if it holds an earlier export"
    )
    export.set_defaults(handler=run_export_command)


def run_export_command(args: argparse.Namespace, console: Console) -> int:
    from ...engine.run_export import export_run

    exported = export_run(
        args.run_dir,
        args.export_format,
        registry=registry_from_args(args),
        out=args.out,
        stage=args.stage,
        force=args.force,
    )
    console.print(
        Text(
            f"exported the encoder of stage {exported.stage!r} ({exported.encoder}) as {exported.export_format} "
            f"to {exported.directory}: {', '.join(exported.files)}"
        ),
        soft_wrap=True,
    )
    if exported.other_stages:
        console.print(
            Text(
                f"other stages with an exported encoder (--stage): {', '.join(exported.other_stages)}",
                style="dim",
            ),
            soft_wrap=True,
        )
    return 0
