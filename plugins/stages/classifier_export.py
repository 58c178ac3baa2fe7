"""A trained classifier on disk: its encoder as an exported encoder, plus its linear layer.

The ``finetune`` and ``semi_supervised`` stages write ``classifier/`` in their stage directory:
``encoder.safetensors`` and ``encoder.json`` (the fine-tuned encoder, readable by
:func:`contrastive_core.engine.load_encoder` like any exported encoder) and ``linear.safetensors``
(``weight`` (K, d) and ``bias`` (K,)). The ``distill`` stage loads it as its teacher.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save

from contrastive_core import Registry
from contrastive_core.engine import export_encoder, exported_files, load_encoder
from contrastive_core.errors import ContrastiveError
from contrastive_core.run_directory import write_atomic

from .classifier_training import EncoderClassifier

CLASSIFIER_DIR = "classifier"
LINEAR_FILE = "linear.safetensors"
#: The artifact names a stage that exports a classifier records (paths inside ``classifier/``).
CLASSIFIER_ARTIFACTS = ("classifier_encoder", "classifier_encoder_config", "classifier_linear")


class ClassifierFileError(ContrastiveError):
    """An exported classifier that is missing or does not fit together."""


def export_classifier(model: EncoderClassifier, directory: Path) -> dict[str, Path]:
    """Write ``model`` into ``directory`` (see the module docstring); returns the artifact paths."""
    export_encoder(model.encoder, directory)
    linear = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in model.classifier.state_dict().items()
    }
    write_atomic(directory / LINEAR_FILE, lambda file: file.write(save(linear)))
    return classifier_files(directory)


def classifier_files(directory: Path) -> dict[str, Path]:
    """The artifact paths of a classifier exported into ``directory``."""
    files = exported_files(directory)
    return {
        "classifier_encoder": files["encoder"],
        "classifier_encoder_config": files["encoder_config"],
        "classifier_linear": directory / LINEAR_FILE,
    }


def load_classifier(directory: Path, registry: Registry) -> EncoderClassifier:
    """The classifier exported into ``directory``, on the CPU."""
    encoder = load_encoder(directory, registry=registry)
    path = directory / LINEAR_FILE
    if not path.is_file():
        raise ClassifierFileError(
            f"no exported classifier at {directory}: {LINEAR_FILE} is missing (looked for {path})"
        )
    try:
        state = load_file(str(path))
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise ClassifierFileError(f"cannot read {path}: {error}") from None
    weight = state.get("weight")
    if (
        weight is None
        or weight.ndim != 2
        or weight.shape[1] != encoder.feature_dim
        or set(state) != {"weight", "bias"}
    ):
        shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
        raise ClassifierFileError(
            f"{path} does not fit the encoder next to it: expected weight (K, {encoder.feature_dim}) and bias "
            f"(K,), found {shapes}"
        )
    model = EncoderClassifier(encoder, weight.shape[0])
    model.classifier.load_state_dict(state, strict=True)
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise ClassifierFileError(
            f"{directory}: the classifier holds NaN or infinite values ({', '.join(bad[:3])})"
        )
    return model
