"""The figures of a results folder, one function per PNG: per_split.png (final test accuracy of every run, the runs of
one split joined), accuracy.png, collapse.png, deaths.png, paired.png (with runs paired in from other folders),
spectrum.png (where the logs hold the spectrum of Σ_B) and one per sweep (sweep.png for hofer's β, else
sweep_<reg>_<param>.png).

Curves are the mean over splits with a ±std band (geometric on log axes) at the epochs every run evaluated; a dotted
vertical line marks the mean epoch where train accuracy first reaches 100 %.
"""
import warnings
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display: before pyplot picks a backend
import matplotlib.pyplot as plt  # noqa: E402

from common.runs import atomic_write, first_fit_epoch, read_study  # noqa: E402
from reporting.compare import paired  # noqa: E402
from reporting.contrasts import CONTRASTS_FILE, read_contrasts  # noqa: E402
from reporting.groups import Group, grouped, matches, pair_key, parse_side  # noqa: E402
from reporting.labels import LABELS  # noqa: E402
from reporting.records import (final_test_acc, logged_value, mean_over_run, metric_value,  # noqa: E402
                               sampled_duplicate_edges)
from reporting.stats import ci95  # noqa: E402
from reporting.sweeps import SWEPT, held_out_choice, is_held_out, read_centroid_scale, sweeps  # noqa: E402

BOTH = (("train", "-"), ("test", "--"))  # line styles of a quantity shown on the training subset and the test set


def write_figures(out: Path, runs: list[dict], paired_in: list[dict] = ()) -> list[Path]:
    """accuracy.png, collapse.png, deaths.png (and a sweep figure per sweep) of this folder's runs; with runs paired in
    from other folders, also paired.png: NC1, ETF distance of the means and death times of both folders' groups."""
    finished = [r for r in runs if r["final"]]  # curves of the runs in the table; all logs while none finished
    groups = grouped(finished or [r for r in runs if r["log"]])
    others = grouped(list(paired_in))
    names = [*groups, *others]  # one colour per group in every figure: 20 where 10 do not suffice, hues first
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    colors = dict(zip(names, palette * 3))
    paths = [per_split_figure(out, {**others, **groups})] if finished else []
    paths += [accuracy_figure(out, groups, colors), collapse_figure(out, groups, colors),
              deaths_figure(out, groups, colors)]
    if others:
        paths.append(paired_figure(out, {**others, **groups}, colors))
    shown = {**others, **groups}
    if any(r["final"] and isinstance(r["final"].get("train"), dict) and "between_class_spectrum" in r["final"]["train"]
           for g in shown.values() for r in g.runs):
        paths.append(spectrum_figure(out, shown, colors))
    if preregistered := preregistered_collapse(out, groups):
        paths.append(collapse_contrasts_figure(out, preregistered, colors))
    return paths + [sweep_figure(out, sw) for sw in sweeps(
        finished, read_study(out).get("script_defaults", {}), read_centroid_scale(out))]


def per_split_points(shown: dict[str, Group]) -> tuple[list, dict, list]:
    """What per_split.png draws for the finished groups `shown` (in order, at x = 0, 1, …): the final test
    accuracies (%) of the runs of one split and seed as {pair_key: [(x, accuracy), …]}, and each group's
    (x, mean, lo, hi) with the 95 % CI of its mean (NaN for one run)."""
    labels, lines, means = list(shown), {}, []
    for x, label in enumerate(labels):
        acc = []
        for r in shown[label].runs:
            acc.append(100 * final_test_acc(r))
            lines.setdefault(pair_key(r), []).append((x, acc[-1]))
        lo, hi = ci95(len(acc), float(np.mean(acc)), float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan"))
        means.append((x, float(np.mean(acc)), lo, hi))
    return labels, lines, means


def per_split_figure(out: Path, shown: dict) -> Path:
    """per_split.png: final test accuracy of every run, one column per group (those paired in first), a grey line
    joining the runs of one split and seed, and beside each column its mean with the 95 % CI of the mean."""
    labels, lines, means = per_split_points(shown)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(labels) + 1.5), 4.2))
    for points in lines.values():
        xs, ys = zip(*points)
        ax.plot(xs, ys, "o-", color="0.6", lw=0.8, ms=3, alpha=0.8)
    for x, m, lo, hi in means:
        yerr = [[m - lo], [hi - m]] if np.isfinite(lo) else None
        ax.errorbar(x + 0.25, m, yerr=yerr, fmt="s", color="k", ms=4, capsize=3, lw=1.5)
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=8)
    ax.set_xlim(-0.4, len(labels) - 0.4)
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("grey: the runs of one split (and seed), joined; black: mean and its 95 % CI", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, Path(out) / "per_split.png")


