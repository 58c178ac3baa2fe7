"""Parameters held fixed for the first optimizer steps of training, by cancelling their gradients.

Some methods keep part of the model still at the start of training while the rest organises itself:
SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments",
implementation details) freezes its prototypes during the first epoch, and DINO (Caron et al. 2021,
"Emerging Properties in Self-Supervised Vision Transformers") keeps the last layer of its head fixed
during the first epoch; both to stabilise early training.

:class:`FrozenForSteps` does it by **cancelling the gradients** of those parameters after backward and
before the optimizer step: it sets ``parameter.grad = None``. PyTorch optimizers skip a parameter whose
``grad`` is None entirely, so the parameter does not move at all, bit for bit, and gets no optimizer
state. A zero gradient is not enough: SGD adds the weight decay ``wd * theta`` to the gradient and
applies its momentum buffer, LARS does the same, and AdamW decays the weights directly, so a parameter
with a zero gradient still moves.

It does not toggle ``requires_grad``: DistributedDataParallel decides when it is built which parameters
it all-reduces (one frozen then would never be synchronised once unfrozen; one frozen later leaves the
reducer waiting for a gradient that never comes), and an optimizer built once from the parameters that
required grad at the time would never train a parameter unfrozen later. With DDP the gradient is still
computed and all-reduced during backward, identically on every process, then dropped on every process
alike.

Order in a step: backward -> ``cancel_gradients(step)`` -> gradient clipping / unscaling -> optimizer
step (clipping ignores None gradients, so the frozen parameters do not count toward the norm).

Usage in a method plugin (SwAV-style prototypes frozen for the first epoch)::

    from contrastive_core.components import FrozenForSteps


    class MySwAV(Method):
        def __init__(self, params, parts):
            super().__init__(params, parts)
            self.prototypes = nn.Linear(128, 3000, bias=False)  # (B, 128) -> (B, 3000) scores

        def frozen_parts(self, steps_per_epoch):  # called once, before the first step
            steps = round(self.params.freeze_prototypes_epochs * steps_per_epoch)
            return [FrozenForSteps(self.prototypes, steps=steps)]

    # The engine, or a hand-written loop, after ``loss.backward()``:
    frozen_parts = method.frozen_parts(steps_per_epoch)  # once, before training
    ...
    for frozen in frozen_parts:
        frozen.cancel_gradients(step)  # step: optimizer steps already taken (host int)
    optimizer.step()
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from torch import nn

__all__ = ["FrozenForSteps"]


class FrozenForSteps:
    """``parameters`` receive no update during the first ``steps`` optimizer steps, then train normally.

    Args:
        parameters: an ``nn.Module`` (its parameters are read at every call, so replacing or converting
            its submodules later is fine) or an iterable of parameters (read once, here).
        steps: how many optimizer steps the parameters stay frozen for (>= 0; 0 never freezes).
    """

    def __init__(self, parameters: Iterable[nn.Parameter] | nn.Module, steps: int) -> None:
        self.steps = _check_count("steps", steps)
        if isinstance(parameters, nn.Module):
            self._module: nn.Module | None = parameters
            self._parameters: list[nn.Parameter] = []
        else:
            self._module = None
            self._parameters = list(parameters)
            for parameter in self._parameters:
                if not isinstance(parameter, nn.Parameter):
                    raise TypeError(
                        "FrozenForSteps needs an nn.Module or nn.Parameter objects, "
                        f"got {type(parameter).__name__}"
                    )

    @property
    def parameters(self) -> list[nn.Parameter]:
        """The parameters held fixed (read from the module now, when built from one)."""
        if self._module is not None:
            return list(self._module.parameters())
        return list(self._parameters)

    def frozen_at(self, step: int) -> bool:
        """Whether the optimizer step taken after ``step`` steps must leave the parameters alone."""
        return _check_count("step", step) < self.steps

    def cancel_gradients(self, step: int) -> None:
        """Set ``.grad = None`` on the parameters if ``step < steps``; a no-op from then on.

        ``step``: the number of optimizer steps already taken (a host int), i.e. 0 before the first one.
        Call after backward and before the optimizer step (and before gradient clipping).
        """
        if not self.frozen_at(step):
            return
        for parameter in self.parameters:
            parameter.grad = None

    def __repr__(self) -> str:
        return f"FrozenForSteps({len(self.parameters)} parameters, steps={self.steps})"


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a host int (a step count), got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)
