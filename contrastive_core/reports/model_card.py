"""The model card (``README.md``) of an exported encoder: what was trained how, its results, how to load it.

Written by ``contrastive export`` next to the weights, in the layout model hubs read: YAML front matter
(``library_name``, ``tags``, ``pipeline_tag``), then Markdown: the recipe in brief (every section's type
and settings; the whole resolved recipe is ``recipe.toml`` beside it), the results table of the run's
``results.json``, the code that loads the weights into the target library, and where the run came from.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from .report import RunRecords, format_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The model hub's ``library_name`` of each export format.
LIBRARY_NAMES = {"torchvision": "pytorch", "timm": "timm", "folder": "contrastive"}

#: The settings of a stage the card shows (how long it trained on how much).
STAGE_SETTINGS = ("type", "epochs", "max_steps", "batch_size")

#: Recipe sections holding one component, in the order the card lists them.
SECTIONS = (
    "method",
    "model.encoder",
    "model.head",
    "model.predictor",
    "loss",
    "optimizer",
    "scheduler",
    "data",
)


@dataclass(frozen=True)
class ExportedEncoder:
    """What the card says about the exported encoder: the run stage that exported it, the format, its
    loading code (Python statements that load the folder's weights into a network) and what that code
    needs installed (Markdown: the backquoted pip command), the encoder's description and
    the shape of its input and features."""

    stage: str
    export_format: str
    loading_code: str
    install: str
    encoder: str
    feature_dim: int
    in_channels: int | None


def model_card(run: RunRecords, exported: ExportedEncoder) -> str:
    """The ``README.md`` text for ``exported``, an encoder of the run ``run``."""
    recipe = _parsed(run.resolved_recipe)
    method = _table(recipe, "method").get("type", "self-supervised")
    data = _table(recipe, "data").get("type", "its dataset")
    tags = ["self-supervised-learning", "contrastive-learning", str(method), "image-feature-extraction"]
    lines = [
        "---",
        f"library_name: {LIBRARY_NAMES[exported.export_format]}",
        "tags:",
        *(f"- {tag}" for tag in dict.fromkeys(tags)),
        "pipeline_tag: image-feature-extraction",
        "---",
        "",
        f"# {run.name}: a {method} encoder ({exported.encoder}) pretrained on {data}",
        "",
        f"The encoder f of a self-supervised {method} run, exported by `contrastive export --format "
        f"{exported.export_format}` from its stage `{exported.stage}`. It maps images (B, "
        f"{exported.in_channels if exported.in_channels is not None else 'C'}, H, W) to representations h "
        f"(B, {exported.feature_dim}); it has no classifier.",
        "",
        "## Recipe",
        "",
        "| section | settings |",
        "| --- | --- |",
        *(f"| {name} | {_cell(_inline(table))} |" for name, table in _sections(recipe)),
    ]
    augmentations = _augmentations(recipe)
    if augmentations:
        lines.append(f"| augmentations | {_cell(augmentations)} |")
    stages = recipe.get("stages")
    if isinstance(stages, list):
        shown = [_inline(_brief(stage)) for stage in stages if isinstance(stage, dict)]
        lines.append(f"| stages | {_cell(', '.join(shown))} |")
    lines += [
        "",
        "The whole resolved recipe, every default filled in, is `recipe.toml`.",
        "",
        "## Results",
        "",
    ]
    lines += _results(run.results)
    lines += [
        "",
        "## Loading",
        "",
        f"Needs {exported.install}; run it in this folder:",
        "",
        f"```python\n{exported.loading_code}\n```",
        "",
        "Give it the images as the training views saw them (their size, channels and normalisation: the "
        "`normalize` op of the recipe's augmentations, if any).",
        "",
        "## Provenance",
        "",
        *_provenance(run.manifest),
    ]
    return "\n".join(lines) + "\n"


def _parsed(text: str) -> dict[str, Any]:
    try:
        parsed = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):  # the exporter refuses damaged runs before this
        return {}
    return parsed


def _table(recipe: dict[str, Any], dotted: str) -> dict[str, Any]:
    value: Any = recipe
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _sections(recipe: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, _table(recipe, name)) for name in SECTIONS if _table(recipe, name)]


def _inline(table: dict[str, Any]) -> str:
    """``nt_xent (temperature = 0.5)``: a component table's type, then its other settings."""
    settings = ", ".join(f"{key} = {_value(value)}" for key, value in table.items() if key != "type")
    kind = str(table.get("type", "?"))
    return f"{kind} ({settings})" if settings else kind


def _brief(stage: dict[str, Any]) -> dict[str, Any]:
    """A stage's type and its length settings only: a stage has dozens of settings, all in recipe.toml."""
    return {key: value for key, value in stage.items() if key in STAGE_SETTINGS}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return _inline(value) if "type" in value else json.dumps(value)
    if isinstance(value, float):
        return format(value, "g")
    return json.dumps(value)  # strings quoted, lists as [a, b]


def _augmentations(recipe: dict[str, Any]) -> str:
    """The augmentation lists: the shared one, or each view group's by name."""
    shared = recipe.get("augmentations")
    if isinstance(shared, list) and shared:
        return ", ".join(_inline(op) for op in shared if isinstance(op, dict))
    groups = recipe.get("views")
    if not isinstance(groups, list):
        return ""
    return "; ".join(
        f"{group.get('name', '?')}: "
        + ", ".join(_inline(op) for op in group.get("augmentations", []) if isinstance(op, dict))
        for group in groups
        if isinstance(group, dict)
    )


def _results(results: dict[str, dict[str, Any]]) -> list[str]:
    if not results:
        return ["The run recorded no results."]
    rows = ["| stage | metric | value |", "| --- | --- | ---: |"]
    for stage, metrics in results.items():
        for name, value in metrics.items():
            rows.append(f"| {_cell(stage)} | {_cell(name)} | {_cell(format_value(value))} |")
    return rows


def _provenance(manifest: dict[str, Any]) -> list[str]:
    git = manifest.get("git") if isinstance(manifest.get("git"), dict) else None
    items = [
        (
            "trained with",
            f"contrastive {manifest.get('contrastive', '?')}, torch {manifest.get('torch', '?')}",
        ),
        ("started", manifest.get("started_at")),
        ("command", " ".join(map(str, manifest.get("command_line") or [])) or None),
        (
            "git commit",
            f"{git.get('commit')}{' (with uncommitted changes)' if git.get('dirty') else ''}"
            if git
            else None,
        ),
    ]
    return [f"- {label}: {_cell(str(value))}" for label, value in items if value]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, on one line."""
    return text.replace("|", "\\|").replace("\n", " ")
