"""The markdown of the report: a results folder's `table.md` and the cross-folder summary of `--SUMMARY`.

Reads the run folders (`runs.py`), groups their runs (by regulariser, and β / λ / lr where several were run), and
writes every section of the table: accuracy, runs not in it, sweeps and their held-out choice, paired comparisons
(same split and seed ⇒ same images, initialisation and batches), pre-registered contrasts, the noise floor of a
replicate under another seed, neural collapse, and provenance. The statistics are `stats.py`'s; every comparison, in
a folder's table or a summary, gets its verdict by one rule (`family`), and a comparison that pairs a run trained from
a dirty tree is marked (DIRTY_MARK).

    OUT_DIR/study.json       what the study was run with: {"script_defaults": {"HOFER_BETAS": [4.0], ...},
                             "pair_with": ["results/mnist-250", ...]} (folders relative to the repository root)
    OUT_DIR/contrasts.json   comparisons named before the runs finish: {"note", "contrasts": [{"name", "a", "b"}]}
"""
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from runs import (LEGACY_LAMBDA, LEGACY_RUN_KEYS, OUTCOMES, PROVENANCE_COMPARED, SETTINGS_FILE, ReportError,
                  atomic_write, read_log, read_settings, read_study, run_differences, run_name, run_settings,
                  setting_differences, status)
from schedules import SCHEDULES
from stats import (NO_DIFFERENCE, choose, ci95, expected_duplicate_edges, family_level, holm, judge, level_text,
                   mean_std, paired_tests, seed_floor, seed_shift, setting_text)

# MNIST-250 test accuracies (%, mean ± std over 10 splits) to reproduce: vanilla and hofer as reported for Hofer
# et al.'s protocol, sliding as claimed by this project's original study; all three from that study's README.
PUBLISHED = {("mnist", 250): {"vanilla": (92.53, 0.76), "hofer": (94.10, 0.30), "sliding": (94.24, 0.47)}}
COLLAPSE_COLUMNS = [("nc1", "NC1"), ("etf_distance_means", "ETF dist. means"),
                    ("etf_distance_classifiers", "ETF dist. W"), ("nc3_self_duality", "NC3 self-duality"),
                    ("nc4_ncc_mismatch", "NCC mismatch")]
CLASSIFIER_ONLY = {"etf_distance_classifiers"}
HELD_OUT_SPLITS = range(10, 20)  # the scripts' convention: splits 10-19 are for choosing hyperparameters, 0-9 reported
ORDER = {name: i for i, name in enumerate(SCHEDULES)}  # the order in which groups are listed
CONTRASTS_FILE = "contrasts.json"  # comparisons named before the runs finish: {"contrasts": [{"name", "a", "b"}, ...]}
SUMMARY_KEYS = ("setting", "a", "b")  # a summary row: {"setting": text, "a": "folder: group", "b": "folder: group"}
SWEPT = {"beta": "β", "beta0": "β0", "lam": "λ"}  # run_settings keys that a study may sweep, and their symbols
DEFAULT_OF = {"beta": "HOFER_BETAS", "beta0": "SLIDING_BETA0S", "lam": "LAMBDAS"}  # the script's list of each
DIRTY = "+dirty"  # the end of final.json's commit where the run's code was not committed (train.provenance)
DIRTY_MARK = " †"  # after a comparison that pairs a run trained from a dirty tree
BY_GROUP = ("commit", "device", "cpu", "cpu_capability")  # provenance keys counted group by group where they vary


# ------------------------------------------------------------------------------------------------ runs, groups
def load_runs(out: Path, prefix: str = "") -> list[dict]:
    """Every folder under `out/runs`, with its config, log lines and outcome records (final, diverged, failed:
    the JSON or None); `prefix` names the folder in the labels of runs paired from another results folder. A folder
    that is not a consistent run (`_load_run`: unreadable files, no config.json, a record of another run) is kept with
    its `problem` and counted nowhere, for "Runs not in the tables"."""
    try:
        entries = sorted(Path(out, "runs").iterdir())
    except OSError:  # no runs/ (or not a folder)
        return []
    return [_load_run(p, prefix) if p.is_dir() else dict(_blank(p, prefix), problem="a symlink that leads nowhere "
            "(or into a loop): not a run folder") for p in entries if p.is_dir() or p.is_symlink()]


def _blank(folder: Path, prefix: str) -> dict:
    return dict(prefix=prefix, name=folder.name, problem=None, inconsistent=False, run=None, config={}, seed=None,
                data_source="", log=[], skipped_lines=[], **{kind: None for kind in OUTCOMES})


def _read_json(path: Path):
    """(the JSON in `path` or None where there is no such file, what was wrong with it or None)."""
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, None
    except OSError as e:  # a directory, a permission, a loop
        return None, f"{path.name} cannot be read ({e.strerror or type(e).__name__})"
    except (ValueError, UnicodeDecodeError) as e:  # not JSON, or an integer too long to read
        return None, f"{path.name} is not valid JSON ({getattr(e, 'msg', e)})"


def _is_record(record) -> bool:
    """Whether config.json holds a run's record: the run (regulariser, integer split, numeric lr, β and λ numeric or
    absent), its settings and its seed."""
    run = record.get("run") if isinstance(record, dict) else None
    number = (int, float)
    return (isinstance(run, dict) and isinstance(record.get("config"), dict) and "seed" in record
            and isinstance(run.get("regularizer"), str) and type(run.get("split")) is int
            and isinstance(run.get("lr"), number) and not isinstance(run["lr"], bool) and "beta" in run
            and all(run.get(k) is None or isinstance(run[k], number) and not isinstance(run[k], bool)
                    for k in ("beta", "lam")))


def _load_run(folder: Path, prefix: str) -> dict:
    """A run folder as `load_runs` keeps it. Its identity is checked at every read: the folder's name must be the
    name its config.json defines (`runs.run_name`), final.json must be the record of that run, its test accuracy the
    one of the log's last evaluated line, and the log must hold every epoch once, in order; otherwise the run has a
    `problem` (and `inconsistent`) and is counted nowhere."""
    r = _blank(folder, prefix)
    record, wrong = _read_json(folder / "config.json")
    if record is None:
        return dict(r, problem=wrong or "no config.json: an empty folder, a run not started yet, or its record "
                                        "deleted (restore config.json, or move the folder away)")
    if not _is_record(record):
        return dict(r, problem="config.json is not a run's record (run: regularizer, split, lr, beta; config; seed)")
    if record["run"]["regularizer"] not in SCHEDULES:
        return dict(r, problem=f"config.json names an unknown regulariser {record['run']['regularizer']!r}")
    r.update(record, prefix=prefix, name=folder.name)
    r["log"], r["skipped_lines"] = read_log(folder / "log.jsonl")
    for kind in OUTCOMES:
        r[kind], wrong = _read_json(folder / f"{kind}.json")
        if wrong:
            return dict(r, final=None, problem=wrong)
    if r["final"] is not None and not _is_final(r["final"]):
        return dict(r, final=None, problem="final.json is not a finished run's record (test_acc, train, test)")
    why = _inconsistent(r, folder.name)
    return dict(r, final=None, problem=why, inconsistent=True) if why else r


def _inconsistent(r: dict, folder: str) -> str | None:
    """Why a run's files disagree about which run it is and what it scored (None where they agree)."""
    name = run_name(r["run"], r["config"])
    if name != folder or r["run"].get("name", name) != folder:
        return (f"config.json defines run {r['run'].get('name', name)}, not {folder} (a copy under another name?): "
                "not counted")
    if r["final"] is None:
        return None
    final_run = r["final"].get("run")
    if isinstance(final_run, dict) and final_run.get("name") != folder:
        return f"final.json is the record of run {final_run.get('name')}, not of {folder}: not counted"
    evaluated = [l for l in r["log"] if "test_acc" in l]
    if not evaluated or evaluated[-1]["test_acc"] != r["final"]["test_acc"]:
        return (f"final.json's test accuracy {r['final']['test_acc']} is not the log's last evaluated one "
                f"({evaluated[-1]['test_acc'] if evaluated else 'none'}): not counted")
    epochs, want = [l["epoch"] for l in r["log"]], r["config"].get("EPOCHS")
    if epochs != list(range(1, (want if isinstance(want, int) else len(epochs)) + 1)):
        gaps = sorted(set(range(1, max(epochs, default=0) + 1)) - set(epochs))
        return (f"log.jsonl of a finished run does not hold epochs 1–{want} once each, in order"
                + (f" (missing {', '.join(map(str, gaps[:5]))}{'…' if len(gaps) > 5 else ''})" if gaps else "")
                + ": not counted")
    return None


