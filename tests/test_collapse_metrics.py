"""Specification of collapse_metrics.py (neural-collapse metrics of Papyan, Han & Donoho, PNAS 2020).

The reference implementation below is written straight from the formulas, with python loops and
numpy float64, independently of the torch code under test.
"""

import math

import numpy as np
import pytest
import torch

from collapse_metrics import METRIC_NAMES, CollapseAccumulator, class_means, collapse_metrics
from common.collapse_names import COLLAPSE, LABELS, SPECTRUM, Label

EXPECTED_NAMES = (
    "nc1", "nc2_equinorm_means", "nc2_equinorm_classifiers", "nc2_equiangular_means",
    "nc2_equiangular_classifiers", "nc2_maxangle_means", "nc2_maxangle_classifiers",
    "etf_distance_means", "etf_distance_classifiers", "nc3_self_duality", "nc4_ncc_mismatch",
    "within_class_variation", "between_class_variation",
)
SCALE_INVARIANT = ("nc1", "nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means",
                   "etf_distance_means", "nc3_self_duality")


# ----------------------------------------------------------------------------- reference
def reference_metrics(H, y, W, b, C, train_means=None):
    """Every metric straight from its formula (loops, numpy float64)."""
    H, W, b = (np.asarray(a, dtype=np.float64) for a in (H, W, b))
    y = [int(v) for v in y]
    N, p = H.shape
    sums, counts = np.zeros((C, p)), [0] * C
    for i in range(N):
        sums[y[i]] += H[i]
        counts[y[i]] += 1
    mu = [sums[c] / counts[c] for c in range(C)]
    mu_G = sum(mu) / C
    Sigma_W = np.zeros((p, p))
    for i in range(N):
        d = H[i] - mu[y[i]]
        Sigma_W += np.outer(d, d)
    Sigma_W /= N
    Sigma_B = sum(np.outer(mu[c] - mu_G, mu[c] - mu_G) for c in range(C)) / C
    lam, V = np.linalg.eigh(Sigma_B)
    top = np.argsort(lam)[::-1][: C - 1]
    Sigma_B_pinv = sum(np.outer(V[:, k], V[:, k]) / lam[k] for k in top)

    def cos(u, v):
        return u @ v / (np.linalg.norm(u) * np.linalg.norm(v))

    m = [mu[c] - mu_G for c in range(C)]
    w = [W[c] for c in range(C)]
    pairs = [(c, d) for c in range(C) for d in range(C) if c != d]
    cos_m = [cos(m[c], m[d]) for c, d in pairs]
    cos_w = [cos(w[c], w[d]) for c, d in pairs]
    norms_m = [np.linalg.norm(v) for v in m]
    norms_w = [np.linalg.norm(v) for v in w]
    Mbar = np.stack(m, axis=1)
    etf = (np.eye(C) - np.ones((C, C)) / C) / np.sqrt(C - 1)

    def etf_distance(G):
        return np.linalg.norm(G / np.linalg.norm(G) - etf)

    R = mu if train_means is None else list(np.asarray(train_means, dtype=np.float64))
    mismatches = 0
    for i in range(N):
        logits = [W[c] @ H[i] + b[c] for c in range(C)]
        dists = [np.linalg.norm(H[i] - R[c]) for c in range(C)]
        mismatches += int(np.argmax(logits) != np.argmin(dists))
    return {
        "nc1": np.trace(Sigma_W @ Sigma_B_pinv) / C,
        "nc2_equinorm_means": np.std(norms_m, ddof=1) / np.mean(norms_m),
        "nc2_equinorm_classifiers": np.std(norms_w, ddof=1) / np.mean(norms_w),
        "nc2_equiangular_means": np.std(cos_m, ddof=1),
        "nc2_equiangular_classifiers": np.std(cos_w, ddof=1),
        "nc2_maxangle_means": np.mean([abs(v + 1 / (C - 1)) for v in cos_m]),
        "nc2_maxangle_classifiers": np.mean([abs(v + 1 / (C - 1)) for v in cos_w]),
        "etf_distance_means": etf_distance(Mbar.T @ Mbar),
        "etf_distance_classifiers": etf_distance(W @ W.T),
        "nc3_self_duality": np.linalg.norm(W.T / np.linalg.norm(W) - Mbar / np.linalg.norm(Mbar)) ** 2,
        "nc4_ncc_mismatch": mismatches / N,
        "within_class_variation": np.trace(Sigma_W),
        "between_class_variation": np.trace(Sigma_B),
    }


