"""Does a gap survive more data? The --SUMMARY table of a size-curve spec

    {"title": ..., "note": ..., "size_curve": {"<curve>": {"<size>": "<folder>: <group>", ...}, ...},
     "gaps": [["<A>", "<B>"], ...]}

a curve named as the table shows it (usually its regulariser), a folder relative to the spec's own folder: per training
size and curve, the runs, their test accuracy, the paired gaps the spec names (`compare.paired`), the epoch the
training set is first fitted, the share of tree edges between copies of one image, and the final collapse geometry.
`figures.size_curve_figure` draws the same curve.
"""
from pathlib import Path

import numpy as np

from common.runs import SETTINGS_FILE, ReportError, atomic_write, read_settings, run_differences
from common.schedules import SCHEDULES
from reporting.compare import differs_in, paired
from reporting.groups import group_label, grouped, matches, parse_side
from reporting.labels import LABELS
from reporting.records import (epochs_reached, final_test_acc, load_runs, mean_over_run, metric_value,
                               read_summary_spec, recorded, run_status, sampled_duplicate_edges)
from reporting.stats import defined_mean_std, mean_std

GEOMETRY = ("scale_free_variation", "etf_distance_means")  # the final collapse shown per size (training subset)


def size_curve(spec_path: Path, spec: dict) -> tuple[dict, dict, dict]:
    """({curve: {training size: its finished runs}}, {curve: {training size: its other runs}}, {folder: its runs
    whose config.json cannot be read}) of a size-curve spec (see the module's docstring); a size whose folder holds
    no run of the group yet has none. One ReportError naming the expected form where the spec is not of it, and where
    a side names no regulariser, several groups, or a folder trained at another TRAIN_SIZE."""
    curve, gaps = spec.get("size_curve"), spec.get("gaps", [])
    if not (isinstance(curve, dict) and curve and all(
            isinstance(v, dict) and all(isinstance(s, str) and parse_side(s)[0] for s in v.values())
            and all(str(k).isdigit() and int(k) > 0 for k in v) and len({int(k) for k in v}) == len(v)
            for v in curve.values())
            and isinstance(gaps, list) and all(isinstance(g, list) and len(g) == 2 and set(g) <= set(curve)
                                               for g in gaps)):
        raise ReportError(f"{spec_path}: expected {{\"size_curve\": {{\"<curve>\": {{\"<size>\": "
                          f"\"<folder>: <group>\", ...}}, ...}}, \"gaps\": [[\"<A>\", \"<B>\"], ...]}}, each size "
                          "a positive integer once per curve, each gap naming two of the size curve's curves")
    folders, finished, others = {}, {}, {}
    for name, sides in curve.items():
        for size, text in sorted(sides.items(), key=lambda kv: int(kv[0])):
            done, rest = _size_side(spec_path, f"{name} at {size}", int(size), text, folders)
            finished.setdefault(name, {})[int(size)] = done
            others.setdefault(name, {})[int(size)] = rest
    unreadable = {path.name: bad for path, f in folders.items() if (bad := [r for r in f["runs"] if not r["run"]])}
    return finished, others, unreadable


def _size_folder(spec_path: Path, where: str, path: Path, folders: dict) -> dict:
    """A size-curve folder's runs, its settings.json, and its finished groups and those with no finished run yet
    (named with the folder's name), loaded once into `folders`; a ReportError where its settings.json is unreadable."""
    if path not in folders:
        runs = load_runs(path, prefix=path.name) if (path / "runs").is_dir() else []
        try:
            settings = read_settings(path)
        except ReportError as e:
            raise ReportError(f"{spec_path}: {where}: {e}") from None
        folders[path] = dict(runs=runs, settings=settings, finished=grouped([r for r in runs if r["final"]]),
                             started=grouped([r for r in runs if r["run"] and not r["final"]]))
    return folders[path]


