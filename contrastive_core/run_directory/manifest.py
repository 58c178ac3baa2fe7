"""``manifest.json``: what produced a run (versions, plugins, git commit, command line, start time)."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..registration.registry import Registry
from ..version import __version__


def build_manifest(
    registry: Registry, *, recipe_path: Path | None, command_line: list[str]
) -> dict[str, Any]:
    import torch

    return {
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
