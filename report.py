"""Results table and figures, generated from the run logs and nothing else.

    python report.py results/mnist-250        # or: python mnist_top.py --REPORT_ONLY=True
    python report.py results/mnist-250-ablations --PAIR_WITH=results/mnist-250   # also pair with another folder
    python report.py --SUMMARY=results/hofer-row.json   # one table of paired comparisons across folders

Reads `runs/*/{config,final}.json` and `log.jsonl`, writes `table.md`, `accuracy.png`, `collapse.png`
and `deaths.png` beside them (and `sweep.png` where several hofer β were run). Runs are grouped by
regulariser (and β / lr where several were run); paired comparisons use the splits two groups share (same split ⇒ same initialisation and batches).
"""
import json
import os
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from runs import LEGACY_LAMBDA, LEGACY_RUN_KEYS, run_differences, run_settings, setting_differences

# MNIST-250 test accuracies (%, mean ± std over 10 splits) to reproduce: vanilla and hofer as reported for Hofer
# et al.'s protocol, sliding as claimed by this project's original study; all three from that study's README.
PUBLISHED = {("mnist", 250): {"vanilla": (92.53, 0.76), "hofer": (94.10, 0.30), "sliding": (94.24, 0.47)}}
COLLAPSE_COLUMNS = [("nc1", "NC1"), ("etf_distance_means", "ETF dist. means"),
                    ("etf_distance_classifiers", "ETF dist. W"), ("nc3_self_duality", "NC3 self-duality"),
                    ("nc4_ncc_mismatch", "NCC mismatch")]
CLASSIFIER_ONLY = {"etf_distance_classifiers"}
HELD_OUT_SPLITS = range(10, 20)  # the scripts' convention: splits 10-19 are for choosing hyperparameters, 0-9 reported
ORDER = {"vanilla": 0, "hofer": 1, "sliding": 2, "sliding_fixed_beta": 3, "ramp": 4, "center": 5, "terminal_sliding": 6}
CONTRASTS_FILE = "contrasts.json"  # comparisons named before the runs finish: {"contrasts": [{"name", "a", "b"}, ...]}
SUMMARY_KEYS = ("setting", "a", "b")  # a summary row: {"setting": text, "a": "folder: group", "b": "folder: group"}
NO_DIFFERENCE = 0.5  # % points: "no difference" only when the whole 95 % CI of a paired difference lies within ±this


def load_runs(out: Path, prefix: str = "") -> list[dict]:
    """Every run folder under `out/runs`, with its config, log lines and final (or diverged) record; `prefix`
    names the folder in the labels of runs paired from another results folder."""
    runs = []
    for folder in sorted((Path(out) / "runs").glob("*/")):
        if not (folder / "config.json").exists():
            continue
        r = json.loads((folder / "config.json").read_text())
        r["prefix"], r["name"] = prefix, folder.name
        r["log"], r["skipped_lines"] = read_log(folder / "log.jsonl")
        for kind in ("final", "diverged", "failed"):
            f = folder / f"{kind}.json"
            r[kind] = json.loads(f.read_text()) if f.exists() else None
        runs.append(r)
    return runs


def read_log(path: Path) -> tuple[list[dict], list[int]]:
    """The lines of a log that parse, and the numbers (from 1) of those that do not; a last line without its
    newline, still being written by a running process, is left out without counting as bad."""
    text = path.read_text(errors="replace") if path.exists() else ""
    rows = text.split("\n")
    rows = rows[:-1]  # after the last newline: "" or a line being written
    lines, bad = [], []
    for i, row in enumerate(rows, 1):
        try:
            lines.append(json.loads(row))
        except json.JSONDecodeError:
            bad.append(i)
    return lines, bad


def _read_log(path: Path) -> list[dict]:
    """The complete lines of a log (see `read_log`)."""
    return read_log(path)[0]


def status(r: dict) -> str:
    """finished, diverged, failed (the last attempt; a rerun retries it) or unfinished."""
    return ("finished" if r["final"] else "diverged" if r["diverged"] else "failed" if r.get("failed")
            else "unfinished")


def not_in_table(runs: list[dict]) -> list[str]:
    """A section naming every run that is not in the tables (diverged, failed, unfinished, each once, with the
    epoch reached and its message) and every log line the report skipped."""
    others = [r for r in runs if status(r) != "finished"]
    skipped = [r for r in runs if r["skipped_lines"]]
    if not others and not skipped:
        return []
    L = ["", "## Runs not in the tables", ""]
    if others:
        L += ["| run | status | epoch reached | message |", "|---|---|---|---|"]
        for r in others:
            record = r["diverged"] or r.get("failed") or {}
            message = (record.get("message") or (record.get("traceback") or "").strip().splitlines()[-1:] or
                       ["–"])
            message = message if isinstance(message, str) else message[0]
            epoch = r["log"][-1]["epoch"] if r["log"] else 0
            L.append(f"| {r['name']} | {status(r)} | {epoch} of {r['config'].get('EPOCHS', '?')} | "
                     f"{message.replace('|', '/').splitlines()[0] if message else '–'} |")
    for r in skipped:
        L += ["", f"Skipped in {r['name']}/log.jsonl: line(s) {', '.join(map(str, r['skipped_lines']))} "
                  "(not JSON); the numbers above leave them out."]
    return L