def _size_side(spec_path: Path, where: str, size: int, text: str, folders: dict) -> tuple[list, list]:
    """The finished runs of the group a size-curve side "<folder>: <group>" names, and its runs that did not finish
    (unfinished, diverged, failed, unreadable); the folder's runs loaded once into `folders`. The group is found among
    the finished groups, else among those with no finished run yet. A ReportError as `size_curve` says."""
    folder, label = parse_side(text)
    path = (Path(spec_path).parent / folder).absolute()  # not resolved: its name labels the runs
    f = _size_folder(spec_path, where, path, folders)
    if label.split(" ")[0] not in SCHEDULES:
        raise ReportError(f"{spec_path}: {where} names {text!r}, but {label.split(' ')[0]!r} is no regulariser "
                          f"({', '.join(SCHEDULES)}): correct the spec")
    found, groups = matches(f["finished"], path.name, label), f["finished"]
    if not found:
        found, groups = matches(f["started"], path.name, label), f["started"]
    if len(found) > 1:
        raise ReportError(f"{spec_path}: {where} names {text!r}, but that matches {len(found)} groups "
                          f"({', '.join(found)}): name one by its label")
    runs = list(groups[found[0]].runs) if found else []
    if groups is f["finished"]:  # and the runs of the same settings that did not finish
        same = {group_label(r, True) for r in runs}
        done, rest = runs, [r for r in f["runs"] if r["run"] and not r["final"] and group_label(r, True) in same]
    else:
        done, rest = [], runs
    sizes = {f"{r['name']}/config.json": r["config"].get("TRAIN_SIZE") for r in done + rest}
    sizes.update({SETTINGS_FILE: f["settings"]["TRAIN_SIZE"]} if "TRAIN_SIZE" in f["settings"] else {})
    if wrong := {k: v for k, v in sizes.items() if v != size}:
        raise ReportError(f"{spec_path}: {where} names {text!r}, but {path.name} holds another TRAIN_SIZE ("
                          + ", ".join(f"{k}: {v}" for k, v in sorted(wrong.items())[:3])
                          + (", ..." if len(wrong) > 3 else "") + f"): name a folder trained at {size}")
    return done, rest


def _size_curve_cells(runs: list[dict]) -> list[str]:
    """The runs (their splits), test accuracy, first fitted epoch, zero-length edges and the final collapse of one
    regulariser at one size."""
    acc = [100 * final_test_acc(r) for r in runs]
    tpt = [r["final"]["tpt_epoch"] for r in runs if r["final"].get("tpt_epoch") is not None]
    zero = [z for r in runs if (z := mean_over_run(r, "zero_edges")) is not None]
    fitted = mean_std(tpt) + (f" ({len(tpt)} of {len(runs)} runs; the others never)" if len(tpt) < len(runs) else "")
    sampling = sampled_duplicate_edges(runs)
    return [f"{len(runs)} ({_span(r['run']['split'] for r in runs)})", mean_std(acc), fitted if tpt else "never",
            (f"{np.mean(zero):.3f} ({len(zero)} run{'s' * (len(zero) != 1)})" if zero else "not logged")
            + (f"; sampling {sampling:.3f}" if sampling is not None else ""),
            *(defined_mean_std([metric_value(r["final"]["train"], k) for r in runs]) for k in GEOMETRY)]


def _span(splits) -> str:
    """Split numbers as ranges: 0–4, 6, 8–9."""
    out = []
    for k in sorted(set(splits)):
        if out and out[-1][1] == k - 1:
            out[-1][1] = k
        else:
            out.append([k, k])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in out)


def _size_curve_gap(a: list[dict], b: list[dict]) -> str:
    """`A − B` of two groups at one size: paired mean [95 % CI] (wins) over the splits they share."""
    c = paired(a, b)
    if not c.n:
        return "–"
    lo, hi = c.ci
    return f"{c.mean:+.2f} " + (f"[{lo:+.2f}, {hi:+.2f}] " if np.isfinite(lo) else "") + f"({c.wins} of {c.n})"


def _left_out(others: dict, unreadable: dict) -> list[str]:
    """The runs a size curve leaves out (unfinished, diverged, failed, unreadable), under a sentence saying so."""
    left = [f"- {size}, {name}: " + ", ".join(f"split {r['run']['split']} {run_status(r)} (epoch {epochs_reached(r)})"
                                              for r in rs)
            for name, by_size in others.items() for size, rs in by_size.items() if rs]
    left += [f"- {folder}: {r['name']} unreadable ({r['problem']})" for folder, rs in unreadable.items() for r in rs]
    return ["", "Runs not in the table (a partial size: its accuracy columns average different splits, while each gap "
                "pairs only the splits both sides finished):", "", *left] if left else []


