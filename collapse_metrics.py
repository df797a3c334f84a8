"""Neural-collapse metrics (NC1-NC4) of last-layer features and a linear classifier.

Reference
---------
V. Papyan, X. Y. Han and D. L. Donoho, "Prevalence of neural collapse during the terminal
phase of deep learning training", PNAS 117(40), 24652-24663, 2020. arXiv:2008.08186.

Notation
--------
Features ``h_i in R^p`` with labels ``y_i in {0, ..., C-1}``, ``i = 1..N``; ``N_c`` samples in
class ``c``. Classifier ``W in R^{C x p}`` with rows ``w_c`` and bias ``b in R^C``.

* class means      ``mu_c = (1/N_c) sum_{i: y_i = c} h_i``
* global mean      ``mu_G = (1/C) sum_c mu_c`` (the mean of the class means; Papyan et al. average
  all samples, which is the same on their balanced data sets. Averaging the class means keeps
  ``rank(Sigma_B) = C-1`` when the classes are unbalanced.)
* centred means    ``M = [mu_0 - mu_G, ..., mu_{C-1} - mu_G]`` (``p x C``; the paper's M-bar)
* within-class     ``Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``
* between-class    ``Sigma_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T = M M^T / C``

Metrics (the keys of the returned dict, in the order of `METRIC_NAMES`; all but
``between_class_variation`` are 0 at exact neural collapse; names and display labels in
`collapse_names.COLLAPSE`)
------------------------------------------------------------------------------------------
* ``nc1``: ``Tr(Sigma_W Sigma_B^+) / C`` (Papyan et al., Fig. 6). ``Sigma_B^+`` is the
  pseudo-inverse on the top ``C-1`` eigenpairs of ``Sigma_B`` from a float64 ``eigh``:
  ``Tr(Sigma_W Sigma_B^+) = sum_k v_k^T Sigma_W v_k / lambda_k``.
* ``nc2_equinorm_means`` / ``nc2_equinorm_classifiers``: ``std_c / mean_c`` of ``||mu_c - mu_G||``
  / of ``||w_c||`` (Fig. 2).
* ``nc2_equiangular_means`` / ``nc2_equiangular_classifiers``: ``std`` of the cosines
  ``cos(mu_c - mu_G, mu_c' - mu_G)`` / ``cos(w_c, w_c')`` over the ``C(C-1)`` ordered pairs
  ``c != c'`` (Fig. 3).
* ``nc2_maxangle_means`` / ``nc2_maxangle_classifiers``: ``mean |cos + 1/(C-1)|`` over the same
  pairs (Fig. 4).
* ``etf_distance_means`` / ``etf_distance_classifiers``:
  ``|| G/||G||_F - (I - 11^T/C)/sqrt(C-1) ||_F`` with ``G = M^T M`` / ``G = W W^T``; the target is
  the Gram matrix of a simplex equiangular tight frame normalised to unit Frobenius norm.
* ``nc3_self_duality``: ``|| W^T/||W||_F - M/||M||_F ||_F^2`` (Fig. 5; the bias is excluded).
* ``nc4_ncc_mismatch``: fraction of samples with
  ``argmax_c (w_c^T h + b_c) != argmin_c ||h - mu_c||_2`` (Fig. 7). The class means here are
  ``train_means`` when given (test features are classified with the *training* means), otherwise
  the features' own class means. ``train_means`` changes nothing but this metric. Ties go to
  the lowest class index in both argmax and argmin.
* ``within_class_variation``: ``Tr(Sigma_W)``; ``between_class_variation``: ``Tr(Sigma_B)``.
* ``between_class_spectrum``: the ``C-1`` largest eigenvalues of ``Sigma_B``, largest first,
  divided by their sum (a list; ``1/(C-1)`` each at a simplex ETF, where the means span ``C-1``
  equal directions). Not in `METRIC_NAMES`, which lists the scalars.

All standard deviations use ``ddof = 1``, as in the authors' notebook.

Conventions and bad input
-------------------------
* Every computation is in float64 whatever the input dtype, on the device of the inputs (CPU or
  CUDA); results are python floats.
* A class with a single sample is valid: its mean is that sample, it adds zero scatter to
  ``Sigma_W`` and counts once in ``N``.
* ``ValueError`` (with a message saying what is wrong) for: ``num_classes < 2``; a class with no
  sample (named); ``p < C-1``; wrongly shaped features, labels, weight, bias or ``train_means``;
  non-integer labels or labels outside ``[0, C)``; non-finite features, weight, bias or
  ``train_means``; a classifier row ``w_c = 0``.
* Class means that do not span ``C-1`` dimensions (``Sigma_B`` numerically of rank ``< C-1``,
  e.g. two classes with the same mean) are no error: ``nc1`` is then None and the key
  ``undefined`` says why; every other metric is still returned (the cosines of the means are
  None only where a centred mean is zero; their equinorm, the ETF distance and NC3 of the means
  and the spectrum only where all class means coincide). No metric is ever returned as NaN.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from common.collapse_names import METRIC_NAMES, SPECTRUM

__all__ = ["METRIC_NAMES", "collapse_metrics", "class_means", "CollapseAccumulator"]

_F64 = torch.float64


# ----------------------------------------------------------------------------- input checks
def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"num_classes must be an integer, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return int(num_classes)


def _tensor(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _features(features, p: int | None = None) -> Tensor:
    """Check shape ``(N, p)`` (no host sync) and return a float64 view/copy."""
    H = _tensor(features, "features")
    if H.dim() != 2:
        raise ValueError(f"features must be 2-D (N, p), got shape {tuple(H.shape)}")
    if p is not None and H.shape[1] != p:
        raise ValueError(f"features have p={H.shape[1]} columns but the classifier has p={p}")
    if H.is_complex() or H.dtype == torch.bool:
        raise ValueError(f"features must be real numbers, got dtype {H.dtype}")
    return H.detach().to(_F64)


def _labels(labels, n: int, device) -> Tensor:
    y = _tensor(labels, "labels")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(f"labels must be an integer tensor, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) to match features, got {tuple(y.shape)}")
    return y.detach().to(device=device, dtype=torch.int64)


def _classifier(weight, bias, C: int) -> tuple[Tensor, Tensor]:
    """Check ``W (C, p)``, ``b (C,)`` (``None`` means zeros), ``p >= C-1``, finite, rows != 0."""
    W = _tensor(weight, "weight")
    if W.dim() != 2 or W.shape[0] != C:
        raise ValueError(f"weight must have shape (C={C}, p), got {tuple(W.shape)}")
    p = W.shape[1]
    if p < C - 1:
        raise ValueError(
            f"feature dimension p={p} < C-1={C - 1}: C class means cannot span the C-1 "
            "dimensions of a simplex, so Sigma_B^+ on C-1 eigenpairs is undefined"
        )
    W = W.detach().to(_F64)
    if bias is None:
        b = torch.zeros(C, dtype=_F64, device=W.device)
    else:
        b = _tensor(bias, "bias")
        if tuple(b.shape) != (C,):
            raise ValueError(f"bias must have shape ({C},), got {tuple(b.shape)}")
        b = b.detach().to(device=W.device, dtype=_F64)
    finite_W, finite_b, min_norm = torch.stack(
        [torch.isfinite(W).all().to(_F64), torch.isfinite(b).all().to(_F64),
         W.norm(dim=1).min()]
    ).tolist()
    if not finite_W:
        raise ValueError("weight contains NaN or inf")
    if not finite_b:
        raise ValueError("bias contains NaN or inf")
    if not min_norm > 0:
        c = int(W.norm(dim=1).argmin())
        raise ValueError(f"classifier row w_{c} is zero: its cosines are undefined")
    return W, b


def _reference_means(train_means, C: int, p: int, device) -> Tensor:
    R = _tensor(train_means, "train_means")
    if tuple(R.shape) != (C, p):
        raise ValueError(f"train_means must have shape ({C}, {p}), got {tuple(R.shape)}")
    R = R.detach().to(device=device, dtype=_F64)
    if not bool(torch.isfinite(R).all()):
        raise ValueError("train_means contains NaN or inf")
    return R


def _value_flags(H: Tensor, y: Tensor, C: int) -> Tensor:
    """Device tensor ``[#labels outside [0, C), #non-finite features, min label, max label]``."""
    bad = ((y < 0) | (y >= C)).sum()
    nonfinite = (~torch.isfinite(H)).sum()
    return torch.stack([bad, nonfinite, y.min(), y.max()])


def _raise_on_flags(flags: list, C: int, where: str = "") -> None:
    bad, nonfinite, lo, hi = (int(v) for v in flags)
    if bad:
        raise ValueError(
            f"{bad} label(s){where} outside [0, {C}) (smallest {lo}, largest {hi})"
        )
    if nonfinite:
        raise ValueError(f"features{where} contain {nonfinite} NaN or inf value(s)")


def _raise_on_counts(counts: list) -> None:
    empty = [c for c, n in enumerate(counts) if n == 0]
    if empty:
        raise ValueError(
            f"class {empty[0]} has no sample (samples per class: {[int(n) for n in counts]}); "
            "every class needs at least one sample to define its mean"
            + (f" (also empty: {empty[1:]})" if len(empty) > 1 else "")
        )


# ----------------------------------------------------------------------------- building blocks
def _one_hot(y: Tensor, C: int) -> Tensor:
    """``(N, C)`` float64 indicator; labels must already lie in ``[0, C)``."""
    return (y[:, None] == torch.arange(C, device=y.device)).to(_F64)


def _ncc_mismatches(H: Tensor, W: Tensor, b: Tensor, R: Tensor) -> Tensor:
    """Number of rows with ``argmax_c(w_c^T h + b_c) != argmin_c ||h - r_c||`` (device scalar).

    ``||h - r_c||^2 = ||h||^2 - 2 h^T r_c + ||r_c||^2``; the first term is the same for every
    class, so ``argmin_c (||r_c||^2 - 2 h^T r_c)``, computed after subtracting the mean of the
    ``r_c`` from ``h`` and ``r_c`` (distances are unchanged, cancellation is smaller).
    """
    pred = (H @ W.T + b).argmax(dim=1)
    r0 = R.mean(dim=0)
    Rc = R - r0
    ncc = ((Rc * Rc).sum(dim=1) - 2.0 * (H - r0) @ Rc.T).argmin(dim=1)
    return (pred != ncc).sum()


def _cosine_stats(X: Tensor) -> dict[str, Tensor]:
    """``equinorm``, ``equiangular`` and ``maxangle`` of the columns of ``X`` (``p x C``), as defined for NC2 in the
    module docstring (device scalars)."""
    C = X.shape[1]
    norms = X.norm(dim=0)
    U = X / norms
    off = (U.T @ U)[~torch.eye(C, dtype=torch.bool, device=X.device)]  # C(C-1) ordered pairs
    return dict(equinorm=norms.std() / norms.mean(), equiangular=off.std(),
                maxangle=(off + 1.0 / (C - 1)).abs().mean())


def _to_host(values: dict[str, Tensor]) -> dict:
    """The device tensors of `values` (float64, each a scalar or a vector) by name, as python floats and lists of
    floats, through one host sync."""
    flat = torch.cat([v.reshape(-1) for v in values.values()]).tolist()
    out, start = {}, 0
    for name, v in values.items():
        out[name] = flat[start] if v.dim() == 0 else flat[start:start + v.numel()]
        start += v.numel()
    return out


def _etf_distance(G: Tensor) -> Tensor:
    C = G.shape[0]
    I = torch.eye(C, dtype=_F64, device=G.device)
    target = (I - 1.0 / C) / math.sqrt(C - 1)
    return (G / G.norm() - target).norm()


def _metrics(M: Tensor, Sigma_W: Tensor, W: Tensor, mismatches: Tensor, N: int) -> dict:
    """All metrics from the class means ``M`` (``C x p``), ``Sigma_W`` and the classifier.

    Where the class means span fewer than ``C-1`` dimensions ``nc1`` is None (``Sigma_B^+`` on
    ``C-1`` eigenpairs is undefined) and ``undefined`` says why; the cosines of the means are None
    only where a centred mean is zero, and their equinorm, the ETF distance and NC3 of the means and
    the spectrum only where all class means coincide (``Tr Sigma_B = 0``). Everything else is always
    returned.
    """
    C, p = M.shape
    mu_G = M.mean(dim=0)
    Mbar = (M - mu_G).T  # p x C
    Sigma_B = Mbar @ Mbar.T / C
    lam, V = torch.linalg.eigh(Sigma_B)  # ascending
    lam, V = lam[-(C - 1):], V[:, -(C - 1):]
    nc1 = ((V * (Sigma_W @ V)).sum(dim=0) / lam).sum() / C

    means, classifiers = _cosine_stats(Mbar), _cosine_stats(W.T)
    metrics = {  # every name of METRIC_NAMES (collapse_names.COLLAPSE), in its order: the tests hold them to it
        "nc1": nc1,
        "nc2_equinorm_means": means["equinorm"],
        "nc2_equinorm_classifiers": classifiers["equinorm"],
        "nc2_equiangular_means": means["equiangular"],
        "nc2_equiangular_classifiers": classifiers["equiangular"],
        "nc2_maxangle_means": means["maxangle"],
        "nc2_maxangle_classifiers": classifiers["maxangle"],
        "etf_distance_means": _etf_distance(Mbar.T @ Mbar),
        "etf_distance_classifiers": _etf_distance(W @ W.T),
        "nc3_self_duality": (W.T / W.norm() - Mbar / Mbar.norm()).pow(2).sum(),
        "nc4_ncc_mismatch": mismatches.to(_F64) / N,
        "within_class_variation": torch.trace(Sigma_W),
        "between_class_variation": torch.trace(Sigma_B),
    }
    host = _to_host(dict(metrics, min_norm=Mbar.norm(dim=0).min(), spectrum=lam.flip(0)))  # the spectrum largest first
    out = {name: host[name] for name in metrics}
    min_norm, spectrum = host["min_norm"], host["spectrum"]
    lam_max, lam_min = spectrum[0], spectrum[-1]
    empty = []
    if not lam_min > lam_max * p * torch.finfo(_F64).eps:
        empty.append("nc1")
        out["undefined"] = (
            f"the class means span fewer than C-1={C - 1} dimensions (eigenvalues of Sigma_B: largest "
            f"{lam_max:.3g}, {C - 1}-th largest {lam_min:.3g}), e.g. two classes share a mean: nc1 is undefined")
    if not min_norm > 0:  # a centred mean of zero has no direction
        empty += ["nc2_equiangular_means", "nc2_maxangle_means"]
    if not out["between_class_variation"] > 0:  # all class means coincide
        empty += ["nc2_equinorm_means", "etf_distance_means", "nc3_self_duality"]
    for k in empty:
        out[k] = None
    spectrum = [max(v, 0.0) for v in spectrum]  # eigenvalues of a PSD matrix: a negative one is rounding
    total = sum(spectrum)
    out[SPECTRUM] = [v / total for v in spectrum] if total > 0 else None
    nonfinite = [k for k, v in out.items() if isinstance(v, float) and not math.isfinite(v)]
    if nonfinite:  # not reachable after the checks above; kept so that NaN never escapes
        raise ValueError(f"non-finite metric(s) {nonfinite}; the input is degenerate")
    return out


# ----------------------------------------------------------------------------- public API
def class_means(features: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Class means ``mu_c = (1/N_c) sum_{y_i = c} h_i`` of the features.

    Parameters
    ----------
    features : Tensor, shape (N, p)
        Features ``h_i``, any real dtype, CPU or CUDA.
    labels : Tensor, shape (N,)
        Integer labels in ``[0, num_classes)``.
    num_classes : int
        Number of classes ``C >= 2``.

    Returns
    -------
    Tensor, shape (C, p)
        float64 class means on the device of ``features`` (row ``c`` is ``mu_c``).

    Raises
    ------
    ValueError
        Bad shapes, labels out of range, non-finite features, or a class with no sample.
    """
    C = _check_num_classes(num_classes)
    H = _features(features)
    y = _labels(labels, H.shape[0], H.device)
    if H.shape[0] == 0:
        raise ValueError("features are empty (N = 0)")
    flags = _value_flags(H, y, C)
    Y = _one_hot(y.clamp(0, C - 1), C)
    n = Y.sum(dim=0)
    checks = torch.cat([flags.to(_F64), n]).tolist()
    _raise_on_flags(checks[:4], C)
    _raise_on_counts(checks[4:])
    return (Y.T @ H) / n[:, None]


def collapse_metrics(features: Tensor, labels: Tensor, weight: Tensor, bias: Tensor | None,
                     num_classes: int, train_means: Tensor | None = None) -> dict[str, float]:
    """Neural-collapse metrics of features and a linear classifier (Papyan et al., PNAS 2020).

    The definitions are in the module docstring.

    Parameters
    ----------
    features : Tensor, shape (N, p)
        Last-layer features ``h_i``; any real dtype, CPU or CUDA (computed in float64).
    labels : Tensor, shape (N,)
        Integer labels in ``[0, num_classes)``; every class needs at least one sample.
    weight : Tensor, shape (C, p)
        Classifier ``W`` (rows ``w_c``), e.g. ``model.classifier.weight``.
    bias : Tensor, shape (C,), or None
        Classifier bias ``b`` (``None``: zero); used by ``nc4_ncc_mismatch`` only.
    num_classes : int
        Number of classes ``C >= 2``; needs ``p >= C - 1``.
    train_means : Tensor, shape (C, p), optional
        Class means used by the nearest-class-centre classifier of ``nc4_ncc_mismatch``
        (the training means when ``features`` are test features, see `class_means`);
        default: the class means of ``features``. No other metric depends on it.

    Returns
    -------
    dict
        One python float (or None, see the module docstring) per name in `METRIC_NAMES`, in that
        order, then ``between_class_spectrum`` (a list) and, where ``nc1`` is undefined, ``undefined``.

    Raises
    ------
    ValueError
        On any bad input listed in the module docstring.

    Notes
    -----
    The computation runs on the device of ``weight``; the other inputs are moved there.
    """
    C = _check_num_classes(num_classes)
    W, b = _classifier(weight, bias, C)
    H = _features(features, W.shape[1]).to(W.device)
    y = _labels(labels, H.shape[0], W.device)
    if H.shape[0] == 0:
        raise ValueError("features are empty (N = 0)")
    R = None if train_means is None else _reference_means(train_means, C, W.shape[1], W.device)

    flags = _value_flags(H, y, C)
    y = y.clamp(0, C - 1)  # only matters when flags report out-of-range labels
    Y = _one_hot(y, C)
    n = Y.sum(dim=0)
    checks = torch.cat([flags.to(_F64), n]).tolist()
    _raise_on_flags(checks[:4], C)
    _raise_on_counts(checks[4:])
    return _from_data(H, y, Y, n, W, b, R)


def _from_data(H, y, Y, n, W, b, R) -> dict:
    M = (Y.T @ H) / n[:, None]
    D = H - M[y]
    Sigma_W = D.T @ D / H.shape[0]
    mismatches = _ncc_mismatches(H, W, b, M if R is None else R)
    return _metrics(M, Sigma_W, W, mismatches, H.shape[0])


class CollapseAccumulator:
    """Streaming version of `collapse_metrics`: feed batches, then `compute` once.

    With ``train_means`` the accumulator streams: it keeps only float64 sufficient statistics
    (per-class counts ``N_c``, per-class sums and the pooled second moment of features shifted by
    the reference ``r_c = train_means[c]``, see below) and the number of NCC mismatches, counted per
    batch against ``train_means``. Its memory does not grow with ``N``.
    Without ``train_means`` the class means needed by ``nc4_ncc_mismatch`` are only known at the
    end, so it keeps a float64 copy of the features and labels.

    Shifted moments. With ``d_i = h_i - r_{y_i}``, ``s_c = sum_{y_i = c} d_i`` and
    ``Q = sum_i d_i d_i^T``: ``mu_c = r_c + s_c / N_c`` and
    ``N Sigma_W = Q - sum_c N_c (mu_c - r_c)(mu_c - r_c)^T``, which is accurate because
    ``mu_c - r_c`` is small compared with ``h_i`` when ``r_c`` is near ``mu_c``.

    Parameters
    ----------
    num_classes : int
        Number of classes ``C >= 2``.
    weight : Tensor, shape (C, p)
        Classifier ``W``; a float64 copy is taken now (later changes to the model are not seen).
    bias : Tensor, shape (C,), or None
        Classifier bias (``None``: zero).
    train_means : Tensor, shape (C, p), optional
        Class means for ``nc4_ncc_mismatch`` (see `collapse_metrics`); enables streaming.

    Notes
    -----
    Shapes are checked in `update`. Label range and finiteness are checked without a host sync
    per batch: they are recorded per batch and reported by `compute` (naming the first bad
    batch), which performs the host syncs. ``compute()`` equals ``collapse_metrics`` on the
    concatenated batches up to rounding (~1e-12 relative). Everything lives on the device of
    ``weight``; batches are moved there.
    """

    def __init__(self, num_classes: int, weight: Tensor, bias: Tensor | None,
                 train_means: Tensor | None = None):
        self.num_classes = C = _check_num_classes(num_classes)
        self.W, self.b = _classifier(weight, bias, C)
        p = self.W.shape[1]
        dev = self.W.device
        self.train_means = None if train_means is None else _reference_means(train_means, C, p, dev)
        self._flags: list[Tensor] = []  # per batch: see _value_flags
        self.num_samples = 0
        if self.train_means is not None:
            self._n = torch.zeros(C, dtype=_F64, device=dev)        # N_c
            self._s = torch.zeros(C, p, dtype=_F64, device=dev)     # s_c
            self._Q = torch.zeros(p, p, dtype=_F64, device=dev)     # Q
            self._mismatches = torch.zeros((), dtype=torch.int64, device=dev)
        else:
            self._features: list[Tensor] = []
            self._labels: list[Tensor] = []

    def update(self, features: Tensor, labels: Tensor) -> None:
        """Add a batch of features ``(B, p)`` and integer labels ``(B,)`` (no host sync)."""
        H = _features(features, self.W.shape[1]).to(self.W.device)
        y = _labels(labels, H.shape[0], self.W.device)
        if H.shape[0] == 0:
            return
        C = self.num_classes
        self._flags.append(_value_flags(H, y, C))
        self.num_samples += H.shape[0]
        y = y.clamp(0, C - 1)  # bad labels are reported by compute()
        if self.train_means is None:
            self._features.append(H.clone() if H.data_ptr() == features.data_ptr() else H)
            self._labels.append(y)
            return
        R = self.train_means
        D = H - R[y]
        Y = _one_hot(y, C)
        self._n += Y.sum(dim=0)
        self._s += Y.T @ D
        self._Q += D.T @ D
        self._mismatches += _ncc_mismatches(H, self.W, self.b, R)

    def compute(self) -> dict[str, float]:
        """Metrics of all batches so far, as `collapse_metrics` would give on their concatenation.

        Raises
        ------
        ValueError
            No data, a bad label or non-finite feature in some batch (the first is named), or a
            class with no sample.
        """
        if self.num_samples == 0:
            raise ValueError("no data: call update() with at least one non-empty batch")
        C = self.num_classes
        flags = torch.stack(self._flags)
        if self.train_means is None:
            y = torch.cat(self._labels)
            Y = _one_hot(y, C)
            n = Y.sum(dim=0)
        else:
            n = self._n
        checks = torch.cat([flags.to(_F64).flatten(), n]).tolist()
        for k in range(len(self._flags)):
            _raise_on_flags(checks[4 * k: 4 * k + 4], C, where=f" in batch {k} (0-based)")
        _raise_on_counts(checks[4 * len(self._flags):])
        if self.train_means is None:
            return _from_data(torch.cat(self._features), y, Y, n, self.W, self.b, None)
        d = self._s / n[:, None]              # mu_c - r_c
        M = self.train_means + d
        Sigma_W = (self._Q - (d.T * n) @ d) / self.num_samples
        Sigma_W = (Sigma_W + Sigma_W.T) / 2
        return _metrics(M, Sigma_W, self.W, self._mismatches, self.num_samples)
