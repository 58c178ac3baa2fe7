"""Initialising an encoder from a local weights file: the ``init`` field every encoder's params have.

The file's keys are matched to the encoder's in either of its two layouts: the exported one
(:meth:`~contrastive_core.Encoder.export_state_dict`, torchvision's or timm's key names for the encoders
wrapping their networks, so their released weights match) or the module's own ``state_dict``. A prefix
that wraps every key of the file (``module.`` of DataParallel, ``backbone.``, ``module.encoder_q.`` of
MoCo) is found by trying each leading one or two dotted parts of the file's keys and keeping the
layout and prefix that match the most tensors. The file's classifier (``fc.*``, ``head.*``,
``classifier.*`` keys that the encoder does not have) is dropped, as the encoder has no classifier.

Tensors the file lacks keep their random initialisation and tensors the encoder lacks are ignored:
both are reported (:class:`InitReport`), since a partial match is how a checkpoint of a slightly
different network loads. A tensor of another shape is an error, as is a file that matches nothing.

It is applied where a recipe's encoder table is built to be trained or evaluated as it is
(:func:`build_encoder`), never by :func:`~contrastive_core.engine.load_encoder`: an exported
encoder's own weights file replaces whatever it started from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..components.component import ComponentParams
from ..components.encoder import Encoder
from ..errors import ContrastiveError
from ..registration.build import build
from ..registration.registry import Registry
from .weights_file import WeightsFileError, read_state_dict, weights_file_path

#: First parts of the keys of a classifier on top of a backbone (torchvision ``fc``, timm ``head`` and
#: ``classifier``); such keys are dropped when the encoder has none of its own by that name.
CLASSIFIER_NAMES = ("fc", "head", "heads", "classifier")

#: How many of a kind of key a message lists before "and N more".
SHOWN = 4


class EncoderInitError(ContrastiveError):
    """An ``init`` weights file that cannot initialise the encoder; names the recipe key and the file."""


@dataclass(frozen=True)
class InitReport:
    """What :func:`initialise_encoder` loaded: ``loaded`` of the encoder's ``total`` tensors.

    ``found``: where in the file the state dict was (``'under "state_dict"'`` or ``""``); ``prefix``: the
    prefix removed from the file's keys; ``missing``: the encoder's tensors the file lacks (left at
    their random initialisation); ``unexpected``: the file's tensors the encoder lacks (ignored);
    ``dropped``: the file's classifier tensors.
    """

    where: str
    file: Path
    found: str
    prefix: str
    loaded: int
    total: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    dropped: tuple[str, ...]

    def summary(self) -> str:
        """One line: what was loaded from where."""
        how = [
            part for part in (self.found, f'prefix "{self.prefix}" removed' if self.prefix else "") if part
        ]
        line = f"{self.where}: loaded {self.loaded} of the encoder's {self.total} tensors from {self.file}"
        line += f" ({', '.join(how)})" if how else ""
        if self.dropped:
            line += f"; dropped its classifier ({_listed(self.dropped)})"
        return line

    def problems(self) -> list[str]:
        """A line for the missing and one for the unexpected tensors, if any."""
        lines = []
        if self.missing:
            lines.append(
                f"{self.where}: {len(self.missing)} tensors of the encoder are not in {self.file} and keep "
                f"their random initialisation: {_listed(self.missing)}"
            )
        if self.unexpected:
            lines.append(
                f"{self.where}: {len(self.unexpected)} tensors of {self.file} are not the encoder's and are "
                f"ignored: {_listed(self.unexpected)}"
            )
        return lines


def build_encoder(
    params: ComponentParams | Mapping[str, Any],
    registry: Registry,
    *,
    where: str,
    report: Callable[[str], None] = lambda text: None,
) -> Encoder:
    """The encoder ``params`` describe, initialised from its ``init`` file when it sets one.

    ``where``: the params' recipe key (``"model.encoder"``), for messages; ``report`` receives the
    :class:`InitReport`'s summary and problems, one line each.
    """
    encoder = build("encoder", params, registry=registry)
    init = getattr(encoder.params, "init", None)
    if init is not None:
        result = initialise_encoder(encoder, init, where=f"{where}.init")
        for line in [result.summary(), *result.problems()]:
            report(line)
    return encoder


def initialise_encoder(encoder: Encoder, init: str | Path, *, where: str) -> InitReport:
    """Load the weights file ``init`` into ``encoder`` (see the module docstring).

    ``where``: the recipe key of the setting (``"model.encoder.init"``). Raises
    :class:`EncoderInitError` naming it and the file when the file cannot be read, matches none of the
    encoder's tensors or holds one of another shape.
    """
    shown = f"{where} = {str(init)!r}"
    try:
        path = weights_file_path(Path(init).expanduser())
        state, found = read_state_dict(path)
    except WeightsFileError as error:
        raise EncoderInitError(f"{shown}: {error}") from None
    layouts = {"exported": encoder.export_state_dict(), "module": encoder.state_dict()}
    layout, prefix = _best_match(state, {name: set(tensors) for name, tensors in layouts.items()})
    target = layouts[layout]
    mapped = {key[len(prefix) :]: tensor for key, tensor in state.items() if key.startswith(prefix)}
    matched = [name for name in target if name in mapped]
    if not matched:
        raise EncoderInitError(
            f"{shown}: none of the {len(state)} tensors of {path} is one of the encoder's "
            f"({encoder.name}): the file has {_listed(list(state))}, the encoder "
            f"{_listed(list(layouts['exported']))}. Is it a checkpoint of this architecture?"
        )
    resized = [name for name in matched if mapped[name].shape != target[name].shape]
    if resized:
        first = resized[0]
        raise EncoderInitError(
            f"{shown}: {prefix}{first} is {list(mapped[first].shape)} in {path} but "
            f"{list(target[first].shape)} in the encoder ({encoder.name})"
            + (f", the first of {len(resized)} tensors of other shapes" if len(resized) > 1 else "")
            + ": the file holds another architecture or other settings (in_channels, cifar_stem, sizes)"
        )
    leftover = [name for name in mapped if name not in target]
    dropped = tuple(prefix + name for name in leftover if name.split(".")[0] in CLASSIFIER_NAMES)
    used = {prefix + name for name in matched} | set(dropped)
    unexpected = tuple(key for key in state if key not in used)
    # BatchNorm's batch counters are absent from older torchvision files and only matter with
    # momentum=None; listing one per BN layer would hide what is really missing.
    missing = tuple(
        name for name in target if name not in mapped and not name.endswith("num_batches_tracked")
    )
    # Every tensor of the layout, taken from the file where it has them, the encoder's own elsewhere: then
    # the load is strict, and the exported layout goes through the encoder's method that maps its keys.
    complete = {name: mapped.get(name, tensor) for name, tensor in target.items()}
    with torch.no_grad():
        if layout == "exported":
            encoder.load_exported_state_dict(complete)
        else:
            encoder.load_state_dict(complete, strict=True)
    return InitReport(
        where=where,
        file=path,
        found=found,
        prefix=prefix,
        loaded=len(matched),
        total=len(target),
        missing=missing,
        unexpected=unexpected,
        dropped=dropped,
    )


def _best_match(state: Mapping[str, torch.Tensor], layouts: Mapping[str, set[str]]) -> tuple[str, str]:
    """The (layout, prefix) under which the most keys of ``state`` name a tensor of the layout.

    Prefixes tried: none, and the first one and two dotted parts of every key. Ties go to the earlier
    layout (the exported one) and then to the shorter prefix.
    """
    prefixes = {""}
    for key in state:
        parts = key.split(".")
        prefixes.update(".".join(parts[:count]) + "." for count in (1, 2) if len(parts) > count)
    best = (-1, "", "")
    for layout, names in layouts.items():
        for prefix in sorted(prefixes, key=lambda text: (len(text), text)):
            count = sum(1 for key in state if key.startswith(prefix) and key[len(prefix) :] in names)
            if count > best[0]:
                best = (count, layout, prefix)
    return best[1], best[2]


def _listed(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