def group_label(r: dict, many_lrs: bool) -> str:
    """`hofer β=4`, `sliding β0=1.1`, `ramp λ=0.03`: the regulariser and the parameters it uses (λ only where it
    is not LEGACY_LAMBDA or the regulariser has no β), prefixed by the folder of a paired-in run."""
    s = run_settings(r["run"], r["config"])
    label = r["run"]["regularizer"]
    label += f" β={s['beta']:g}" if s["beta"] is not None else f" β0={s['beta0']:g}" if s["beta0"] is not None else ""
    if s["lam"] is not None and (s["lam"] != LEGACY_LAMBDA or s["beta"] is None and s["beta0"] is None):
        label += f" λ={s['lam']:g}"
    label += f" lr={s['lr']:g}" if many_lrs else ""
    return f"{r['prefix']}: {label}" if r.get("prefix") else label


def _sort_key(r: dict) -> tuple:
    s = run_settings(r["run"], r["config"])
    return (r.get("prefix", ""), ORDER.get(r["run"]["regularizer"], 9), r["run"]["regularizer"],
            *(-1 if s[k] is None else s[k] for k in ("beta", "beta0", "lam", "lr")))


def grouped(runs: list[dict]) -> dict[str, list[dict]]:
    many_lrs = len({r["run"]["lr"] for r in runs}) > 1
    groups = defaultdict(list)
    for r in sorted(runs, key=_sort_key):
        groups[group_label(r, many_lrs)].append(r)
    return groups


def pair_key(r: dict) -> tuple[int, int]:
    """Runs pair when they share the split and the seed: the same training images, initialisation and batches."""
    return r["run"]["split"], r["seed"]


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


def verdict(lo: float, hi: float) -> str:
    """What a paired difference's CI lets one say: no difference only when it lies within ±NO_DIFFERENCE."""
    if not np.isfinite(lo):
        return "not resolved (too few pairs, or no spread)"
    if -NO_DIFFERENCE <= lo and hi <= NO_DIFFERENCE:
        return f"no difference (CI within ±{NO_DIFFERENCE:g})"
    return "A better" if lo > 0 else "B better" if hi < 0 else "not resolved (CI spans 0)"


def _differs_in(ra: list[dict], rb: list[dict]) -> str:
    """The settings (other than the regulariser) in which the paired runs of two groups differ."""
    by_key = {pair_key(r): r for r in rb}
    found = {}
    for r in ra:
        if pair_key(r) in by_key:
            for k, (x, y) in run_differences(r, by_key[pair_key(r)]).items():
                found.setdefault(k, set()).add((json.dumps(x), json.dumps(y)))
    return ", ".join(f"{k} " + " / ".join(f"{x}→{y}" for x, y in sorted(v)) for k, v in sorted(found.items())) or "–"


