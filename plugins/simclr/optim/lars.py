"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg, 2017, arXiv:1708.03888), as SimCLR uses it.

SimCLR (Chen et al., 2020, Sec. 2.2 and Appendix B.1) trains with LARS at batch sizes up to 8192 because
plain SGD with momentum becomes unstable at the learning rates such batches need. LARS gives every
parameter tensor ("layer") its own step size, proportional to ``||w|| / ||g||``, so no layer moves by
more than a fixed fraction of its own norm per step.

For one parameter tensor w with gradient g, weight decay wd, trust coefficient eta, momentum m and
learning rate lr, one step is::

    g' = g + wd * w                                     (no weight decay in excluded groups)
    trust = eta * ||w|| / (||g|| + wd * ||w||)          if ||w|| > 0 and ||g|| > 0, else 1
    g' = trust * g'                                     (no trust ratio in excluded groups)
    buf = m * buf + g'
    w = w - lr * buf

The trust ratio is You et al.'s local learning rate (their Algorithm 1, with beta = wd). That is
``momentum_form = "sgd"`` (the default): the learning rate multiplies the momentum buffer from outside,
as in ``torch.optim.SGD``, and momentum accumulates the already-scaled gradient.

``momentum_form = "reference"`` is the update of SimCLR's TensorFlow code (``lars_optimizer.py`` in
google-research/simclr, ``classic_momentum=True``)::

    g' = g + wd * w
    trust = eta * ||w|| / ||g'||                        if ||w|| > 0 and ||g'|| > 0, else 1
    buf = m * buf + lr * trust * g'
    w = w - buf

It differs from the default in two ways:

* lr is folded into the buffer. With a constant lr the two are the same update; under warmup/cosine a
  change of lr in the default form acts at once on the whole buffer, in the reference form only on the
  new gradient, so they differ most where lr changes fastest relative to the momentum horizon of
  1 / (1 - m) = 10 steps. With a constant gradient under a 100-step linear warmup (lr_t = t/100 lr)
  the default's step is up to 1.59x the reference's (step 8), its distance travelled up to 1.56x
  (step 11); both forms agree again once lr is nearly constant.
