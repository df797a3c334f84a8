"""How the report reads a results folder's runs and checks them, and the values it reads from one run.

A run is kept as a dict: its config.json (run, config, seed, ...), its log lines and its outcome records (final,
diverged, failed: the JSON or None). A folder that is not a consistent run (unreadable files, no config.json, a record
of another run) is kept with its `problem` and counted nowhere. The value readers (`final_val_acc`, `logged_value`,
`metric_value`, `last_death`, `mean_over_run`, `recorded`, `is_dirty`, ...) are what tables and figures read of a run.
Also the one JSON reader of the report (`read_json`) and the one of a --SUMMARY spec (`read_summary_spec`).
"""
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from common.runs import (OUTCOMES, PROVENANCE_COMPARED, ReportError, first_fit_epoch, images_difference, loads,
                         not_regular, read_log, run_name, run_seed, status)
from common.schedules import SCHEDULES
from common.schema import SUMMARY_SCHEMA, check
from reporting.stats import expected_duplicate_edges

DIRTY = "+dirty"  # end of final.json's commit where the run's code was not committed (provenance.process_provenance)


# ------------------------------------------------------------------------------------------------ JSON files
def read_json(path: Path):
    """(the JSON in `path` or None where there is no such file, what is wrong with it or None): what is wrong reads
    after the file's name, "cannot be read (...)" or "is not valid JSON (...)"."""
    if wrong := not_regular(path):
        return None, wrong
    try:
        return loads(Path(path).read_text()), None
    except FileNotFoundError:
        return None, None
    except OSError as e:  # a directory, a permission, a loop
        return None, f"cannot be read ({e.strerror or type(e).__name__})"
    except (ValueError, UnicodeDecodeError) as e:  # not JSON, or an integer too long to read
        return None, f"is not valid JSON ({getattr(e, 'msg', e)})"


def read_summary_spec(spec_path: Path) -> dict:
    """The JSON object of a --SUMMARY spec; one ReportError naming the forms a spec takes where it is none."""
    spec, wrong = read_json(spec_path)
    if not isinstance(spec, dict):
        found = f"it {wrong}" if wrong else "no such file" if spec is None else f"a JSON {type(spec).__name__}"
        raise ReportError(f"{spec_path} is not a summary spec ({found}): expected a JSON object with \"rows\" (see "
                          'results/hofer-row.json), "size_curve" (results/size-curve.json) or "carry_over" '
                          "(results/carry-over.json)")
    form = next((k for k in ("carry_over", "size_curve") if k in spec), "rows")
    if problems := check(spec, SUMMARY_SCHEMA[form]):
        raise ReportError(f"{spec_path} is not a summary spec of {form!r}: " + "; ".join(problems) + " (see results/"
                          + {"rows": "hofer-row", "size_curve": "size-curve", "carry_over": "carry-over"}[form]
                          + ".json)")
    return spec


# ------------------------------------------------------------------------------------------------ a folder's runs
def load_runs(out: Path, prefix: str = "") -> list[dict]:
    """Every folder under `out/runs`, with its config, log lines and outcome records (final, diverged, failed:
    the JSON or None); `prefix` names the folder in the labels of runs paired from another results folder. A folder
    that is not a consistent run (`_load_run`: unreadable files, no config.json, a record of another run) is kept with
    its `problem` and counted nowhere, for "Runs not in the tables"."""
    try:
        entries = sorted(Path(out, "runs").iterdir())
    except OSError:  # no runs/ (or not a folder)
        return []
    return check_shared_images([_load_run(p, prefix) if p.is_dir() else dict(
        _blank(p, prefix), problem="a symlink that leads nowhere (or into a loop): not a run folder")
        for p in entries if p.is_dir() or p.is_symlink()])


def check_shared_images(runs: list[dict]) -> list[dict]:
    """Runs that share (dataset, training size, split, seed) train on the same images: where their recorded digests of
    those images differ (`runs.images_difference`), those that differ from the digest most of them hold (all of them
    where none is held by most) get a `problem` and count nowhere. Returns `runs`, changed in place."""
    by_key = defaultdict(list)
    for r in runs:
        if r["run"] is not None and not r["problem"]:
            by_key[r["config"].get("DATASET"), r["config"].get("TRAIN_SIZE"), r["run"]["split"], r["seed"]].append(r)
    for (dataset, size, split, seed), rs in by_key.items():
        differs = [[b for b in rs if b is not a and images_difference(a, b)] for a in rs]
        for a, d in zip(rs, differs):  # the odd one out: it differs from more than half of the others
            if d and (len(d) > (len(rs) - 1) / 2 or len(rs) == 2):
                a.update(final=None, inconsistent=True, problem=(
                    f"shares {dataset}-{size} split {split}, seed {seed} with {_label(d[0])} but not its training "
                    f"images (digests {' vs '.join(images_difference(a, d[0]))}): not counted"))
    return runs


