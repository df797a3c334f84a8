"""Runs as folders: what defines a run (its name, its settings, how two runs' settings differ), the files of its
folder, its status, reading its log, and writing any file atomically. No torch, so that the report needs none.

Shared by `training/experiment.py` and `training/train.py` (which plan, check and train runs) and the report (which pairs them, also
across results folders). A run is one (split, regulariser, learning rate, λ, β) of a study; every other run-defining
setting is the same for all runs of an OUT_DIR and recorded in their config.json.

    OUT_DIR/runs/<name>/config.json   what defines the run (written before its first epoch)
                        log.jsonl     one JSON object per epoch
                        ckpt.pt       the checkpoint to resume from
                        final.json    the outcome: finished (or diverged.json; failed.json for the last failed try)
"""
import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from common.constants import CONSTANTS, DEFINING, NOTHING
from common.schedules import SCHEDULES
from common.schema import SETTINGS_SCHEMA, STUDY_SCHEMA, check

# constants that are no setting shared by every run of an OUT_DIR: those that do not change what a run computes (where
# it runs, how often it logs or saves) and the run-level lists (REGULARIZERS, SPLITS, LRS, ...) whose one value a run
# takes is in its name instead (the roles of constants.CONSTANTS)
NOT_RUN_DEFINING = {k for k, c in CONSTANTS.items() if c.role != DEFINING}
# what a run-defining setting was before it existed: a config.json written earlier, without the key, means this value
IMPLIED_WHEN_MISSING = {k: c.implied for k, c in CONSTANTS.items() if c.implied is not NOTHING}
# λ before it became the run-level list LAMBDAS: the one value that run names leave out, so older folders keep theirs
LEGACY_LAMBDA = 0.1
# config keys of runs written before λ and β0 became run-level lists: compared through `run_settings` instead
LEGACY_RUN_KEYS = {"LAMBDA", "SLIDING_BETA0"}
# config.json's digest of the training images from their uint8 pixels and labels (`data.images_digest`), which no
# thread count changes; records written before it hold only "split_digest", of the normalised floats
SPLIT_DIGEST_V2 = "split_digest_v2"


def defining_settings(cfg: dict) -> dict:
    """The settings that every run of an OUT_DIR shares and that change what a run computes."""
    return {k: v for k, v in cfg.items() if k not in NOT_RUN_DEFINING}


def plan_runs(cfg: dict) -> list[dict]:
    """All runs, split-major so that an interrupted study still has complete paired comparisons.

    A regulariser is run at every value of the lists of the parameters it uses (`Schedule.params`):
    λ from LAMBDAS, β from HOFER_BETAS (hofer) or SLIDING_BETA0S (the sliding family). The name holds
    each of them (λ only where it is not LEGACY_LAMBDA), and `_etf` with ETF_CLASSIFIER (only then, so that every
    earlier folder keeps its names); `beta` and `lam` are None where unused.
    """
    runs = []
    for split in cfg["SPLITS"]:
        for reg in cfg["REGULARIZERS"]:
            params = SCHEDULES[reg].params
            betas = (cfg["HOFER_BETAS"] if "beta" in params else cfg["SLIDING_BETA0S"] if "beta0" in params
                     else [None])
            for lr in cfg["LRS"]:
                for lam in (cfg["LAMBDAS"] if "lam" in params else [None]):
                    for beta in betas:
                        run = dict(regularizer=reg, split=split, lr=lr, beta=beta, lam=lam)
                        runs.append(dict(name=run_name(run, cfg), **run))
    return runs


def run_seed(seed: int, split: int) -> int:
    """The seed of split `split` under SEED `seed`: 1000·seed + split, the same for every regulariser, so that
    paired runs share their initialisation and batches (and, without shipped splits, their drawn images)."""
    return 1000 * seed + split


