"""Where an evaluation stage's encoder comes from, and the same architecture at random initialisation.

The ``encoder`` param of an evaluation stage is either

* the key of a preceding stage whose artifacts hold an exported encoder (``"pretrain"``);
* a filesystem path to an exported encoder (a directory with ``encoder.safetensors`` and
  ``encoder.json``, or the ``.safetensors`` file itself);
* unset: the nearest preceding stage that exported an encoder, and when there is none, the recipe's
  ``[model.encoder]``: initialised from its ``init`` file when it names one (weights trained
  elsewhere, a torchvision or timm checkpoint), else at random initialisation (reported on the
  console, since it is then no pretrained encoder that gets evaluated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import torch

from contrastive_core import ComponentParams, Encoder, Registry, StageContext, build
from contrastive_core.engine import initialise_encoder, load_encoder
from contrastive_core.errors import ContrastiveError
from contrastive_core.recipes import stage_keys
from contrastive_core.run_directory import ENCODER_WEIGHTS_FILE

ENCODER_ARTIFACT = "encoder"


class EncoderSourceError(ContrastiveError):
    """An evaluation stage's encoder reference names nothing usable."""


@dataclass(frozen=True)
class EncoderSource:
    """An encoder (on the CPU) and, for the console, where it came from."""

    encoder: Encoder
    description: str
    pretrained: bool


def random_init_like(
    encoder_params: ComponentParams | Mapping[str, Any], registry: Registry, seed: int
) -> Encoder:
    """A new encoder with ``encoder_params`` (the params of an encoder component), initialised from
    ``seed``. Seeded like the pretrain stage (``torch.manual_seed(seed)`` right before building), so for
    the recipe's own encoder and seed it holds exactly the weights pretraining started from. The global
    random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build("encoder", encoder_params, registry=registry)


def resolve_encoder(
    reference: str | None, context: StageContext, *, param: str = "encoder", random_fallback: bool = True
) -> EncoderSource:
    """The encoder ``reference`` names (see the module docstring); ``param`` is the param's name for
    messages. Without ``random_fallback`` an unresolvable reference is an error."""
    where = f"stages[{context.index}].{param}"
    keys = stage_keys(context.recipe)
    exported = {
        key: artifacts[ENCODER_ARTIFACT]
        for key, artifacts in context.artifacts.items()
        if key in keys[: context.index] and ENCODER_ARTIFACT in artifacts
    }
    if reference is None:
        if exported:
            key = max(exported, key=keys.index)  # the nearest preceding one
            return _load(exported[key], context, f"exported by stage {key!r} ({Path(exported[key]).parent})")
        if not random_fallback:
            raise EncoderSourceError(f"{where}: required (a stage key or an exported encoder directory)")
        return _random_recipe_encoder(context, where)
    if reference in keys:
        position = keys.index(reference)
        if position >= context.index:
            raise EncoderSourceError(
                f"{where} = {reference!r}: that stage {'is this one' if position == context.index else 'runs later'}; "
                f"name a stage before this one. {_exporters(exported)}"
            )
        if reference not in exported:
            raise EncoderSourceError(
                f"{where} = {reference!r}: that stage exported no encoder. {_exporters(exported)}"
            )
        return _load(
            exported[reference],
            context,
            f"exported by stage {reference!r} ({Path(exported[reference]).parent})",
        )
    path = Path(reference).expanduser()
    if not path.exists():
        raise EncoderSourceError(
            f"{where} = {reference!r}: neither the key of a stage of this recipe nor an existing path "
            f"(looked for {path.resolve()}). {_exporters(exported)}"
        )
    return _load(path, context, f"loaded from {path}")


def _load(path: Path, context: StageContext, description: str) -> EncoderSource:
    encoder = load_encoder(path, registry=context.registry)
    _refuse_non_finite(encoder, Path(path) if Path(path).is_file() else Path(path) / ENCODER_WEIGHTS_FILE)
    return EncoderSource(encoder, description, pretrained=True)


def _refuse_non_finite(encoder: Encoder, weights: Path) -> None:
    """Stop before evaluating an encoder with NaN or infinite weights: every feature would be NaN, and
    the numbers (or the frozen-encoder check) would say nothing about the evaluation."""
    tensors = dict(chain(encoder.named_parameters(), encoder.named_buffers()))
    bad = [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and not bool(tensor.isfinite().all())
    ]
    if not bad:
        return
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise EncoderSourceError(
        f"{weights}: {len(bad)} of the encoder's {len(tensors)} tensors hold NaN or infinite values "
        f"({shown}), so every feature it computes is NaN and nothing can be evaluated. The training that "
        "exported it diverged (see the metrics.jsonl next to it), or the file was damaged: train it again "
        "with a lower learning rate, a higher temperature or grad_clip_norm, or export it again from an "
        "intact checkpoint."
    )


def _random_recipe_encoder(context: StageContext, where: str) -> EncoderSource:
    model = context.recipe.model
    if model is None or model.encoder is None:
        raise EncoderSourceError(
            f"{where}: no encoder to evaluate: no stage before this one exported one, the stage sets no "
            "`encoder` (a stage key or an exported encoder directory) and the recipe has no [model.encoder]"
        )
    encoder = random_init_like(model.encoder, context.registry, context.recipe.run.seed)
    init = getattr(model.encoder, "init", None)
    if init is not None:
        report = initialise_encoder(encoder, init, where="model.encoder.init")
        return EncoderSource(
            encoder,
            "\n".join(
                [
                    f"[model.encoder] ({model.encoder.type}) initialised from its init file {report.file}: "
                    "no preceding stage exported an encoder and the stage sets no `encoder`",
                    report.summary(),
                    *report.problems(),
                ]
            ),
            pretrained=True,
        )
    return EncoderSource(
        encoder,
        f"[model.encoder] ({model.encoder.type}) at RANDOM INITIALISATION (seed {context.recipe.run.seed}): "
        "no preceding stage exported an encoder and the stage sets no `encoder`",
        pretrained=False,
    )


def _exporters(exported: dict[str, Path]) -> str:
    if not exported:
        return "No stage before this one exported an encoder."
    return f"Stages before this one that exported an encoder: {', '.join(exported)}."