def accuracy_figure(out: Path, groups: dict, colors: dict) -> Path:
    """accuracy.png: test and train accuracy during training (the ±std band clipped at 100 %)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panel(axes[0], groups, colors, lambda l, w: 100 * l["test_acc"], "test accuracy (%)", upper=100)
    panel(axes[1], groups, colors, lambda l, w: 100 * l["train_acc"], "train accuracy (%)", upper=100)
    _legend(axes[0])
    fig.suptitle("mean ± std over splits; dotted: epoch where train accuracy first reaches 100 %", fontsize=9)
    return _save(fig, Path(out) / "accuracy.png")


def collapse_figure(out: Path, groups: dict, colors: dict) -> Path:
    """collapse.png: the neural-collapse metrics during training, on the training subset and the test set."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, key, log, styles in ((axes[0, 0], "nc1", True, BOTH), (axes[0, 1], "etf_distance_means", False, BOTH),
                                 (axes[0, 2], "etf_distance_classifiers", False, BOTH[:1]),
                                 (axes[1, 0], "nc3_self_duality", False, BOTH),
                                 (axes[1, 1], "nc4_ncc_mismatch", False, BOTH),
                                 (axes[1, 2], "within_class_variation", True, BOTH)):
        panel(ax, groups, colors, lambda l, w, key=key: l[w][key], LABELS[key]["panel"], log=log, styles=styles)
    _legend(axes[0, 0])
    fig.suptitle("neural collapse: solid = training subset, dashed = test set (NCC with training means); "
                 "dotted: train accuracy first 100 %", fontsize=10)
    return _save(fig, Path(out) / "collapse.png")


def preregistered_collapse(out: Path, groups: dict) -> tuple[dict, list] | None:
    """What collapse_contrasts.png shows of a folder whose contrasts.json names collapse contrasts in a family that is
    not exploratory: (its groups that any contrast of the file names, in the table's order; the metrics those collapse
    contrasts score, each (key, on a log axis))); None where it names none."""
    if not (Path(out) / CONTRASTS_FILE).exists():
        return None
    families = read_contrasts(Path(out) / CONTRASTS_FILE)["families"]
    scored = [c for f in families if not f["exploratory"] for c in f["contrasts"]
              if c.get("metric", "test_acc") != "test_acc"]
    named = {n for f in families for c in f["contrasts"] for k in "ab" for n in matches(groups, *parse_side(c[k]))}
    if not scored or not named:
        return None
    keys = list(dict.fromkeys((c["metric"].partition(":")[2], c.get("scale") == "log10") for c in scored))
    return {name: g for name, g in groups.items() if name in named}, keys