def _is_final(final) -> bool:
    """Whether final.json holds what the tables read: accuracies as numbers and the collapse metrics as objects."""
    return (isinstance(final, dict) and all(isinstance(final.get(k), (int, float)) for k in ("test_acc", "train_acc"))
            and all(isinstance(final.get(k), dict) for k in ("train", "test")) and "tpt_epoch" in final)


def run_status(r: dict) -> str:
    """`runs.status` of a loaded run; unreadable where its files are not a run's, inconsistent where they disagree
    about which run it is or what it scored (`_inconsistent`)."""
    return ("inconsistent" if r.get("inconsistent") else "unreadable") if r.get("problem") else status(r)


def group_label(r: dict, many_lrs: bool) -> str:
    """`hofer β=4`, `sliding β0=1.1`, `ramp λ=0.03`, `vanilla ETF`: the regulariser and the parameters it uses (λ
    only where it is not LEGACY_LAMBDA or the regulariser has no β), ETF with a fixed simplex-ETF classifier,
    prefixed by the folder of a paired-in run."""
    s = run_settings(r["run"], r["config"])
    label = r["run"]["regularizer"]
    label += f" β={s['beta']:g}" if s["beta"] is not None else f" β0={s['beta0']:g}" if s["beta0"] is not None else ""
    if s["lam"] is not None and (s["lam"] != LEGACY_LAMBDA or s["beta"] is None and s["beta0"] is None):
        label += f" λ={s['lam']:g}"
    label += f" lr={s['lr']:g}" if many_lrs else ""
    label += " ETF" if r["config"].get("ETF_CLASSIFIER") else ""
    return f"{r['prefix']}: {label}" if r.get("prefix") else label


def _sort_key(r: dict) -> tuple:
    s = run_settings(r["run"], r["config"])
    return (r.get("prefix", ""), ORDER.get(r["run"]["regularizer"], len(ORDER)), r["run"]["regularizer"],
            *(-1 if s[k] is None else s[k] for k in ("beta", "beta0", "lam", "lr")))


