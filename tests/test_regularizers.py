"""regularizers.py: 0-dim Vietoris–Rips death times, the loss of Hofer et al. (ICML 2020) and the schedules.

Oracles and their blind spots:
* scipy's minimum_spanning_tree reads a 0 in a dense matrix as "no edge" (and values within 1e-8 of 0
  too), so the oracle adds 1 to every off-diagonal distance: every spanning tree has n − 1 edges, so
  the tree is the same, and 1 is subtracted again from its edge lengths.
* giotto-ph and gudhi drop zero-length bars: their finite deaths are padded with zeros to n − 1.
"""
import math

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import cdist

from common.schedules import SCHEDULES, make_schedule
from regularizers import (METRICS, CeilingLoss, CenterLoss, CenterRadiusLoss, FloorLoss, TopologicalLoss, make_loss,
                          vr0_death_times)

SCIPY = {"l2": "euclidean", "l1": "cityblock", "linf": "chebyshev"}
GPH = {"l2": "euclidean", "l1": "manhattan", "linf": "chebyshev"}
DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


def scipy_deaths(x, metric):
    """MST edge lengths of one cloud (n, d), sorted; computed in float64."""
    D = cdist(np.asarray(x, np.float64), np.asarray(x, np.float64), SCIPY[metric])
    n = len(D)
    tree = minimum_spanning_tree(np.where(np.eye(n, dtype=bool), 0.0, D + 1.0))
    assert tree.nnz == n - 1
    return np.sort(tree.data - 1.0)


def pad(deaths, n):
    """Finite deaths of a library that drops zero-length bars, padded back to n − 1 with zeros."""
    deaths = np.sort(np.asarray(deaths, np.float64)[np.isfinite(deaths)])
    assert len(deaths) <= n - 1
    return np.concatenate([np.zeros(n - 1 - len(deaths)), deaths])