def run_name(run: dict, config: dict) -> str:
    """The folder name of a run (`plan_runs`): its regulariser, β (hofer's β or β0), λ where not LEGACY_LAMBDA,
    `_etf` with ETF_CLASSIFIER, the learning rate and the split; from a config.json's `run` and `config` too."""
    etf = "_etf" if config.get("ETF_CLASSIFIER", IMPLIED_WHEN_MISSING["ETF_CLASSIFIER"]) else ""
    params = SCHEDULES[run["regularizer"]].params  # older vanilla records hold an unused β
    beta = run.get("beta") if {"beta", "beta0"} & set(params) else None
    lam = run.get("lam") if "lam" in params else None
    return (run["regularizer"] + (f"_beta{number_text(beta)}" if beta is not None else "")
            + (f"_lam{number_text(lam)}" if lam not in (None, LEGACY_LAMBDA) else "")
            + f"{etf}_lr{number_text(run['lr'])}_split{run['split']:02d}")


def number_text(value: float) -> str:
    """A setting as run names write it: the short form (`4`, `0.03`, `1e-05`) where it reads back as the same number,
    else the shortest text that does (1.0000001, which the short form would write as `1`, the name of another run)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def run_settings(run: dict, config: dict) -> dict:
    """What a run computes with: its learning rate and the schedule's parameters (lam, beta, beta0), None
    where unused. A run's `beta` is hofer's β or the sliding family's β0; runs written before λ was
    run-level hold it in config["LAMBDA"], and vanilla runs then held an unused β."""
    params = SCHEDULES[run["regularizer"]].params
    values = dict(lam=run.get("lam", config.get("LAMBDA")), beta=run["beta"], beta0=run["beta"])
    return dict(lr=run["lr"], **{k: v if k in params else None for k, v in values.items()})


MISSING = "(missing)"


def setting_differences(old: dict, new: dict) -> dict:
    """{key: (old, new)} for the run-defining settings in which two configs differ. A key that one of them lacks
    counts as its IMPLIED_WHEN_MISSING value (written before the setting existed: the constant's `implied` in
    constants.CONSTANTS), else as MISSING, a difference; the per-run keys of older configs (LEGACY_RUN_KEYS) are
    compared through `run_settings` instead."""
    diff = {}
    for k in sorted((set(old) | set(new)) - LEGACY_RUN_KEYS):
        a, b = (c.get(k, IMPLIED_WHEN_MISSING.get(k, MISSING)) for c in (old, new))
        if a != b:
            diff[k] = (a, b)
    return diff



def run_differences(a: dict, b: dict) -> dict:
    """{setting: (a's, b's)} for everything but the regulariser in which two runs (their config.json)
    differ and that changes both of them: a setting that one of them does not use (METRIC, λ or β for
    vanilla; β for ramp) is no difference, and a key missing from an older config counts as its default. Runs that
    both record the digest of their training images and differ in it differ in "training images" (by the uint8 digest
    where both hold it), and runs that both record their data files' MD5 and differ in them, in "data files"."""
    uses = [set(SCHEDULES[r["run"]["regularizer"]].params) for r in (a, b)]
    skip = set() if all(uses) else {"METRIC"}  # the metric only enters a penalty
    diff = {k: v for k, v in setting_differences(a["config"], b["config"]).items() if k not in skip}
    sa, sb = run_settings(a["run"], a["config"]), run_settings(b["run"], b["config"])
    diff.update({k: (sa[k], sb[k]) for k in sa if sa[k] is not None and sb[k] is not None and sa[k] != sb[k]})
    if images := images_difference(a, b):
        diff["training images"] = images
    files = [r["data_files"].get("md5") if isinstance(r.get("data_files"), dict) else None for r in (a, b)]
    if all(isinstance(f, dict) for f in files) and files[0] != files[1]:  # unknown where either lacks it
        diff["data files"] = tuple(", ".join(f"{k} {str(f.get(k))[:8]}" for k in sorted(set(files[0]) | set(files[1]))
                                             if files[0].get(k) != files[1].get(k)) for f in files)
    return diff