def mean_std(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else (f"{v.mean():.2f}" if v.size else "–")


def paired_tests(a: dict, b: dict) -> tuple[int, float, float, float, float]:
    """n, mean and std of the differences a − b over shared keys (splits, or (split, seed); in % points),
    paired t-test p, Wilcoxon signed-rank p."""
    shared = sorted(set(a) & set(b))
    # accuracies are counts / N: round away the float noise of subtracting them, so that equal differences are equal
    d = np.round(np.array([a[s] - b[s] for s in shared]) * 100, 6)
    if d.size < 2:
        return d.size, float(d.mean()) if d.size else float("nan"), float("nan"), float("nan"), float("nan")
    if np.ptp(d) == 0:  # identical differences: the t statistic is undefined
        t_p = float("nan")
    else:
        t_p = stats.ttest_1samp(d, 0.0).pvalue
    try:
        w_p = stats.wilcoxon(d).pvalue
    except ValueError:  # all differences zero
        w_p = float("nan")
    return d.size, float(d.mean()), float(d.std(ddof=1)), float(t_p), float(w_p)


def write_table(out: Path, runs: list[dict], paired_in: list[dict] = ()) -> Path:
    """table.md: the runs of `out` by regulariser, sweeps, paired comparisons (also with `paired_in`, the
    finished runs of other folders, by (split, seed)), pre-registered contrasts, collapse and provenance."""
    finished = [r for r in runs if r["final"]]
    groups = grouped(finished)
    cfg = (finished or runs)[0]["config"]
    published = PUBLISHED.get((cfg["DATASET"].lower(), cfg["TRAIN_SIZE"]), {})
    L = [f"# {cfg['DATASET']}-{cfg['TRAIN_SIZE']}: test accuracy and neural collapse at the end of training", "",
         "Generated by `report.py` from the logs in `runs/` ("
         + ", ".join(f"{sum(status(r) == s for r in runs)} {s}" for s in ("finished", "diverged", "failed", "unfinished"))
         + "). Accuracy in %, final epoch, mean ± std (ddof 1) over splits.", "",
         "| regulariser | splits | test accuracy | published | validation accuracy | train accuracy | "
         "epoch train acc. first 100 % |", "|---|---|---|---|---|---|---|"]
    for label, rs in groups.items():
        pub = published.get(rs[0]["run"]["regularizer"])
        tpt = [r["final"]["tpt_epoch"] for r in rs if r["final"]["tpt_epoch"] is not None]
        val = [100 * v for v in map(final_val_acc, rs) if v is not None]
        L.append(f"| {label} | {len(rs)} ({', '.join(str(r['run']['split']) for r in rs)}) | "
                 f"{mean_std([100 * r['final']['test_acc'] for r in rs])} | "
                 f"{f'{pub[0]:.2f} ± {pub[1]:.2f}' if pub else '–'} | "
                 f"{mean_std(val) + (f' ({len(val)} runs)' if len(val) < len(rs) else '') if val else '–'} | "
                 f"{mean_std([100 * r['final']['train_acc'] for r in rs])} | "
                 f"{mean_std(tpt) if tpt else 'never'}{f' ({len(tpt)}/{len(rs)} runs)' if len(tpt) < len(rs) else ''} |")
    if len({tuple(r["run"]["split"] for r in rs) for rs in groups.values()}) > 1:
        L += ["", "The rows cover different splits: compare regularisers with the paired table below."]
    keys = sorted({k for r in finished[1:] for k in setting_differences(finished[0]["config"], r["config"])}
                  - LEGACY_RUN_KEYS)  # a key missing from older configs counts as its default
    if keys:
        L += ["", f"**Warning: these runs differ in {', '.join(keys)}**; they are not paired comparisons."]
    L += not_in_table(runs)
    for sw in sweeps(finished):
        L += sweep_table(sw)
    others = grouped(list(paired_in))
    L += paired_section(groups, others)
    L += contrasts_section(out, {**groups, **others})
    L += replicate_section(groups, others)
    for where in ("train", "test"):
        # the classifier's own geometry does not depend on the data: shown with the train set only
        cols = [(k, h) for k, h in COLLAPSE_COLUMNS if where == "train" or k not in CLASSIFIER_ONLY]
        cols += [("within_class_variation", "Tr Σ_W"), ("between_class_variation", "Tr Σ_B"),
                 ("scale_free_variation", "Tr Σ_W / Tr Σ_B")]  # Tr Σ_W alone shrinks with the codes' scale
        L += ["", f"## Neural collapse at the end of training, on the {where} set (mean ± std over splits)", "",
              "| regulariser | " + " | ".join(h for _, h in cols) + " |", "|---|" + "---|" * len(cols)]
        for label, rs in groups.items():
            cells = [_fmt([_metric(r["final"][where], k) for r in rs], median=k == "nc1") for k, _ in cols]
            L.append(f"| {label} | " + " | ".join(cells) + " |")
    L += trajectory_tables(groups)
    L += ["", "## Provenance", ""]
    for key in ("commit", "device", "cpu", "cpu_capability", "deterministic", "tf32", "date", "torch", "torchvision",
                "numpy", "scipy", "python"):
        vals = sorted({str(r["final"].get(key, "not recorded")) for r in finished})
        L.append(f"- {key}: {', '.join(vals)}")
    L.append(f"- seeds (torch.manual_seed and batch generator, per split): "
             f"{', '.join(sorted({str(r['seed']) for r in finished}, key=int))}")
    L.append(f"- data: {sorted({r['data_source'] for r in finished})}")
    L += ["", "Configuration shared by the runs:", "", "```", json.dumps(cfg, indent=1), "```"]
    path = Path(out) / "table.md"
    _replace(path, lambda tmp: tmp.write_text("\n".join(L) + "\n"))
    return path


def trajectory_tables(groups: dict[str, list[dict]], near=(3, 10, 30, 100, 200)) -> list[str]:
    """Median over splits of NC1 and of the ETF distance of the class means at a few evaluated epochs (those
    closest to `near`, and the last): whether a regulariser brings collapse sooner, not only further."""
    per_group = {k: [{l["epoch"]: l for l in r["log"] if "test_acc" in l} for r in rs] for k, rs in groups.items()}
    shared = set.intersection(*(set(p) for runs in per_group.values() for p in runs)) if per_group else set()
    if not shared:
        return []
    epochs = sorted({min(shared, key=lambda e: abs(e - n)) for n in near} | {max(shared)})
    L = []
    for key, name in (("nc1", "NC1"), ("etf_distance_means", "ETF distance of the class means")):
        L += ["", f"## {name} during training (median over splits)", "",
              "| regulariser | set | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
              "|---|---|" + "---|" * len(epochs)]
        for label, runs in per_group.items():
            for where in ("train", "test"):
                cells = []
                for e in epochs:
                    v = np.array([_value(lambda l: l[where][key], p[e]) for p in runs])
                    cells.append(f"{np.median(v[np.isfinite(v)]):.3g}" if np.isfinite(v).any() else "undefined")
                L.append(f"| {label} | {where} | " + " | ".join(cells) + " |")
    return L


def final_val_acc(r: dict):
    """Validation accuracy at the end of a run (None for runs from before validation sets were logged)."""
    v = r["final"].get("val_acc")
    return v if v is not None else next((l["val_acc"] for l in reversed(r["log"]) if "val_acc" in l), None)


SWEPT = {"beta": "β", "beta0": "β0", "lam": "λ"}  # run_settings keys that a study may sweep, and their symbols


def sweeps(finished: list[dict]) -> list[dict]:
    """Every sweep among the finished runs: one regulariser and learning rate, one parameter (β, β0 or λ) taking
    several values while the others stay fixed, on the splits where every value finished (so that means compare
    like with like). Each: dict(reg, param, values, fixed, splits, test[value, split], val[value, split] or None)."""
    out = []
    by_reg = defaultdict(list)
    for r in finished:
        by_reg[r["run"]["regularizer"], r["run"]["lr"]].append((run_settings(r["run"], r["config"]), r))
    for (reg, lr), items in sorted(by_reg.items()):
        for param in SWEPT:
            if len({s[param] for s, _ in items}) < 2:
                continue
            rest = [k for k in SWEPT if k != param]
            for fixed in sorted({tuple(s[k] for k in rest) for s, _ in items}, key=str):
                runs = {(s[param], r["run"]["split"]): r for s, r in items if tuple(s[k] for k in rest) == fixed}
                values = sorted({v for v, _ in runs})
                splits = sorted(sp for sp in {sp for _, sp in runs} if all((v, sp) in runs for v in values))
                if len(values) < 2 or not splits:
                    continue
                test = np.array([[runs[v, sp]["final"]["test_acc"] for sp in splits] for v in values])
                val = [[final_val_acc(runs[v, sp]) for sp in splits] for v in values]
                out.append(dict(reg=reg, lr=lr, param=param, values=values, splits=splits, test=test,
                                dataset=items[0][1]["config"]["DATASET"],
                                fixed={k: f for k, f in zip(rest, fixed) if f is not None},
                                val=None if any(a is None for row in val for a in row) else np.array(val)))
    return out


def beta_sweep(finished: list[dict]):
    """(βs, splits, accuracy[β, split]) of hofer's β sweep, if there is one (see `sweeps`); else None."""
    sw = next((sw for sw in sweeps(finished) if sw["reg"] == "hofer" and sw["param"] == "beta"), None)
    return (sw["values"], sw["splits"], sw["test"]) if sw else None


def script_default(dataset: str, param: str):
    """The entry script's default for a swept parameter (the value a sweep has to beat), or None."""
    import mnist_top
    import svhn_top
    script = svhn_top if dataset == "SVHN" else mnist_top
    name = {"beta": "HOFER_BETAS", "beta0": "SLIDING_BETA0S", "lam": "LAMBDAS"}[param]
    return getattr(script, name)[0]


def choose(values: list, acc: np.ndarray, default) -> tuple[object, str]:
    """The held-out choice among `values` from accuracies acc[value, split]: the best mean, except that the default
    (when swept) stays unless the best beats it by more than one paired standard error of their difference."""
    best = int(acc.mean(1).argmax())
    if default not in values or values[best] == default:
        return values[best], "best mean"
    d = 100 * (acc[best] - acc[values.index(default)])
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("inf")  # one split: nothing beats the default
    se_text = f"{se:.2f}" if d.size > 1 else "undefined with one split"
    if d.mean() > se:
        return values[best], f"beats the default {default:g} by {d.mean():.2f} > one paired SE ({se_text}) points"
    return default, f"the default: {values[best]:g} is {d.mean():+.2f} points, within one paired SE ({se_text})"


def sweep_table(sw: dict) -> list[str]:
    sym, held_out = SWEPT[sw["param"]], is_held_out(sw["splits"])
    fixed = ", ".join(f"{SWEPT[k]}={v:g}" for k, v in sw["fixed"].items())
    by = "validation" if sw["val"] is not None else "test"
    L = ["", f"## {sw['reg']}'s {sym} {'sweep' if held_out else 'values'}"
             f"{f' ({fixed})' if fixed else ''}: final accuracy (%) on the {len(sw['splits'])} splits every "
             f"{sym} finished", "",
         f"| {sym} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"]) + " | test mean ± std | "
         "validation mean ± std |", "|---|" + "---|" * (len(sw["splits"]) + 2)]
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    choice, why = choose(sw["values"], acc, script_default(sw["dataset"], sw["param"]))
    for v, row, vrow in zip(sw["values"], sw["test"], sw["val"] if sw["val"] is not None else [None] * len(sw["values"])):
        mark = " (held-out choice)" if held_out and v == choice else ""
        L.append(f"| {v:g}{mark} | " + " | ".join(f"{100 * a:.2f}" for a in row) + f" | {mean_std(100 * row)} | "
                 f"{mean_std(100 * vrow) if vrow is not None else '–'} |")
    if held_out:
        L += ["", f"Held-out choice by {by} accuracy: {sym} = {choice:g} ({why})."
              + ("" if by == "validation" else " These runs log no validation accuracy, so the choice uses the "
                                               "test images: kept for the record, not for new choices.")]
    else:
        L += ["", f"These include reported splits (0–9): {sym} is chosen on the held-out splits 10–19, not here "
                  "(picking the best row would select on the very splits being reported)."]
    return L


