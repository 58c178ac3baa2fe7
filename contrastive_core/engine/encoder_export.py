"""Exported encoders: ``encoder.safetensors`` plus ``encoder.json``, and loading them back.

``encoder.safetensors`` holds the encoder's weights only (safetensors: no code can hide in it); for the
ResNet encoders these are plain torchvision ResNet keys, so ``torchvision.models.resnet50()`` loads them
(without its ``fc`` layer). ``encoder.json`` records the encoder's recipe params so
:func:`load_encoder` can rebuild it through the registry, once the encoder those params describe is
shown to match the weights file's header (:mod:`.encoder_fit`): the params are as untrusted as the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save

from ..components.encoder import Encoder
from ..errors import ContrastiveError
from ..registration.build import build
from ..registration.registry import Registry
from ..run_directory.atomic import write_atomic, write_json_atomic
from ..run_directory.names import ENCODER_CONFIG_FILE, ENCODER_WEIGHTS_FILE
from .encoder_fit import WeightsMismatchError, build_fitting_encoder, weights_header

FORMAT = "contrastive-encoder"
VERSION = 1


class EncoderFileError(ContrastiveError):
    """An exported encoder that is missing or unreadable."""


def export_encoder(encoder: Encoder, directory: str | Path) -> dict[str, Path]:
    """Write ``encoder.safetensors`` and ``encoder.json`` into ``directory``; returns both paths."""
    directory = Path(directory)
    state = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in encoder.export_state_dict().items()
    }
    write_atomic(directory / ENCODER_WEIGHTS_FILE, lambda file: file.write(save(state)))
    config: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        # Not the init file it started from: this weights file replaces it (and a local path of the
        # machine that trained it means nothing where the encoder is loaded).
        "encoder": encoder.params.model_dump(mode="json", exclude={"init"}),
        "feature_dim": encoder.feature_dim,
    }
    write_json_atomic(directory / ENCODER_CONFIG_FILE, config)
    return exported_files(directory)


def exported_files(directory: str | Path) -> dict[str, Path]:
    """The artifact paths of an encoder exported into ``directory``."""
    return {
        "encoder": Path(directory) / ENCODER_WEIGHTS_FILE,
        "encoder_config": Path(directory) / ENCODER_CONFIG_FILE,
    }


def load_encoder(path: str | Path, *, registry: Registry | None = None, map_location: str = "cpu") -> Encoder:
    """Rebuild an exported encoder from its directory (or its ``encoder.safetensors`` path)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    weights, config_file = directory / ENCODER_WEIGHTS_FILE, directory / ENCODER_CONFIG_FILE
    for needed in (weights, config_file):
        if not needed.is_file():
            raise EncoderFileError(
                f"no exported encoder at {directory}: {needed.name} is missing (looked for {needed})"
            )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise EncoderFileError(f"{config_file} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise EncoderFileError(f"{config_file} is not a contrastive encoder config (format {found!r})")
    if config.get("version") != VERSION:
        raise EncoderFileError(
            f"{config_file} has format version {config.get('version')!r}; this version of contrastive reads "
            f"version {VERSION}"
        )
    if not isinstance(config.get("encoder"), dict):
        raise EncoderFileError(f"{config_file} has no 'encoder' table with the encoder's type and params")
    try:
        shapes = weights_header(weights)
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise EncoderFileError(f"cannot read {weights}: {error}") from None
    try:
        # Through the registry by name: the file can only choose among installed encoders. Built only
        # once a meta-device build matches the weights' header: the params are as untrusted as the file.
        encoder = build_fitting_encoder(
            lambda: build("encoder", config["encoder"], registry=registry), shapes
        )
    except ContrastiveError as error:
        raise EncoderFileError(f"{config_file} describes an encoder that cannot be built: {error}") from None
    except WeightsMismatchError as error:
        raise EncoderFileError(f"{weights} does not match the encoder in {config_file}: {error}") from None
    try:
        state = load_file(str(weights), device=map_location)
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise EncoderFileError(f"cannot read {weights}: {error}") from None
    try:
        encoder.load_exported_state_dict(state)
    except RuntimeError as error:
        raise EncoderFileError(f"{weights} does not match the encoder in {config_file}: {error}") from None
    return encoder