def images_difference(a: dict, b: dict) -> tuple | None:
    """(a's, b's) digest of the training images where two run records both hold one and they differ: the uint8
    digest where both hold it (SPLIT_DIGEST_V2), else the older float one; None where they agree or it is unknown."""
    key = SPLIT_DIGEST_V2 if SPLIT_DIGEST_V2 in a and SPLIT_DIGEST_V2 in b else "split_digest"
    return (a[key], b[key]) if None not in (a.get(key), b.get(key)) and a[key] != b[key] else None


# ----------------------------------------------------------------------------------------------- files
STUDY_FILE = "study.json"  # OUT_DIR/study.json, what the report needs of the script (written by experiment.write_study)
SETTINGS_FILE = "settings.json"  # beside runs/: the run-defining settings of a folder (experiment.check_settings)
# what runs must share to be bit-exact (besides their settings): final.json records it for each segment of epochs
# trained by one process, and the report names where paired runs differ in it (the device names CPU or GPU and threads)
PROVENANCE_COMPARED = ("commit", "torch", "device", "cpu_capability", "deterministic", "tf32")
OUTCOMES = ("final", "diverged", "failed")  # <kind>.json in a run's folder, in the order `status` reads them
STATUS = {"final": "finished", "diverged": "diverged", "failed": "failed"}


def status(outcomes: dict) -> str:
    """finished, diverged, failed (the last attempt; a rerun retries it) or unfinished, from a run's outcome records
    ({kind: its JSON or None} for the kinds of OUTCOMES; a finished or diverged run is done)."""
    return next((STATUS[k] for k in OUTCOMES if outcomes.get(k)), "unfinished")


def folder_status(folder: Path) -> str:
    """`status` of a run folder, from which outcome files exist."""
    return status({k: (Path(folder) / f"{k}.json").exists() for k in OUTCOMES})


def is_done(folder: Path) -> bool:
    """Finished or diverged: nothing left to train (a failed run is tried again)."""
    return folder_status(folder) in ("finished", "diverged")


MAX_DIGITS = 308  # an integer with more digits than this is no float: a record holding one is not read as numbers


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits, too large for a number")
    return int(text)


def loads(text: str):
    """JSON as every record of this project is read: an integer too large for a float is a ValueError (as invalid
    JSON is), never a number that overflows later."""
    return json.loads(text, parse_int=_integer)


def not_regular(path: Path) -> str | None:
    """Why `path` is not read as a record where it exists but is not a regular file (a named pipe would block the
    reader forever; a socket or a device is no record); None where it is one or does not exist."""
    path = Path(path)
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "a named pipe (FIFO)" if path.is_fifo() else (
            "a socket" if path.is_socket() else "a device" if path.is_char_device() or path.is_block_device() else
            "not a regular file")
        return f"cannot be read: it is {kind}, not a regular file (never opened)"
    return None


def read_log(path: Path) -> tuple[list[dict], list[int]]:
    """The lines of a log that are an epoch's JSON object, and the numbers (from 1) of those that are not; a last line
    without its newline, still being written by a running process, is left out without counting as bad."""
    try:
        if not_regular(path):
            raise IsADirectoryError(path)  # never opened: a named pipe would block
        text = Path(path).read_text(errors="replace")
    except OSError:  # none yet (or not a file): no lines
        text = ""
    rows = text.split("\n")[:-1]  # after the last newline: "" or a line being written
    lines, bad = [], []
    for i, row in enumerate(rows, 1):
        try:
            line = loads(row)
        except ValueError:  # not JSON, or an integer too large for a number
            line = None
        if isinstance(line, dict) and isinstance(line.get("epoch"), int):
            lines.append(line)
        else:  # not JSON, or JSON but not an epoch's object (NaN, [1, 2], ...)
            bad.append(i)
    return lines, bad