def grouped(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs by `group_label`, in the table's order (folder, regulariser, then its parameters)."""
    many_lrs = len({r["run"]["lr"] for r in runs}) > 1
    groups = defaultdict(list)
    for r in sorted(runs, key=_sort_key):
        groups[group_label(r, many_lrs)].append(r)
    return groups


def pair_key(r: dict) -> tuple[int, int]:
    """Runs pair when they share the split and the seed: the same training images, initialisation and batches."""
    return r["run"]["split"], r["seed"]


def _matches(side: str, labels) -> list[str]:
    """The group labels a contrast's side names: itself, or the groups of the regulariser it names (with a folder
    prefix where paired in)."""
    if side in labels:
        return [side]
    prefix, _, reg = side.rpartition(": ")
    return [l for l in labels if l.rpartition(": ")[0] == prefix and l.rpartition(": ")[2].split(" ")[0] == reg]


def _resolve(side: str, labels) -> str | None:
    """A contrast's side: a group label, or a regulariser's name (with a folder prefix where paired in) standing for
    its one group, so that a contrast can be named before its held-out λ is known. None where no group (or several)."""
    found = _matches(side, labels)
    return found[0] if len(found) == 1 else None


def _unresolved(sides, labels) -> str:
    """Why the sides (those `_resolve` found no group for) have no group: not run yet, or named ambiguously."""
    many = {side: found for side in sides if len(found := _matches(side, labels)) > 1}
    if many:
        return "; ".join(f"{side} names {len(f)} groups ({', '.join(f)}): name one by its label"
                         for side, f in many.items())
    return f"not yet: no finished group {' nor '.join(sides)}"




def _differs_in(ra: list[dict], rb: list[dict]) -> str:
    """The settings (other than the regulariser) in which the paired runs of two groups differ, and where they
    trained: the commit, torch, the device and the CPU capability, determinism and TF32 (`PROVENANCE_COMPARED`: runs
    are bit-exact only on the same code, library, device and kernels)."""
    by_key = {pair_key(r): r for r in rb}
    found = {}
    for r in ra:
        if pair_key(r) in by_key:
            other = by_key[pair_key(r)]
            diff = run_differences(r, other)
            for k in PROVENANCE_COMPARED:
                x, y = (_recorded(q, k) for q in (r, other))
                if x != y:
                    diff[k] = (x, y)
            for k, (x, y) in diff.items():
                found.setdefault(k, set()).add((json.dumps(x), json.dumps(y)))
    return ", ".join(f"{k} " + " / ".join(f"{x}→{y}" for x, y in sorted(v)) for k, v in sorted(found.items())) or "–"


def final_val_acc(r: dict):
    """Validation accuracy at the end of a run (None for runs from before validation sets were logged)."""
    v = r["final"].get("val_acc")
    return v if v is not None else next((l["val_acc"] for l in reversed(r["log"]) if "val_acc" in l), None)


def logged_value(get, line) -> float:
    """get(line), or NaN where the log recorded that a metric was undefined ({"error": ...})."""
    try:
        return float(get(line))
    except (KeyError, TypeError):
        return float("nan")


def _metric(m: dict, key: str) -> float:
    """A logged collapse metric as a float: NaN where it is missing or undefined (None, or an older {"error": ...})."""
    if key == "scale_free_variation":
        w, b = _metric(m, "within_class_variation"), _metric(m, "between_class_variation")
        return w / b if b > 0 else float("nan")
    v = m.get(key)
    return float(v) if isinstance(v, (int, float)) else float("nan")


def _last_death(r: dict) -> float:
    """The mean over classes of each class's mean death time at the run's last logged epoch (NaN where none)."""
    line = next((l for l in reversed(r["log"]) if l.get("death_mean")), {})
    v = [x for x in line.get("death_mean", []) if isinstance(x, (int, float))]
    return float(np.mean(v)) if v else float("nan")


def _fmt(values, median=False) -> str:
    """mean ± std of the defined values; with `median`, also the median (NC1 spans decades across splits)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    note = f" ({v.size} of {len(values)} defined)" if v.size < len(values) else ""
    if v.size == 0:
        return "undefined"
    med = f" (median {np.median(v):.3g})" if median and v.size > 2 else ""
    return (f"{v.mean():.3g} ± {v.std(ddof=1):.2g}" if v.size > 1 else f"{v.mean():.3g}") + med + note


# ------------------------------------------------------------------------------------------------ table.md
def write_table(out: Path, runs: list[dict], paired_in: list[dict] = ()) -> Path:
    """table.md: the runs of `out` by regulariser, sweeps, paired comparisons (also with `paired_in`, the
    finished runs of other folders, by (split, seed)), pre-registered contrasts, collapse and provenance."""
    finished = [r for r in runs if r["final"]]
    groups = grouped(finished)
    cfg = next((r["config"] for r in finished or runs if r["config"]), {})
    defaults = read_study(out).get("script_defaults", {})
    L = accuracy_table(runs, groups, cfg)
    L += not_in_table(runs, paired_in)
    paired_in = [r for r in paired_in if r["final"]]
    for sw in sweeps(finished, defaults):
        L += sweep_table(sw, sw["default"])
    others = grouped(list(paired_in))
    L += paired_section(groups, others, preregistered_pairs(out, {**groups, **others}))
    L += contrasts_section(out, {**groups, **others})
    L += replicate_section(groups, others)
    L += collapse_tables(groups)
    L += trajectory_tables(groups)
    L += provenance(finished, cfg)
    path = Path(out) / "table.md"
    atomic_write(path, "\n".join(L) + "\n")
    return path


def accuracy_table(runs: list[dict], groups: dict[str, list[dict]], cfg: dict) -> list[str]:
    """The title and the table of final accuracies by group, with a note where the groups cover different splits
    and a warning where the finished runs differ in a run-defining setting."""
    dataset, size = cfg.get("DATASET", "unknown dataset"), cfg.get("TRAIN_SIZE", "?")
    published = PUBLISHED.get((str(dataset).lower(), size), {})
    L = [f"# {dataset}-{size}: test accuracy and neural collapse at the end of training", "",
         "Generated by `report.py` from the logs in `runs/` ("
         + ", ".join(f"{sum(run_status(r) == s for r in runs)} {s}" for s in ("finished", "diverged", "failed", "unfinished"))
         + "".join(f", {n} {s}" for s in ("unreadable", "inconsistent") if (n := sum(run_status(r) == s for r in runs)))
         + "). Accuracy in %, final epoch, mean ± std (ddof 1) over splits.", "",
         "| regulariser | splits | test accuracy | published | validation accuracy | train accuracy | "
         "epoch train acc. first 100 % |", "|---|---|---|---|---|---|---|"]
    for label, rs in groups.items():
        pub = None if rs[0]["config"].get("ETF_CLASSIFIER") else published.get(rs[0]["run"]["regularizer"])
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
    finished = [r for r in runs if r["final"]]
    keys = sorted({k for r in finished[1:] for k in setting_differences(finished[0]["config"], r["config"])}
                  - LEGACY_RUN_KEYS)  # a key missing from older configs counts as its default
    if keys:
        L += ["", f"**Warning: these runs differ in {', '.join(keys)}**; they are not paired comparisons."]
    return L


def not_in_table(runs: list[dict], paired_in: list[dict] = ()) -> list[str]:
    """A section naming every run that is not in the tables (diverged, failed, unfinished, unreadable, each once,
    with the epoch reached and its message), also of the folders paired in (a diverged run there removes its split
    from every comparison with its group), and every log line the report skipped."""
    others = [r for r in runs if run_status(r) != "finished"]
    others += [dict(r, name=f"{r['prefix']}: {r['name']}") for r in paired_in if run_status(r) != "finished"]
    skipped = [r for r in runs if r["skipped_lines"]]
    if not others and not skipped:
        return []
    L = ["", "## Runs not in the tables", ""]
    if others:
        L += ["| run | status | epoch reached | message |", "|---|---|---|---|"]
        for r in others:
            record = r["diverged"] or r.get("failed") or {}
            record = record if isinstance(record, dict) else {}
            message = r.get("problem") or (record.get("message") or (record.get("traceback") or "").strip()
                                           .splitlines()[-1:] or ["–"])
            message = message if isinstance(message, str) else message[0]
            L.append(f"| {r['name']} | {run_status(r)} | {epochs_reached(r)} | "
                     f"{message.replace('|', '/').splitlines()[0] if message else '–'} |")
    for r in skipped:
        L += ["", f"Skipped in {r['name']}/log.jsonl: line(s) {', '.join(map(str, r['skipped_lines']))} "
                  "(not a JSON object); the numbers above leave them out."]
    return L


def epochs_reached(r: dict) -> str:
    """`k of EPOCHS`: the last epoch a run logged (0 before its first) of those it was to train."""
    return f"{r['log'][-1].get('epoch', '?') if r['log'] else 0} of {r['config'].get('EPOCHS', '?')}"


def collapse_tables(groups: dict[str, list[dict]]) -> list[str]:
    """Neural collapse at the end of training, on the train and the test set: mean ± std over splits. Tr Σ_W / Tr Σ_B
    stands beside NC1: it is defined for every run, where NC1 needs the class means to span C − 1 dimensions. The
    train table ends with the mean death time of the classes' training codes at the last logged epoch."""
    L = []
    for where in ("train", "test"):
        # the classifier's own geometry does not depend on the data: shown with the train set only
        cols = [COLLAPSE_COLUMNS[0], ("scale_free_variation", "Tr Σ_W / Tr Σ_B")]  # Tr Σ_W alone shrinks with scale
        cols += [(k, h) for k, h in COLLAPSE_COLUMNS[1:] if where == "train" or k not in CLASSIFIER_ONLY]
        cols += [("within_class_variation", "Tr Σ_W"), ("between_class_variation", "Tr Σ_B")]
        deaths = [("death_mean", "mean death time (run metric)")] if where == "train" else []
        L += ["", f"## Neural collapse at the end of training, on the {where} set (mean ± std over splits)", "",
              "| regulariser | " + " | ".join(h for _, h in cols + deaths) + " |",
              "|---|" + "---|" * len(cols + deaths)]
        undefined = []
        for label, rs in groups.items():
            cells = [_fmt([_metric(r["final"][where], k) for r in rs], median=k == "nc1") for k, _ in cols]
            cells += [_fmt([_last_death(r) for r in rs], median=True)] if deaths else []
            L.append(f"| {label} | " + " | ".join(cells) + " |")
            k = sum(not np.isfinite(_metric(r["final"][where], "nc1")) for r in rs)
            undefined += [f"{label}: {k} of {len(rs)} runs"] if k else []
        if undefined:
            L += ["", "NC1 is undefined where the class means span fewer than C − 1 dimensions (Σ_B of rank < C − 1). "
                      "Runs with NC1 undefined: " + "; ".join(undefined) + ". A cell marked 'k of n defined' "
                      "averages only the k runs where that metric was logged (runs trained before every metric was "
                      "logged for rank-deficient class means record none of them there)."]
    return L


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
                    v = np.array([logged_value(lambda l: l[where][key], p[e]) for p in runs])
                    cells.append(f"{np.median(v[np.isfinite(v)]):.3g}" if np.isfinite(v).any() else "undefined")
                L.append(f"| {label} | {where} | " + " | ".join(cells) + " |")
    return L


def _segment_values(r: dict, key: str) -> list[str]:
    """A finished run's provenance `key` in each segment of epochs that one process trained (in order, each value
    once); the one value of final.json for a key that is not kept per segment, or a run from before segments."""
    segments = r["final"].get("segments") if key in PROVENANCE_COMPARED else None
    if not segments:
        return [str(r["final"].get(key, "not recorded"))]
    return list(dict.fromkeys(str(seg.get(key, "not recorded")) for seg in segments))


def _recorded(r: dict, key: str) -> str:
    """A finished run's provenance `key`; for a run resumed elsewhere, its segments' values joined by " then "."""
    return " then ".join(_segment_values(r, key))


def resumed_elsewhere(r: dict) -> bool:
    """Whether a finished run's epochs were trained with other code or on other machines, segment by segment."""
    return any(len(_segment_values(r, k)) > 1 for k in PROVENANCE_COMPARED)


def _runs_with(groups: dict, key: str, value: str) -> str:
    """`label k` for each group with k runs whose provenance `key` reads `value`."""
    counts = {label: sum(_recorded(r, key) == value for r in rs) for label, rs in groups.items()}
    return ", ".join(f"{label} {k}" for label, k in counts.items() if k)


def provenance(finished: list[dict], cfg: dict) -> list[str]:
    """Where and with what the finished runs were computed, and the configuration they share."""
    L = ["", "## Provenance", ""]
    groups = grouped(finished) if finished else {}
    for key in ("commit", "device", "cpu", "cpu_capability", "deterministic", "tf32", "date", "torch", "torchvision",
                "numpy", "scipy", "python"):
        vals = sorted({_recorded(r, key) for r in finished})
        if len(vals) > 1 and key in BY_GROUP:  # which runs carry which value: runs are bit-exact only alike
            L.append(f"- {key}: " + "; ".join(f"{v} ({_runs_with(groups, key, v)})" for v in vals))
        else:
            L.append(f"- {key}: {', '.join(vals)}")
    if elsewhere := [r["name"] for r in finished if resumed_elsewhere(r)]:
        L.append("- **resumed with other code or on another machine than their earlier epochs** (not bit-exact with "
                 f"a run trained in one go; final.json lists the segments): {', '.join(elsewhere)}")
    dirty = dirty_counts(groups)
    L.append(f"- trained from a dirty tree (a `{DIRTY}` commit: uncommitted code, which no checkout gives back): "
             f"{'; '.join(dirty) if dirty else 'none'}")
    L.append(f"- seeds (torch.manual_seed and batch generator, per split): "
             f"{', '.join(sorted({str(r['seed']) for r in finished}, key=int))}")
    L.append(f"- data: {sorted({r['data_source'] for r in finished})}")
    digests = sorted({json.dumps(r.get("data_files", "not recorded"), sort_keys=True) for r in finished})
    L.append(f"- data files (MD5, and whether they were checked against the genuine ones): {'; '.join(digests)}")
    L += ["", "Configuration shared by the runs:", "", "```", json.dumps(cfg, indent=1), "```"]
    return L


# ------------------------------------------------------------------------------------------------ sweeps
def sweeps(finished: list[dict], defaults: dict | None = None) -> list[dict]:
    """Every sweep among the finished runs: one regulariser and learning rate, one parameter (β, β0 or λ) taking
    several values while the others stay fixed, on the splits where every value finished (so that means compare
    like with like), or a full grid of two (`_grid`). Each: dict(reg, lr, param, values, fixed, splits,
    test[value, split], val[value, split] or None, default: the value to beat from study.json's `defaults`)."""
    out = []
    by_reg = defaultdict(list)
    for r in finished:
        by_reg[r["run"]["regularizer"], r["run"]["lr"]].append((run_settings(r["run"], r["config"]), r))
    for (reg, lr), items in sorted(by_reg.items()):
        if grid := _grid(reg, lr, items):
            out.append(grid)
            continue
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
                                fixed={k: f for k, f in zip(rest, fixed) if f is not None},
                                val=None if any(a is None for row in val for a in row) else np.array(val)))
    return [dict(sw, default=script_default(defaults or {}, sw["param"])) for sw in out]


