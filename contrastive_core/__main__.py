"""``python -m contrastive_core ...``: the ``contrastive`` command, for environments without its script."""

from __future__ import annotations

import sys

from .cli.main import main

sys.exit(main())
