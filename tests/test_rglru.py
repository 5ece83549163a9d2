"""RG-LRU: the scan backends against a from-scratch loop of the paper's equations, init, bounded sqrt."""

import pytest
import torch

from seqlib.layers.rglru import RGLRU, a_param_init
from seqlib.layers.scan import LINEAR_SCANS, rg_lru_gates, rg_lru_scan, sqrt_bound_derivative


def paper_loop(x, gate_x, gate_a, a_param, reset, h0, negative=False):
    """Griffin §2.4 written directly, in float64: a = sigmoid(Λ) with Λ = -a_param, a_t = a^(c r_t);
    ``negative``: the coefficient 2 a_t - 1 and its normaliser sqrt(1 - (2 a_t - 1)^2)."""
    x, gate_x, gate_a, a_param = (t.double() for t in (x, gate_x, gate_a, a_param))
    a_base = torch.sigmoid(-a_param)
    h = h0.double() if h0 is not None else torch.zeros(x.shape[0], x.shape[2], dtype=torch.float64)
    ys = []
    for t in range(x.shape[1]):
        r, i = torch.sigmoid(gate_a[:, t]), torch.sigmoid(gate_x[:, t])
        a_t = a_base ** (8.0 * r)
        a_t = 2 * a_t - 1 if negative else a_t
        start = reset[:, t, None]
        h = torch.where(start, i * x[:, t], a_t * h + torch.sqrt(1 - a_t**2) * (i * x[:, t]))
        ys.append(h)
    return torch.stack(ys, 1), h


