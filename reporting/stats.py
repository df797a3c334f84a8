"""The statistics of the report: paired differences, their confidence intervals and what those let one say, Holm's
correction, the held-out choice of a swept parameter, the noise floor that a replicate under another seed gives, and
the share of tree edges that the group sampling alone makes zero.

numpy and scipy only: no run folders, no formatting of tables beyond `mean_std` and `defined_mean_std`.
"""
import numpy as np
from scipy import stats

NO_DIFFERENCE = 0.5  # % points: "no difference" only when the whole 95 % CI of a paired difference lies within ±this


def ci95(n: int, mean: float, std: float, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval (95 % by default) of a mean from n paired differences (Student's t, n − 1 degrees of
    freedom); undefined (NaN) for fewer than 2 pairs or differences without spread."""
    if n < 2 or not np.isfinite(std) or std == 0:
        return float("nan"), float("nan")
    h = stats.t.ppf(1 - (1 - level) / 2, n - 1) * std / np.sqrt(n)
    return mean - h, mean + h


def holm(p_values, m: int | None = None) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), in the input order, for a family of m tests (default:
    the finite p-values; pass the number of contrasts tested so that an undefined p still counts); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok) if m is None else m
    order = ok[np.argsort(p[ok])]
    adj, running = np.full(p.shape, np.nan), 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        adj[k] = running
    return adj.tolist()


def family_level(m: int) -> float:
    """The confidence level at which each of m comparisons is read so that their verdicts hold together at 95 %
    (Bonferroni): 0.95 for one, 1 − 0.05/4 = 98.75 % for four."""
    return 1 - 0.05 / max(m, 1)


def level_text(level: float) -> str:
    """A confidence level as the tables print it: 95 %, 98.8 %, 99.7 %."""
    return f"{100 * level:.3g} %"


def verdict(lo: float, hi: float, level: float = 0.95, margin: float | None = NO_DIFFERENCE,
            lower_is_better: bool = False, digits: int = 2) -> str:
    """What a paired difference's CI [lo, hi] (read at `level`) lets one say, in the one wording of every table:
    A or B better where it excludes 0 (and by less than the margin where it also lies within ±margin); no difference
    where it holds 0 and lies within ±margin (None: no margin was set in advance, so never); otherwise not detected,
    with the range of effects the CI still allows. With `lower_is_better` (a distance, not an accuracy) the side
    with the lower value is the better."""
    ci = f"{level_text(level)} CI"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not detected (no CI: fewer than 2 pairs, or no spread)"
    small = margin is not None and -margin <= lo and hi <= margin
    if lo > 0 or hi < 0:
        better = "A better" if (lo > 0) != lower_is_better else "B better"
        return f"{better}, by less than {margin:g} ({ci} within ±{margin:g})" if small else better
    if small:
        return f"no difference ({ci} within ±{margin:g})"
    return f"not detected ({ci} allows {lo:+.{digits}f} to {hi:+.{digits}f})"


def judge(n: int, mean: float, std: float, level: float = 0.95, margin: float | None = NO_DIFFERENCE,
          lower_is_better: bool = False, digits: int = 2) -> tuple[float, float, str]:
    """The CI at `level` of a mean of n paired differences and its `verdict`: the rule every table applies. Where
    there is no CI, the verdict says why: too few pairs, or every pair differing by the same amount (identical
    runs: no difference; else the same side better on every pair, which no test can weigh)."""
    lo, hi = ci95(n, mean, std, level)
    if n < 2:
        return lo, hi, f"too few pairs for a CI ({n})"
    if std == 0:
        if mean == 0:
            return lo, hi, "no difference (every pair identical)"
        better = "A" if (mean > 0) != lower_is_better else "B"
        return lo, hi, f"{better} better on every pair, by the same {abs(mean):.{digits}f} (no spread: no CI)"
    return lo, hi, verdict(lo, hi, level, margin, lower_is_better, digits)


def mean_std(values, mean: str = ".2f", std: str = ".2f") -> str:
    """`mean ± std` (ddof 1), two decimals unless the format specs `mean` and `std` say otherwise; the mean alone for
    one value, – for none."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():{mean}} ± {v.std(ddof=1):{std}}" if v.size > 1 else (f"{v.mean():{mean}}" if v.size else "–")


def defined_mean_std(values, median: bool = False) -> str:
    """`mean_std` of the defined (finite) values to 3 significant digits (the std to 2), for metrics that span decades;
    'k of n defined' where some are not, `undefined` where none is; with `median`, also the median of three or more
    (NC1 spans decades across splits)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "undefined"
    med = f" (median {np.median(v):.3g})" if median and v.size > 2 else ""
    note = f" ({v.size} of {len(values)} defined)" if v.size < len(values) else ""
    return mean_std(v, ".3g", ".2g") + med + note


def paired_tests(a: dict, b: dict, unit: float = 100) -> tuple[int, float, float, float, float]:
    """n, mean and std of the differences a − b over shared keys (splits, or (split, seed)), times `unit` (100: a
    fraction in % points), paired t-test p, Wilcoxon signed-rank p."""
    shared = sorted(set(a) & set(b))
    # accuracies are counts / N: round away the float noise of subtracting them, so that equal differences are equal
    d = np.array([a[s] - b[s] for s in shared]) * unit
    d = np.round(d, 6) if unit == 100 else d
    if d.size < 2:
        return d.size, float(d.mean()) if d.size else float("nan"), float("nan"), float("nan"), float("nan")
    if np.ptp(d) == 0:  # identical differences: the t statistic is undefined
        t_p = float("nan")
    else:
        t_p = stats.ttest_1samp(d, 0.0).pvalue
    try:
        with np.errstate(all="ignore"):
            w_p = stats.wilcoxon(d).pvalue  # NaN (a warning in newer scipy) where every difference is zero
    except ValueError:  # the same, in older scipy
        w_p = float("nan")
    return d.size, float(d.mean()), float(d.std(ddof=1)), float(t_p), float(w_p)


def setting_text(v) -> str:
    """A swept value as a table shows it: `0.5`, or a pair of a grid as `1.1, 0.03`."""
    return ", ".join(f"{x:g}" for x in v) if isinstance(v, tuple) else f"{v:g}"


def choose(values: list, acc: np.ndarray, default) -> tuple[object, str]:
    """The held-out choice among `values` from accuracies acc[value, split]: the best mean, except that the default
    (when swept; None: there is none) stays unless the best beats it by more than one paired standard error of their
    difference. A value may be a tuple, one setting of a grid (e.g. (β0, λmax)): the grid is one sweep over its
    settings, so it has one choice."""
    best = int(acc.mean(1).argmax())
    if default not in values or values[best] == default:
        return values[best], "best mean"
    d = 100 * (acc[best] - acc[values.index(default)])
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("inf")  # one split: nothing beats the default
    se_text = f"{se:.2f}" if d.size > 1 else "undefined with one split"
    if d.mean() > se:
        return values[best], (f"beats the default {setting_text(default)} by {d.mean():.2f} > one paired SE "
                              f"({se_text}) points")
    return default, (f"the default: {setting_text(values[best])} is {d.mean():+.2f} points, within one paired SE "
                     f"({se_text})")


def seed_floor(d0: np.ndarray, d1: np.ndarray) -> dict:
    """The noise floor of a paired difference measured on the same n splits under two seeds (d0, d1: % points).

    Returns
    -------
    dict
        mean (of both seeds) with its 95 % CI lo, hi across splits; seed_sd = std(d1 − d0)/√2, the spread one
        difference has from the seed alone; se = std(d1 − d0)/√n, the std of the difference of two n-split means of
        the difference under different seeds (what a retrained study's mean difference may move by); split_sd = std
        over splits of the seeds' mean; sd, the std of single-seed differences (one seed per split, as a study has);
        mde, the smallest mean difference that a paired t-test on n splits finds with 80 % power at p < 0.05, from sd.
    """
    n = len(d0)
    sd = np.std(np.concatenate([d0, d1]), ddof=1)
    split_sd = np.std((d0 + d1) / 2, ddof=1)
    mean = (d0 + d1).mean() / 2
    lo, hi = ci95(n, mean, split_sd)
    return dict(mean=mean, lo=lo, hi=hi, seed_sd=np.std(d1 - d0, ddof=1) / np.sqrt(2),
                se=np.std(d1 - d0, ddof=1) / np.sqrt(n), split_sd=split_sd, sd=sd,
                mde=(stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n))


def seed_shift(a0: np.ndarray, a1: np.ndarray) -> dict:
    """One regulariser's accuracy on the same n splits under two seeds (a0, a1: %): the mean shift a1 − a0 with its
    95 % CI lo, hi; seed_sd = std(a1 − a0)/√2, how far a single run moves from the seed alone; se = std(a1 − a0)/√n,
    the std of the difference of two n-split means with different seeds."""
    n, d = len(a0), a1 - a0
    sd = np.std(d, ddof=1)
    lo, hi = ci95(n, d.mean(), sd)
    return dict(mean=d.mean(), lo=lo, hi=hi, seed_sd=sd / np.sqrt(2), se=sd / np.sqrt(n))


def expected_duplicate_edges(per_class: float, samples_per_group: int) -> float:
    """The expected fraction of a group's n − 1 tree edges that join two copies of one image, where a group is an
    anchor and n − 1 draws with replacement from its class of m images (`data.group_batches`): the group holds
    1 + (m − 1)(1 − (1 − 1/m)^(n − 1)) distinct images on average, and only the edges between distinct images have
    a length, so the fraction is (n − 1 − (m − 1)(1 − (1 − 1/m)^(n − 1))) / (n − 1)."""
    m, n = per_class, samples_per_group
    return (n - 1 - (m - 1) * (1 - (1 - 1 / m) ** (n - 1))) / (n - 1)