def first_fit_epoch(lines) -> int | None:
    """The first epoch whose training accuracy is 100 % (the start of the terminal phase of training, where neural
    collapse sets in), from a run's log lines; None where it never fits its training set."""
    return next((l["epoch"] for l in lines if l.get("train_acc", 0) >= 1.0), None)


def atomic_write(path: Path, payload) -> None:
    """Replace `path` with `payload` (str, or a function writing to the path it is given) through a temporary file
    in the same folder, synced and then renamed: a reader never sees half a file, and a failed write leaves neither
    a temporary file nor a changed `path`. The temporary name keeps the suffix (matplotlib reads the format from it)
    and holds the process id (several processes may write one report)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        if callable(payload):
            payload(tmp)
        else:
            tmp.write_text(payload)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def locked(path: Path, wait: bool = True):
    """An exclusive lock on `path` (created if missing), held for the `with` block, which gets the open file;
    with wait=False, raise BlockingIOError at once if another process holds it."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield f


class ReportError(ValueError):
    """A file of a results folder that the report needs and cannot read (study.json, contrasts.json); the message
    names it and what to do."""


def settings_home(out: Path) -> Path:
    """The folder whose settings.json rules OUT_DIR's runs: the one that really holds runs/ (a symlinked runs/ is
    another folder's, and its runs must have that folder's settings)."""
    runs = Path(out) / "runs"
    return runs.resolve().parent if runs.is_symlink() or runs.exists() else Path(out)


# the form of each file a results folder's readers check, and how to recover from a file not of it
SETTINGS_FORM = ("a JSON object of run-defining settings, each of its constant's type; delete it to have the next run "
                 "write it again from its own settings")
STUDY_FORM = ("{\"script_defaults\": {...}, \"pair_with\": [...]}; delete it to have the next run write it again (the "
              "report then has no default to hold a sweep's choice to, and pairs only with --PAIR_WITH)")


def read_settings(out: Path, error: type = ReportError) -> dict:
    """The run-defining settings of a results folder (the settings.json of its `settings_home`); {} for a folder
    without one. One `error` where it is not a JSON object of `schema.SETTINGS_SCHEMA`."""
    return read_json_object(settings_home(out) / SETTINGS_FILE, "a folder's settings", SETTINGS_FORM, error,
                            SETTINGS_SCHEMA)


def read_study(out: Path) -> dict:
    """OUT_DIR/study.json: {"script_defaults": {HOFER_BETAS, SLIDING_BETA0S, LAMBDAS: the script's lists before
    overrides}, "pair_with": [folders the study was paired with, repository-relative]}; {} for a folder written
    before it existed. One ReportError where it is not such an object (`schema.STUDY_SCHEMA`)."""
    return read_json_object(Path(out) / STUDY_FILE, "a study's record", STUDY_FORM, schema=STUDY_SCHEMA)


def read_json_object(path: Path, what: str, expected: str, error: type = ReportError, schema: dict | None = None) -> dict:
    """The JSON object in `path`; {} where there is no such file; one `error` (ReportError for the report,
    config.ConfigError before training) naming `what` the file should hold and the `expected` form (with how to
    recover) where it is not valid JSON, not a JSON object, or not of its `schema` (`schema.check`: each wrong field
    named, with what was found and what is expected)."""
    if not path.exists():
        return {}
    if wrong := not_regular(path):
        raise error(f"{path} {wrong}: expected {what}, {expected}")
    try:
        found = loads(path.read_text())
    except ValueError as e:  # not JSON, not UTF-8, or an integer too large for a number
        found = f"not valid JSON: {e}"
    if not isinstance(found, dict):
        raise error(f"{path} is not {what} ({found}): expected {expected}")
    if schema is not None and (problems := check(found, schema)):
        raise error(f"{path} is not {what}: {'; '.join(problems)}; {expected}")
    return found