# ----------------------------------------------------------------------------- data
def random_problem(C=5, p=8, counts=None, seed=0, spread=0.7, offset=0.0, dtype=torch.float64):
    """Noisy class clusters (unbalanced when ``counts`` say so), random classifier and bias."""
    g = torch.Generator().manual_seed(seed)
    counts = counts or [20] * C
    mu = torch.randn(C, p, generator=g, dtype=torch.float64) + offset
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    y = y[torch.randperm(len(y), generator=g)]
    H = mu[y] + spread * torch.randn(len(y), p, generator=g, dtype=torch.float64)
    W = torch.randn(C, p, generator=g, dtype=torch.float64)
    b = torch.randn(C, generator=g, dtype=torch.float64)
    return H.to(dtype), y, W.to(dtype), b.to(dtype)


def random_orthogonal(p, seed):
    g = torch.Generator().manual_seed(seed)
    Q, R = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


def simplex_etf_problem(C, p, scale, offset_norm, counts, seed):
    """Features exactly on a rotated, scaled, offset simplex ETF, W = Mbar^T.

    Vertices: an orthonormal basis V (C x (C-1)) of the complement of 1 gives V V^T = I - 11^T/C;
    the rows of V, scaled to norm ``scale``, are embedded in R^p by a random p x (C-1) matrix
    with orthonormal columns, then shifted by a random offset mu_G. The bias b = -W mu_G makes
    the classifier see h - mu_G, as a collapsed network's classifier does.
    """
    g = torch.Generator().manual_seed(seed)
    P = torch.eye(C, dtype=torch.float64) - 1.0 / C
    V = torch.linalg.eigh(P).eigenvectors[:, 1:]                      # eigenvalues 0, 1, ..., 1
    U = random_orthogonal(p, seed)[:, : C - 1]
    Mbar = scale * math.sqrt(C / (C - 1)) * U @ V.T                   # p x C, columns of norm scale
    offset = torch.randn(p, generator=g, dtype=torch.float64)
    mu_G = offset_norm * offset / offset.norm()
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    y = y[torch.randperm(len(y), generator=g)]
    H = (mu_G[:, None] + Mbar).T[y]
    W = Mbar.T.clone()
    return H, y, W, -W @ mu_G


def assert_close_dicts(a, b, rtol=1e-10, atol=1e-12, keys=EXPECTED_NAMES):
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=rtol, abs=atol), k


# ----------------------------------------------------------------------------- output
def test_names_and_types():
    assert METRIC_NAMES == EXPECTED_NAMES
    H, y, W, b = random_problem()
    out = collapse_metrics(H, y, W, b, 5)
    assert tuple(out) == EXPECTED_NAMES + ("between_class_spectrum",)
    assert all(type(out[k]) is float and math.isfinite(out[k]) for k in EXPECTED_NAMES)
    assert len(out["between_class_spectrum"]) == 4


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("with_train_means", [False, True])
def test_every_metric_returned_is_a_name_of_the_label_table_in_its_order(streamed, with_train_means):
    H, y, W, b = random_problem()
    R = class_means(H, y, 5) + 0.1 if with_train_means else None
    if streamed:
        acc = CollapseAccumulator(5, W, b, train_means=R)
        for i in range(0, len(y), 30):
            acc.update(H[i:i + 30], y[i:i + 30])
        out = acc.compute()
    else:
        out = collapse_metrics(H, y, W, b, 5, train_means=R)
    assert tuple(out) == tuple(COLLAPSE) and METRIC_NAMES + (SPECTRUM,) == tuple(COLLAPSE)
    assert all(isinstance(label, Label) and all(vars(label).values()) for label in LABELS.values())


def reference_spectrum(H, y, C):
    """The C-1 largest eigenvalues of a Sigma_B built by hand, largest first, over their sum (numpy eigvalsh)."""
    H = np.asarray(H, dtype=np.float64)
    mu = [H[np.asarray(y) == c].mean(0) for c in range(C)]
    mu_G = sum(mu) / C
    Sigma_B = sum(np.outer(m - mu_G, m - mu_G) for m in mu) / C
    lam = np.clip(np.linalg.eigvalsh(Sigma_B)[::-1][: C - 1], 0, None)
    return lam / lam.sum()