def paired_section(groups: dict, others: dict) -> list[str]:
    """Paired comparisons: every two groups of this folder, then each group of this folder against each group
    paired in from other folders; each with its 95 % CI and the settings in which the paired runs differ."""
    accs = {k: {pair_key(r): r["final"]["test_acc"] for r in v} for k, v in {**groups, **others}.items()}
    L = ["", "## Paired comparisons (same split and seed ⇒ same images, initialisation and batches)", "",
         "| A − B | pairs | mean difference (% points) | 95 % CI | std | A better on | paired t-test p | "
         "Wilcoxon signed-rank p | runs also differ in |", "|---|---|---|---|---|---|---|---|---|"]
    keys = list(groups)
    rows = [(a, b) for i, a in enumerate(keys) for b in keys[:i]] + [(a, b) for a in keys for b in others]
    for a, b in rows:
        n, m, s, tp, wp = paired_tests(accs[a], accs[b])
        if n:
            lo, hi = ci95(n, m, s)
            wins = sum(accs[a][k] > accs[b][k] for k in set(accs[a]) & set(accs[b]))
            ci = f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "–"
            L.append(f"| {a} − {b} | {n} | {m:+.2f} | {ci} | {s:.2f} | {wins} of {n} | {tp:.3g} | {wp:.3g} | "
                     f"{_differs_in({**groups, **others}[a], {**groups, **others}[b])} |")
    return L