def random_inputs(B=3, T=37, R=16, with_h0=True):
    x, gate_x, gate_a = (torch.randn(B, T, R, dtype=torch.float32) for _ in range(3))
    a_param = a_param_init(R)
    reset = torch.zeros(B, T, dtype=torch.bool)
    reset[:, 0] = not with_h0  # with an initial state, the first token continues it
    reset[0, T // 2] = True  # a document starts mid-sequence in row 0
    reset[1, 5] = True
    h0 = torch.randn(B, R) if with_h0 else None
    return x, gate_x, gate_a, a_param, reset, h0


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("backend", sorted(LINEAR_SCANS))
@pytest.mark.parametrize("with_h0", [True, False])
def test_backend_matches_paper_equations(backend, with_h0):
    x, gx, ga, ap, reset, h0 = random_inputs(with_h0=with_h0)
    y, h_last = rg_lru_scan(x, gx, ga, ap, reset, h0, backend=backend)
    y_ref, h_ref = paper_loop(x, gx, ga, ap, reset, h0)
    assert y.dtype == torch.float32 and h_last.dtype == torch.float32
    assert rel(y, y_ref) < 1e-5
    assert rel(h_last, h_ref) < 1e-5


def test_backends_agree_forward_and_gradients():
    inputs = random_inputs(T=129)
    results = {}
    weights = torch.randn(inputs[0].shape)
    for backend in ("sequential", "parallel"):
        leaves = [t.clone().requires_grad_(True) for t in (*inputs[:4], inputs[5])]
        x, gx, ga, ap, h0 = leaves
        y, h_last = rg_lru_scan(x, gx, ga, ap, inputs[4], h0, backend=backend)
        ((y * weights).sum() + h_last.sum()).backward()
        results[backend] = (y.detach(), [leaf.grad for leaf in leaves])
    y_s, grads_s = results["sequential"]
    y_p, grads_p = results["parallel"]
    assert rel(y_p, y_s) < 1e-5
    for name, gp, gs in zip(["x", "gate_x", "gate_a", "a_param", "h0"], grads_p, grads_s):
        assert rel(gp, gs) < 1e-5, name


def test_reset_drops_the_state():
    x, gx, ga, ap, reset, h0 = random_inputs()
    reset[:] = False
    reset[:, 10] = True
    y1, _ = rg_lru_scan(x, gx, ga, ap, reset, h0, backend="sequential")
    x2 = x.clone()
    x2[:, :10] = torch.randn_like(x2[:, :10])
    y2, _ = rg_lru_scan(x2, gx, ga, ap, reset, torch.randn_like(h0), backend="parallel")
    assert torch.allclose(y1[:, 10:], y2[:, 10:], atol=1e-6)
    assert not torch.allclose(y1[:, :10], y2[:, :10])


def test_a_squared_is_uniform_on_the_ring():
    n = 20_000
    a_sq = torch.exp(-2 * torch.nn.functional.softplus(a_param_init(n))).double().sort().values
    lo, hi = 0.9**2, 0.999**2
    assert a_sq.min() >= lo and a_sq.max() <= hi + 1e-7
    # Dvoretzky-Kiefer-Wolfowitz: sup |F_n - F| > 0.02 with probability < 2 exp(-2 n 0.02^2) ~ 2e-7
    empirical = torch.arange(1, n + 1, dtype=torch.float64) / n
    uniform_cdf = (a_sq - lo) / (hi - lo)
    assert (empirical - uniform_cdf).abs().max() < 0.02


def test_gates_at_init_give_the_predicted_range_of_a_t():
    width, blocks = 512, 8
    layer = RGLRU(width, blocks)
    log_a = lambda gate: -8.0 * torch.sigmoid(gate) * torch.nn.functional.softplus(layer.a_param)  # noqa: E731
    with torch.no_grad():
        # zero input: gates equal their zero bias, r_t = 0.5, so a_t = a^4 in [0.9^4, 0.999^4]
        a_t = torch.exp(log_a(layer.a_gate(torch.zeros(1, width))))
        assert a_t.min() >= 0.9**4 - 1e-6 and a_t.max() <= 0.999**4 + 1e-6
        assert a_t.max() - a_t.min() > 0.3  # spread over the range, not collapsed
        # unit-variance input: r_t spreads over (0, 1), a_t stays in (0.9^8, 1)
        gate = layer.a_gate(torch.randn(64, width))
        assert 0.3 < gate.std() < 3.0  # LeCun init over the block's fan-in
        a_t = torch.exp(log_a(gate))
        assert a_t.min() >= 0.9**8 - 1e-6 and a_t.max() < 1.0


def test_sqrt_gradient_is_capped_at_1000():
    z = torch.tensor([0.0, 1e-12, 1e-7, 1e-6, 0.25, 0.81], requires_grad=True)
    sqrt_bound_derivative(z).sum().backward()
    expected = torch.tensor([1000.0, 1000.0, 1000.0, 500.0, 1.0, 1 / (2 * 0.9)])
    assert torch.allclose(z.grad, expected, rtol=1e-5)
    assert torch.allclose(sqrt_bound_derivative(z.detach()), torch.sqrt(z.detach()))


def test_bad_inputs_name_the_problem():
    x, gx, ga, ap, reset, h0 = random_inputs()
    with pytest.raises(ValueError, match="unknown scan backend 'cuda-magic'"):
        rg_lru_scan(x, gx, ga, ap, reset, h0, backend="cuda-magic")
    with pytest.raises(ValueError, match="reset"):
        rg_lru_scan(x, gx, ga, ap, reset[:, :-1], h0, backend="parallel")
    with pytest.raises(ValueError, match="one shape"):
        rg_lru_scan(x, gx[:, :-1], ga, ap, reset, h0, backend="parallel")
    with pytest.raises(ValueError, match="not divisible by the number of gate blocks"):
        RGLRU(30, 4)


@pytest.mark.parametrize("backend", sorted(LINEAR_SCANS))
@pytest.mark.parametrize("with_h0", [True, False])
def test_negative_eigenvalue_variant_matches_its_equations(backend, with_h0):
    """A_t = 2 a_t - 1 in (-1, 1) (seqlib.layers.rglru): both backends against the loop of the equations."""
    x, gx, ga, ap, reset, h0 = random_inputs(with_h0=with_h0)
    ga = ga * 4  # spread r_t so that a_t covers (0, 1) and A_t both signs
    y, h_last = rg_lru_scan(x, gx, ga, ap, reset, h0, backend=backend, negative=True)
    y_ref, h_ref = paper_loop(x, gx, ga, ap, reset, h0, negative=True)
    assert rel(y, y_ref) < 1e-5 and rel(h_last, h_ref) < 1e-5
    plain, _ = rg_lru_scan(x, gx, ga, ap, reset, h0, backend=backend)
    assert rel(plain, y_ref) > 1e-2  # it is another recurrence


def test_negative_variant_backends_agree_in_gradients():
    inputs = random_inputs(T=65)
    weights = torch.randn(inputs[0].shape)
    grads = {}
    for backend in ("sequential", "parallel"):
        leaves = [t.clone().requires_grad_(True) for t in (*inputs[:4], inputs[5])]
        y, h_last = rg_lru_scan(*leaves[:4], inputs[4], leaves[4], backend=backend, negative=True)
        ((y * weights).sum() + h_last.sum()).backward()
        grads[backend] = [leaf.grad for leaf in leaves]
    for name, gp, gs in zip(["x", "gate_x", "gate_a", "a_param", "h0"], grads["parallel"], grads["sequential"]):
        assert torch.isfinite(gp).all() and rel(gp, gs) < 1e-5, name


def test_negative_variant_can_flip_the_state_every_step():
    """What parity needs (Grazzi et al. 2024): with r_t -> 1 and a large softplus(a_param), A_t -> -1 and
    the state changes sign at every step; the (0, 1) RG-LRU keeps it positive."""
    B, T, R = 1, 12, 4
    x = torch.zeros(B, T, R)
    x[:, 0] = 1.0
    gx = torch.full((B, T, R), 20.0)  # i_t = 1
    ga = torch.full((B, T, R), 20.0)  # r_t = 1
    ap = torch.full((R,), 3.0)  # a_t = exp(-8 softplus(3)) ~ 2e-11: A_t ~ -1
    reset = torch.zeros(B, T, dtype=torch.bool)
    reset[:, 0] = True
    y, _ = rg_lru_scan(x, gx, ga, ap, reset, backend="sequential", negative=True)
    signs = torch.sign(y[0, :, 0])
    assert torch.equal(signs, torch.tensor([(-1.0) ** t for t in range(T)]))
    assert y[0, :, 0].abs().min() > 0.99  # |A_t| ~ 1: no decay
    positive, _ = rg_lru_scan(x, gx, ga, ap, reset, backend="sequential")
    assert (positive[0, :, 0] >= 0).all()


def test_negative_variant_at_init_keeps_positive_memory():
    """Zero input at init: r_t = 1/2, a_t = a^4 with a in [0.9, 0.999], so A_t = 2 a^4 - 1 lies in
    [2 * 0.9^4 - 1, 2 * 0.999^4 - 1] = [0.3122, 0.9920]: positive, 1 - A_t = 2 (1 - a_t)."""
    layer = RGLRU(512, 8, negative=True)
    with torch.no_grad():
        log_a = -8.0 * torch.sigmoid(layer.a_gate(torch.zeros(1, 512))) * torch.nn.functional.softplus(layer.a_param)
        x = torch.zeros(1, 1, 512)
        coef, _ = rg_lru_gates(x, x, layer.a_gate(x), layer.a_param, torch.zeros(1, 1, dtype=torch.bool),
                               negative=True)
    assert torch.allclose(coef[0, 0], 2 * torch.exp(log_a[0]) - 1, atol=1e-6)
    assert coef.min() >= 2 * 0.9**4 - 1 - 1e-5 and coef.max() <= 2 * 0.999**4 - 1 + 1e-5
