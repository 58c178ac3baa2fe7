"""``python -m contrastive_core.cli ...``: the ``contrastive`` command (the form launchers such as torchrun need)."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