def _label(r: dict) -> str:
    return f"{r['prefix']}: {r['name']}" if r.get("prefix") else r["name"]


def _blank(folder: Path, prefix: str) -> dict:
    return dict(prefix=prefix, name=folder.name, problem=None, inconsistent=False, run=None, config={}, seed=None,
                data_source="", log=[], skipped_lines=[], **{kind: None for kind in OUTCOMES})


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
    record, wrong = read_json(folder / "config.json")
    if record is None:
        return dict(r, problem=f"config.json {wrong}" if wrong else "no config.json: an empty folder, a run not "
                    "started yet, or its record deleted (restore config.json, or move the folder away)")
    if not _is_record(record):
        return dict(r, problem="config.json is not a run's record (run: regularizer, split, lr, beta; config; seed)")
    if record["run"]["regularizer"] not in SCHEDULES:
        return dict(r, problem=f"config.json names an unknown regulariser {record['run']['regularizer']!r}")
    r.update(record, prefix=prefix, name=folder.name)
    if wrong := not_regular(folder / "log.jsonl"):
        return dict(r, problem=f"log.jsonl {wrong}")
    r["log"], r["skipped_lines"] = read_log(folder / "log.jsonl")
    for kind in OUTCOMES:
        r[kind], wrong = read_json(folder / f"{kind}.json")
        if wrong:
            return dict(r, final=None, problem=f"{kind}.json {wrong}")
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
    seed, split = r["config"].get("SEED", 0), r["run"]["split"]
    if isinstance(seed, int) and r["seed"] != run_seed(seed, split):
        return (f"config.json's seed {r['seed']} is not split {split}'s under SEED={seed} ({run_seed(seed, split)} = "
                "1000·SEED + split; a run copied as another split?): not counted")
    evaluated = [l for l in r["log"] if "test_acc" in l]
    if not evaluated or evaluated[-1]["test_acc"] != r["final"]["test_acc"]:
        return (f"final.json's test accuracy {r['final']['test_acc']} is not the log's last evaluated one "
                f"({evaluated[-1]['test_acc'] if evaluated else 'none'}): not counted")
    if disagreement := _disagreement(r["final"], r["log"]):
        return disagreement
    epochs, want = [l["epoch"] for l in r["log"]], r["config"].get("EPOCHS")
    if epochs != list(range(1, (want if isinstance(want, int) else len(epochs)) + 1)):
        gaps = sorted(set(range(1, max(epochs, default=0) + 1)) - set(epochs))
        return (f"log.jsonl of a finished run does not hold epochs 1–{want} once each, in order"
                + (f" (missing {', '.join(map(str, gaps[:5]))}{'…' if len(gaps) > 5 else ''})" if gaps else "")
                + ": not counted")
    return None


LOGGED = ("train_acc", "val_acc", "train", "test")  # what final.json copies from the log's last line (train.final_record)