def contrasts_section(out: Path, groups: dict) -> list[str]:
    """The contrasts named in OUT/contrasts.json before the runs finished, each a paired difference A − B with its
    95 % CI, t-test and Wilcoxon p, both Holm-corrected over the contrasts, and what the CI lets one say."""
    path = Path(out) / CONTRASTS_FILE
    if not path.exists():
        return []
    spec = json.loads(path.read_text())
    accs = {k: {pair_key(r): r["final"]["test_acc"] for r in v} for k, v in groups.items()}
    rows = []
    for c in spec["contrasts"]:
        a, b = _resolve(c["a"], accs), _resolve(c["b"], accs)
        missing = [g for g, label in ((c["a"], a), (c["b"], b)) if label is None]
        rows.append((dict(c, a=a or c["a"], b=b or c["b"]), missing,
                     paired_tests(accs[a], accs[b]) if not missing else None))
    tested = sum(1 for r in rows if r[2] and r[2][0] >= 2)
    t_adj = holm([r[2][3] if r[2] else np.nan for r in rows], m=tested)
    w_adj = holm([r[2][4] if r[2] else np.nan for r in rows], m=tested)
    level = 1 - 0.05 / max(tested, 1)  # Bonferroni: the verdicts hold together for the whole family
    L = ["", f"## Pre-registered contrasts ({CONTRASTS_FILE}, named before the runs finished)", "",
         spec.get("note", ""), "",
         f"p-values corrected by Holm over the {tested} contrasts with pairs; each verdict reads the Bonferroni "
         f"{100 * level:.1f} % CI (95 % for the family): 'no difference' only when it lies within "
         f"±{NO_DIFFERENCE:g} points.", "",
         "| contrast | A − B | pairs | mean difference (% points) | 95 % CI | t-test p (Holm) | Wilcoxon p (Holm) | "
         f"{100 * level:.1f} % CI | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for (c, missing, res), ta, wa in zip(rows, t_adj, w_adj):
        if missing or not res[0]:
            L.append(f"| {c['name']} | {c['a']} − {c['b']} | 0 | – | – | – | – | – | not yet: "
                     + (f"no single finished group {', '.join(missing)}" if missing else "no shared split") + " |")
            continue
        n, m, s, tp, wp = res
        lo, hi = ci95(n, m, s)
        blo, bhi = ci95(n, m, s, level)
        ci, bci = ([f"[{x:+.2f}, {y:+.2f}]" if np.isfinite(x) else "–" for x, y in ((lo, hi), (blo, bhi))])
        L.append(f"| {c['name']} | {c['a']} − {c['b']} | {n} | {m:+.2f} | {ci} | {tp:.3g} ({ta:.3g}) | "
                 f"{wp:.3g} ({wa:.3g}) | {bci} | {verdict(blo, bhi)} |")
    return L


def write_summary(spec_path: Path) -> Path:
    """<spec>.md beside a JSON spec {"title", "note", "rows": [{"setting", "a", "b"}, ...]}: one paired comparison
    A − B per row, across results folders. A side is "<folder>: <group>", the folder relative to the spec's own
    folder, the group a label of that folder's table (or a regulariser's name standing for its one group). Each
    row: both sides' test accuracy on the splits they share, the paired difference with its 95 % CI and verdict,
    and the settings in which the paired runs differ."""
    spec_path = Path(spec_path)
    spec = json.loads(spec_path.read_text())
    rows = spec.get("rows")
    bad = [i for i, r in enumerate(rows or []) if not isinstance(r, dict) or set(SUMMARY_KEYS) - set(r)
           or any(": " not in r[k] for k in "ab")]
    if not isinstance(rows, list) or not rows or bad:
        raise SystemExit(f"{spec_path}: expected {{\"rows\": [{{\"setting\": ..., \"a\": \"<folder>: <group>\", "
                         f"\"b\": ...}}, ...]}}" + (f"; rows {bad} are not of that form" if bad else ""))
    folders = {}

    def side(text: str):
        folder, _, label = text.partition(": ")
        if folder not in folders:
            runs = load_runs(spec_path.parent / folder) if (spec_path.parent / folder / "runs").is_dir() else []
            folders[folder] = grouped([r for r in runs if r["final"]])
        found = _resolve(label, folders[folder])
        return folders[folder][found] if found else None

    L = [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), "",
         f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of the folders named below "
         "(each folder's `table.md` has its runs' configuration and provenance). Test accuracy in %, final epoch, "
         "mean ± std (ddof 1) over the splits both sides share; A − B paired by split and seed, with its 95 % CI "
         f"(Student's t); 'no difference' only when the CI lies within ±{NO_DIFFERENCE:g} points.", "",
         "| setting | A | B | splits | A: test accuracy | B: test accuracy | A − B (% points) | 95 % CI | verdict | "
         "runs also differ in |", "|---|---|---|---|---|---|---|---|---|---|"]
    used = []
    for row in rows:
        ra, rb = side(row["a"]), side(row["b"])
        if ra is None or rb is None:
            L.append(f"| {row['setting']} | {row['a']} | {row['b']} | 0 | – | – | – | – | not yet: no finished "
                     f"group {' nor '.join(t for t, r in ((row['a'], ra), (row['b'], rb)) if r is None)} | – |")
            continue
        a, b = ({pair_key(r): r["final"]["test_acc"] for r in rs} for rs in (ra, rb))
        shared = sorted(set(a) & set(b))
        n, m, s, _, _ = paired_tests(a, b)
        lo, hi = ci95(n, m, s)
        used += [r for r in ra + rb if pair_key(r) in shared]
        L.append(f"| {row['setting']} | {row['a']} | {row['b']} | {n} ({', '.join(str(k[0]) for k in shared)}) | "
                 f"{mean_std([100 * a[k] for k in shared])} | {mean_std([100 * b[k] for k in shared])} | "
                 + (f"{m:+.2f} | " if n else "– | ") + (f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "–")
                 + f" | {verdict(lo, hi) if n else 'not yet: no shared split'} | {_differs_in(ra, rb)} |")
    if used:
        seen = {key: sorted({str(r["final"].get(key, "not recorded"))[:10 if key == "date" else None] for r in used})
                for key in ("commit", "cpu", "device", "date")}
        L += ["", "Runs used: " + "; ".join(f"{key} {', '.join(v)}" for key, v in seen.items()) + "."]
    path = spec_path.with_suffix(".md")
    _replace(path, lambda tmp: tmp.write_text("\n".join(L) + "\n"))
    return path