def collapse_contrasts_figure(out: Path, preregistered: tuple[dict, list], colors: dict) -> Path:
    """collapse_contrasts.png: the quantities a folder's collapse contrasts score (`preregistered_collapse`) during
    training, for every group its contrasts name: the median over splits and the band from the 25th to the 75th
    percentile, on the training subset (solid) and the test set (dashed), with the median epoch where training
    accuracy first reaches 100 % (the terminal phase) dotted."""
    shown, keys = preregistered
    fig, axes = plt.subplots(1, len(keys), figsize=(max(5.5 * len(keys), 9), 4.4), squeeze=False)  # room for the title
    for ax, (key, log) in zip(axes[0], keys):
        panel(ax, shown, colors, lambda l, w, key=key: metric_value(l[w], key), LABELS[key]["panel"]
              + (" (log scale)" if log else ""), log=log, styles=BOTH, median=True)
    _legend(axes[0, 0])
    fig.suptitle("the pre-registered collapse quantities (contrasts.json): median over splits, band 25–75 %;\nsolid = "
                 "training subset, dashed = test set; dotted: median epoch of first 100 % train accuracy", fontsize=9)
    return _save(fig, Path(out) / "collapse_contrasts.png")


def _mean_death(key: str):
    """The mean over classes of a log line's per-class death times `key` (a class without one left out)."""
    return lambda l, w: np.mean([v for v in l[key] if v is not None])


def deaths_figure(out: Path, groups: dict, colors: dict) -> Path:
    """deaths.png: the 0-dim Vietoris–Rips death times of each class's codes during training."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panel(axes[0], groups, colors, _mean_death("death_mean"), f"{LABELS['death_mean']['panel']} (training subset)",
          log=True)
    panel(axes[1], groups, colors, _mean_death("death_max"), LABELS["death_max"]["panel"], log=True)
    _legend(axes[0])
    fig.suptitle("0-dim Vietoris–Rips death times of each class's latent codes (run metric)", fontsize=9)
    return _save(fig, Path(out) / "deaths.png")


def paired_figure(out: Path, shown: dict, colors: dict) -> Path:
    """paired.png: NC1, ETF distance of the means and death times of this folder's groups beside those paired in."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    panel(axes[0], shown, colors, lambda l, w: l[w]["nc1"], f"{LABELS['nc1']['column']} (training subset)", log=True)
    panel(axes[1], shown, colors, lambda l, w: l[w]["etf_distance_means"],
          f"{LABELS['etf_distance_means']['panel']} (training subset)")
    panel(axes[2], shown, colors, _mean_death("death_mean"), LABELS["death_mean"]["panel"], log=True)
    _legend(axes[0])
    fig.suptitle("this folder's runs beside those paired in (prefixed with their folder); mean ± std over splits",
                 fontsize=9)
    return _save(fig, Path(out) / "paired.png")