def _grid(reg: str, lr: float, items: list[tuple[dict, dict]]) -> dict | None:
    """The runs of one regulariser and learning rate as one sweep over the settings of a full grid, where two
    parameters vary and every pair of their values was run (e.g. β0 ∈ {1.1, 2} × λ ∈ {0.03, 0.1}): `param` is the
    pair of names, `values` the settings as tuples (row-major), `axes` the values of each, on the splits every setting
    finished. None where the settings are not a full grid (one parameter at a time, or an L of one-parameter sweeps:
    `sweeps` reads those one parameter at a time)."""
    params = tuple(p for p in SWEPT if len({s[p] for s, _ in items}) > 1)
    if len(params) != 2:
        return None
    axes = [sorted({s[p] for s, _ in items}) for p in params]
    values = [(x, y) for x in axes[0] for y in axes[1]]
    runs = {(tuple(s[p] for p in params), r["run"]["split"]): r for s, r in items}
    if {v for v, _ in runs} != set(values):
        return None
    splits = sorted(sp for sp in {sp for _, sp in runs} if all((v, sp) in runs for v in values))
    if not splits:
        return None
    test = np.array([[runs[v, sp]["final"]["test_acc"] for sp in splits] for v in values])
    val = [[final_val_acc(runs[v, sp]) for sp in splits] for v in values]
    return dict(reg=reg, lr=lr, param=params, values=values, axes=axes, splits=splits, test=test, fixed={},
                val=None if any(a is None for row in val for a in row) else np.array(val))


def is_held_out(splits) -> bool:
    """Whether a comparison uses only held-out splits, where picking the best value is legitimate."""
    return all(sp in HELD_OUT_SPLITS for sp in splits)


def script_default(defaults: dict, param: str | tuple):
    """The entry script's default for a swept parameter (the value a sweep has to beat), from study.json's
    script_defaults, or for a grid's pair of parameters the pair of their defaults; None where not recorded (then the
    best mean is the choice)."""
    if isinstance(param, tuple):
        pair = tuple(script_default(defaults, p) for p in param)
        return None if None in pair else pair
    values = defaults.get(DEFAULT_OF[param]) or [None]
    return values[0]


def sweep_table(sw: dict, default=None) -> list[str]:
    """A sweep's accuracies value by value and split by split; on held-out splits, also the held-out choice
    (`stats.choose` against `default`), else why there is none. A grid (`_grid`) is `grid_table`."""
    if isinstance(sw["param"], tuple):
        return grid_table(sw, default)
    sym, held_out = SWEPT[sw["param"]], is_held_out(sw["splits"])
    fixed = ", ".join(f"{SWEPT[k]}={v:g}" for k, v in sw["fixed"].items())
    by = "validation" if sw["val"] is not None else "test"
    L = ["", f"## {sw['reg']}'s {sym} {'sweep' if held_out else 'values'}"
             f"{f' ({fixed})' if fixed else ''}: final accuracy (%) on the {len(sw['splits'])} splits every "
             f"{sym} finished", "",
         f"| {sym} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"]) + " | test mean ± std | "
         "validation mean ± std |", "|---|" + "---|" * (len(sw["splits"]) + 2)]
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    choice, why = choose(sw["values"], acc, default)
    return L + _value_rows(sw, choice if held_out else None) + _choice_note(
        held_out, by, f"{sym} = {choice:g} ({why})", f"{sym} is chosen", "row")


def _value_rows(sw: dict, choice) -> list[str]:
    """One row per value (or setting) of a sweep: its test accuracy split by split, test and validation mean ± std,
    the held-out `choice` marked (None: none)."""
    val = sw["val"] if sw["val"] is not None else [None] * len(sw["values"])
    return [f"| {setting_text(v)}{' (held-out choice)' if v == choice else ''} | "
            + " | ".join(f"{100 * a:.2f}" for a in row) + f" | {mean_std(100 * row)} | "
            f"{mean_std(100 * vrow) if vrow is not None else '–'} |" for v, row, vrow in zip(sw["values"], sw["test"], val)]


def _choice_note(held_out: bool, by: str, chosen: str, what: str, unit: str) -> list[str]:
    """The sentence below a sweep: its held-out choice (`chosen`: what, and why), or why a sweep on reported splits
    has none."""
    if held_out:
        return ["", f"Held-out choice by {by} accuracy: {chosen}."
                + ("" if by == "validation" else " These runs log no validation accuracy, so the choice uses the "
                                                 "test images: kept for the record, not for new choices.")]
    return ["", f"These include reported splits (0–9): {what} on the held-out splits 10–19, not here "
                f"(picking the best {unit} would select on the very splits being reported)."]


def grid_table(sw: dict, default=None) -> list[str]:
    """A grid of two parameters read as one sweep over its settings: the validation mean of each setting (rows: the
    first parameter, columns: the second) with its paired difference from the default setting and that difference's
    SE, then each setting's accuracies split by split; on held-out splits, one held-out choice for the whole grid
    (`stats.choose` over the settings against the default pair), else why there is none."""
    (p, q), (rows, cols) = sw["param"], sw["axes"]
    syms, held_out = (SWEPT[p], SWEPT[q]), is_held_out(sw["splits"])
    by = "validation" if sw["val"] is not None else "test"
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    choice, why = choose(sw["values"], acc, default)
    n = len(sw["splits"])
    pair = f"({syms[0]}, {syms[1]})"
    base = sw["values"].index(default) if default in sw["values"] else None

    def cell(v) -> str:
        i = sw["values"].index(v)
        text = mean_std(100 * acc[i])
        if base is not None and i != base and n > 1:
            d = 100 * (acc[i] - acc[base])
            text += f" ({d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(n):.2f})"
        text += " (default)" if i == base else ""
        return text + (" **(held-out choice)**" if held_out and v == choice else "")

    L = ["", f"## {sw['reg']}'s {pair} {'grid' if held_out else 'values'}: {len(sw['values'])} settings on the "
             f"{n} splits every setting finished", "",
         f"{by.capitalize()} accuracy (%), mean ± std over splits {', '.join(map(str, sw['splits']))}"
         + (f"; in brackets, the paired difference from the default ({setting_text(default)}) ± its paired standard "
            "error (points)" if base is not None and n > 1 else "") + ".", "",
         f"| {syms[0]} \\ {syms[1]} | " + " | ".join(f"{c:g}" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    L += [f"| {r:g} | " + " | ".join(cell((r, c)) for c in cols) + " |" for r in rows]
    L += ["", f"| {syms[0]}, {syms[1]} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"])
          + " | test mean ± std | validation mean ± std |", "|---|" + "---|" * (n + 2)]
    return L + _value_rows(sw, choice if held_out else None) + _choice_note(
        held_out, by, f"one for the grid, {pair} = ({setting_text(choice)}) ({why})", f"{pair} is chosen", "setting")