def _resolve(side: str, labels) -> str | None:
    """A contrast's side: a group label, or a regulariser's name (with a folder prefix where paired in) standing for
    its one group, so that a contrast can be named before its held-out λ is known. None where no group (or several)."""
    if side in labels:
        return side
    prefix, _, reg = side.rpartition(": ")
    found = [l for l in labels if l.rpartition(": ")[0] == prefix and l.rpartition(": ")[2].split(" ")[0] == reg]
    return found[0] if len(found) == 1 else None


def replicate_section(groups: dict, others: dict) -> list[str]:
    """The noise floor: where a folder paired in holds the same regularisers on the same splits with another seed
    (other initialisation and batches, same images), each paired difference A − B of this folder against the same
    difference there, split by split: how much of the spread across splits is the seed's."""
    def by_split(rs):
        return {r["run"]["split"]: (r["seed"], r["final"]["test_acc"]) for r in rs}
    mine = {k: by_split(v) for k, v in groups.items()}
    theirs = defaultdict(dict)
    for label, rs in others.items():
        prefix, _, bare = label.rpartition(": ")
        theirs[prefix][bare] = by_split(rs)
    L = []
    for prefix, other in theirs.items():
        labels = [k for k in mine if k in other]

        def replicated(*ls):  # splits that every group in ls has in both folders, under another seed there
            return sorted(s for s in set.intersection(*(set(mine[l]) & set(other[l]) for l in ls))
                          if mine[ls[0]][s][0] != other[ls[0]][s][0])
        for i, a in enumerate(labels):
            for b in labels[:i]:
                splits = replicated(a, b)
                if len(splits) < 2:
                    continue
                d0 = np.array([100 * (other[a][s][1] - other[b][s][1]) for s in splits])
                d1 = np.array([100 * (mine[a][s][1] - mine[b][s][1]) for s in splits])
                n = len(splits)
                seed_sd = np.std(d1 - d0, ddof=1) / np.sqrt(2)       # one difference's spread from the seed alone
                split_sd = np.std((d0 + d1) / 2, ddof=1)             # across splits, seeds averaged
                sd = np.std(np.concatenate([d0, d1]), ddof=1)        # one seed per split, as a study has
                mde = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
                lo, hi = ci95(n, (d0 + d1).mean() / 2, split_sd)
                if not L:
                    L += ["", "## Replicate with another seed: the noise floor", "",
                          "Each row: a paired difference A − B (test accuracy, % points) in this folder and in the "
                          "folder paired in, whose runs have the same images but another seed (initialisation and "
                          "batches). Seed spread = std over splits of (d_this − d_other)/√2, the spread one "
                          "difference has from the seed alone; split spread = std over splits of the two seeds' "
                          "mean; smallest detectable = the mean difference that a paired t-test on n splits finds "
                          "with 80 % power at p < 0.05, from the std of single-seed differences.", "",
                          "| A − B | other folder | splits | mean (this seed) | mean (other seed) | mean of both, "
                          "95 % CI | seed spread | split spread | std of single-seed differences | smallest "
                          "detectable on n splits |", "|---|---|---|---|---|---|---|---|---|---|"]
                L.append(f"| {a} − {b} | {prefix} | {n} | {d1.mean():+.2f} | {d0.mean():+.2f} | "
                         f"{(d0 + d1).mean() / 2:+.2f} [{lo:+.2f}, {hi:+.2f}] | {seed_sd:.2f} | {split_sd:.2f} | "
                         f"{sd:.2f} | {mde:.2f} |")
        rows = []
        for a in labels:  # one regulariser's accuracy: what a retrained run (other seed or CPU) should expect
            splits = replicated(a)
            if len(splits) < 2:
                continue
            a0 = np.array([100 * other[a][s][1] for s in splits])
            a1 = np.array([100 * mine[a][s][1] for s in splits])
            n, d = len(splits), a1 - a0
            sd = np.std(d, ddof=1)
            lo, hi = ci95(n, d.mean(), sd)
            rows.append(f"| {a} | {prefix} | {n} | {a1.mean():.2f} | {a0.mean():.2f} | {d.mean():+.2f} "
                        f"[{lo:+.2f}, {hi:+.2f}] | {sd / np.sqrt(2):.2f} | {sd / np.sqrt(n):.2f} |")
        if rows:
            L += ["", "One regulariser's test accuracy (%) under the two seeds, split by split: seed spread of one "
                  "run = std over splits of (this − other)/√2, how far a single run moves from the seed alone; "
                  "the last column is the std of the difference of two n-split means with different seeds.", "",
                  "| regulariser | other folder | splits | mean (this seed) | mean (other seed) | this − other, "
                  "95 % CI | seed spread of one run | std of the difference of the means |",
                  "|---|---|---|---|---|---|---|---|", *rows]
    return L


