"""LARS against a plain per-parameter reference written here with explicit loops and if-statements.

Reference update for one tensor w with gradient g (You et al., 2017; SimCLR, Chen et al., 2020, App. B.1):
g' = g + wd * w and g' *= eta * ||w|| / (||g|| + wd * ||w||) (ratio 1 if ||w|| or ||g|| is 0) unless w is
excluded (BatchNorm/LayerNorm parameters and biases); buf = m * buf + g'; w -= lr * buf.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from contrastive_plugins.simclr.optim.lars import LARS
from contrastive_plugins.simclr.optim.lars_component import LARSOptimizer, LARSOptimizerParams

MOMENTUM, WEIGHT_DECAY, ETA = 0.9, 1e-2, 0.001  # wd larger than SimCLR's 1e-6 so that it shows in 50 steps


class SmallNet(nn.Module):
    """conv + BN + linear + LayerNorm + biases, plus the corner cases a step must handle."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 8)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)
        self.zero_init = nn.Linear(8, 3, bias=False)  # ||w|| = 0 on the first step
        nn.init.zeros_(self.zero_init.weight)
        self.dead = nn.Parameter(torch.randn(5))  # used with weight 0: its gradient is exactly 0
        self.unused = nn.Parameter(torch.randn(2))  # never used: its gradient stays None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x))).flatten(1)
        h = self.ln(self.fc(h))
        return self.head(h) + self.zero_init(h) + 0.0 * self.dead.sum()


# Written out by name, independently of the module-type rule under test.
EXCLUDED_NAMES = {"conv.bias", "bn.weight", "bn.bias", "fc.bias", "ln.weight", "ln.bias", "head.bias"}


class ReferenceLARS:
    """One parameter at a time, Python floats for norms, if-statements for every rule."""

    def __init__(self, named_params: list[tuple[str, nn.Parameter]], excluded: set[str]) -> None:
        self.named_params = named_params
        self.excluded = excluded
        self.buffers: dict[str, torch.Tensor] = {}

    def step(self, lr: float) -> None:
        with torch.no_grad():
            for name, w in self.named_params:
                if w.grad is None:
                    continue
                g = w.grad.clone()
                if name not in self.excluded:
                    g = g + WEIGHT_DECAY * w
                    w_norm = math.sqrt(float((w * w).sum()))
                    g_norm = math.sqrt(float((w.grad * w.grad).sum()))
                    if w_norm > 0 and g_norm > 0:
                        trust = ETA * w_norm / (g_norm + WEIGHT_DECAY * w_norm)
                    else:
                        trust = 1.0
                    g = trust * g
                if name not in self.buffers:
                    self.buffers[name] = torch.zeros_like(w)
                self.buffers[name] = MOMENTUM * self.buffers[name] + g
                w -= lr * self.buffers[name]


def make_model(seed: int = 0) -> SmallNet:
    torch.manual_seed(seed)
    return SmallNet().double()


def lars_for(model: nn.Module, exclude: str, lr: float = 1.0) -> torch.optim.Optimizer:
    params = LARSOptimizerParams(
        lr=lr, lr_scaling="none", momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, exclude=exclude
    )
    return LARSOptimizer.from_params(params, model=model)


def backward_on_batch(model: nn.Module, step: int) -> None:
    generator = torch.Generator().manual_seed(step)
    x = torch.randn(6, 3, 4, 4, generator=generator, dtype=torch.float64)
    target = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    model.zero_grad(set_to_none=False)
    # zero_grad(set_to_none=False) leaves None for the never-used parameter, as autograd does.
    nn.functional.mse_loss(model(x), target).backward()