def _same(a, b) -> bool:
    """Equal as logged numbers: NaN equals NaN (an undefined metric logged the same way twice)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return a == b


def _disagreement(final: dict, log: list[dict]) -> str | None:
    """Where final.json and the log it was written from disagree on a number the report reads (`LOGGED` of the last
    line, a collapse metric metric by metric, and `tpt_epoch`, the first epoch at 100 % training accuracy): the field
    and both values (None where they agree). What final.json lacks is filled in from the log, in place: the log is the
    record (36 committed runs have no val_acc in final.json)."""
    line = log[-1]
    for key in LOGGED:
        if key not in line:
            continue
        if final.get(key) is None:
            final[key] = line[key]
        elif isinstance(line[key], dict) and isinstance(final[key], dict):
            for metric, value in line[key].items():
                if metric not in final[key]:
                    final[key][metric] = value
                elif not _same(final[key][metric], value):
                    return (f"final.json's {key} {metric} {final[key][metric]!r} is not the log's last line's "
                            f"{value!r}: not counted")
        elif not _same(final[key], line[key]):
            return f"final.json's {key} {final[key]!r} is not the log's last line's {line[key]!r}: not counted"
    first_fit = first_fit_epoch(log)
    if "tpt_epoch" in final and final["tpt_epoch"] != first_fit:
        return (f"final.json's tpt_epoch {final['tpt_epoch']!r} is not the log's first epoch at 100 % training "
                f"accuracy ({first_fit}): not counted")
    final["tpt_epoch"] = first_fit
    return None


def _is_final(final) -> bool:
    """Whether final.json holds what the tables read: accuracies as numbers and the collapse metrics as objects."""
    return (isinstance(final, dict) and all(isinstance(final.get(k), (int, float)) for k in ("test_acc", "train_acc"))
            and all(isinstance(final.get(k), dict) for k in ("train", "test")) and "tpt_epoch" in final)


def run_status(r: dict) -> str:
    """`runs.status` of a loaded run; unreadable where its files are not a run's, inconsistent where they disagree
    about which run it is or what it scored (`_inconsistent`)."""
    return ("inconsistent" if r.get("inconsistent") else "unreadable") if r.get("problem") else status(r)


def epochs_reached(r: dict) -> str:
    """`k of EPOCHS`: the last epoch a run logged (0 before its first) of those it was to train."""
    return f"{r['log'][-1].get('epoch', '?') if r['log'] else 0} of {r['config'].get('EPOCHS', '?')}"


# ------------------------------------------------------------------------------------------------ a run's values
def final_test_acc(r: dict) -> float:
    """A finished run's final test accuracy (a fraction)."""
    return r["final"]["test_acc"]


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


def metric_value(m: dict, key: str) -> float:
    """A logged collapse metric as a float: NaN where it is missing or undefined (None, or an older {"error": ...});
    `scale_free_variation` is Tr Σ_W / Tr Σ_B."""
    if key == "scale_free_variation":
        w, b = metric_value(m, "within_class_variation"), metric_value(m, "between_class_variation")
        return w / b if b > 0 else float("nan")
    v = m.get(key)
    return float(v) if isinstance(v, (int, float)) else float("nan")


def last_death(r: dict) -> float:
    """The mean over classes of each class's mean death time at the run's last logged epoch (NaN where none)."""
    line = next((l for l in reversed(r["log"]) if l.get("death_mean")), {})
    v = [x for x in line.get("death_mean", []) if isinstance(x, (int, float))]
    return float(np.mean(v)) if v else float("nan")


def mean_over_run(r: dict, key: str):
    """The mean over a run's logged epochs of `key` (None where the run's log has none)."""
    v = [l[key] for l in r["log"] if isinstance(l.get(key), (int, float))]
    return float(np.mean(v)) if v else None


def sampled_duplicate_edges(runs: list[dict]):
    """What the group sampling alone predicts for the fraction of zero-length tree edges of runs at one size
    (`stats.expected_duplicate_edges` with TRAIN_SIZE / 10 images per class: MNIST and SVHN have 10 classes); None
    where the runs augment their images (a copy is then no longer the same image) or differ in size or group size."""
    shapes = {(r["config"].get("TRAIN_SIZE"), r["config"].get("SAMPLES_PER_GROUP"), r["config"].get("AUGMENT", False))
              for r in runs}
    if len(shapes) != 1 or None in (shape := shapes.pop()) or shape[2]:
        return None
    return expected_duplicate_edges(shape[0] / 10, shape[1])


# ------------------------------------------------------------------------------------------------ provenance
def segment_values(r: dict, key: str) -> list[str]:
    """A finished run's provenance `key` in each segment of epochs that one process trained (in order, each value
    once); the one value of final.json for a key that is not kept per segment, or a run from before segments."""
    segments = r["final"].get("segments") if key in PROVENANCE_COMPARED else None
    if not segments:
        return [str(r["final"].get(key, "not recorded"))]
    return list(dict.fromkeys(str(seg.get(key, "not recorded")) for seg in segments))


def recorded(r: dict, key: str) -> str:
    """A finished run's provenance `key`; for a run resumed elsewhere, its segments' values joined by " then "."""
    return " then ".join(segment_values(r, key))


def resumed_elsewhere(r: dict) -> bool:
    """Whether a finished run's epochs were trained with other code or on other machines, segment by segment."""
    return any(len(segment_values(r, k)) > 1 for k in PROVENANCE_COMPARED)


def is_dirty(r: dict) -> bool:
    """Whether a finished run was trained from a dirty tree: code not committed at the time (`+dirty` commit)."""
    return str(r["final"].get("commit", "")).endswith(DIRTY)