* the trust ratio divides by ``||g + wd * w||`` instead of ``||g|| + wd * ||w||`` (equal when g and w are
  parallel, otherwise the reference's ratio is slightly larger).

The buffer of the reference form holds lr-scaled steps, so a checkpoint's buffers belong to its form;
the form is stored in every param group, and loading a state of the other form is refused.

The step never synchronises host and device: norms, the ``> 0`` tests and the ratio stay on the device
(``torch.where``), and the update runs as ``torch._foreach_*`` kernels over each group's tensors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

#: Where the learning rate enters: "sgd" outside the momentum buffer (torch.optim.SGD, You et al.), or
#: "reference" inside it, with the trust ratio over ||g + wd w|| (google-research/simclr).
MomentumForm = Literal["sgd", "reference"]


class LARS(torch.optim.Optimizer):
    """LARS with momentum and decoupled exclusion of some parameters from weight decay and adaptation.

    Args:
        params: parameters or param-group dicts. A group with ``lars_adaptation=False`` skips the trust
            ratio; a group with ``weight_decay=0`` skips weight decay (SimCLR excludes BatchNorm
            parameters and biases from both; see :mod:`.param_groups`).
        lr: learning rate (already scaled for the batch size).
        momentum: m in ``buf = m * buf + g'``; 0.9 in SimCLR.
        weight_decay: wd, L2 decay added to the gradient; 1e-6 in SimCLR.
        eta: trust coefficient; 0.001 in SimCLR and You et al.
        lars_adaptation: default for groups that do not set it.
        momentum_form: "sgd" (lr outside the momentum buffer) or "reference" (google-research/simclr's
            update, lr inside the buffer); see the module docstring.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        lars_adaptation: bool = True,
        momentum_form: MomentumForm = "sgd",
    ) -> None:
        if lr < 0:
            raise ValueError(f"LARS learning rate must be >= 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"LARS momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"LARS weight_decay must be >= 0, got {weight_decay}")
        if eta <= 0:
            raise ValueError(f"LARS eta must be > 0, got {eta}")
        if momentum_form not in ("sgd", "reference"):
            raise ValueError(f'LARS momentum_form must be "sgd" or "reference", got {momentum_form!r}')
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            eta=eta,
            lars_adaptation=lars_adaptation,
            momentum_form=momentum_form,
        )
        super().__init__(params, defaults)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by LARS; refused (ValueError) when its momentum buffers were accumulated in
        the other ``momentum_form``: they hold lr-scaled steps in one form and gradients in the other."""
        for saved, current in zip(state_dict["param_groups"], self.param_groups, strict=False):
            saved_form = saved.get("momentum_form", "sgd")
            if saved_form != current["momentum_form"]:
                raise ValueError(
                    f'the checkpoint\'s LARS state was built with momentum_form = "{saved_form}", this '
                    f'optimizer uses "{current["momentum_form"]}": its momentum buffers cannot be reused. '
                    "Set the recipe's [optimizer] momentum_form back, or start a new run."
                )
        super().load_state_dict(state_dict)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One LARS update of every parameter that has a gradient (see the module docstring)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in with_grad):
                raise RuntimeError("LARS does not support sparse gradients")
            # One foreach call per (device, dtype): foreach kernels and torch.stack need uniform tensors.
            for params in _by_device_and_dtype(with_grad):
                self._update(group, params)
        return loss

    def _update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        grads = [p.grad for p in params]
        weight_decay = group["weight_decay"]
        buffers = [self._momentum_buffer(p) for p in params]

        # A fresh list in every branch: the in-place ops below must never touch p.grad.
        if weight_decay != 0:
            updates = torch._foreach_add(grads, params, alpha=weight_decay)
        else:
            updates = torch._foreach_mul(grads, 1.0)

        reference = group["momentum_form"] == "reference"
        if group["lars_adaptation"]:
            if reference:
                trust_ratios = _reference_trust_ratios(params, updates, eta=group["eta"])
            else:
                trust_ratios = _trust_ratios(params, grads, eta=group["eta"], weight_decay=weight_decay)
            torch._foreach_mul_(updates, trust_ratios)

        torch._foreach_mul_(buffers, group["momentum"])
        if reference:  # buf = m buf + lr trust g'; w -= buf
            torch._foreach_add_(buffers, updates, alpha=group["lr"])
            torch._foreach_sub_(params, buffers)
        else:  # buf = m buf + trust g'; w -= lr buf
            torch._foreach_add_(buffers, updates)
            torch._foreach_add_(params, buffers, alpha=-group["lr"])

    def _momentum_buffer(self, param: torch.Tensor) -> torch.Tensor:
        # Starting from zeros makes the first step buf = g', the same as torch.optim.SGD's first step.
        state = self.state[param]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state["momentum_buffer"]


def _trust_ratios(
    params: list[torch.Tensor], grads: list[torch.Tensor], *, eta: float, weight_decay: float
) -> list[torch.Tensor]:
    """eta * ||w|| / (||g|| + wd * ||w||) per tensor, 1 where either norm is 0: 0-d tensors, on device."""
    weight_norms = torch.stack(torch._foreach_norm(params))  # (P,)
    grad_norms = torch.stack(torch._foreach_norm(grads))  # (P,)
    # A zero weight (e.g. a freshly zero-initialised layer) would get ratio 0 and never move; a zero
    # gradient would get eta / wd = 1000 times the decay step. Both fall back to the plain step.
    adapt = (weight_norms > 0) & (grad_norms > 0)
    denominator = torch.where(adapt, grad_norms + weight_decay * weight_norms, torch.ones_like(grad_norms))
    ratios = torch.where(adapt, eta * weight_norms / denominator, torch.ones_like(weight_norms))
    return list(ratios.unbind(0))


def _reference_trust_ratios(
    params: list[torch.Tensor], decayed_grads: list[torch.Tensor], *, eta: float
) -> list[torch.Tensor]:
    """eta * ||w|| / ||g + wd w|| per tensor, 1 where either norm is 0 (google-research/simclr's ratio):
    0-d tensors, on device. ``decayed_grads`` already hold g + wd w."""
    weight_norms = torch.stack(torch._foreach_norm(params))  # (P,)
    grad_norms = torch.stack(torch._foreach_norm(decayed_grads))  # (P,)
    adapt = (weight_norms > 0) & (grad_norms > 0)
    ratios = torch.where(adapt, eta * weight_norms / torch.where(adapt, grad_norms, 1.0), 1.0)
    return list(ratios.unbind(0))


def _by_device_and_dtype(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = defaultdict(list)
    for param in params:
        groups[(param.device, param.dtype)].append(param)
    return list(groups.values())