@pytest.mark.parametrize(
    ("exclude", "reference_excluded"), [("bn_and_bias", EXCLUDED_NAMES), ("none", set())]
)
def test_matches_the_reference_over_50_steps(exclude: str, reference_excluded: set[str]) -> None:
    model = make_model()
    reference_model = copy.deepcopy(model)
    optimizer = lars_for(model, exclude)
    reference = ReferenceLARS(list(reference_model.named_parameters()), reference_excluded)

    for step in range(50):
        # A changing learning rate, as under cosine decay: lr multiplies the whole buffer at each step.
        # (Larger rates make this small net diverge, and then rounding differences explode.)
        lr = 0.2 * (1 + math.cos(math.pi * step / 50)) / 2 + 0.01
        for group in optimizer.param_groups:
            group["lr"] = lr
        backward_on_batch(model, step)
        backward_on_batch(reference_model, step)
        optimizer.step()
        reference.step(lr)

    for (name, param), (_, expected) in zip(
        model.named_parameters(), reference_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(param, expected, rtol=1e-9, atol=1e-12, msg=name)
    # The run moved the parameters by more than rounding: the comparison is not vacuous. (BatchNorm
    # cancels the conv bias, so its gradient is ~0; "unused" has none.)
    initial = make_model()
    for name, param in model.named_parameters():
        if name not in ("unused", "conv.bias"):
            assert not torch.allclose(param, dict(initial.named_parameters())[name]), name


def test_one_step_excluded_and_regular_parameters() -> None:
    """From zero buffers, one step is w - lr * g for excluded tensors (no decay, no ratio) and
    w - lr * trust * (g + wd * w) for the others; ||w|| = 0 or ||g|| = 0 means trust = 1."""
    model = make_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = lars_for(model, "bn_and_bias", lr=0.5)
    backward_on_batch(model, step=0)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    after = dict(model.named_parameters())

    for name in EXCLUDED_NAMES:
        torch.testing.assert_close(after[name], before[name] - 0.5 * grads[name], rtol=1e-12, atol=1e-14)
    for name in ("conv.weight", "fc.weight", "head.weight"):
        w, g = before[name], grads[name]
        trust = ETA * w.norm() / (g.norm() + WEIGHT_DECAY * w.norm())
        assert 0 < trust < 1
        torch.testing.assert_close(
            after[name], w - 0.5 * trust * (g + WEIGHT_DECAY * w), rtol=1e-12, atol=1e-14
        )
    # Zero weight: trust 1 and no decay to add, so the plain gradient step.
    assert before["zero_init.weight"].abs().sum() == 0 and grads["zero_init.weight"].abs().sum() > 0
    torch.testing.assert_close(
        after["zero_init.weight"], -0.5 * grads["zero_init.weight"], rtol=1e-12, atol=0.0
    )
    # Zero gradient: trust 1 (not eta / wd = 0.1), so only the decay step.
    assert grads["dead"].abs().sum() == 0
    torch.testing.assert_close(after["dead"], before["dead"] * (1 - 0.5 * WEIGHT_DECAY), rtol=1e-12, atol=0.0)
    # No gradient at all: untouched, no state.
    assert torch.equal(after["unused"], before["unused"])
    assert after["unused"] not in optimizer.state


def test_trust_ratio_of_a_hand_computed_example() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))  # ||w|| = 5
    w.grad = torch.tensor([0.0, 2.0], dtype=torch.float64)  # ||g|| = 2
    LARS([w], lr=10.0, momentum=0.9, weight_decay=0.1, eta=0.01).step()
    trust = 0.01 * 5 / (2 + 0.1 * 5)  # = 0.02
    expected = torch.tensor([3.0, 4.0], dtype=torch.float64) - 10.0 * trust * torch.tensor(
        [0.3, 2.4], dtype=torch.float64
    )
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-14)


def test_state_dict_resume_continues_identically() -> None:
    model = make_model()
    optimizer = lars_for(model, "bn_and_bias")
    for step in range(5):
        backward_on_batch(model, step)
        optimizer.step()
    resumed_model = copy.deepcopy(model)
    resumed = lars_for(resumed_model, "bn_and_bias")
    resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    for step in range(5, 10):
        for m, opt in ((model, optimizer), (resumed_model, resumed)):
            backward_on_batch(m, step)
            opt.step()
    for param, other in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(param, other)


def test_closure_is_evaluated_with_grad_enabled() -> None:
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = LARS([w], lr=0.1)

    def closure() -> float:
        optimizer.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == pytest.approx(5.0)
    assert not torch.equal(w.detach(), torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "learning rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"eta": 0.0}, "eta"),
    ],
)
def test_rejects_invalid_hyperparameters(kwargs: dict, message: str) -> None:
    arguments = {"lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        LARS([nn.Parameter(torch.ones(2))], **arguments)


class ScalarReadRecorder(TorchDispatchMode):
    """Records the ops that copy a tensor value to the host (``.item()``, ``bool(t)``, ``float(t)``,
    ``if t > 0``: all reach ``aten._local_scalar_dense``) or whose output shape depends on values."""

    HOST_READS = (
        "aten._local_scalar_dense",
        "aten.nonzero",
        "aten.masked_select",
        "aten.unique",
        "aten.equal",
    )

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if str(func).startswith(self.HOST_READS):
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


def test_step_reads_no_tensor_value_on_the_host() -> None:
    """CPU check: no op of the step copies a value to the host. Blind to ``.tolist()``/``.cpu()``, which
    bypass the dispatcher; the GPU test below covers those with CUDA's own sync detector."""
    model = make_model()
    optimizer = lars_for(model, "bn_and_bias")
    backward_on_batch(model, step=0)
    with ScalarReadRecorder() as recorder:
        optimizer.step()
        optimizer.step()  # the second step runs with existing momentum buffers
    assert recorder.reads == []

    with ScalarReadRecorder() as recorder:  # the recorder does see a value-dependent branch
        _ = bool(torch.ones(1) > 0)
    assert recorder.reads == ["aten._local_scalar_dense.default"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_does_not_synchronize() -> None:
    model = SmallNet().cuda()
    optimizer = lars_for(model, "bn_and_bias")
    x = torch.randn(6, 3, 4, 4, device="cuda")
    nn.functional.mse_loss(model(x), torch.zeros(6, 3, device="cuda")).backward()
    optimizer.step()  # creates the momentum buffers
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        optimizer.step()
        optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
