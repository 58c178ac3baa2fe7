"""NT-Xent against the seed's equations, written out independently here as explicit loops in float64.

Seed (SimCLR, Chen et al., 2020, Eq. 1): the 2N projections are indexed as in the paper, view a of image
k at 2k and view b at 2k + 1 (0-based); sim(u, v) = u.v / (||u|| ||v||);
l(i, j) = -log(exp(sim(z_i, z_j)/tau) / sum_{k != i} exp(sim(z_i, z_k)/tau));
L = 1/(2N) sum_k [l(2k, 2k+1) + l(2k+1, 2k)].
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

import contrastive_plugins.simclr.plugin as simclr_plugin
from contrastive_core import RecipeError, Registry, build, get_plugin_manager, validate_recipe
from contrastive_core.distributed import rank, world_size
from contrastive_core.recipes import recipe_warnings
from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams
from tests.engine.recipes import tiny_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BATCH_SIZES = (1, 2, 7, 32)
DIMENSIONS = (1, 3, 128)
TEMPERATURES = (0.01, 0.1, 0.5, 1.0)


def interleave(z_a: np.ndarray, z_b: np.ndarray) -> list[np.ndarray]:
    """The seed's ordering of the 2N projections: a_0, b_0, a_1, b_1, ..."""
    rows = []
    for k in range(len(z_a)):
        rows.append(z_a[k])
        rows.append(z_b[k])
    return rows


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def seed_softmax_row(z: list[np.ndarray], i: int, tau: float) -> list[float]:
    """P_ik = exp(sim(z_i, z_k)/tau) / sum_{l != i} exp(sim(z_i, z_l)/tau), with P_ii = 0."""
    weights = [0.0 if k == i else math.exp(cosine(z[i], z[k]) / tau) for k in range(len(z))]
    total = sum(weights)
    return [w / total for w in weights]


def seed_pair_loss(z: list[np.ndarray], i: int, j: int, tau: float) -> float:
    """l(i, j) exactly as the seed writes it (float64 holds exp(1/0.01) = 2.7e43)."""
    denominator = sum(math.exp(cosine(z[i], z[k]) / tau) for k in range(len(z)) if k != i)
    return -math.log(math.exp(cosine(z[i], z[j]) / tau) / denominator)


def seed_loss(z_a: np.ndarray, z_b: np.ndarray, tau: float) -> float:
    z = interleave(z_a, z_b)
    n = len(z_a)
    total = 0.0
    for k in range(n):
        total += seed_pair_loss(z, 2 * k, 2 * k + 1, tau) + seed_pair_loss(z, 2 * k + 1, 2 * k, tau)
    return total / (2 * n)


def seed_anchor_gradient(z: list[np.ndarray], i: int, j: int, tau: float) -> np.ndarray:
    """The seed's "gradient flow" formula, literally:
    (1/tau) [ z_j / (|z_i||z_j|) - sum_{k != i} P_ik z_k / (|z_i||z_k|) ].

    It treats sim as the plain dot product of unit vectors (no derivative of the norms), so it holds for
    unit-norm z only, and it is d(-l_ij)/dz_i: the sign is that of the log-probability, not of the loss
    (test_seed_gradient_formula_is_minus_the_loss_gradient checks this).
    """
    probabilities = seed_softmax_row(z, i, tau)
    norm_i = np.linalg.norm(z[i])
    result = z[j] / (norm_i * np.linalg.norm(z[j]))
    for k in range(len(z)):
        if k != i:
            result = result - probabilities[k] * z[k] / (norm_i * np.linalg.norm(z[k]))
    return result / tau