# ------------------------------------------------------------------------------------------------ comparisons
# The one verdict rule of every table: a comparison belongs to a family, its p-values are Holm-corrected over that
# family and its verdict reads the family's Bonferroni CI (`stats.judge`). A pre-registered contrast's family is its
# contrasts.json, wherever the comparison appears; any other comparison's family is the other comparisons of its table.
def family(results: list, m: int | None = None) -> tuple[float, list[float], list[float]]:
    """The Bonferroni level at which each comparison of a family is read, and its t-test and Wilcoxon p-values
    Holm-corrected, for `results` (`stats.paired_tests` tuples, or None for a comparison not made yet); the family
    counts the comparisons with at least 2 pairs, or is the `m` comparisons named in advance (a pre-registered family
    keeps its size while some of its comparisons wait for their runs)."""
    tested = sum(1 for r in results if r and r[0] >= 2) if m is None else m
    t_adj = holm([r[3] if r else np.nan for r in results], m=tested)
    w_adj = holm([r[4] if r else np.nan for r in results], m=tested)
    return family_level(tested), t_adj, w_adj


def is_dirty(r: dict) -> bool:
    """Whether a finished run was trained from a dirty tree: code not committed at the time (`+dirty` commit)."""
    return str(r["final"].get("commit", "")).endswith(DIRTY)


def dirty_counts(groups: dict) -> list[str]:
    """`label: k of n runs` for each group with runs trained from a dirty tree."""
    return [f"{label}: {k} of {len(rs)} runs" for label, rs in groups.items() if (k := sum(map(is_dirty, rs)))]


def _dirty_mark(ra: list[dict], rb: list[dict]) -> str:
    """DIRTY_MARK where a pair of the two groups holds a run trained from a dirty tree."""
    by_key = {pair_key(r): r for r in rb}
    return DIRTY_MARK if any(is_dirty(r) or is_dirty(by_key[pair_key(r)]) for r in ra if pair_key(r) in by_key) else ""


def dirty_note(groups: dict) -> list[str]:
    """The note below a table whose rows carry DIRTY_MARK: how many runs of each group it marks."""
    counts = dirty_counts(groups)
    return ["", f"{DIRTY_MARK.strip()} pairs that hold a run trained from a dirty tree (uncommitted code: a `{DIRTY}` "
                "commit in final.json): " + "; ".join(counts) + "."] if counts else []


def paired_section(groups: dict, others: dict, preregistered: dict | None = None) -> list[str]:
    """Paired comparisons: every two groups of this folder, then each group of this folder against each group
    paired in from other folders; each with its 95 % CI, Holm-corrected p and verdict (`family`: over this table's
    comparisons, or for a pre-registered contrast, `preregistered[(a, b)]`, its own family's), and the settings in
    which the paired runs differ."""
    every = {**groups, **others}
    accs = {k: {pair_key(r): r["final"]["test_acc"] for r in v} for k, v in every.items()}
    keys = list(groups)
    rows = [(a, b) for i, a in enumerate(keys) for b in keys[:i]] + [(a, b) for a in keys for b in others]
    results = {(a, b): paired_tests(accs[a], accs[b]) for a, b in rows}
    rows = [(a, b) for a, b in rows if results[a, b][0]]
    pre = {row: _preregistered(preregistered or {}, *row) for row in rows}
    own = [row for row in rows if pre[row] is None]
    level, t_adj, _ = family([results[row] for row in own])
    k = sum(results[r][0] >= 2 for r in own)
    L = ["", "## Paired comparisons (same split and seed ⇒ same images, initialisation and batches)", "",
         f"Paired t-test p Holm-corrected over the {_count(k, 'comparison')} of this table that "
         f"{'was' if k == 1 else 'were'} not pre-registered, each verdict read on the Bonferroni "
         f"{level_text(level)} CI of that family (a pre-registered contrast: its own family's p and CI, as in its "
         "section).", "",
         "| A − B | pairs | mean difference (% points) | 95 % CI | std | A better on | paired t-test p (Holm) | "
         "Wilcoxon signed-rank p | verdict | runs also differ in |", "|---|---|---|---|---|---|---|---|---|---|"]
    holm_of = dict(zip(own, t_adj))
    marked = {}
    for a, b in rows:
        n, m, s, tp, wp = results[a, b]
        row_level, ta = pre[a, b] or (level, holm_of[a, b])
        lo, hi = ci95(n, m, s)
        wins = sum(accs[a][k] > accs[b][k] for k in set(accs[a]) & set(accs[b]))
        ci = f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "–"
        mark = _dirty_mark(every[a], every[b])
        marked.update({g: every[g] for g in (a, b)} if mark else {})
        L.append(f"| {a} − {b}{mark} | {n} | {m:+.2f} | {ci} | {s:.2f} | {wins} of {n} | {tp:.3g} ({ta:.3g}) | "
                 f"{wp:.3g} | {judge(n, m, s, row_level)[2]} | {_differs_in(every[a], every[b])} |")
    return L + dirty_note(marked)


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _preregistered(preregistered: dict, a, b):
    """(level, Holm-corrected t-test p) of the comparison a − b where it is a pre-registered contrast (either way
    round), else None."""
    return preregistered.get((a, b)) or preregistered.get((b, a))


def contrast_metric(name: str) -> dict:
    """What a contrast scores: `test_acc` (final test accuracy, in % points, with the ±NO_DIFFERENCE margin), or
    `<train|test>:<collapse metric>` (its value at the last epoch; lower is nearer collapse, no margin was set)."""
    if name == "test_acc":
        return dict(label="test accuracy (% points)", unit=100, margin=NO_DIFFERENCE, lower_is_better=False,
                    get=lambda r: r["final"]["test_acc"])
    where, _, key = name.partition(":")
    if where not in ("train", "test") or not key:
        raise ValueError(f"{CONTRASTS_FILE}: unknown metric {name!r}; use test_acc or train:<collapse metric> "
                         "(e.g. train:etf_distance_means)")
    # every collapse metric is 0 at neural collapse, but for Tr Σ_B, which grows with the separation of the classes
    return dict(label=f"{key} ({where}, last epoch)", unit=1, margin=None,
                lower_is_better=key != "between_class_variation",
                get=lambda r: r["final"][where].get(key))


def _contrast_rows(spec: dict, groups: dict) -> list[tuple]:
    """(contrast, its metric, missing sides, paired_tests or None, pairs left out) for each contrast of a
    contrasts.json; a pair is left out where either run has no value of the metric (undefined, or not recorded)."""
    rows = []
    for c in spec["contrasts"]:
        a, b = _resolve(c["a"], groups), _resolve(c["b"], groups)
        missing = [g for g, label in ((c["a"], a), (c["b"], b)) if label is None]
        metric = contrast_metric(c.get("metric", "test_acc"))
        res, left_out = None, 0
        if not missing:
            values = [{pair_key(r): v for r in groups[g] if isinstance(v := metric["get"](r), (int, float))}
                      for g in (a, b)]
            res = paired_tests(*values, unit=metric["unit"])
            shared = set.intersection(*({pair_key(r) for r in groups[g]} for g in (a, b)))
            left_out = len(shared) - res[0]
        rows.append((dict(c, a=a or c["a"], b=b or c["b"]), metric, missing, res, left_out))
    return rows


def read_contrasts(path: Path) -> dict:
    """A contrasts.json: {"note", "contrasts": [{"name", "a", "b", "metric"?}, ...]}, every field a string; one
    ReportError naming the expected form otherwise."""
    try:
        spec = json.loads(Path(path).read_text())
        if not isinstance(spec, dict) or not isinstance(spec.get("contrasts"), list) or not all(
                isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("name", "a", "b"))
                and isinstance(c.get("metric", ""), str) for c in spec["contrasts"]):
            raise TypeError("each contrast needs a name, a and b, as strings")
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
        raise ReportError(f"{path} cannot be read as contrasts ({type(e).__name__}: {e}): expected "
                          '{"note": ..., "contrasts": [{"name", "a", "b", "metric"?}, ...]}; fix it, or move it away '
                          "to report the folder without its contrasts") from None
    return spec


def contrast_family(out: Path, groups: dict):
    """OUT/contrasts.json's contrasts resolved among `groups`, as (spec, rows of `_contrast_rows`, level, Holm t,
    Holm Wilcoxon) (`family`); None where the folder names none."""
    path = Path(out) / CONTRASTS_FILE
    if not path.exists():
        return None
    spec = read_contrasts(path)
    try:
        rows = _contrast_rows(spec, groups)
    except ValueError as e:  # an unknown metric
        raise ReportError(f"{path}: {e}") from None
    return (spec, rows, *family([r[3] for r in rows], m=len(rows)))  # the family named in advance, run or not


