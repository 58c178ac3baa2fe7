"""Reading a local weights file of any common layout into one flat state dict (name -> tensor).

What an encoder's ``init`` may point at: this library's exported encoder (``encoder.safetensors`` or its
folder), a ``.safetensors`` file (the Hugging Face hub's ``model.safetensors``), or a PyTorch pickle
(``.pth``, ``.pt``, ``.bin``, ``.ckpt``) holding a state dict, bare (torchvision's and timm's released
weights) or inside a training checkpoint under ``"state_dict"`` (timm's train.py, Lightning, MoCo),
``"model"`` (DeiT, MAE) or ``"teacher"`` (DINO). Pickles are read with ``torch.load(weights_only=True)``:
tensors and plain containers only, so a file cannot run code when it is read. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import ContrastiveError
from ..run_directory.names import ENCODER_WEIGHTS_FILE

#: Weights files looked for, in this order, when ``init`` names a folder: ours, then the hub's.
FOLDER_WEIGHTS = (ENCODER_WEIGHTS_FILE, "model.safetensors", "pytorch_model.bin")

#: Keys under which training checkpoints keep the network's state dict, in the order they are tried.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "teacher")


class WeightsFileError(ContrastiveError):
    """A weights file that cannot be read as a state dict; the message names it."""


def weights_file_path(path: Path) -> Path:
    """The weights file ``path`` names: itself, or for a folder the first of :data:`FOLDER_WEIGHTS` in it."""
    if path.is_dir():
        for name in FOLDER_WEIGHTS:
            if (path / name).is_file():
                return path / name
        raise WeightsFileError(
            f"{path} is a folder without a weights file (looked for {', '.join(FOLDER_WEIGHTS)})"
        )
    if not path.is_file():
        raise WeightsFileError(f"no such weights file: {path} (looked for {path.resolve()})")
    return path


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in the weights file ``path`` (see :func:`weights_file_path`), on the CPU, and how it
    was found (``""``, or ``'under "state_dict"'`` for a checkpoint that wraps it)."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu"), ""
        except Exception as error:  # noqa: BLE001 - safetensors raises several types for damaged files
            raise WeightsFileError(f"cannot read {path} as safetensors: {error}") from None
    try:
        # timm's train.py stores its argparse.Namespace next to the weights; rebuilding one only sets
        # attributes, so it is allowed among the plain types weights_only reads.
        with torch.serialization.safe_globals([argparse.Namespace]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise WeightsFileError(f"cannot read {path}: {error.strerror or error}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise WeightsFileError(
            f"cannot read {path} as a PyTorch weights file with weights_only=True (tensors and plain "
            f"containers only): {str(error).splitlines()[0]}. Save the state dict alone, e.g. "
            "torch.save(checkpoint['state_dict'], 'weights.pth'), or as .safetensors"
        ) from None
    return _unwrap(loaded, path)


def _unwrap(loaded: object, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a loaded pickle: the mapping itself when it holds tensors only, else the mapping
    under the first of :data:`WRAPPER_KEYS` it has (one level of wrapping is undone at a time)."""
    found: list[str] = []
    while isinstance(loaded, Mapping):
        if loaded and all(isinstance(value, torch.Tensor) for value in loaded.values()):
            how = "under " + " / ".join(f'"{key}"' for key in found) if found else ""
            return {str(key): value for key, value in loaded.items()}, how
        key = next((key for key in WRAPPER_KEYS if isinstance(loaded.get(key), Mapping)), None)
        if key is None:
            break
        found.append(key)
        loaded = loaded[key]
    if not isinstance(loaded, Mapping):
        raise WeightsFileError(f"{path} holds a {type(loaded).__name__}, not a state dict (names -> tensors)")
    keys = ", ".join(repr(key) for key in list(loaded)[:8]) or "none"
    raise WeightsFileError(
        f"{path} holds no state dict: its top-level keys are {keys}; a state dict maps names to tensors, "
        f"and a checkpoint keeps one under one of {', '.join(repr(key) for key in WRAPPER_KEYS)}"
    )