def _across_sizes(curve: dict) -> list[str]:
    """The settings in which a curve's runs differ between sizes (from its first size's), other than the size."""
    across = []
    for name, by_size in curve.items():
        runs = [r for size in sorted(by_size) for r in by_size[size]]
        found = {}  # setting: {(size, "old→new at size")}
        for r in runs[1:]:
            for k, (x, y) in run_differences(runs[0], r).items():
                if k not in ("TRAIN_SIZE", "training images"):  # what a size changes
                    n = r["config"].get("TRAIN_SIZE")
                    found.setdefault(k, set()).add((str(n).zfill(12), f"{x}→{y} at {n}"))
        if found:
            across.append(f"- {name}: " + "; ".join(f"{k} " + ", ".join(t for _, t in sorted(v))
                                                   for k, v in sorted(found.items())))
    return ["", "Settings in which a curve's runs differ between sizes (from its first size's):", "", *across] \
        if across else []


def _size_curve_notes(curve: dict, others: dict, unreadable: dict, gaps: list, sizes: list) -> list[str]:
    """What a size-curve table needs beside it: the runs left out (unfinished, diverged, failed, unreadable), the
    settings in which a curve's runs differ between sizes, the paired runs that differ in more than the regulariser,
    and where each size's runs trained."""
    L = _left_out(others, unreadable) + _across_sizes(curve)
    differ = [f"- {size}, {a} − {b}: {d}" for size in sizes for a, b in gaps
              if (d := differs_in(curve[a].get(size, []), curve[b].get(size, []))) != "–"]
    if differ:
        L += ["", "Paired runs that differ in more than the regulariser (A→B; settings, then where they trained):",
              "", *differ]
    where = [f"- {size}: " + "; ".join(f"{k} " + " / ".join(sorted({recorded(r, k) for r in rs}))
                                       for k in ("commit", "device", "cpu_capability"))
             for size in sizes if (rs := [r for by_size in curve.values() for r in by_size.get(size, [])])]
    return L + (["", "Where the runs trained (a run resumed elsewhere reads 'A then B'):", "", *where] if where else [])


def write_size_curve(spec_path: Path) -> tuple[Path, dict]:
    """<spec>.md of a size-curve spec (see `size_curve`): per training size and regulariser, the runs and their
    splits, test accuracy, the paired gaps the spec names with their 95 % CIs and win counts, the epoch the training
    set is first fitted, the fraction of tree edges between copies of one image, and the final train Tr Σ_W / Tr Σ_B
    and ETF distance of the class means. After the table: `_size_curve_notes`, and the sizes where no regulariser
    has a finished run. Returns the path and the curve of finished runs."""
    spec_path = Path(spec_path)
    spec = read_summary_spec(spec_path)
    curve, others, unreadable = size_curve(spec_path, spec)
    gaps = [tuple(g) for g in spec.get("gaps", [])]
    sizes = sorted({size for by_size in curve.values() for size, runs in by_size.items() if runs})
    unrun = sorted({size for by_size in curve.values() for size in by_size} - set(sizes))
    L = [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), "",
         f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of the folders the spec names. "
         "Test accuracy in %, final epoch, mean ± std (ddof 1) over splits; each gap A − B paired by split and seed, "
         "mean [95 % CI] (A better on k of n splits), each CI on its own, not corrected for the number of gaps "
         "in the table. Zero-length edges: the mean over epochs of the fraction of each "
         "group's tree edges that join two copies of one image, and what the sampling alone predicts (an anchor and "
         "n − 1 draws with replacement from the N/10 images of its class). Validation accuracy is not shown: each "
         "size has its own validation set.", "",
         "| size | regulariser | runs (splits) | test accuracy | " + " | ".join(f"{a} − {b}" for a, b in gaps)
         + " | epoch train acc. first 100 % | zero-length edges | "
         + " | ".join(f"{LABELS[k]['column']} (train)" for k in GEOMETRY) + " |",
         "|---|---|---|---|" + "---|" * len(gaps) + "---|---|---|---|"]
    for size in sizes:
        for reg, by_size in curve.items():
            runs = by_size.get(size, [])
            if not runs:
                L.append(f"| {size} | {reg} | 0 | not yet |" + " – |" * (len(gaps) + 4))
                continue
            cells = _size_curve_cells(runs)
            gap = [_size_curve_gap(runs, curve[b].get(size, [])) if a == reg else "" for a, b in gaps]
            L.append(f"| {size} | {reg} | " + " | ".join(cells[:2] + gap + cells[2:]) + " |")
    L += _size_curve_notes(curve, others, unreadable, gaps, sizes)
    if unrun:
        L += ["", f"Sizes in the spec without a finished run yet: {', '.join(map(str, unrun))}."]
    path = spec_path.with_suffix(".md")
    atomic_write(path, "\n".join(L) + "\n")
    return path, curve