def seed_total_gradient(z_a: np.ndarray, z_b: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """dL/du for unit vectors u (sim(u_i, u_k) = u_i . u_k), from the seed's per-pair formula.

    Each l(i, j) reaches z_i as the anchor (the seed formula, negated to a loss gradient) and every other
    z_k through sim(z_i, z_k); the latter's coefficient dl_ij/dsim_ik = (P_ik - [k = j]) / tau is the
    one the seed formula multiplies z_k by, and d(z_i . z_k)/dz_k = z_i.
    """
    z = interleave(z_a, z_b)
    gradient = [np.zeros_like(row) for row in z]
    pairs = [(2 * k, 2 * k + 1) for k in range(len(z_a))] + [(2 * k + 1, 2 * k) for k in range(len(z_a))]
    for i, j in pairs:
        gradient[i] = gradient[i] - seed_anchor_gradient(z, i, j, tau)
        probabilities = seed_softmax_row(z, i, tau)
        for k in range(len(z)):
            if k != i:
                gradient[k] = gradient[k] + (probabilities[k] - (1.0 if k == j else 0.0)) / tau * z[i]
    gradient = [g / len(z) for g in gradient]
    return np.stack(gradient[0::2]), np.stack(gradient[1::2])


def random_views(n: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=dtype), torch.randn(
        n, d, generator=generator, dtype=dtype
    )


def unit(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=1, keepdim=True)


@pytest.fixture(scope="module")
def simclr_registry() -> Registry:
    """Only the built-in simclr plugin; non-strict so another kind's problem cannot mask this one."""
    manager = get_plugin_manager(autoload=False)
    manager.register(simclr_plugin, name="simclr")
    return Registry.from_plugin_manager(manager, strict=False)


@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_loss_matches_the_seed_equations(n: int, d: int, tau: float) -> None:
    z_a, z_b = random_views(n, d, seed=1000 * n + d)
    expected = seed_loss(z_a.numpy(), z_b.numpy(), tau)
    loss = NTXent(NTXentParams(temperature=tau))

    in_float64 = loss(z_a, z_b)
    in_float32 = loss(z_a.float(), z_b.float())

    assert in_float64.dtype == torch.float64
    assert in_float64.item() == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert in_float32.dtype == torch.float32
    # float32 logits carry ~1e-7 * (1/tau) absolute error; 1/tau reaches 100.
    assert in_float32.item() == pytest.approx(expected, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("n", BATCH_SIZES)
def test_gradient_on_unit_norm_inputs_matches_the_seed_formula(n: int, d: int, tau: float) -> None:
    """On unit-norm inputs z = u, float64: autograd of the loss = (I - u u^T) (seed gradient w.r.t. u).

    The loss normalises its inputs itself, and the Jacobian of z -> z/||z|| at ||z|| = 1 is I - u u^T, so
    the input gradient is the seed's gradient with its radial component removed (the loss does not
    depend on ||z||). For d = 1 that leaves 0.
    """
    raw_a, raw_b = random_views(n, d, seed=7 + 1000 * n + d)
    u_a = unit(raw_a).requires_grad_()
    u_b = unit(raw_b).requires_grad_()
    NTXent(NTXentParams(temperature=tau))(u_a, u_b).backward()

    seed_a, seed_b = seed_total_gradient(u_a.detach().numpy(), u_b.detach().numpy(), tau)
    for u, seed_gradient, autograd_gradient in ((u_a, seed_a, u_a.grad), (u_b, seed_b, u_b.grad)):
        u = u.detach()
        seed_gradient = torch.from_numpy(seed_gradient)
        tangential = seed_gradient - (seed_gradient * u).sum(dim=1, keepdim=True) * u
        torch.testing.assert_close(autograd_gradient, tangential, rtol=1e-9, atol=1e-12)


def test_seed_gradient_formula_is_minus_the_loss_gradient() -> None:
    """The seed's d l_ij / d z_i equals -(autograd of l_ij) for unit vectors with sim = z_i . z_k."""
    tau = 0.3
    u_a, u_b = (unit(v) for v in random_views(5, 4, seed=3))
    z = torch.stack(interleave(u_a, u_b))  # (10, 4), seed order
    i, j = 4, 5
    anchor = z[i].clone().requires_grad_()
    others = [anchor if k == i else z[k] for k in range(len(z))]
    logits = torch.stack([anchor @ others[k] / tau for k in range(len(z)) if k != i])
    positive = anchor @ z[j] / tau
    (torch.logsumexp(logits, dim=0) - positive).backward()

    seed = torch.from_numpy(seed_anchor_gradient(list(z.numpy()), i, j, tau))
    torch.testing.assert_close(anchor.grad, -seed, rtol=1e-10, atol=1e-12)


def test_computes_in_float32_under_bfloat16_autocast() -> None:
    """Inside bf16 autocast the loss equals the float32 loss of the same (bf16-rounded) projections."""
    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, 8)
    x = torch.randn(12, 16, generator=generator)
    loss = NTXent(NTXentParams(temperature=0.1))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        z = head(x)
        assert z.dtype == torch.bfloat16
        z_a, z_b = z.chunk(2)
        inside = loss(z_a, z_b)
    expected = seed_loss(z_a.double().detach().numpy(), z_b.double().detach().numpy(), 0.1)

    assert inside.dtype == torch.float32
    # float32 arithmetic on the bf16-rounded projections is exact to ~1e-6 here; a bf16 matmul would
    # be off by ~1e-2.
    assert inside.item() == pytest.approx(expected, rel=1e-5)


def test_tau_0_01_with_bfloat16_inputs_is_finite() -> None:
    loss = NTXent(NTXentParams(temperature=0.01))
    z_a, z_b = (
        v.to(torch.bfloat16).requires_grad_() for v in random_views(64, 128, seed=5, dtype=torch.float32)
    )
    value = loss(z_a, z_b)
    value.backward()
    assert value.dtype == torch.float32
    assert torch.isfinite(value)
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()
    assert value.item() == pytest.approx(
        seed_loss(z_a.float().detach().numpy(), z_b.float().detach().numpy(), 0.01), rel=1e-4
    )


def test_tau_0_01_with_all_logits_at_the_maximum_is_finite() -> None:
    """Identical projections: every logit is 1/tau = 100; exp(100) overflows bf16/fp16 but the loss is
    log(2N - 1) (the positive is one of 2N - 1 equally likely candidates)."""
    n = 16
    z = torch.ones(n, 8, dtype=torch.bfloat16, requires_grad=True)
    value = NTXent(NTXentParams(temperature=0.01))(z, z)
    value.backward()
    assert value.item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)
    assert torch.isfinite(z.grad).all()