def cloud(seed, G, n, d, kind="normal", dtype=torch.float64):
    """Random clouds; "ties": integer grid points (many equal distances), "dups": rows repeated."""
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":
        return torch.randint(0, 3, (G, n, d), generator=g).to(dtype)
    x = torch.randn(G, n, d, generator=g, dtype=torch.float64)
    if kind == "dups":  # as in a batch: draws with replacement from a few images
        x = x[:, torch.randint(0, max(2, n // 2), (n,), generator=g)]
    return x.to(dtype)


# ------------------------------------------------------------------------------------------ exactness

@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "dups"])
@pytest.mark.parametrize("seed,n,d", [(0, 2, 3), (1, 5, 2), (2, 16, 8), (3, 40, 5)])
def test_equals_scipy_mst(metric, dtype, kind, seed, n, d):
    x = cloud(seed, 3, n, d, kind, dtype)
    deaths = vr0_death_times(x, metric)
    assert deaths.shape == (3, n - 1) and deaths.dtype == dtype
    for g in range(3):
        ref = torch.from_numpy(scipy_deaths(x[g].numpy(), metric)).to(dtype)
        torch.testing.assert_close(deaths[g], ref, **tol(dtype))


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("kind", ["normal", "ties", "dups"])
@pytest.mark.parametrize("seed,n", [(0, 7), (1, 30)])
def test_equals_giotto_ph(metric, kind, seed, n):
    ripser_parallel = pytest.importorskip("gph", reason="giotto-ph (the test extra) is not installed").ripser_parallel
    x = cloud(seed, 2, n, 4, kind)
    deaths = vr0_death_times(x, metric).numpy()
    for g in range(2):
        dgm = ripser_parallel(x[g].numpy(), maxdim=0, metric=GPH[metric])["dgms"][0]
        np.testing.assert_allclose(deaths[g], pad(dgm[:, 1], n), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("kind", ["normal", "ties", "dups"])
def test_equals_gudhi(metric, kind):
    gudhi = pytest.importorskip("gudhi")
    n = 20
    x = cloud(5, 2, n, 3, kind)
    deaths = vr0_death_times(x, metric).numpy()
    for g in range(2):
        pts = x[g].numpy()
        rips = (gudhi.RipsComplex(points=pts) if metric == "l2"
                else gudhi.RipsComplex(distance_matrix=cdist(pts, pts, SCIPY[metric])))
        bars = rips.create_simplex_tree(max_dimension=1).persistence()
        ref = pad([death for dim, (_, death) in bars if dim == 0], n)
        np.testing.assert_allclose(deaths[g], ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("metric", list(METRICS))
def test_points_on_a_line(metric):
    # gaps 1, 2, 3, 4 (given in shuffled order): every metric agrees in 1-d
    x = torch.tensor([[6.0], [0.0], [10.0], [1.0], [3.0]])
    torch.testing.assert_close(vr0_death_times(x, metric), torch.tensor([1.0, 2.0, 3.0, 4.0]))


@pytest.mark.parametrize("metric,far", [("l2", 5.0), ("l1", 7.0), ("linf", 4.0)])
def test_two_far_clusters_give_one_large_death(metric, far):
    # two unit-spaced clusters; the closest pair across them is (1, 0)–(4, 4)
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[4.0, 4.0], [5.0, 4.0], [4.0, 5.0]])
    deaths = vr0_death_times(torch.cat([a, b]), metric)
    assert deaths[-1].item() == pytest.approx(far)
    assert deaths[:-1].tolist() == [1.0] * 4


def test_unit_square_ties():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    for metric in METRICS:
        assert vr0_death_times(x, metric).tolist() == [1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------ duplicates

@pytest.mark.parametrize("metric", list(METRICS))
def test_duplicates_are_exact_zeros_in_float32(metric):
    # large coordinates: the matrix-multiply shortcut ‖a‖² + ‖b‖² − 2ab leaves up to 0.5 here
    g = torch.Generator().manual_seed(0)
    images = 100 + torch.randn(6, 128, generator=g)
    x = images[torch.tensor([0, 1, 1, 2, 3, 3, 3, 4, 5, 0, 2, 5, 1, 4, 4, 2])]  # 6 distinct of 16
    deaths = vr0_death_times(x, metric)
    assert (deaths == 0).sum().item() == 10
    assert (deaths[10:] > 1).all()
    # the blind spot this guards against, for the record
    assert torch.cdist(x, x, compute_mode="use_mm_for_euclid_dist").diagonal().max() > 0.01


@pytest.mark.parametrize("metric", list(METRICS))
def test_duplicates_give_finite_zero_gradients(metric):
    x = cloud(0, 4, 16, 8, "dups", torch.float32).requires_grad_()
    deaths = vr0_death_times(x, metric)
    zero = deaths == 0
    assert zero.any()
    # the zero deaths alone: a zero subgradient, not NaN
    (grad,) = torch.autograd.grad(deaths[zero].sum(), x)
    assert torch.equal(grad, torch.zeros_like(grad))
    loss = TopologicalLoss(beta=0.5, metric=metric)(x)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_all_points_equal():
    x = torch.ones(2, 5, 3, requires_grad=True)
    deaths = vr0_death_times(x, "l2")
    assert torch.equal(deaths, torch.zeros(2, 4))
    deaths.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# ------------------------------------------------------------------------------------------ gradients

@pytest.mark.parametrize("metric", list(METRICS))
def test_gradcheck_float64(metric):
    x = cloud(3, 2, 9, 4).requires_grad_()  # continuous: no ties, so the tree is locally constant
    assert torch.autograd.gradcheck(lambda x: vr0_death_times(x, metric), (x,))


@pytest.mark.parametrize("metric", list(METRICS))
def test_gradient_equals_autograd_of_the_norm_on_the_scipy_tree(metric):
    """Against an independent path: the tree from scipy, lengths by torch.linalg.vector_norm + autograd."""
    x = cloud(4, 3, 12, 5).requires_grad_()
    w = torch.randn(3, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (grad,) = torch.autograd.grad((vr0_death_times(x, metric) * w).sum(), x)
    ref = []
    for g in range(3):
        D = cdist(x[g].detach().numpy(), x[g].detach().numpy(), SCIPY[metric]) + 1.0
        tree = minimum_spanning_tree(np.where(np.eye(12, dtype=bool), 0.0, D)).tocoo()
        u = x[g, torch.from_numpy(tree.row).long()] - x[g, torch.from_numpy(tree.col).long()]
        ref.append(torch.linalg.vector_norm(u, ord=METRICS[metric], dim=-1).sort().values)
    (grad_ref,) = torch.autograd.grad((torch.stack(ref) * w).sum(), x)
    torch.testing.assert_close(grad, grad_ref)


def test_linf_gradient_shares_tied_coordinates_like_torch():
    # |u| is largest in two coordinates: torch's norm backward splits the gradient between them
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [5.0, 5.0, 5.0]], requires_grad=True)
    (grad,) = torch.autograd.grad(vr0_death_times(x, "linf")[0], x)
    y = x.detach().clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad(torch.linalg.vector_norm(y[1] - y[0], ord=math.inf), y)
    assert grad[1].tolist() == [0.5, -0.5, 0.0]
    torch.testing.assert_close(grad, grad_ref)


def test_each_death_moves_exactly_two_points():
    x = cloud(6, 1, 10, 3)[0].requires_grad_()
    deaths = vr0_death_times(x, "l2")
    for k in range(9):
        (grad,) = torch.autograd.grad(deaths[k], x, retain_graph=True)
        moved = grad.abs().sum(1) > 0
        assert moved.sum().item() == 2
        a, b = moved.nonzero().squeeze(1)
        assert torch.linalg.vector_norm(x[a] - x[b]).item() == pytest.approx(deaths[k].item())
        torch.testing.assert_close(grad[a], -grad[b])  # equal and opposite


# ------------------------------------------------------------------------------------------ structure

@pytest.mark.parametrize("metric", list(METRICS))
def test_batched_equals_per_group(metric):
    x = cloud(7, 5, 13, 6, "dups", torch.float32)
    batched = vr0_death_times(x, metric)
    assert batched.shape == (5, 12)
    for g in range(5):
        single = vr0_death_times(x[g], metric)
        assert single.shape == (12,)
        torch.testing.assert_close(batched[g], single)


@pytest.mark.parametrize("metric", list(METRICS))
def test_permuting_points_leaves_deaths_unchanged(metric):
    x = cloud(8, 3, 25, 4, "ties", torch.float32)
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vr0_death_times(x[:, perm], metric), vr0_death_times(x, metric))