@pytest.mark.parametrize("C, p, seed", [(5, 8, 0), (10, 128, 1), (3, 2, 2)])
def test_spectrum_is_the_normalised_top_eigenvalues_of_sigma_b(C, p, seed):
    H, y, W, b = random_problem(C, p, seed=seed)
    out = collapse_metrics(H, y, W, b, C)
    assert out["between_class_spectrum"] == pytest.approx(reference_spectrum(H, y, C), rel=1e-9, abs=1e-12)
    acc = CollapseAccumulator(C, W, b, train_means=class_means(H, y, C))
    acc.update(H[:7], y[:7])
    acc.update(H[7:], y[7:])
    assert acc.compute()["between_class_spectrum"] == pytest.approx(out["between_class_spectrum"], rel=1e-9, abs=1e-12)


def test_spectrum_of_a_simplex_etf_is_flat():
    C = 6
    H, y, W, b = simplex_etf_problem(C, 20, 2.0, 1.0, [3] * C, seed=0)
    assert collapse_metrics(H, y, W, b, C)["between_class_spectrum"] == pytest.approx([1 / (C - 1)] * (C - 1))


def rank_deficient_problem():
    """Class 1 given the features of class 0: the 5 class means span 3 dimensions, not C-1 = 4."""
    H, y, W, b = random_problem(5, 8, seed=3)
    H = H.clone()
    H[y == 1] = H[y == 0][: int((y == 1).sum())]
    return H, y, W, b


@pytest.mark.parametrize("streaming", [False, True])
def test_rank_deficient_means_leave_only_nc1_undefined(streaming):
    H, y, W, b = rank_deficient_problem()
    if streaming:
        acc = CollapseAccumulator(5, W, b, train_means=class_means(H, y, 5))
        acc.update(H[:9], y[:9])
        acc.update(H[9:], y[9:])
        out = acc.compute()
    else:
        out = collapse_metrics(H, y, W, b, 5)
    assert out["nc1"] is None
    assert "span fewer than C-1=4 dimensions" in out["undefined"]
    ref = reference_metrics(H, y, W, b, 5)
    defined = [k for k in EXPECTED_NAMES if k != "nc1"]
    assert_close_dicts(out, ref, rtol=1e-8, atol=1e-10, keys=defined)
    spectrum = reference_spectrum(H, y, 5)
    assert out["between_class_spectrum"] == pytest.approx(spectrum, rel=1e-8, abs=1e-12)
    assert out["between_class_spectrum"][-1] < 1e-12 < out["between_class_spectrum"][-2]


def test_all_features_equal_leave_the_traces():
    H, y, W, b = random_problem(4, 6, seed=4)
    out = collapse_metrics(torch.ones_like(H), y, W, b, 4)
    assert out["within_class_variation"] == 0.0 and out["between_class_variation"] == 0.0
    for k in ("nc1", "nc2_equinorm_means", "nc2_equiangular_means", "nc2_maxangle_means", "etf_distance_means",
              "nc3_self_duality", "between_class_spectrum"):
        assert out[k] is None, k
    ref = reference_metrics(H, y, W, b, 4)  # the classifier's own geometry does not depend on the features
    assert_close_dicts(out, ref, keys=("etf_distance_classifiers", "nc2_equiangular_classifiers"))
    assert all(math.isfinite(v) for v in out.values() if isinstance(v, float))


# ----------------------------------------------------------------------------- exact collapse
@pytest.mark.parametrize(
    "C, p, scale, offset_norm",
    [(2, 1, 1.0, 0.0), (3, 2, 1e-3, 5e-3), (10, 9, 1.0, 5.0), (10, 10, 1e3, 0.0),
     (10, 128, 3.7, 20.0), (7, 40, 1e-2, 0.1)],
)
def test_simplex_etf_is_collapsed(C, p, scale, offset_norm):
    counts = [1 + 3 * c for c in range(C)]  # unbalanced, one class with a single sample
    H, y, W, b = simplex_etf_problem(C, p, scale, offset_norm, counts, seed=C + p)
    out = collapse_metrics(H, y, W, b, C)
    for k in EXPECTED_NAMES[:-1]:
        assert abs(out[k]) < 1e-10, (k, out[k])
    assert out["nc4_ncc_mismatch"] == 0.0
    # Tr(Sigma_B) = (1/C) sum_c ||mu_c - mu_G||^2 = scale^2
    assert out["between_class_variation"] == pytest.approx(scale**2, rel=1e-10)


