"""``manifest.json``: what produced a run (versions, plugins, git commit, command line, start time).

It is also what marks a folder as a run directory: its ``"format"`` is :data:`MANIFEST_FORMAT`, a value
only this project writes. ``contrastive run`` writes into, and ``--fresh`` clears, only an empty folder
or one whose ``manifest.json`` parses and carries that value (:func:`is_run_directory`): a web app's
``manifest.json``, or any other file of that name, does not make a folder a run.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..version import __version__
from .names import MANIFEST_FILE

if TYPE_CHECKING:  # the registry imports torch; a manifest is read without it
    from ..registration.registry import Registry

#: The manifest's ``"format"``: names the file's layout and marks its folder as a run directory.
MANIFEST_FORMAT = "contrastive run directory, manifest 1"


def build_manifest(
    registry: Registry, *, recipe_path: Path | None, command_line: list[str]
) -> dict[str, Any]:
    import torch

    return {
        "format": MANIFEST_FORMAT,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command_line": command_line,
        "recipe": str(recipe_path) if recipe_path else None,
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "contrastive": __version__,
        "plugins": [
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
            }
            for info in registry.plugins
            if info.error is None and not info.blocked
        ],
        "git": git_state(recipe_path.parent if recipe_path else Path.cwd()),
    }


def git_state(directory: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git checkout holding ``directory``, or None outside one."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def is_run_directory(directory: Path) -> bool:
    """Whether ``directory`` holds a run: its ``manifest.json`` is a JSON object of :data:`MANIFEST_FORMAT`."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT
