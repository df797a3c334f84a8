"""The penalties a schedule weighs with λ: the topological densification loss of Hofer et al., its two halves,
and the centroid controls (the schedules themselves are in `schedules.py`).

Reference: C. Hofer, F. Graf, M. Niethammer, R. Kwitt, "Topologically Densified Distributions",
ICML 2020, arXiv 2002.04805.

0-dimensional Vietoris–Rips persistence of a point cloud has all births at 0 and its n − 1 finite
death times are the edge lengths of a minimum spanning tree (MST) of the complete graph on the
points. `vr0_death_times` finds the tree with Prim's algorithm, batched over groups, on a distance
matrix computed without gradient, and then recomputes only the n − 1 tree edges from the points, so
that each death time is differentiable and its gradient reaches exactly the two endpoints of its edge.
"""
import functools
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from common.schedules import SCHEDULES, check_nonneg, describe

# metric name -> `ord` of the vector norm (also the `p` of torch.pdist)
METRICS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    return METRICS[metric]


@functools.lru_cache(maxsize=64)
def _square_index(n, device):
    """(n, n) positions of the entries of a square distance matrix in `torch.pdist`'s condensed
    vector of length m = n(n − 1)/2; the diagonal points at position m, where a 0 is appended."""
    m = n * (n - 1) // 2
    i, j = torch.triu_indices(n, n, 1, device=device)
    idx = torch.full((n, n), m, dtype=torch.long, device=device)
    pos = torch.arange(m, device=device)
    idx[i, j] = pos
    idx[j, i] = pos
    return idx


def _pairwise(x, p):
    """Exact pairwise distances (G, n, n) of x (G, n, d), without gradient.

    Differences, never the ‖a‖² + ‖b‖² − 2ab matrix-multiply shortcut: that one cancels
    catastrophically and leaves 0.01, 0.1 or 0.9 instead of 0 for a duplicate point in float32 at
    coordinates of scale 1, 10 or 100 (d = 128, torch.cdist with use_mm_for_euclid_dist). The tree
    is chosen on these distances; the returned lengths are recomputed.
    A loop of `torch.pdist` (upper triangle only) over the groups was measured faster on CPU than a
    batched `torch.cdist` without the shortcut at every size of interest (about 10× at (16, 128, 512));
    it is one call per group, not per point. On CUDA, where each call is a kernel launch and the GPU
    would idle between them, one batched `torch.cdist` without the shortcut computes the same
    differences (its diagonal is exactly 0 and it is exactly symmetric, as |a − b| = |b − a|).
    """
    G, n, _ = x.shape
    if x.is_cuda:
        return torch.cdist(x, x, p=p, compute_mode="donot_use_mm_for_euclid_dist")
    cond = torch.stack([torch.pdist(xg, p) for xg in x]) if G else x.new_empty(0, n * (n - 1) // 2)
    cond = torch.cat([cond, cond.new_zeros(G, 1)], 1)
    return cond.index_select(1, _square_index(n, x.device).view(-1)).view(G, n, n)


def _prim_edges(D):
    """Minimum spanning tree edges of each group by Prim's algorithm, all groups at once.

    Parameters
    ----------
    D : Tensor (G, n, n)
        Symmetric distances with zero diagonal; overwritten.

    Returns
    -------
    parent, child : LongTensor (G, n − 1)
        Tree edge k of group g joins points parent[g, k] and child[g, k].

    Notes
    -----
    n − 1 steps, each a few small tensor ops on all groups and no host synchronisation. `key` holds
    each point's distance to the tree grown so far; `pen` is +inf at points already in the tree,
    so that adding it keeps them from being picked again (cheaper than masking at every step).
    Parents are found once at the end: the parent of a point is its nearest point among those that
    joined before it, which is the edge that gave its key the minimum.
    """
    G, n, _ = D.shape
    dev = D.device
    rows = D.reshape(G * n, n)
    off = torch.arange(G, device=dev) * n  # row of point 0 of each group in `rows`
    key = D[:, 0].clone()  # the tree starts at point 0
    pen = torch.zeros_like(key)
    pen[:, 0] = math.inf
    key.add_(pen)
    # order[k]: the point that joined k-th, as a row of `rows`, so that one index serves the fill
    # and the read; views made once, outside the loop
    order = torch.empty(n, G, dtype=torch.long, device=dev)
    order[0] = off
    slots, pen_flat = order.unbind(0), pen.view(-1)
    for k in range(1, n):
        c = torch.argmin(key, 1, out=slots[k]).add_(off)
        pen_flat.index_fill_(0, c, math.inf)
        torch.minimum(key, rows.index_select(0, c), out=key)
        key.add_(pen)
    order = order.t() - off.unsqueeze(1)  # (G, n): the points in the order they joined
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=dev).expand(G, n))
    # [g, b, a]: a joined after b or is b. D is symmetric, so reduce over the contiguous last dim;
    # D is no longer needed, so mask it in place
    parent = D.masked_fill_(rank.unsqueeze(1) >= rank.unsqueeze(2), math.inf).argmin(2)
    child = order[:, 1:]
    return parent.gather(1, child), child