def test_simplex_etf_streamed_with_train_means_is_collapsed():
    C, p = 10, 32
    H, y, W, b = simplex_etf_problem(C, p, 2.0, 3.0, [5] * C, seed=1)
    acc = CollapseAccumulator(C, W, b, train_means=class_means(H, y, C))
    for i in range(0, len(y), 7):
        acc.update(H[i: i + 7], y[i: i + 7])
    out = acc.compute()
    for k in EXPECTED_NAMES[:-1]:
        assert abs(out[k]) < 1e-10, (k, out[k])


# ----------------------------------------------------------------------------- reference
@pytest.mark.parametrize(
    "C, p, counts, use_train_means",
    [(5, 8, None, False), (5, 8, None, True), (4, 3, [30, 2, 11, 57], False),
     (10, 16, [1, 5, 9, 13, 40, 2, 3, 8, 30, 12], True), (2, 5, [3, 9], False)],
)
def test_matches_reference(C, p, counts, use_train_means):
    H, y, W, b = random_problem(C, p, counts, seed=C * p)
    R = H.new_tensor(np.random.default_rng(0).normal(size=(C, p))) if use_train_means else None
    out = collapse_metrics(H, y, W, b, C, train_means=R)
    ref = reference_metrics(H.numpy(), y.numpy(), W.numpy(), b.numpy(), C,
                            None if R is None else R.numpy())
    assert_close_dicts(out, ref, rtol=1e-9)
    assert 0 < out["nc4_ncc_mismatch"] < 1  # the random classifier is not the NCC classifier


def test_single_sample_class_has_defined_within_class_covariance():
    C = 4
    H, y, W, b = random_problem(C, 6, counts=[1, 10, 10, 10], seed=3)
    out = collapse_metrics(H, y, W, b, C)
    ref = reference_metrics(H.numpy(), y.numpy(), W.numpy(), b.numpy(), C)
    assert_close_dicts(out, ref, rtol=1e-9)
    # each class a single sample: Sigma_W = 0, so nc1 = 0
    H, y, W, b = random_problem(C, 6, counts=[1] * C, seed=4)
    out = collapse_metrics(H, y, W, b, C)
    assert out["within_class_variation"] == 0.0 and out["nc1"] == 0.0


def test_unbalanced_global_mean_is_mean_of_class_means():
    # duplicating every sample of one class changes N_c but none of the class means, hence
    # neither mu_G nor any metric built from the means alone
    C = 5
    H, y, W, b = random_problem(C, 7, seed=5)
    H2 = torch.cat([H, H[y == 0], H[y == 0]])
    y2 = torch.cat([y, y[y == 0], y[y == 0]])
    a, a2 = collapse_metrics(H, y, W, b, C), collapse_metrics(H2, y2, W, b, C)
    means_only = [k for k in EXPECTED_NAMES if k.endswith("_means") or k.startswith("etf")]
    means_only += ["nc3_self_duality", "between_class_variation"]
    assert_close_dicts(a, a2, keys=means_only)


def test_train_means_change_nc4_only():
    C = 6
    H, y, W, b = random_problem(C, 9, seed=6)
    own = collapse_metrics(H, y, W, b, C)
    M = class_means(H, y, C)
    shuffled = collapse_metrics(H, y, W, b, C, train_means=M[torch.roll(torch.arange(C), 1)])
    same = collapse_metrics(H, y, W, b, C, train_means=M)
    assert_close_dicts(own, same, rtol=0, atol=0)
    for k in EXPECTED_NAMES:
        if k != "nc4_ncc_mismatch":
            assert shuffled[k] == own[k], k
    assert shuffled["nc4_ncc_mismatch"] != own["nc4_ncc_mismatch"]


def test_class_means_matches_loop_and_is_float64():
    H, y, _, _ = random_problem(4, 3, counts=[2, 7, 1, 5], seed=7, dtype=torch.float32)
    M = class_means(H, y, 4)
    assert M.dtype == torch.float64 and M.shape == (4, 3)
    for c in range(4):
        rows = [H[i].double() for i in range(len(y)) if y[i] == c]
        assert torch.allclose(M[c], sum(rows) / len(rows), rtol=1e-14, atol=0)


def test_float32_input_is_computed_in_float64():
    H, y, W, b = random_problem(5, 8, seed=8, dtype=torch.float32)
    a = collapse_metrics(H, y, W, b, 5)
    a64 = collapse_metrics(H.double(), y, W.double(), b.double(), 5)
    assert_close_dicts(a, a64, rtol=1e-13, atol=0)