def spectrum_figure(out: Path, shown: dict, colors: dict) -> Path:
    """spectrum.png: the C − 1 largest eigenvalues of Σ_B at the last epoch, each over their sum, largest first
    (all 1/(C − 1) at a simplex ETF), on the training subset and the test set: the geometric mean over a group's runs
    with the range of its runs; beside it the ETF classifier's learned scale s during training, where one was used."""
    scaled = {k: g for k, g in shown.items() if any("etf_scale" in l for r in g.runs for l in r["log"][-1:])}
    fig, axes = plt.subplots(1, 3 if scaled else 2, figsize=(16 if scaled else 11, 4.2))  # a panel for s only with it
    for ax, where in zip(axes, ("train", "test")):
        for label, g in shown.items():
            spectra = [r["final"][where].get("between_class_spectrum") for r in g.runs if r["final"]
                       and isinstance(r["final"].get(where), dict)]
            spectra = np.array([s for s in spectra if s])
            if not spectra.size:
                continue
            k = np.arange(1, spectra.shape[1] + 1)
            floor = np.where(spectra > 0, spectra, np.nan)  # an exactly-zero eigenvalue has no place on a log axis
            with warnings.catch_warnings():  # an eigenvalue 0 in every run: a gap in the curve
                warnings.simplefilter("ignore", RuntimeWarning)
                mid, lo, hi = np.exp(np.nanmean(np.log(floor), 0)), np.nanmin(floor, 0), np.nanmax(floor, 0)
            ax.plot(k, mid, "o-", color=colors[label], ms=3, label=f"{label} ({len(spectra)} runs)")
            ax.fill_between(k, lo, hi, color=colors[label], alpha=0.15, lw=0)
            ax.axhline(1 / len(k), color="0.5", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue k of Σ_B (largest first)")
        ax.set_title(f"normalised Σ_B spectrum at the last epoch ({where}); dotted: simplex ETF", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    _legend(axes[0])
    if scaled:
        panel(axes[2], scaled, colors, lambda l, w: l["etf_scale"], LABELS["etf_scale"]["panel"], log=True)
        _legend(axes[2])
    fig.suptitle("geometric mean over runs, band: range of the runs", fontsize=9)
    return _save(fig, Path(out) / "spectrum.png")


def sweep_figure(out: Path, sw: dict) -> Path:
    """sweep.png (hofer's β) or sweep_<reg>_<param>.png: final accuracy against the swept value (`sweeps.sweeps`),
    each split's test accuracy in grey and the mean ± std of test and validation accuracy. A grid is `grid_figure`."""
    if isinstance(sw["param"], tuple):
        return grid_figure(out, sw)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sym = SWEPT[sw["param"]]
    for col in 100 * sw["test"].T:
        ax.plot(sw["values"], col, "o-", color="0.7", lw=0.8, ms=3)
    for acc, name, color in ((sw["test"], "test", "C1"), (sw["val"], "validation", "C0")):
        if acc is not None:
            ax.errorbar(sw["values"], 100 * acc.mean(1), yerr=100 * acc.std(1, ddof=1) if len(sw["splits"]) > 1
                        else None, fmt="o-", color=color, lw=2, capsize=3,
                        label=f"{name}: mean ± std over {len(sw['splits'])} splits")
    if min(sw["values"]) > 0:
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
    ax.set_xticks(sw["values"], [f"{b:g}" for b in sw["values"]])
    ax.set_xlabel(sym)
    ax.set_ylabel("final accuracy (%)")
    ax.set_title(f"{sw['reg']}'s {sym} {'sweep' if is_held_out(sw['splits']) else 'values'} (grey: test, one split "
                 f"each; splits {', '.join(map(str, sw['splits']))})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    name = "sweep.png" if (sw["reg"], sw["param"]) == ("hofer", "beta") else f"sweep_{sw['reg']}_{sw['param']}.png"
    return _save(fig, Path(out) / name)


def grid_figure(out: Path, sw: dict) -> Path:
    """sweep_<reg>_grid.png: a grid of two parameters (`sweeps._grid`), final accuracy against the second, one line
    per value of the first: the validation mean ± std (solid; test where no validation was logged) and the test mean
    (dashed), with the held-out choice ringed."""
    (p, q), (rows, cols) = sw["param"], sw["axes"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    main, by = (sw["val"], "validation") if sw["val"] is not None else (sw["test"], "test")
    chosen = held_out_choice(sw, sw.get("default"))
    choice = chosen and chosen[0]
    x = np.arange(len(cols))
    for k, r in enumerate(rows):
        idx = [sw["values"].index((r, c)) for c in cols]
        color = f"C{k}"
        ax.errorbar(x, 100 * main[idx].mean(1), yerr=100 * main[idx].std(1, ddof=1) if len(sw["splits"]) > 1 else None,
                    fmt="o-", color=color, lw=2, capsize=3, label=f"{SWEPT[p]} = {r:g}: {by}")
        if sw["val"] is not None:
            ax.plot(x, 100 * sw["test"][idx].mean(1), "s--", color=color, lw=1, ms=3, label=f"{SWEPT[p]} = {r:g}: test")
        if choice is not None and choice[0] == r:
            j = cols.index(choice[1])
            ax.plot(x[j], 100 * main[idx[j]].mean(), "o", ms=14, mfc="none", mec="k", label="held-out choice")
    ax.set_xticks(x, [f"{c:g}" for c in cols])
    ax.set_xlabel(SWEPT[q])
    ax.set_ylabel("final accuracy (%)")
    ax.set_title(f"{sw['reg']}'s ({SWEPT[p]}, {SWEPT[q]}) {'grid' if is_held_out(sw['splits']) else 'values'}: mean "
                 f"± std over splits {', '.join(map(str, sw['splits']))}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, Path(out) / f"sweep_{sw['reg']}_grid.png")


def panel(ax, groups: dict, colors: dict, get, title: str, log=False, styles=(("train", "-"),),
          upper=None, median=False) -> None:
    """One axis: get(line, where) during training for each group and each (where, line style) of `styles`, with the
    mean epoch of first 100 % train accuracy dotted (the band clipped at `upper`, where the quantity cannot exceed
    it); with `median`, the median over runs, its 25–75 % band and the median epoch; a note instead where the quantity
    is never defined."""
    plotted = []
    for label, g in groups.items():
        rs = g.runs
        for where, ls in styles:
            e, m, lo, hi = _curves(rs, lambda l: get(l, where), log=log, median=median)
            if not len(e):
                continue
            plotted.append(m)
            ax.plot(e, m, ls, color=colors[label], label=f"{label}" + (f" ({where})" if len(styles) > 1 else ""))
            ax.fill_between(e, lo, hi if upper is None else np.minimum(hi, upper), color=colors[label], alpha=0.15,
                            lw=0)
        tpt = [first_fit_epoch(r["log"]) for r in rs]
        tpt = [t for t in tpt if t is not None]
        if tpt:
            ax.axvline(np.median(tpt) if median else np.mean(tpt), color=colors[label], ls=":", lw=1)
    ax.set_title(title)
    values = np.concatenate(plotted) if plotted else np.array([])
    if not np.isfinite(values).any():
        ax.text(0.5, 0.5, "undefined in every logged epoch", ha="center", transform=ax.transAxes)
        return
    ax.set_xscale("log")
    log = log and bool((values[np.isfinite(values)] > 0).any())  # a log axis needs a positive value
    ax.set_yscale("log" if log else "linear")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both" if log else "major")


def _curves(rs: list[dict], get, log=False, median=False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Epochs evaluated by every run, and the mean over runs of `get(line)` there with a lower and upper
    band: mean ± std, or for a quantity plotted on a log axis the geometric mean ×/÷ the geometric std; with `median`,
    the median and the 25th and 75th percentiles (the same on either axis)."""
    per_run = [{l["epoch"]: logged_value(get, l) for l in r["log"] if "test_acc" in l} for r in rs]
    epochs = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    y = np.array([[p[e] for e in epochs] for p in per_run], dtype=float).reshape(len(per_run), len(epochs))
    with np.errstate(all="ignore"), warnings.catch_warnings():  # an all-undefined epoch stays a gap in the plot
        warnings.simplefilter("ignore", RuntimeWarning)
        if median:
            y = np.where(y > 0, y, np.nan) if log else y
            return np.array(epochs), *np.nanpercentile(y, [50, 25, 75], axis=0)
        y = np.log(np.where(y > 0, y, np.nan)) if log else y
        m = np.nanmean(y, 0)
        s = np.nanstd(y, 0, ddof=1) if len(rs) > 1 else np.zeros(len(epochs))
        s = np.nan_to_num(s)
        lo, hi = m - s, m + s
        return (np.array(epochs), np.exp(m), np.exp(lo), np.exp(hi)) if log else (np.array(epochs), m, lo, hi)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:  # nothing plotted (no evaluated epoch yet): no empty legend
        ax.legend(fontsize=8)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130))
    plt.close(fig)
    return path


def size_curve_figure(spec_path: Path, curve: dict, gaps: list) -> Path:
    """<spec>.png of a size-curve spec (`size_curve.size_curve`): final test accuracy against the training size (log
    axis), mean and 95 % CI over splits per regulariser; beside it each paired gap A − B the spec names, with its
    95 % CI, per size (`compare.paired`, as in the table); last, the fraction of tree edges between copies of one
    image per size, logged and as the sampling alone predicts."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharex=True, gridspec_kw=dict(width_ratios=[1, 1, 0.7]))
    for i, (reg, by_size) in enumerate(curve.items()):
        sizes = [s for s, runs in by_size.items() if runs]
        acc = [100 * np.array([final_test_acc(r) for r in by_size[s]]) for s in sizes]
        intervals = [(v.mean(), *ci95(v.size, v.mean(), v.std(ddof=1) if v.size > 1 else float("nan"))) for v in acc]
        _errorbars(axes[0], _dodged(sizes, i, len(curve)), intervals, f"C{i}", reg)
    for i, (a, b) in enumerate(gaps):
        gap = {s: c for s, runs in curve[a].items() if (c := paired(runs, curve[b].get(s, []))).n}
        _errorbars(axes[1], _dodged(list(gap), i, len(gaps)), [(c.mean, *c.ci) for c in gap.values()],
                   f"C{i + len(curve)}", f"{a} − {b}")
    axes[1].axhline(0, color="0.5", lw=1)
    _zero_edges_panel(axes[2], curve)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images")
        ax.grid(alpha=0.3, which="both")
    for ax, title in zip(axes, ("final test accuracy (%)", "paired gap (% points)")):
        ax.set_title(title + ": mean and 95 % CI over splits", fontsize=9)
        _legend(ax)
    run = sorted({s for by_size in curve.values() for s, runs in by_size.items() if runs})
    axes[2].set_xticks(run, [str(s) for s in run])  # the sizes themselves, not powers of ten (shared by all panels)
    axes[2].minorticks_off()
    axes[2].set_title("zero-length tree edges (copies of one image):\nfraction, mean over epochs and runs",
                      fontsize=9)
    _legend(axes[2])
    return _save(fig, Path(spec_path).with_suffix(".png"))


def _zero_edges_panel(ax, curve: dict) -> None:
    """The fraction of tree edges between copies of one image per size: each run's mean over epochs, averaged over
    every regulariser's runs (the sampling is shared), and what the sampling alone predicts."""
    zero = {}  # size: each run's mean fraction of zero-length edges, over every regulariser
    for by_size in curve.values():
        for size, runs in by_size.items():
            zero.setdefault(size, []).extend(z for r in runs if (z := mean_over_run(r, "zero_edges")) is not None)
    sizes = sorted(s for s, z in zero.items() if z)
    ax.plot(sizes, [np.mean(zero[s]) for s in sizes], "o", color="0.3", label="logged")  # no line: a size may lack the log
    predicted = {s: p for s in sorted(zero) if (p := sampled_duplicate_edges(
        [r for by_size in curve.values() for r in by_size.get(s, [])])) is not None}
    ax.plot(list(predicted), list(predicted.values()), "x--", color="0.6", label="sampling alone")
    ax.set_ylim(0, 1)


def _dodged(sizes: list, i: int, k: int) -> list:
    """The sizes of the i-th of k series shifted by a few % on the log axis, so that no bar at one size hides another."""
    return [s * 1.04 ** (i - (k - 1) / 2) for s in sizes]


def _errorbars(ax, sizes: list, intervals: list, color, label: str) -> None:
    """Means with their 95 % CI at each size, from (mean, lo, hi) each; a size whose CI is undefined (one value, or
    no spread) without a bar."""
    if not sizes:
        return
    means = np.array([m for m, _, _ in intervals])
    half = [(hi - lo) / 2 if np.isfinite(lo) else 0.0 for _, lo, hi in intervals]
    ax.errorbar(sizes, means, yerr=half, fmt="o-", color=color, capsize=3, label=label)