class _EdgeLengths(torch.autograd.Function):
    """‖x[a] − x[b]‖_p for rows a, b of x (N, d): the lengths of the chosen edges.

    Forward is `torch.linalg.vector_norm` of the differences. The backward is written out because
    autograd's (two index_select, subtraction and norm backwards) fills and adds several full-size
    buffers: this one measured 10–30 % off the loss's forward + backward at (16, 128, 512), and the
    same time at (8, 16, 128). It applies torch's own subgradients of the norm, all 0 for a zero
    difference (duplicate points): l2: u / ‖u‖; l1: sign(u); linf: sign(u) shared equally by the
    coordinates of largest |u|. Double backward is not supported (nothing here needs it).
    """

    @staticmethod
    def forward(ctx, x, a, b, p):
        u = x.index_select(0, a).sub_(x.index_select(0, b))
        length = torch.linalg.vector_norm(u, ord=p, dim=-1)
        ctx.save_for_backward(a, b, u, length)
        ctx.p, ctx.rows = p, x.shape[0]
        return length

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, b, u, length = ctx.saved_tensors
        if ctx.p == 2:
            gu = u * torch.where(length > 0, g / length, 0.0).unsqueeze(-1)
        elif ctx.p == 1:
            gu = u.sign().mul_(g.unsqueeze(-1))
        else:
            top = u.abs() == length.unsqueeze(-1)  # all of them when u = 0, where sign(u) = 0
            gu = u.sign().mul_(top).mul_((g / top.sum(-1)).unsqueeze(-1))
        gx = gu.new_zeros(ctx.rows, u.shape[1]).index_add_(0, a, gu).index_add_(0, b, gu, alpha=-1)
        return gx, None, None, None