# ----------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("a", [1e-3, 0.5, 7.5, 1e3])
def test_scale_invariance(a):
    H, y, W, b = random_problem(6, 10, counts=[4, 9, 17, 3, 8, 11], seed=9)
    out, scaled = collapse_metrics(H, y, W, b, 6), collapse_metrics(a * H, y, W, b, 6)
    assert_close_dicts(out, scaled, rtol=1e-10, keys=SCALE_INVARIANT)
    assert scaled["within_class_variation"] == pytest.approx(a**2 * out["within_class_variation"], rel=1e-10)


@pytest.mark.parametrize("use_train_means", [False, True])
def test_rotation_invariance(use_train_means):
    C, p = 6, 10
    H, y, W, b = random_problem(C, p, counts=[4, 9, 17, 3, 8, 11], seed=10, offset=2.0)
    R = class_means(H, y, C) + 0.3 if use_train_means else None
    Q = random_orthogonal(p, seed=11)
    out = collapse_metrics(H, y, W, b, C, train_means=R)
    rot = collapse_metrics(H @ Q.T, y, W @ Q.T, b, C, train_means=None if R is None else R @ Q.T)
    assert_close_dicts(out, rot, rtol=1e-10)
    assert rot["nc4_ncc_mismatch"] == out["nc4_ncc_mismatch"]


# ----------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("use_train_means", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_streaming_equals_all_at_once(use_train_means, dtype):
    C, p = 10, 24
    counts = [1, 5, 9, 13, 40, 2, 3, 8, 30, 12]
    H, y, W, b = random_problem(C, p, counts, seed=12, offset=50.0, dtype=dtype)
    R = class_means(H, y, C) + 0.5 if use_train_means else None
    whole = collapse_metrics(H, y, W, b, C, train_means=R)
    acc = CollapseAccumulator(C, W, b, train_means=R)
    bounds = [0, 1, 1, 17, 50, 51, 90, len(y)]  # includes an empty batch and a batch of one
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        acc.update(H[lo:hi], y[lo:hi])
    assert_close_dicts(acc.compute(), whole, rtol=1e-10)


def test_streaming_state_does_not_grow_and_copies_batches():
    C, p = 3, 4

    def state_numel(acc):  # tensors held, apart from 4 validation flags per batch
        held = [v for k, v in vars(acc).items() if k != "_flags"]
        held = [t for v in held for t in (v if isinstance(v, list) else [v])]
        return sum(t.numel() for t in held if isinstance(t, torch.Tensor))

    H, y, W, b = random_problem(C, p, seed=13)
    streaming = CollapseAccumulator(C, W, b, train_means=class_means(H, y, C))
    streaming.update(H, y)
    before = state_numel(streaming)
    for _ in range(5):
        streaming.update(H, y)
    assert state_numel(streaming) == before
    # without train_means the accumulator keeps its own copy of the features
    keeping = CollapseAccumulator(C, W, b)
    Hc = H.clone()
    keeping.update(Hc, y)
    expected = collapse_metrics(H, y, W, b, C)
    Hc.mul_(3.0)
    assert_close_dicts(keeping.compute(), expected, rtol=0, atol=0)


# ----------------------------------------------------------------------------- devices
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    C, p = 10, 32
    H, y, W, b = random_problem(C, p, [7] * C, seed=14, dtype=torch.float32)
    R = class_means(H, y, C) + 0.1
    cpu = collapse_metrics(H, y, W, b, C, train_means=R)
    gpu = collapse_metrics(H.cuda(), y.cuda(), W.cuda(), b.cuda(), C, train_means=R.cuda())
    acc = CollapseAccumulator(C, W.cuda(), b.cuda(), train_means=R.cuda())
    for i in range(0, len(y), 16):
        acc.update(H[i: i + 16].cuda(), y[i: i + 16].cuda())
    assert_close_dicts(gpu, cpu, rtol=1e-10)
    assert_close_dicts(acc.compute(), cpu, rtol=1e-10)