def preregistered_pairs(out: Path, groups: dict) -> dict:
    """{(a, b): (level, Holm-corrected t-test p)} of the test-accuracy contrasts that OUT/contrasts.json names and
    that have pairs among `groups`: the family other tables read such a comparison in."""
    fam = contrast_family(out, groups)
    if fam is None:
        return {}
    _, rows, level, t_adj, _ = fam
    return {(c["a"], c["b"]): (level, ta) for (c, metric, missing, res, _), ta in zip(rows, t_adj)
            if not missing and res[0] and metric["unit"] == 100}


def contrasts_section(out: Path, groups: dict) -> list[str]:
    """The contrasts named in OUT/contrasts.json before the runs finished, each a paired difference A − B with its
    95 % CI, t-test and Wilcoxon p, both Holm-corrected over the contrasts, and what the CI lets one say. A side may
    be a group of a folder paired in; a contrast scores test accuracy unless it names another `metric`."""
    fam = contrast_family(out, groups)
    if fam is None:
        return []
    spec, rows, level, t_adj, w_adj = fam
    tested = len(rows)  # the family named in advance (`contrast_family`)
    scored = any("metric" in c and c["metric"] != "test_acc" for c in spec["contrasts"])
    L = ["", f"## Pre-registered contrasts ({CONTRASTS_FILE}, named before the runs finished)", "",
         spec.get("note", ""), "",
         f"p-values corrected by Holm over the {tested} pre-registered contrasts; each verdict reads the Bonferroni "
         f"{level_text(level)} CI (95 % for the family): 'no difference' only when it lies within "
         f"±{NO_DIFFERENCE:g} points" + (" (accuracy only; a collapse metric has no such margin, and lower is "
                                        "better)" if scored else "") + ", else 'not detected' with the effects it "
         "still allows.", "",
         "| contrast | A − B | " + ("metric | " if scored else "") + "pairs | mean difference" +
         ("" if scored else " (% points)") + " | 95 % CI | t-test p (Holm) | Wilcoxon p (Holm) | "
         f"{level_text(level)} CI | verdict | runs also differ in |",
         "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scored else "")]
    marked = {}
    for (c, metric, missing, res, left_out), ta, wa in zip(rows, t_adj, w_adj):
        mark = "" if missing else _dirty_mark(groups[c["a"]], groups[c["b"]])
        marked.update({g: groups[g] for g in (c["a"], c["b"])} if mark else {})
        head = f"| {c['name']} | {c['a']} − {c['b']}{mark} | " + (f"{metric['label']} | " if scored else "")
        differs = "–" if missing else _differs_in(groups[c["a"]], groups[c["b"]])
        if missing or not res[0]:
            why = _unresolved(missing, groups) if missing else (
                f"no pair with a value of {metric['label']}" if left_out else "not yet: no shared split")
            L.append(head + f"0 | – | – | – | – | – | {why} | {differs} |")
            continue
        n, m, s, tp, wp = res
        digits = 2 if metric["unit"] == 100 else 3
        lo, hi = ci95(n, m, s)
        blo, bhi, says = judge(n, m, s, level, metric["margin"], metric["lower_is_better"], digits)
        ci, bci = [f"[{x:+.{digits}f}, {y:+.{digits}f}]" if np.isfinite(x) else "–" for x, y in ((lo, hi), (blo, bhi))]
        pairs = f"{n} ({left_out} left out: no value)" if left_out else f"{n}"
        L.append(head + f"{pairs} | {m:+.{digits}f} | {ci} | {tp:.3g} ({ta:.3g}) | {wp:.3g} ({wa:.3g}) | {bci} | "
                 f"{says} | {differs} |")
    return L + dirty_note(marked)


# ------------------------------------------------------------------------------------------------ replicates
def _by_split(rs: list[dict]) -> dict[int, tuple[int, float]]:
    return {r["run"]["split"]: (r["seed"], r["final"]["test_acc"]) for r in rs}


def _replicated(mine: dict, other: dict, *labels) -> list[int]:
    """The splits that every group of `labels` has in both folders, under another seed in the other one."""
    return sorted(s for s in set.intersection(*(set(mine[l]) & set(other[l]) for l in labels))
                  if mine[labels[0]][s][0] != other[labels[0]][s][0])


def replicate_section(groups: dict, others: dict) -> list[str]:
    """The noise floor: where a folder paired in holds the same regularisers on the same splits with another seed
    (other initialisation and batches, same images), each paired difference A − B of this folder against the same
    difference there, split by split: how much of the spread across splits is the seed's."""
    mine = {k: _by_split(v) for k, v in groups.items()}
    theirs = defaultdict(dict)
    for label, rs in others.items():
        prefix, _, bare = label.rpartition(": ")
        theirs[prefix][bare] = _by_split(rs)
    L = []
    for prefix, other in theirs.items():
        L += _replicated_differences(prefix, mine, other, header=not L)
        L += _replicated_accuracies(prefix, mine, other)
    return L


def _replicated_differences(prefix: str, mine: dict, other: dict, header: bool) -> list[str]:
    """Rows of each paired difference A − B under both seeds (`stats.seed_floor`), below the section's title and
    explanation where `header`."""
    labels = [k for k in mine if k in other]
    L = []
    for i, a in enumerate(labels):
        for b in labels[:i]:
            splits = _replicated(mine, other, a, b)
            if len(splits) < 2:
                continue
            d0 = np.array([100 * (other[a][s][1] - other[b][s][1]) for s in splits])
            d1 = np.array([100 * (mine[a][s][1] - mine[b][s][1]) for s in splits])
            f = seed_floor(d0, d1)
            if header and not L:
                L += ["", "## Replicate with another seed: the noise floor", "",
                      "Each row: a paired difference A − B (test accuracy, % points) in this folder and in the "
                      "folder paired in, whose runs have the same images but another seed (initialisation and "
                      "batches). Seed spread = std over splits of (d_this − d_other)/√2, the spread one "
                      "difference has from the seed alone; std of the means' difference = std over splits of "
                      "(d_this − d_other)/√n, how far an n-split mean difference moves under another seed; "
                      "split spread = std over splits of the two seeds' mean; smallest detectable = the mean "
                      "difference that a paired t-test on n splits finds with 80 % power at p < 0.05, from the "
                      "std of single-seed differences.", "",
                      "| A − B | other folder | splits | mean (this seed) | mean (other seed) | mean of both, "
                      "95 % CI | seed spread | std of the means' difference | split spread | std of single-seed "
                      "differences | smallest detectable on n splits |", "|" + "---|" * 11]
            L.append(f"| {a} − {b} | {prefix} | {len(splits)} | {d1.mean():+.2f} | {d0.mean():+.2f} | "
                     f"{f['mean']:+.2f} [{f['lo']:+.2f}, {f['hi']:+.2f}] | {f['seed_sd']:.2f} | {f['se']:.2f} | "
                     f"{f['split_sd']:.2f} | {f['sd']:.2f} | {f['mde']:.2f} |")
    return L


def _replicated_accuracies(prefix: str, mine: dict, other: dict) -> list[str]:
    """One regulariser's accuracy under both seeds (`stats.seed_shift`): what a retrained run (other seed or CPU)
    should expect."""
    rows = []
    for a in [k for k in mine if k in other]:
        splits = _replicated(mine, other, a)
        if len(splits) < 2:
            continue
        a0 = np.array([100 * other[a][s][1] for s in splits])
        a1 = np.array([100 * mine[a][s][1] for s in splits])
        f = seed_shift(a0, a1)
        rows.append(f"| {a} | {prefix} | {len(splits)} | {a1.mean():.2f} | {a0.mean():.2f} | {f['mean']:+.2f} "
                    f"[{f['lo']:+.2f}, {f['hi']:+.2f}] | {f['seed_sd']:.2f} | {f['se']:.2f} |")
    if not rows:
        return []
    return ["", "One regulariser's test accuracy (%) under the two seeds, split by split: seed spread of one "
            "run = std over splits of (this − other)/√2, how far a single run moves from the seed alone; "
            "the last column is the std of the difference of two n-split means with different seeds.", "",
            "| regulariser | other folder | splits | mean (this seed) | mean (other seed) | this − other, "
            "95 % CI | seed spread of one run | std of the difference of the means |",
            "|---|---|---|---|---|---|---|---|", *rows]


# ------------------------------------------------------------------------------------------------ --SUMMARY
def write_summary(spec_path: Path) -> Path:
    """<spec>.md beside a JSON spec {"title", "note", "rows": [{"setting", "a", "b"}, ...]}: one paired comparison
    A − B per row, across results folders. A side is "<folder>: <group>", the folder relative to the spec's own
    folder, the group a label of that folder's table (or a regulariser's name standing for its one group). Each
    row: both sides' test accuracy on the splits they share, the paired difference with its 95 % CI, the Holm-corrected
    p and the verdict (`family`: a row that a folder's contrasts.json pre-registered is read in that family, as in the
    folder's table.md; the other rows form the summary's family), and the settings in which the paired runs differ."""
    spec_path = Path(spec_path)
    spec = json.loads(spec_path.read_text())
    rows = _summary_rows(spec_path, spec)
    folders = {}

    def groups_of(path: Path) -> dict:
        return folder_groups(path, folders)

    sides = [(summary_side(spec_path, row["a"], folders), summary_side(spec_path, row["b"], folders)) for row in rows]
    results = [paired_tests(*({pair_key(r): r["final"]["test_acc"] for r in s[2]} for s in pair)) if all(pair)
               else None for pair in sides]
    pre = {}  # (side key, side key) → (level, Holm p, contrasts file) of the rows some folder pre-registered
    for folder in sorted({row[k].partition(": ")[0] for row in rows for k in "ab"}):
        path = spec_path.parent / folder
        pre.update({k: (*v, f"{path.name}/{CONTRASTS_FILE}") for k, v in _preregistered_in(path, groups_of).items()})
    fam = [_preregistered(pre, *((x[0], x[1]) for x in pair)) if all(pair) else None for pair in sides]
    own = [i for i, f in enumerate(fam) if f is None]
    level, t_adj, _ = family([results[i] for i in own])
    judged = {**{i: f[:2] for i, f in enumerate(fam) if f}, **{i: (level, t) for i, t in zip(own, t_adj)}}
    L = [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), "",
         f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of the folders named below "
         "(each folder's `table.md` has its runs' configuration and provenance). Test accuracy in %, final epoch, "
         "mean ± std (ddof 1) over the splits both sides share; A − B paired by split and seed, with its 95 % CI "
         "(Student's t). The paired t-test p is Holm-corrected over the "
         f"{_count(sum(bool(results[i]) and results[i][0] >= 2 for i in own), 'row')} that no folder pre-registered, "
         f"and each of their verdicts reads the Bonferroni {level_text(level)} CI of that family; a pre-registered row "
         "is read in its own family, as in its folder's table.md. 'No difference' only when that CI lies within "
         f"±{NO_DIFFERENCE:g} points, else 'not detected' with the effects it still allows.", "",
         "| setting | A | B | splits | A: test accuracy | B: test accuracy | A − B (% points) | 95 % CI | "
         "t-test p (Holm) | verdict | runs also differ in |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    used, marked = [], {}
    for i, (row, pair) in enumerate(zip(rows, sides)):
        mark = _dirty_mark(pair[0][2], pair[1][2]) if all(pair) else ""
        why = _unresolved([summary_key(spec_path, row[k]) for k, x in zip("ab", pair) if x is None],
                          {label: rs for path in folders for label, rs in folders[path].items()})
        line, shared_runs = _summary_row(row, pair, results[i], judged.get(i), mark, why)
        L.append(line)
        used += shared_runs
        marked.update({row[k]: x[2] for k, x in zip("ab", pair)} if mark else {})
    if any(fam):
        L += ["", "Rows read in a pre-registered family: "
              + "; ".join(f"{row['setting']} ({f[2]})" for row, f in zip(rows, fam) if f) + "."]
    L += dirty_note(marked)
    if used:
        seen = {key: sorted({str(r["final"].get(key, "not recorded"))[:10 if key == "date" else None] for r in used})
                for key in ("commit", "cpu", "device", "date")}
        L += ["", "Runs used: " + "; ".join(f"{key} {', '.join(v)}" for key, v in seen.items()) + "."]
    path = spec_path.with_suffix(".md")
    atomic_write(path, "\n".join(L) + "\n")
    return path


def folder_groups(path: Path, cache: dict) -> dict:
    """The finished groups of a results folder, labelled with its name as prefix (loaded once into `cache`)."""
    path = Path(path).resolve()
    if path not in cache:
        runs = load_runs(path, prefix=path.name) if (path / "runs").is_dir() else []
        cache[path] = grouped([r for r in runs if r["final"]])
    return cache[path]


def summary_key(spec_path: Path, text: str) -> str:
    """A summary's side "<folder>: <group>" as the labels of `folder_groups` read: prefixed by the folder's name."""
    folder, _, label = text.partition(": ")
    return f"{Path(folder).name}: {label}"


def summary_side(spec_path: Path, text: str, cache: dict):
    """A summary's side "<folder>: <group>" (the folder relative to the spec's): (folder name, group label, its
    runs), or None where the folder has no such finished group (or several)."""
    groups = folder_groups(Path(spec_path).parent / text.partition(": ")[0], cache)
    found = _resolve(summary_key(spec_path, text), groups)
    return (Path(text.partition(": ")[0]).name, found.rpartition(": ")[2], groups[found]) if found else None


# ------------------------------------------------------------------------------------------------ size curve
def size_curve(spec_path: Path, spec: dict) -> tuple[dict, dict, dict]:
    """({curve: {training size: its finished runs}}, {curve: {training size: its other runs}}, {folder: its runs
    whose config.json cannot be read}) of a size-curve spec {"size_curve": {curve: {size: "<folder>: <group>"}},
    "gaps": [[A, B], ...]}, a curve named as the table shows it (usually its regulariser); a size whose folder holds
    no run of the group yet has none. SystemExit naming the expected form where the spec is not of it, and where a
    side names no regulariser, several groups, or a folder trained at another TRAIN_SIZE."""
    curve, gaps = spec.get("size_curve"), spec.get("gaps", [])
    if not (isinstance(curve, dict) and curve and all(
            isinstance(v, dict) and all(isinstance(s, str) and ": " in s for s in v.values())
            and all(str(k).isdigit() and int(k) > 0 for k in v) and len({int(k) for k in v}) == len(v)
            for v in curve.values())
            and isinstance(gaps, list) and all(isinstance(g, list) and len(g) == 2 and set(g) <= set(curve)
                                               for g in gaps)):
        raise SystemExit(f"{spec_path}: expected {{\"size_curve\": {{\"<curve>\": {{\"<size>\": "
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


def _size_side(spec_path: Path, where: str, size: int, text: str, folders: dict) -> tuple[list, list]:
    """The finished runs of the group a size-curve side "<folder>: <group>" names, and its runs that did not finish
    (unfinished, diverged, failed, unreadable); the folder's runs loaded once into `folders`. The group is found among
    the finished groups, else among those with no finished run yet. SystemExit as `size_curve` says."""
    path = (Path(spec_path).parent / text.partition(": ")[0]).absolute()  # not resolved: its name labels the runs
    if path not in folders:
        runs = load_runs(path, prefix=path.name) if (path / "runs").is_dir() else []
        try:
            settings = read_settings(path)
        except ReportError as e:
            raise SystemExit(f"{spec_path}: {where}: {e}") from None
        folders[path] = dict(runs=runs, settings=settings, finished=grouped([r for r in runs if r["final"]]),
                             started=grouped([r for r in runs if r["run"] and not r["final"]]))
    f, label = folders[path], text.partition(": ")[2]
    if label.split(" ")[0] not in SCHEDULES:
        raise SystemExit(f"{spec_path}: {where} names {text!r}, but {label.split(' ')[0]!r} is no regulariser "
                         f"({', '.join(SCHEDULES)}): correct the spec")
    key = summary_key(spec_path, text)
    found, groups = _matches(key, f["finished"]), f["finished"]
    if not found:
        found, groups = _matches(key, f["started"]), f["started"]
    if len(found) > 1:
        raise SystemExit(f"{spec_path}: {where} names {text!r}, but that matches {len(found)} groups "
                         f"({', '.join(found)}): name one by its label")
    runs = groups[found[0]] if found else []
    if groups is f["finished"]:  # and the runs of the same settings that did not finish
        same = {group_label(r, True) for r in runs}
        done, rest = runs, [r for r in f["runs"] if r["run"] and not r["final"] and group_label(r, True) in same]
    else:
        done, rest = [], runs
    recorded = {f"{r['name']}/config.json": r["config"].get("TRAIN_SIZE") for r in done + rest}
    recorded.update({SETTINGS_FILE: f["settings"]["TRAIN_SIZE"]} if "TRAIN_SIZE" in f["settings"] else {})
    if wrong := {k: v for k, v in recorded.items() if v != size}:
        raise SystemExit(f"{spec_path}: {where} names {text!r}, but {path.name} holds another TRAIN_SIZE ("
                         + ", ".join(f"{k}: {v}" for k, v in sorted(wrong.items())[:3])
                         + (", ..." if len(wrong) > 3 else "") + f"): name a folder trained at {size}")
    return done, rest


def mean_over_run(r: dict, key: str):
    """The mean over a run's logged epochs of `key` (None where the run's log has none)."""
    v = [l[key] for l in r["log"] if isinstance(l.get(key), (int, float))]
    return float(np.mean(v)) if v else None


def _size_curve_cells(runs: list[dict]) -> list[str]:
    """The runs (their splits), test accuracy, first fitted epoch, zero-length edges and the final collapse of one
    regulariser at one size."""
    acc = [100 * r["final"]["test_acc"] for r in runs]
    tpt = [r["final"]["tpt_epoch"] for r in runs if r["final"].get("tpt_epoch") is not None]
    zero = [z for r in runs if (z := mean_over_run(r, "zero_edges")) is not None]
    fitted = mean_std(tpt) + (f" ({len(tpt)} of {len(runs)} runs; the others never)" if len(tpt) < len(runs) else "")
    sampling = sampled_duplicate_edges(runs)
    return [f"{len(runs)} ({_span(r['run']['split'] for r in runs)})", mean_std(acc), fitted if tpt else "never",
            (f"{np.mean(zero):.3f} ({len(zero)} run{'s' * (len(zero) != 1)})" if zero else "not logged")
            + (f"; sampling {sampling:.3f}" if sampling is not None else ""),
            _fmt([_metric(r["final"]["train"], "scale_free_variation") for r in runs]),
            _fmt([_metric(r["final"]["train"], "etf_distance_means") for r in runs])]


def sampled_duplicate_edges(runs: list[dict]):
    """What the group sampling alone predicts for the fraction of zero-length tree edges of runs at one size
    (`stats.expected_duplicate_edges` with TRAIN_SIZE / 10 images per class: MNIST and SVHN have 10 classes); None
    where the runs augment their images (a copy is then no longer the same image) or differ in size or group size."""
    shapes = {(r["config"].get("TRAIN_SIZE"), r["config"].get("SAMPLES_PER_GROUP"), r["config"].get("AUGMENT", False))
              for r in runs}
    if len(shapes) != 1 or None in (shape := shapes.pop()) or shape[2]:
        return None
    return expected_duplicate_edges(shape[0] / 10, shape[1])


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
    acc_a, acc_b = ({pair_key(r): r["final"]["test_acc"] for r in rs} for rs in (a, b))
    n, m, s = paired_tests(acc_a, acc_b)[:3]
    if not n:
        return "–"
    lo, hi = ci95(n, m, s)
    wins = sum(acc_a[k] > acc_b[k] for k in set(acc_a) & set(acc_b))
    return f"{m:+.2f} " + (f"[{lo:+.2f}, {hi:+.2f}] " if np.isfinite(lo) else "") + f"({wins} of {n})"


def _size_curve_notes(curve: dict, others: dict, unreadable: dict, gaps: list, sizes: list) -> list[str]:
    """What a size-curve table needs beside it: the runs left out (unfinished, diverged, failed, unreadable), the
    settings in which a curve's runs differ between sizes, the paired runs that differ in more than the regulariser,
    and where each size's runs trained."""
    left = [f"- {size}, {name}: " + ", ".join(f"split {r['run']['split']} {run_status(r)} (epoch {epochs_reached(r)})"
                                              for r in rs)
            for name, by_size in others.items() for size, rs in by_size.items() if rs]
    left += [f"- {folder}: {r['name']} unreadable ({r['problem']})" for folder, rs in unreadable.items() for r in rs]
    L = ["", "Runs not in the table (a partial size: its accuracy columns average different splits, while each gap "
             "pairs only the splits both sides finished):", "", *left] if left else []
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
    if across:
        L += ["", "Settings in which a curve's runs differ between sizes (from its first size's):", "", *across]
    differ = [f"- {size}, {a} − {b}: {d}" for size in sizes for a, b in gaps
              if (d := _differs_in(curve[a].get(size, []), curve[b].get(size, []))) != "–"]
    if differ:
        L += ["", "Paired runs that differ in more than the regulariser (A→B; settings, then where they trained):",
              "", *differ]
    where = [f"- {size}: " + "; ".join(f"{k} " + " / ".join(sorted({_recorded(r, k) for r in rs}))
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
    spec = json.loads(spec_path.read_text())
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
         + " | epoch train acc. first 100 % | zero-length edges | Tr Σ_W / Tr Σ_B (train) | ETF dist. means (train) |",
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


def _preregistered_in(folder: Path, groups_of) -> dict:
    """`preregistered_pairs` of a results folder for a summary, each side keyed (folder name, group label): among the
    folder's own groups and those of the folders its contrasts name by prefix (its siblings), from `groups_of`."""
    path = Path(folder) / CONTRASTS_FILE
    if not path.exists():
        return {}
    names = {c[k].rpartition(": ")[0] for c in read_contrasts(path)["contrasts"] for k in "ab"} - {""}
    groups = {label.rpartition(": ")[2]: rs for label, rs in groups_of(folder).items()}
    for name in names:
        groups.update(groups_of(Path(folder).parent / name))

    def key(label: str) -> tuple[str, str]:
        prefix, _, bare = label.rpartition(": ")
        return prefix or Path(folder).name, bare

    return {(key(a), key(b)): v for (a, b), v in preregistered_pairs(folder, groups).items()}


def _summary_rows(spec_path: Path, spec: dict) -> list[dict]:
    """The rows of a summary spec; SystemExit naming the expected form where they are not of it."""
    rows = spec.get("rows")
    bad = [i for i, r in enumerate(rows or []) if not isinstance(r, dict) or set(SUMMARY_KEYS) - set(r)
           or any(": " not in r[k] or r[k].partition(": ")[2].split(" ")[0] not in SCHEDULES for k in "ab")]
    if not isinstance(rows, list) or not rows or bad:
        raise SystemExit(f"{spec_path}: expected {{\"rows\": [{{\"setting\": ..., \"a\": \"<folder>: <group>\", "
                         f"\"b\": ...}}, ...]}}, each group led by a regulariser ({', '.join(SCHEDULES)})"
                         + (f"; rows {bad} are not of that form" if bad else ""))
    return rows


def _summary_row(row: dict, pair: tuple, res, judged, mark: str, why: str) -> tuple[str, list[dict]]:
    """A summary's line for the sides `pair` of a row ((folder, label, runs), or None: no finished group), their
    `paired_tests` res, (level, Holm-corrected p) of its family and its DIRTY_MARK; and the runs it used."""
    if res is None:
        return f"| {row['setting']} | {row['a']} | {row['b']} | 0 | – | – | – | – | – | {why} | – |", []
    ra, rb = pair[0][2], pair[1][2]
    a, b = ({pair_key(r): r["final"]["test_acc"] for r in rs} for rs in (ra, rb))
    shared = sorted(set(a) & set(b))
    n, m, s, tp, _ = res
    level, ta = judged
    lo, hi = ci95(n, m, s)
    p = f"{tp:.3g} ({ta:.3g})" if np.isfinite(tp) else "–"
    return (f"| {row['setting']}{mark} | {row['a']} | {row['b']} | {n} "
            f"({', '.join(str(k[0]) for k in shared)}) | {mean_std([100 * a[k] for k in shared])} | "
            f"{mean_std([100 * b[k] for k in shared])} | " + (f"{m:+.2f} | " if n else "– | ")
            + (f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "–")
            + f" | {p} | {judge(n, m, s, level)[2] if n else 'not yet: no shared split'} | {_differs_in(ra, rb)} |",
            [r for r in ra + rb if pair_key(r) in shared])