def vr0_death_times(points, metric="l2", check=False):
    """Death times of 0-dimensional Vietoris–Rips persistence, differentiable and batched.

    All births are 0 and the n − 1 finite deaths are the edge lengths of a minimum spanning tree of
    the complete graph on the points (Hofer et al., ICML 2020, arXiv 2002.04805):

        d_1 ≤ … ≤ d_{n−1},   {d_k} = { ‖x_a − x_b‖ : (a, b) ∈ MST(x) }.

    Each d_k is the norm of one difference of two points, so its gradient flows to exactly those
    two points; a duplicate pair gives d_k = 0 exactly and a zero (not NaN) gradient.

    Parameters
    ----------
    points : Tensor (n, d) or (G, n, d)
        Floating point; G groups of n points each, n ≥ 2.
    metric : {"l2", "l1", "linf"}
        Norm of the differences.
    check : bool
        Also check that all points are finite. This reads a value back to the host (a CUDA
        synchronisation), so it is off by default and should stay off in a training step.

    Returns
    -------
    Tensor (n − 1,) or (G, n − 1)
        Death times of each group, sorted ascending, same dtype and device as `points`.

    Raises
    ------
    TypeError
        `points` is not a tensor.
    ValueError
        Wrong shape, n < 2, non-floating dtype, unknown metric, or (with check=True) non-finite points.
    """
    p = _check_metric(metric)
    if not torch.is_tensor(points):
        raise TypeError(f"points must be a torch.Tensor, got {type(points).__name__}")
    if points.dim() not in (2, 3):
        raise ValueError(f"points must have shape (n, d) or (G, n, d), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise ValueError(f"points must be floating point, got {points.dtype}")
    if points.shape[-2] < 2:
        raise ValueError(f"points must have n >= 2 points per group, got n = {points.shape[-2]}")
    if check and not bool(torch.isfinite(points).all()):
        raise ValueError("points must be finite (found NaN or inf)")

    x = points if points.dim() == 3 else points.unsqueeze(0)
    with torch.no_grad():
        a, b = _prim_edges(_pairwise(x.detach(), p))
    # recompute only the tree edges, with gradient: each death is the norm of one difference
    G, n, d = x.shape
    off = (torch.arange(G, device=x.device) * n).unsqueeze(1)
    deaths = _EdgeLengths.apply(x.reshape(G * n, d), (a + off).reshape(-1), (b + off).reshape(-1), p)
    deaths = deaths.view(G, n - 1).sort(-1).values
    return deaths if points.dim() == 3 else deaths.squeeze(0)


class TopologicalLoss(nn.Module):
    """Topological densification loss of Hofer et al. (ICML 2020, arXiv 2002.04805).

    For latent codes arranged as G groups of n same-class samples, with death times d_gk of the
    0-dimensional Vietoris–Rips persistence of group g (see `vr0_death_times`):

        L_top = (1/G) Σ_g Σ_k |d_gk − β|

    (sum over the n − 1 death times, mean over groups). Deaths above β are pulled down toward β and
    deaths below β are pushed up toward β; with β = 0 it is the total spanning-tree length.

    Parameters
    ----------
    beta : float
        Target scale β ≥ 0. A plain attribute: a schedule may set `loss.beta` every step.
    metric : {"l2", "l1", "linf"}
        Norm used for the distances (this project's MNIST protocol uses l1).
    """

    def __init__(self, beta=0.5, metric="l2"):
        super().__init__()
        _check_metric(metric)
        self.metric = metric
        self.beta = beta

    @property
    def beta(self):
        return self._beta

    @beta.setter
    def beta(self, value):
        self._beta = check_nonneg("beta", value)

    def forward(self, latent, beta=None):
        """Loss of latent codes (G, n, d); `beta` overrides `self.beta` for this call only."""
        beta = self._beta if beta is None else check_nonneg("beta", beta)
        if not torch.is_tensor(latent) or latent.dim() != 3:
            shape = tuple(latent.shape) if torch.is_tensor(latent) else type(latent).__name__
            raise ValueError(f"latent must have shape (G, n, d), got {shape}; "
                             "reshape a group-major batch with latent.view(G, n, -1)")
        deaths = vr0_death_times(latent, self.metric)                                   # (G, n − 1)
        return self.edge_penalty(deaths, beta).sum(1).mean()

    @staticmethod
    def edge_penalty(deaths, beta):
        """|d − β| of each death time: both sides of the target."""
        return (deaths - beta).abs()

    def extra_repr(self):
        return f"beta={self._beta}, metric={self.metric!r}"


class FloorLoss(TopologicalLoss):
    """The push-up half of L_top: only death times below β are pushed up toward it, nothing is contracted.

        L_floor = (1/G) Σ_g Σ_k max(0, β − d_gk)

    With `CeilingLoss`, max(0, β − d) + max(0, d − β) = |d − β| edge by edge: the two halves of
    `TopologicalLoss`. Same parameters as `TopologicalLoss`.
    """

    @staticmethod
    def edge_penalty(deaths, beta):
        return (beta - deaths).clamp_min(0)


class CeilingLoss(TopologicalLoss):
    """The contraction half of L_top: death times above β are pulled down to β, none is pushed up.

        L_ceiling = (1/G) Σ_g Σ_k max(0, d_gk − β)

    A contraction along each group's spanning tree that stops at the scale β (with β = 0 it is the
    total tree length, as `TopologicalLoss` with β = 0). Same parameters as `TopologicalLoss`.
    """

    @staticmethod
    def edge_penalty(deaths, beta):
        return (deaths - beta).clamp_min(0)


class CenterLoss(nn.Module):
    """Contraction of each group toward its centroid: the non-topological control of the `ramp` schedule.

    For latent codes arranged as G groups of n same-class samples, z_gi, with group means
    z̄_g = (1/n) Σ_i z_gi,

        L_center = (1/G) Σ_g Σ_i ‖z_gi − z̄_g‖_p

    (sum over the n codes, mean over groups), with the same norm as the persistence. Where
    `TopologicalLoss` with β = 0 pulls each code toward its spanning-tree neighbours, this pulls it
    toward the group mean; both are zero exactly when a group is one point. A code equal to its
    group mean gets the zero subgradient of the norm, so a group of identical codes gives a zero,
    not NaN, gradient.

    Parameters
    ----------
    metric : {"l2", "l1", "linf"}
        Norm of the differences.
    """

    def __init__(self, metric="l2"):
        super().__init__()
        self.p = _check_metric(metric)
        self.metric = metric

    def forward(self, latent, beta=None):
        """Loss of latent codes (G, n, d); `beta` is accepted for a common call with `TopologicalLoss` and unused."""
        if not torch.is_tensor(latent) or latent.dim() != 3:
            shape = tuple(latent.shape) if torch.is_tensor(latent) else type(latent).__name__
            raise ValueError(f"latent must have shape (G, n, d), got {shape}")
        u = latent - latent.mean(1, keepdim=True)                                       # (G, n, d)
        return torch.linalg.vector_norm(u, ord=self.p, dim=-1).sum(1).mean()

    def extra_repr(self):
        return f"metric={self.metric!r}"


class CenterRadiusLoss(nn.Module):
    """A non-topological target scale: each code is held at distance r from its group's mean.

    For latent codes z_gi in G groups of n, with group means z̄_g = (1/n) Σ_i z_gi,

        L_radius = (1/G) Σ_g Σ_i | ‖z_gi − z̄_g‖_p − r |

    (sum over the n codes, mean over groups), r ≥ 0 given as `beta`. The centroid counterpart of
    `TopologicalLoss` with β > 0, as `CenterLoss` is of β = 0: codes farther than r from their mean
    are pulled in, codes nearer are pushed out. r is a distance to a centroid, not a tree-edge length,
    so it is not on the scale of β. A code equal to its group mean gets the zero subgradient of the
    norm, so a group of identical codes gives a zero, not NaN, gradient.

    Parameters
    ----------
    beta : float
        Target radius r ≥ 0. A plain attribute, like `TopologicalLoss.beta`.
    metric : {"l2", "l1", "linf"}
        Norm of the differences.
    """

    def __init__(self, beta=1.0, metric="l2"):
        super().__init__()
        self.p = _check_metric(metric)
        self.metric = metric
        self.beta = check_nonneg("beta", beta)

    def forward(self, latent, beta=None):
        """Loss of latent codes (G, n, d); `beta` (the radius r) overrides `self.beta` for this call only."""
        r = self.beta if beta is None else check_nonneg("beta", beta)
        if not torch.is_tensor(latent) or latent.dim() != 3:
            shape = tuple(latent.shape) if torch.is_tensor(latent) else type(latent).__name__
            raise ValueError(f"latent must have shape (G, n, d), got {shape}")
        u = latent - latent.mean(1, keepdim=True)                                       # (G, n, d)
        return (torch.linalg.vector_norm(u, ord=self.p, dim=-1) - r).abs().sum(1).mean()

    def extra_repr(self):
        return f"beta={self.beta}, metric={self.metric!r}"


# the penalty of each schedule, by `Schedule.loss`
LOSSES = {"topological": TopologicalLoss, "center": CenterLoss, "floor": FloorLoss, "ceiling": CeilingLoss,
          "center_radius": CenterRadiusLoss}


def make_loss(name, metric="l2"):
    """The penalty that schedule `name` weighs with λ, as a module called `loss(latent (G, n, d), beta=β)`."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of:\n{describe()}")
    return LOSSES[SCHEDULES[name].loss](metric=metric)