def test_invariant_to_the_scale_of_z_and_to_swapping_the_views() -> None:
    z_a, z_b = random_views(6, 5, seed=11)
    loss = NTXent(NTXentParams(temperature=0.2))
    reference = loss(z_a, z_b)
    torch.testing.assert_close(loss(3.0 * z_a, 0.5 * z_b), reference)
    torch.testing.assert_close(loss(z_b, z_a), reference)


def test_rejects_mismatched_or_non_matrix_inputs() -> None:
    loss = NTXent(NTXentParams())
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        loss(torch.randn(4), torch.randn(4))


def test_not_distributed_means_rank_0_of_1() -> None:
    assert (rank(), world_size()) == (0, 1)


def test_built_from_a_params_dict(simclr_registry: Registry) -> None:
    assert simclr_registry.registration("loss", "nt_xent").plugin == "simclr"
    loss = build("loss", {"type": "nt_xent", "temperature": 0.5}, registry=simclr_registry)
    assert isinstance(loss, NTXent)
    assert loss.params.temperature == 0.5
    assert loss.params.gather_across_processes is True
    default = build("loss", {"type": "nt_xent"}, registry=simclr_registry)
    assert default.params.temperature == 0.1

    z_a, z_b = random_views(4, 3, seed=2)
    assert loss(z_a, z_b).item() == pytest.approx(seed_loss(z_a.numpy(), z_b.numpy(), 0.5), rel=1e-10)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"type": "nt_xent", "temperature": 0.0}, "temperature"),
        ({"type": "nt_xent", "temperature": -0.1}, "temperature"),
        ({"type": "nt_xent", "temprature": 0.5}, "temprature"),
    ],
)
def test_bad_params_are_recipe_errors(simclr_registry: Registry, params: dict, key: str) -> None:
    with pytest.raises(RecipeError, match=key):
        build("loss", params, registry=simclr_registry)


def test_a_temperature_that_cannot_train_is_refused_and_an_unusual_one_is_warned(
    simclr_registry: Registry,
) -> None:
    # 1e-9 once trained to a logged loss of 3.8e8: the logits (up to 1/tau) and the gradients explode.
    with pytest.raises(RecipeError, match=r"temperature: too small to train with.*at least 0\.0001"):
        build("loss", {"type": "nt_xent", "temperature": 1e-5}, registry=simclr_registry)
    assert NTXentParams(temperature=1e-4).recipe_warnings()  # accepted, with a warning
    for usual in (0.05, 0.1, 0.5, 1.0):
        assert NTXentParams(temperature=usual).recipe_warnings() == []
    (small,) = NTXentParams(temperature=0.001).recipe_warnings()
    assert small.path == "temperature"
    assert "0.001 is outside the usual range 0.05 to 1 (SimCLR uses 0.1 on ImageNet" in small.message
    assert "1/0.001 = 1000" in small.message
    (large,) = NTXentParams(temperature=3.0).recipe_warnings()
    assert "barely tells the positive from the negatives" in large.message
    # In a recipe the warning carries the section's path.
    data = tomllib.loads(tiny_recipe(loss='type = "nt_xent"\ntemperature = 0.001'))
    recipe = validate_recipe(data, registry=Registry.from_plugin_manager(get_plugin_manager()))
    assert [warning.path for warning in recipe_warnings(recipe)] == ["loss.temperature"]
