"""The recipe of the run that the kill and write-failure tests interrupt.

``pretrain``: 3 epochs x 4 steps of 16 images, a checkpoint after every step, the 2 latest kept
(tiny_recipe's settings, on CPU with ``run.deterministic = true``); then a kNN evaluation of the
exported encoder, so that a kill between stages and in the last stage is covered too.
"""

from __future__ import annotations

from tests.engine.recipes import tiny_recipe

KILL_RECIPE = (
    tiny_recipe(epochs=3)
    + """
[[stages]]
type = "knn_eval"
k = 5
num_workers = 0
"""
)