def is_held_out(splits) -> bool:
    """Whether a comparison uses only held-out splits, where picking the best value is legitimate."""
    return all(sp in HELD_OUT_SPLITS for sp in splits)


def _metric(m: dict, key: str) -> float:
    if key == "scale_free_variation":
        return m.get("within_class_variation", float("nan")) / m.get("between_class_variation", float("nan"))
    return m.get(key, float("nan"))


def _fmt(values, median=False) -> str:
    """mean ± std of the defined values; with `median`, also the median (NC1 spans decades across splits)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    note = f" ({v.size} of {len(values)} defined)" if v.size < len(values) else ""
    if v.size == 0:
        return "undefined"
    med = f" (median {np.median(v):.3g})" if median and v.size > 2 else ""
    return (f"{v.mean():.3g} ± {v.std(ddof=1):.2g}" if v.size > 1 else f"{v.mean():.3g}") + med + note


def _curves(rs: list[dict], get, log=False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs evaluated by every run, and the mean over runs of `get(line)` there with a lower and upper
    band: mean ± std, or for a quantity plotted on a log axis the geometric mean ×/÷ the geometric std."""
    per_run = [{l["epoch"]: _value(get, l) for l in r["log"] if "test_acc" in l} for r in rs]
    epochs = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    y = np.array([[p[e] for e in epochs] for p in per_run], dtype=float).reshape(len(per_run), len(epochs))
    with np.errstate(all="ignore"), warnings.catch_warnings():  # an all-undefined epoch stays a gap in the plot
        warnings.simplefilter("ignore", RuntimeWarning)
        y = np.log(np.where(y > 0, y, np.nan)) if log else y
        m = np.nanmean(y, 0)
        s = np.nanstd(y, 0, ddof=1) if len(rs) > 1 else np.zeros(len(epochs))
        s = np.nan_to_num(s)
        lo, hi = m - s, m + s
        return (np.array(epochs), np.exp(m), np.exp(lo), np.exp(hi)) if log else (np.array(epochs), m, lo, hi)


def _value(get, line) -> float:
    """get(line), or NaN where the log recorded that a metric was undefined ({"error": ...})."""
    try:
        return float(get(line))
    except (KeyError, TypeError):
        return float("nan")


