"""The limits of ``contrastive preview``: how many images, views and pixels one grid may hold, so a
typo in ``--n`` or ``--scale`` is refused before anything large is allocated."""

from __future__ import annotations

MAX_IMAGES = 1024
MAX_VIEWS = 64
MAX_SCALE = 64
#: The most images (dataset images and views together) one grid shows.
MAX_CELLS = 2048
