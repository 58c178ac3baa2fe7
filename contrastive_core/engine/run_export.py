"""``contrastive export``: a run's exported encoder as a folder to publish, for torchvision, timm or this library.

The folder holds the weights in the chosen format, the run's resolved recipe (``recipe.toml``), a model
card (``README.md``: the recipe in brief, the results, the loading code; :mod:`..reports.model_card`)
and ``export.json`` (what was exported from where, which also marks the folder as an export that a
later ``--force`` may replace). Formats:

* ``torchvision`` / ``timm``: ``model.safetensors`` keyed as that library's network, for encoders that
  are one (:meth:`~contrastive_core.Encoder.external_models`): a ResNet for torchvision, any ``timm``
  encoder or ResNet for timm. Other encoders are refused, naming the formats they have;
* ``folder``: this library's ``encoder.safetensors`` and ``encoder.json``, copied byte for byte, for
  :func:`~contrastive_core.engine.load_encoder`. Every encoder has it.

The encoder's files are checked against the SHA-256 its stage recorded when it finished, so a file
changed since is not published as that run's. The folder is written whole under a temporary name and
then renamed (:func:`~contrastive_core.run_directory.write_directory_atomic`): it is never half-written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import save

from ..components.encoder import Encoder
from ..errors import OPTIONAL_COMPONENTS, ContrastiveError
from ..registration.registry import Registry
from ..reports.model_card import ExportedEncoder, model_card
from ..reports.report import read_run
from ..run_directory.atomic import write_directory_atomic
from ..run_directory.names import ENCODER_CONFIG_FILE, ENCODER_WEIGHTS_FILE, STAGE_DONE_FILE
from ..run_directory.records import RunRecordError, read_json_record
from .encoder_export import load_encoder

#: The ``--format`` choices, in the order the help lists them.
EXPORT_FORMATS = ("torchvision", "timm", "folder")

#: The files of an export folder besides the weights.
EXPORT_MARKER = "export.json"
RECIPE_COPY = "recipe.toml"
MODEL_CARD = "README.md"
#: The weights of the torchvision and timm formats (the file name model hubs look for).
MODEL_WEIGHTS = "model.safetensors"

#: ``export.json``'s ``"format"``: names its layout and marks the folder as an export.
MARKER_FORMAT = "contrastive encoder export 1"


class ExportError(ContrastiveError):
    """A run, stage, format or output folder that ``contrastive export`` cannot use; says why."""


@dataclass(frozen=True)
class RunExport:
    """An export folder that was written: which stage's encoder, in which format, with which files;
    ``other_stages``: the further stages of the run that exported an encoder (``--stage`` picks one)."""

    directory: Path
    stage: str
    export_format: str
    encoder: str
    files: list[str]
    other_stages: list[str] = field(default_factory=list)


def default_export_directory(run_dir: Path, stage: str, export_format: str) -> Path:
    """Where an export goes without ``--out``: ``RUN_DIR/export-<stage>-<format>``."""
    return Path(run_dir) / f"export-{stage}-{export_format}"


def export_run(
    run_dir: str | Path,
    export_format: str,
    *,
    registry: Registry,
    out: str | Path | None = None,
    stage: str | None = None,
    force: bool = False,
) -> RunExport:
    """Export the encoder of ``run_dir``'s stage ``stage`` (default: the first stage that exported one)
    in ``export_format`` into ``out`` (default :func:`default_export_directory`); see the module
    docstring. An existing ``out`` is refused unless ``force``, and even then it must be an earlier
    export (or empty): ``--force`` replaces exports, nothing else."""
    run_dir = Path(run_dir)
    if export_format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {export_format!r}; formats: {', '.join(EXPORT_FORMATS)}")
    run = read_run(run_dir)
    if run.problems:
        raise ExportError(
            f"{run_dir}: its records are damaged, so its model card would be wrong: {'; '.join(run.problems)}"
        )
    exporters = _encoder_stages(run_dir, list(run.results))
    key = _chosen_stage(run_dir, exporters, stage)
    weights, config = exporters[key]
    encoder = load_encoder(weights, registry=registry).eval()
    out = Path(out) if out is not None else default_export_directory(run_dir, key, export_format)
    _check_replaceable(out, force)

    if export_format == "folder":
        files = {ENCODER_WEIGHTS_FILE: weights.read_bytes(), ENCODER_CONFIG_FILE: config.read_bytes()}
        loading_code = _folder_loading_code(encoder)
        install = _folder_install(encoder, registry)
    else:
        external = encoder.external_models().get(export_format)
        if external is None:
            available = ", ".join([*encoder.external_models(), "folder"])
            raise ExportError(
                f"the encoder of stage {key!r} ({_described(encoder)}) is no {export_format} network, so it "
                f"cannot be exported as {export_format} weights; its formats: {available}"
            )
        state = {
            name: tensor.detach().to("cpu").contiguous().clone()
            for name, tensor in external.state_dict.items()
        }
        files = {MODEL_WEIGHTS: save(state, metadata={"format": "pt"})}
        loading_code = _library_loading_code(external.build_code, encoder)
        install = f"`pip install {external.requirement} safetensors`"
    exported = ExportedEncoder(
        stage=key,
        export_format=export_format,
        loading_code=loading_code,
        install=install,
        encoder=_described(encoder),
        feature_dim=encoder.feature_dim,
        in_channels=getattr(encoder.params, "in_channels", None),
    )
    files[RECIPE_COPY] = run.resolved_recipe.encode("utf-8")
    files[MODEL_CARD] = model_card(run, exported).encode("utf-8")
    marker: dict[str, Any] = {
        "format": MARKER_FORMAT,
        "export_format": export_format,
        "run": run.name,  # not its path: the folder is made to be published
        "stage": key,
        "encoder": encoder.params.model_dump(mode="json", exclude={"init"}),
        "feature_dim": encoder.feature_dim,
        "sha256": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
    }
    files[EXPORT_MARKER] = (json.dumps(marker, indent=2) + "\n").encode("utf-8")
    write_directory_atomic(out, files, replace=force)
    return RunExport(
        directory=out,
        stage=key,
        export_format=export_format,
        encoder=_described(encoder),
        files=list(files),
        other_stages=[other for other in exporters if other != key],
    )


def _encoder_stages(run_dir: Path, finished: list[str]) -> dict[str, tuple[Path, Path]]:
    """The finished stages (in run order) whose ``stage.json`` lists an exported encoder: key -> (weights,
    config), each checked against the SHA-256 the stage recorded."""
    found = {}
    for key in finished:
        marker = run_dir / key / STAGE_DONE_FILE
        if not marker.is_file():
            continue
        try:
            done = read_json_record(marker)
        except RunRecordError as error:
            raise ExportError(str(error)) from None
        artifacts = done.get("artifacts") if isinstance(done.get("artifacts"), dict) else {}
        if "encoder" not in artifacts or "encoder_config" not in artifacts:
            continue
        paths = []
        for name in ("encoder", "encoder_config"):
            path = run_dir / key / str(artifacts[name])
            if not path.is_file():
                raise ExportError(f"{path} is missing ({marker} lists it as the stage's {name})")
            recorded = (done.get("checksums") or {}).get(name)
            if recorded is not None and _sha256(path) != recorded:
                raise ExportError(
                    f"{path} differs from the SHA-256 recorded in {marker} when stage {key!r} finished: it "
                    "was changed or damaged since, so it is not that run's encoder; not exporting it"
                )
            paths.append(path)
        found[key] = (paths[0], paths[1])
    return found


def _chosen_stage(run_dir: Path, exporters: dict[str, tuple[Path, Path]], stage: str | None) -> str:
    if not exporters:
        raise ExportError(
            f"{run_dir}: no finished stage exported an encoder (a pretrain stage does, when it finishes)"
        )
    if stage is None:
        return next(iter(exporters))
    if stage not in exporters:
        raise ExportError(
            f"--stage {stage}: {run_dir} has no finished stage {stage!r} with an exported encoder; "
            f"stages with one: {', '.join(exporters)}"
        )
    return stage


def _check_replaceable(out: Path, force: bool) -> None:
    """Refuse an existing ``out`` without ``force``, and with it anything but an earlier export or an
    empty folder: ``--force`` must not delete a run directory or a folder of other files."""
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise ExportError(f"{out} exists; choose another --out, or --force to replace that export")
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; --force replaces only an earlier export")
    if not any(out.iterdir()):
        return
    try:
        marker = read_json_record(out / EXPORT_MARKER)
    except RunRecordError:
        marker = {}
    if marker.get("format") != MARKER_FORMAT:
        raise ExportError(
            f"{out} exists and is not an export of contrastive (no {EXPORT_MARKER}); --force replaces only an "
            "earlier export, so delete or move this folder yourself, or choose another --out"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _described(encoder: Encoder) -> str:
    """``timm (resnet18)`` or ``resnet18``: the encoder's type, with its ``model`` when it names one."""
    model = getattr(encoder.params, "model", None)
    return f"{encoder.name} ({model})" if isinstance(model, str) else encoder.name