# ----------------------------------------------------------------------------- bad input
def _bad(kind):
    """(features, labels, weight, bias, num_classes, train_means) broken in one way."""
    C, p = 4, 5
    H, y, W, b = random_problem(C, p, seed=15)
    R = None
    if kind == "empty class":
        H, y = H[y != 2], y[y != 2]
    elif kind == "p < C-1":
        H, y, W, b = random_problem(6, 4, seed=15)
        C = 6
    elif kind == "features 1-D":
        H = H[:, 0]
    elif kind == "features 3-D":
        H = H[:, :, None]
    elif kind == "labels length":
        y = y[:-1]
    elif kind == "labels 2-D":
        y = y[:, None]
    elif kind == "float labels":
        y = y.double()
    elif kind == "label negative":
        y = y.clone()
        y[3] = -1
    elif kind == "label too large":
        y = y.clone()
        y[3] = C
    elif kind == "NaN feature":
        H = H.clone()
        H[1, 1] = float("nan")
    elif kind == "inf feature":
        H = H.clone()
        H[1, 1] = float("inf")
    elif kind == "weight rows":
        W = W[:-1]
    elif kind == "weight columns":
        W = W[:, :-1]
    elif kind == "bias shape":
        b = b[:-1]
    elif kind == "NaN weight":
        W = W.clone()
        W[0, 0] = float("nan")
    elif kind == "inf bias":
        b = b.clone()
        b[1] = float("inf")
    elif kind == "zero classifier row":
        W = W.clone()
        W[1] = 0.0
    elif kind == "train_means shape":
        R = torch.zeros(C, p + 1, dtype=torch.float64)
    elif kind == "NaN train_means":
        R = torch.zeros(C, p, dtype=torch.float64)
        R[0, 0] = float("nan")
    elif kind == "one class":
        C = 1
    elif kind == "no samples":
        H, y = H[:0], y[:0]
    elif kind == "features not a tensor":
        H = H.numpy()
    return H, y, W, b, C, R


BAD = {
    "empty class": "class 2 has no sample",
    "p < C-1": "p=4 < C-1=5",
    "features 1-D": "features must be 2-D",
    "features 3-D": "features must be 2-D",
    "labels length": "labels must have shape",
    "labels 2-D": "labels must have shape",
    "float labels": "labels must be an integer tensor",
    "label negative": r"label\(s\) outside \[0, 4\) \(smallest -1",
    "label too large": r"label\(s\) outside \[0, 4\) .*largest 4",
    "NaN feature": "features contain 1 NaN or inf",
    "inf feature": "features contain 1 NaN or inf",
    "weight rows": "weight must have shape",
    "weight columns": "features have p=5 columns but the classifier has p=4",
    "bias shape": "bias must have shape",
    "NaN weight": "weight contains NaN",
    "inf bias": "bias contains NaN or inf",
    "zero classifier row": "classifier row w_1 is zero",
    "train_means shape": "train_means must have shape",
    "NaN train_means": "train_means contains NaN",
    "one class": "num_classes must be >= 2",
    "no samples": "N = 0",
    "features not a tensor": "features must be a torch.Tensor",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_raises(kind):
    H, y, W, b, C, R = _bad(kind)
    with pytest.raises(ValueError, match=BAD[kind]):
        collapse_metrics(H, y, W, b, C, train_means=R)


# accumulator: shapes fail in __init__/update, values in compute (naming the batch)
STREAM_BAD = {
    "empty class": "class 2 has no sample",
    "label too large": r"in batch 1 \(0-based\) outside \[0, 4\)",
    "NaN feature": r"features in batch 0 \(0-based\) contain 1 NaN",
    "features 1-D": "features must be 2-D",
    "labels length": "labels must have shape",
    "weight columns": "features have p=5 columns but the classifier has p=4",
    "p < C-1": "p=4 < C-1=5",
    "zero classifier row": "classifier row w_1 is zero",
    "train_means shape": "train_means must have shape",
}


@pytest.mark.parametrize("use_train_means", [False, True])
@pytest.mark.parametrize("kind", list(STREAM_BAD))
def test_bad_input_raises_when_streaming(kind, use_train_means):
    H, y, W, b, C, R = _bad(kind)
    if R is None and use_train_means:
        R = torch.zeros(C, W.shape[1], dtype=torch.float64)
    with pytest.raises(ValueError, match=STREAM_BAD[kind]):
        acc = CollapseAccumulator(C, W, b, train_means=R)
        acc.update(H[:2], y[:2])
        acc.update(H[2:], y[2:])
        acc.compute()


def test_compute_without_data_raises():
    _, _, W, b = random_problem(3, 4)
    with pytest.raises(ValueError, match="no data"):
        CollapseAccumulator(3, W, b).compute()


def test_class_means_rejects_empty_class():
    H, y, _, _ = random_problem(4, 3, counts=[2, 0, 3, 1])
    with pytest.raises(ValueError, match="class 1 has no sample"):
        class_means(H, y, 4)
