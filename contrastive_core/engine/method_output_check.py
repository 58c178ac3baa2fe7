"""The check of what a method's forward (or objective) returned: a ``MethodOutput`` with a usable loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..components.method import Method, MethodOutput
from ..errors import ContrastiveError


def check_method_loss(output: Any, method: Method) -> None:
    """What ``method.forward`` returned is a ``MethodOutput`` whose loss is a 0-d floating tensor with a
    gradient; otherwise a :class:`ContrastiveError` naming the method and its ``[loss]`` component."""
    name = f"method {type(method).name!r}"
    loss_component = getattr(method, "loss", None)
    if isinstance(loss_component, nn.Module) and hasattr(type(loss_component), "name"):
        name += f" (with loss {type(loss_component).name!r})"
    if not isinstance(output, MethodOutput):
        raise ContrastiveError(
            f"{name} returned {type(output).__name__} from forward, not a MethodOutput(loss, metrics)"
        )
    loss = output.loss
    if not isinstance(loss, torch.Tensor):
        raise ContrastiveError(
            f"{name} returned a loss of type {type(loss).__name__}; it must be a 0-d tensor"
        )
    if loss.ndim != 0:
        raise ContrastiveError(
            f"{name} returned a loss of shape {tuple(loss.shape)}; it must be 0-d (reduce it, e.g. with .mean())"
        )
    if not loss.is_floating_point():
        raise ContrastiveError(
            f"{name} returned a loss of dtype {loss.dtype}; it must be a floating-point tensor"
        )
    if not loss.requires_grad:
        raise ContrastiveError(
            f"{name} returned a loss without a gradient (detached, or computed under torch.no_grad()); "
            "training on it would change nothing"
        )