def _library_loading_code(build_code: str, encoder: Encoder) -> str:
    """The card's code for the torchvision and timm formats: build the network, load the weights."""
    return "\n".join(
        [
            "from safetensors.torch import load_file",
            build_code,
            "",
            f'model.load_state_dict(load_file("{MODEL_WEIGHTS}"))',
            "model.eval()",
            f"# h = model(images)  # {_shapes(encoder)}",
        ]
    )


def _shapes(encoder: Encoder) -> str:
    """``(B, 1, H, W) -> (B, 512)``: the encoder's input and output shapes, for a comment."""
    channels = getattr(encoder.params, "in_channels", "C")
    return f"(B, {channels}, H, W) float images -> h: (B, {encoder.feature_dim})"


def _folder_install(encoder: Encoder, registry: Registry) -> str:
    """What loading the folder format needs: this library, with the extra or the plugin distribution
    that provides the encoder type."""
    extra = OPTIONAL_COMPONENTS.get(("encoder", encoder.name))
    command = f"`pip install 'contrastive[{extra}]'`" if extra else "`pip install contrastive`"
    distribution = registry.registration("encoder", encoder.name).info.distribution
    if distribution not in (None, "contrastive"):
        command += f" and `pip install {distribution}` (the plugin with the encoder type {encoder.name!r})"
    return command


def _folder_loading_code(encoder: Encoder) -> str:
    return "\n".join(
        [
            "from contrastive_core.engine import load_encoder",
            "",
            f'model = load_encoder(".")  # this folder: {ENCODER_WEIGHTS_FILE} and {ENCODER_CONFIG_FILE}',
            "model.eval()",
            f"# h = model(images)  # {_shapes(encoder)}",
        ]
    )
