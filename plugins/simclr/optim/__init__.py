"""Optimisation components of the SimCLR plugin set: LARS, SGD and AdamW optimizers, warmup-cosine schedule.

The optimizers share two rules from SimCLR (Chen et al., 2020, Appendix B.1): the learning rate is given
per 256 images and scaled with the global batch size (:mod:`.lr_scaling`), and BatchNorm parameters and
biases are exempt from weight decay (and from LARS adaptation) (:mod:`.param_groups`).
"""

from .adamw import AdamWOptimizer
from .lars_component import LARSOptimizer
from .sgd import SGDOptimizer
from .warmup_cosine import WarmupCosine

OPTIMIZERS = [LARSOptimizer, SGDOptimizer, AdamWOptimizer]
SCHEDULERS = [WarmupCosine]

__all__ = ["OPTIMIZERS", "SCHEDULERS", "AdamWOptimizer", "LARSOptimizer", "SGDOptimizer", "WarmupCosine"]