def write_figures(out: Path, runs: list[dict], paired_in: list[dict] = ()) -> list[Path]:
    """accuracy.png, collapse.png, deaths.png (and a sweep figure per sweep) of this folder's runs; with runs paired in
    from other folders, also paired.png: NC1, ETF distance of the means and death times of both folders' groups."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    finished = [r for r in runs if r["final"]]  # curves of the runs in the table; all logs while none finished
    groups = grouped(finished or [r for r in runs if r["log"]])
    others = grouped(list(paired_in))
    palette = plt.get_cmap("tab10").colors
    colors = dict(zip([*groups, *others], palette * 3))

    def panel(ax, get, title, log=False, styles=(("train", "-"),), shown=None):
        plotted = []
        for label, rs in (shown or groups).items():
            for where, ls in styles:
                e, m, lo, hi = _curves(rs, lambda l: get(l, where), log=log)
                if not len(e):
                    continue
                plotted.append(m)
                ax.plot(e, m, ls, color=colors[label], label=f"{label}" + (f" ({where})" if len(styles) > 1 else ""))
                ax.fill_between(e, lo, hi, color=colors[label], alpha=0.15, lw=0)
            tpt = [next((l["epoch"] for l in r["log"] if l["train_acc"] >= 1.0), None) for r in rs]
            tpt = [t for t in tpt if t is not None]
            if tpt:
                ax.axvline(np.mean(tpt), color=colors[label], ls=":", lw=1)
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

    both = (("train", "-"), ("test", "--"))
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panel(axes[0], lambda l, w: 100 * l["test_acc"], "test accuracy (%)")
    panel(axes[1], lambda l, w: 100 * l["train_acc"], "train accuracy (%)")
    _legend(axes[0])
    fig.suptitle("mean ± std over splits; dotted: epoch where train accuracy first reaches 100 %", fontsize=9)
    paths.append(_save(fig, Path(out) / "accuracy.png"))

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panel(axes[0, 0], lambda l, w: l[w]["nc1"], "NC1  Tr(Σ_W Σ_B⁺)/C", log=True, styles=both)
    panel(axes[0, 1], lambda l, w: l[w]["etf_distance_means"], "ETF distance of class means", styles=both)
    panel(axes[0, 2], lambda l, w: l[w]["etf_distance_classifiers"], "ETF distance of classifiers W")
    panel(axes[1, 0], lambda l, w: l[w]["nc3_self_duality"], "NC3 self-duality ‖W/‖W‖ − M/‖M‖‖²", styles=both)
    panel(axes[1, 1], lambda l, w: l[w]["nc4_ncc_mismatch"], "NC4 NCC mismatch", styles=both)
    panel(axes[1, 2], lambda l, w: l[w]["within_class_variation"], "within-class variation Tr Σ_W", log=True,
          styles=both)
    _legend(axes[0, 0])
    fig.suptitle("neural collapse: solid = training subset, dashed = test set (NCC with training means); "
                 "dotted: train accuracy first 100 %", fontsize=10)
    paths.append(_save(fig, Path(out) / "collapse.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panel(axes[0], lambda l, w: np.mean([v for v in l["death_mean"] if v is not None]), "mean death time per class (training subset)",
          log=True)
    panel(axes[1], lambda l, w: np.mean([v for v in l["death_max"] if v is not None]), "largest death time per class (mean over classes)",
          log=True)
    _legend(axes[0])
    fig.suptitle("0-dim Vietoris–Rips death times of each class's latent codes (run metric)", fontsize=9)
    paths.append(_save(fig, Path(out) / "deaths.png"))

    if others:
        both = {**others, **groups}
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
        panel(axes[0], lambda l, w: l[w]["nc1"], "NC1 (training subset)", log=True, shown=both)
        panel(axes[1], lambda l, w: l[w]["etf_distance_means"], "ETF distance of class means (training subset)",
              shown=both)
        panel(axes[2], lambda l, w: np.mean([v for v in l["death_mean"] if v is not None]),
              "mean death time per class", log=True, shown=both)
        _legend(axes[0])
        fig.suptitle("this folder's runs beside those paired in (prefixed with their folder); mean ± std over splits",
                     fontsize=9)
        paths.append(_save(fig, Path(out) / "paired.png"))

    for sw in sweeps(finished):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        sym = SWEPT[sw["param"]]
        for col in 100 * sw["test"].T:
            ax.plot(sw["values"], col, "o-", color="0.7", lw=0.8, ms=3)
        for acc, name, color in ((sw["test"], "test", "C1"), (sw["val"], "validation", "C0")):
            if acc is not None:
                ax.errorbar(sw["values"], 100 * acc.mean(1), yerr=100 * acc.std(1, ddof=1) if len(sw["splits"]) > 1
                            else None, fmt="o-", color=color, lw=2, capsize=3,
                            label=f"{name}: mean ± std over {len(sw['splits'])} splits")
        positive = min(sw["values"]) > 0
        if positive:
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
        paths.append(_save(fig, Path(out) / name))
    return paths


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:  # nothing plotted (no evaluated epoch yet): no empty legend
        ax.legend(fontsize=8)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    _replace(path, lambda tmp: fig.savefig(tmp, dpi=130))
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def _replace(path: Path, write) -> None:
    """write(tmp) to a temporary file beside `path`, then rename it over `path` (several processes may write the
    report at once); an interrupted write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(out: Path, pair_with=()) -> str:
    """Table and figures for every run under `out`, paired also with the finished runs of the folders `pair_with`;
    returns a one-line summary."""
    runs = load_runs(out)
    if not runs:
        return f"report: no runs under {out}"
    paired_in = [r for other in pair_with if other for r in load_runs(Path(other), prefix=Path(other).name)
                 if r["final"]]
    table = write_table(out, runs, paired_in)
    figs = write_figures(out, runs, paired_in) if any(r["log"] for r in runs) else []
    return f"report: {table}; figures: {', '.join(p.name for p in figs) or 'none'}"


if __name__ == "__main__":
    args = sys.argv[1:]
    summaries = [a.split("=", 1)[1] for a in args if a.startswith("--SUMMARY=")]
    if summaries:
        for spec in summaries:
            if not Path(spec).is_file():
                sys.exit(f"--SUMMARY: no such file {spec} (a JSON list of rows; see results/hofer-row.json)")
            print(f"summary: {write_summary(Path(spec))}")
        sys.exit(0)
    pair = [a.split("=", 1)[1] for a in args if a.startswith("--PAIR_WITH=")]
    rest = [a for a in args if not a.startswith("--PAIR_WITH=")]
    if len(rest) != 1:
        sys.exit("usage: python report.py RESULTS_DIR [--PAIR_WITH=OTHER_DIR[,OTHER_DIR...]]\n"
                 "       python report.py --SUMMARY=SPEC.json\n"
                 "  for example: python report.py results/mnist-250-ablations --PAIR_WITH=results/mnist-250")
    others = [o for p in pair for o in p.split(",") if o]
    missing = [o for o in others if not (Path(o) / "runs").is_dir()]
    if missing:
        sys.exit(f"--PAIR_WITH: no runs/ folder in {', '.join(missing)}")
    print(write_report(Path(rest[0]), others))