def test_deaths_sorted_and_two_points():
    x = cloud(9, 4, 30, 3)
    deaths = vr0_death_times(x)
    assert (deaths[:, 1:] >= deaths[:, :-1]).all()
    pair = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert vr0_death_times(pair).tolist() == [5.0]
    assert vr0_death_times(pair, "l1").tolist() == [7.0]
    assert vr0_death_times(pair, "linf").tolist() == [4.0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (one code path: CUDA must equal CPU)")
@pytest.mark.parametrize("metric", list(METRICS))
def test_cuda_equals_cpu(metric):
    x = cloud(10, 8, 16, 128, "dups", torch.float32)
    xc = x.cuda().requires_grad_()
    deaths = vr0_death_times(xc, metric)
    torch.testing.assert_close(deaths.cpu(), vr0_death_times(x, metric))
    TopologicalLoss(0.5, metric)(xc).backward()
    assert torch.isfinite(xc.grad).all()
    # float64: the loss and its gradient on CUDA (batched cdist) equal the CPU's (pdist per group)
    x64 = cloud(10, 8, 16, 128, "dups", torch.float64).requires_grad_()
    x64c = x64.detach().cuda().requires_grad_()
    loss, loss_c = TopologicalLoss(0.5, metric)(x64), TopologicalLoss(0.5, metric)(x64c)
    loss.backward(), loss_c.backward()
    torch.testing.assert_close(loss_c.cpu(), loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x64c.grad.cpu(), x64.grad, rtol=1e-12, atol=1e-12)


def _torchph():
    try:
        from torchph.pershom import vr_persistence, vr_persistence_l1
        return vr_persistence, vr_persistence_l1
    except Exception:  # ImportError, or the CUDA extension failing to load
        return None


@pytest.mark.skipif(_torchph() is None or not torch.cuda.is_available(),
                    reason="torchph with its CUDA extension is not importable: it is CUDA-only and its PyPI "
                           "release (0.1.1) ships without the extension sources")
def test_equals_torchph():
    vr_persistence, vr_persistence_l1 = _torchph()
    x = cloud(11, 1, 20, 5, "dups", torch.float32)[0]
    n = len(x)
    bars_l1 = vr_persistence_l1(x.cuda().contiguous(), 0, 0)[0][0]
    np.testing.assert_allclose(vr0_death_times(x, "l1").numpy(), pad(bars_l1[:, 1].cpu().numpy(), n), rtol=1e-5)
    D = torch.from_numpy(cdist(x.numpy(), x.numpy())).float()
    bars_l2 = vr_persistence(D.cuda().contiguous(), 0, 0)[0][0]
    np.testing.assert_allclose(vr0_death_times(x, "l2").numpy(), pad(bars_l2[:, 1].cpu().numpy(), n), rtol=1e-5)


# ------------------------------------------------------------------------------------------ bad input

def test_bad_points():
    with pytest.raises(ValueError, match="metric"):
        vr0_death_times(torch.randn(4, 2), metric="cosine")
    with pytest.raises(ValueError, match="n >= 2"):
        vr0_death_times(torch.randn(3, 1, 2))
    with pytest.raises(ValueError, match="shape"):
        vr0_death_times(torch.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="floating"):
        vr0_death_times(torch.ones(4, 2, dtype=torch.long))
    x = torch.randn(2, 5, 3)
    x[1, 2, 0] = math.nan
    with pytest.raises(ValueError, match="finite"):
        vr0_death_times(x, check=True)
    x[1, 2, 0] = math.inf
    with pytest.raises(ValueError, match="finite"):
        vr0_death_times(x, check=True)
    assert vr0_death_times(x).shape == (2, 4)  # without check: no host synchronisation, no check


def test_bad_loss_arguments():
    with pytest.raises(ValueError, match="beta"):
        TopologicalLoss(beta=-0.1)
    with pytest.raises(ValueError, match="metric"):
        TopologicalLoss(metric="L2")
    loss = TopologicalLoss()
    with pytest.raises(ValueError, match="beta"):
        loss.beta = -1.0
    with pytest.raises(ValueError, match="beta"):
        loss(torch.randn(2, 4, 3), beta=float("nan"))
    with pytest.raises(ValueError, match="n >= 2"):
        loss(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match=r"\(G, n, d\)"):
        loss(torch.randn(16, 3))  # a flat batch: must be grouped first
    assert loss.beta == 0.5


# ------------------------------------------------------------------------------------------ loss

def test_loss_formula_and_beta():
    x = cloud(12, 4, 8, 3, "dups").requires_grad_()
    deaths = vr0_death_times(x, "l1")
    loss = TopologicalLoss(beta=0.7, metric="l1")
    expected = sum((deaths[g] - 0.7).abs().sum() for g in range(4)) / 4
    torch.testing.assert_close(loss(x), expected)
    loss.beta = 0.0  # a schedule sets it every step; at β = 0 it is the mean total tree length
    torch.testing.assert_close(loss(x), deaths.sum(1).mean())
    torch.testing.assert_close(loss(x, beta=0.7), expected)  # per-call override
    assert loss.beta == 0.0 and isinstance(loss.beta, float)


def test_loss_gradient_directions():
    # two points at distance 1: β = 2 pushes them apart, β = 0.5 pulls them together
    x = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    for beta, sign in ((2.0, -1.0), (0.5, 1.0)):
        (grad,) = torch.autograd.grad(TopologicalLoss(beta)(x), x)
        assert grad[0, 0, 0].item() == pytest.approx(-sign) and grad[0, 1, 0].item() == pytest.approx(sign)


@pytest.mark.parametrize("name, params, loss", [
    ("vanilla", (), TopologicalLoss), ("hofer", ("lam", "beta"), TopologicalLoss),
    ("sliding", ("lam", "beta0"), TopologicalLoss), ("sliding_fixed_beta", ("lam", "beta0"), TopologicalLoss),
    ("ramp", ("lam",), TopologicalLoss), ("center", ("lam",), CenterLoss), ("floor", ("lam", "beta0"), FloorLoss),
    ("ceiling", ("lam", "beta0"), CeilingLoss), ("center_radius", ("lam", "beta0"), CenterRadiusLoss),
    ("center_sliding", ("lam", "beta0"), CenterRadiusLoss)])
def test_each_regulariser_names_its_parameters_and_its_penalty(name, params, loss):
    assert SCHEDULES[name].params == params
    assert type(make_loss(name, "l1")) is loss and make_loss(name, "l1").metric == "l1"
    # a parameter it does not use changes nothing
    a = make_schedule(name, 10, lam=0.2, beta=0.5, beta0=1.1)
    unused = {k: 7.0 for k in ("lam", "beta", "beta0") if k not in params}
    b = make_schedule(name, 10, **{**dict(lam=0.2, beta=0.5, beta0=1.1), **unused})
    assert [a.values(e) for e in range(1, 11)] == [b.values(e) for e in range(1, 11)]


def center_by_loops(z, p):
    """(1/G) Σ_g Σ_i ‖z_gi − mean_g‖_p written out with loops (the oracle of CenterLoss)."""
    total = 0.0
    for g in range(z.shape[0]):
        mean = sum(z[g, i] for i in range(z.shape[1])) / z.shape[1]
        for i in range(z.shape[1]):
            u = z[g, i] - mean
            total = total + (u.abs().max() if p == math.inf else (u.abs() ** p).sum() ** (1 / p))
    return total / z.shape[0]


@pytest.mark.parametrize("metric", ["l1", "l2", "linf"])
def test_center_loss_is_the_formula_and_so_is_its_gradient(metric):
    torch.manual_seed(0)
    z = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    loss = CenterLoss(metric)(z)
    oracle = center_by_loops(z, METRICS[metric])
    assert loss.item() == pytest.approx(oracle.item(), rel=1e-12)
    (g,) = torch.autograd.grad(loss, z)
    (g_oracle,) = torch.autograd.grad(center_by_loops(z, METRICS[metric]), z)
    torch.testing.assert_close(g, g_oracle, rtol=1e-10, atol=1e-12)
    assert CenterLoss(metric)(z, beta=3.0).item() == loss.item()  # β is accepted and unused


@pytest.mark.parametrize("metric", ["l1", "l2", "linf"])
def test_center_loss_of_identical_codes_is_zero_with_a_zero_gradient(metric):
    z = torch.ones(2, 4, 3).mul(torch.tensor([1.5, -2.0]).view(2, 1, 1)).requires_grad_()
    loss = CenterLoss(metric)(z)
    (g,) = torch.autograd.grad(loss, z)
    assert loss.item() == 0.0 and torch.isfinite(g).all() and (g == 0).all()


def test_center_loss_rejects_a_flat_batch():
    with pytest.raises(ValueError, match="G, n, d"):
        CenterLoss()(torch.zeros(8, 3))


# ------------------------------------------------------------------------------------------ the halves of β > 0

def scipy_tree_lengths(x, metric):
    """Per group, the MST edge lengths of x (G, n, d) with the tree from scipy and lengths from torch (autograd)."""
    out = []
    for g in range(x.shape[0]):
        D = cdist(x[g].detach().numpy(), x[g].detach().numpy(), SCIPY[metric]) + 1.0
        tree = minimum_spanning_tree(np.where(np.eye(x.shape[1], dtype=bool), 0.0, D)).tocoo()
        u = x[g, torch.from_numpy(tree.row).long()] - x[g, torch.from_numpy(tree.col).long()]
        out.append(torch.linalg.vector_norm(u, ord=METRICS[metric], dim=-1))
    return out


def half_by_loops(x, metric, beta, side):
    """(1/G) Σ_g Σ_k max(0, β − d_gk) (floor) or max(0, d_gk − β) (ceiling), with loops, on scipy's tree."""
    total = 0.0
    for lengths in scipy_tree_lengths(x, metric):
        for d in lengths:
            total = total + (torch.clamp(beta - d, min=0) if side == "floor" else torch.clamp(d - beta, min=0))
    return total / x.shape[0]


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("loss_class, side", [(FloorLoss, "floor"), (CeilingLoss, "ceiling")])
@pytest.mark.parametrize("beta", [0.0, 0.8, 2.5])
def test_floor_and_ceiling_are_their_formulas_and_so_are_their_gradients(loss_class, side, metric, beta):
    x = cloud(5, 3, 10, 4).requires_grad_()  # continuous: one tree, no edge exactly at β
    loss = loss_class(beta, metric)(x)
    oracle = half_by_loops(x, metric, beta, side)
    assert loss.item() == pytest.approx(torch.as_tensor(oracle).detach().item(), rel=1e-12, abs=1e-12)
    (g,) = torch.autograd.grad(loss, x)
    if isinstance(oracle, float):  # no edge on the penalised side: a constant 0 and no gradient
        assert oracle == 0.0 and (g == 0).all()
        return
    (g_oracle,) = torch.autograd.grad(oracle, x)
    torch.testing.assert_close(g, g_oracle, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", list(METRICS))
def test_floor_plus_ceiling_is_the_topological_loss_edge_by_edge(metric):
    x = cloud(6, 4, 12, 3, "dups")
    deaths = vr0_death_times(x, metric)
    for beta in (0.0, 0.3, 1.1, 4.0):
        per_edge = FloorLoss.edge_penalty(deaths, beta) + CeilingLoss.edge_penalty(deaths, beta)
        torch.testing.assert_close(per_edge, TopologicalLoss.edge_penalty(deaths, beta), rtol=0, atol=1e-15)
        torch.testing.assert_close(per_edge, (deaths - beta).abs(), rtol=0, atol=1e-15)
        whole = FloorLoss(beta, metric)(x) + CeilingLoss(beta, metric)(x)
        torch.testing.assert_close(whole, TopologicalLoss(beta, metric)(x))


def test_floor_pushes_up_and_ceiling_pulls_down():
    # two points at distance 1: a floor at 2 pushes them apart, a ceiling at 0.5 pulls them together; the other
    # half is flat there
    x = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    for loss, sign in ((FloorLoss(2.0), -1.0), (CeilingLoss(0.5), 1.0)):
        (grad,) = torch.autograd.grad(loss(x), x)
        assert grad[0, 0, 0].item() == pytest.approx(-sign) and grad[0, 1, 0].item() == pytest.approx(sign)
    for loss in (FloorLoss(0.5), CeilingLoss(2.0)):
        (grad,) = torch.autograd.grad(loss(x), x)
        assert loss(x).item() == 0.0 and (grad == 0).all()


def radius_by_loops(z, p, r):
    """(1/G) Σ_g Σ_i | ‖z_gi − mean_g‖_p − r | written out with loops (the oracle of CenterRadiusLoss)."""
    total = 0.0
    for g in range(z.shape[0]):
        mean = sum(z[g, i] for i in range(z.shape[1])) / z.shape[1]
        for i in range(z.shape[1]):
            u = z[g, i] - mean
            norm = u.abs().max() if p == math.inf else (u.abs() ** p).sum() ** (1 / p)
            total = total + (norm - r).abs()
    return total / z.shape[0]


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("r", [0.0, 0.9, 3.0])
def test_center_radius_loss_is_the_formula_and_so_is_its_gradient(metric, r):
    torch.manual_seed(1)
    z = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    loss = CenterRadiusLoss(r, metric)(z)
    oracle = radius_by_loops(z, METRICS[metric], r)
    assert loss.item() == pytest.approx(oracle.item(), rel=1e-12)
    (g,) = torch.autograd.grad(loss, z)
    (g_oracle,) = torch.autograd.grad(radius_by_loops(z, METRICS[metric], r), z)
    torch.testing.assert_close(g, g_oracle, rtol=1e-10, atol=1e-12)
    assert CenterRadiusLoss(7.0, metric)(z, beta=r).item() == loss.item()  # the per-call radius wins
    if r == 0.0:  # a zero radius is CenterLoss
        assert loss.item() == pytest.approx(CenterLoss(metric)(z).item(), rel=1e-12)


@pytest.mark.parametrize("metric", list(METRICS))
def test_center_sliding_ends_as_center_s_contraction(metric):
    """At t = 1 center_sliding's radius is 0, and its penalty then equals CenterLoss (and the loops' formula), value and
    gradient: the centroid twin of sliding ending as ramp's tree contraction."""
    torch.manual_seed(2)
    z = torch.randn(4, 16, 8, dtype=torch.float64, requires_grad=True)
    schedule, penalty = make_schedule("center_sliding", 5, lam=0.1, beta0=2.0), make_loss("center_sliding", metric)
    lam, r = schedule.values(5)
    assert (lam, r) == (0.1, 0.0)
    loss, center = penalty(z, beta=r), CenterLoss(metric)(z)
    assert loss.item() == pytest.approx(center.item(), rel=1e-12)
    assert loss.item() == pytest.approx(center_by_loops(z, METRICS[metric]).item(), rel=1e-12)
    torch.testing.assert_close(torch.autograd.grad(loss, z)[0], torch.autograd.grad(center, z)[0], rtol=1e-12, atol=0)
    _, r_mid = schedule.values(2)  # before the end the radius is r0 √(1 − t) > 0, and the penalty differs
    assert r_mid == pytest.approx(2.0 * math.sqrt(0.6)) and penalty(z, beta=r_mid).item() != loss.item()


@pytest.mark.parametrize("metric", list(METRICS))
def test_center_radius_loss_of_identical_codes_has_a_zero_gradient(metric):
    z = torch.ones(2, 4, 3).mul(torch.tensor([1.5, -2.0]).view(2, 1, 1)).requires_grad_()
    loss = CenterRadiusLoss(0.5, metric)(z)
    (g,) = torch.autograd.grad(loss, z)
    assert loss.item() == pytest.approx(4 * 0.5) and torch.isfinite(g).all() and (g == 0).all()


def test_center_radius_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="G, n, d"):
        CenterRadiusLoss()(torch.zeros(8, 3))
    with pytest.raises(ValueError, match="beta"):
        CenterRadiusLoss(beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        CenterRadiusLoss()(torch.zeros(2, 3, 4), beta=float("nan"))
