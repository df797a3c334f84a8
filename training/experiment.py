"""The study behind `mnist_top.py` and `svhn_top.py`: settings, data, plan, executors, report.

    main(constants): settings (`validate`) → data (`prepare`) → OUT_DIR's settings.json (`check_settings`) and
                     study.json (`write_study`) → plan (`runs.plan_runs`) → execute (`EXECUTORS`: each run through
                     `train.run_one`) → report (`report.write_report`)

A run's folder and files are described in `runs.py`, its training in `train.py`.
"""
import json
import math
import sys
import traceback
from pathlib import Path

import torch
from tqdm import tqdm

import data
import report
from common.constants import PER_RUN, named, type_errors
from common.runs import (SETTINGS_FILE, STUDY_FILE, ReportError, atomic_write, defining_settings, is_done, locked,
                         plan_runs, read_json_object, read_settings, read_study, run_seed, run_settings,
                         setting_differences, settings_home)
from common.schedules import SCHEDULES, describe
from models import MODELS, default_device, make_model
from training import ray_executor, train
from training.config import ConfigError, apply_overrides
from training.provenance import configure_torch, process_provenance

REPORT_DEFAULTS = ("HOFER_BETAS", "SLIDING_BETA0S", "LAMBDAS")  # the defaults a held-out sweep has to beat
# how to recover from an unreadable settings.json or config.json (`compare_settings`)
RECOVER = "a JSON object; restore it, or delete it to have it written again from the runs' config.json files"


def validate(cfg: dict) -> None:
    """Reject invalid constants with one clear message, before any data is loaded or any step taken."""
    def need(ok, msg):
        if not ok:
            raise ConfigError(msg)
    need(not (wrong := type_errors(cfg)), "; ".join(wrong))
    need(cfg["DATASET"] in data.DATASETS, f"DATASET={cfg['DATASET']!r} unknown; supported: {', '.join(data.DATASETS)}")
    unknown = [r for r in cfg["REGULARIZERS"] if r not in SCHEDULES]
    need(cfg["REGULARIZERS"] and not unknown,
         f"REGULARIZERS has unknown {unknown or 'nothing'}; choose from:\n{describe()}")
    for name in named(PER_RUN):  # each value is a run (or a set of runs) of its own
        need(len(set(cfg[name])) == len(cfg[name]), f"{name}={cfg[name]} lists a value twice")
    need(cfg["MODEL"] in MODELS, f"MODEL={cfg['MODEL']!r} unknown; choose one of {', '.join(MODELS)}")
    need(cfg["METRIC"] in ("l1", "l2", "linf"), f"METRIC={cfg['METRIC']!r}; choose l1, l2 or linf")
    need(cfg["SAMPLES_PER_GROUP"] >= 2, f"SAMPLES_PER_GROUP={cfg['SAMPLES_PER_GROUP']}: a group needs >= 2 "
                                        "samples to have a death time")
    need(cfg["GROUPS_PER_BATCH"] >= 1, f"GROUPS_PER_BATCH={cfg['GROUPS_PER_BATCH']} must be >= 1")
    need(cfg["GROUPS_PER_BATCH"] <= cfg["TRAIN_SIZE"],
         f"GROUPS_PER_BATCH={cfg['GROUPS_PER_BATCH']} exceeds TRAIN_SIZE={cfg['TRAIN_SIZE']}: an epoch would have "
         "no full batch (each anchor image makes one group)")
    need(cfg["EPOCHS"] >= 1, f"EPOCHS={cfg['EPOCHS']} must be >= 1")
    need(cfg["SEED"] >= 0 and min(cfg["SPLITS"], default=0) >= 0 and run_seed(cfg["SEED"], max(cfg["SPLITS"], default=0))
         < 2 ** 63, f"SEED={cfg['SEED']}: each run's seed 1000·SEED + split must be a number from 0 to 2**63 − 1, "
         "the range torch's seeds take; use a SEED from 0 to 9e15 and splits >= 0")
    need(cfg["LAMBDAS"] and min(cfg["LAMBDAS"]) >= 0, f"LAMBDAS={cfg['LAMBDAS']}: each λ must be >= 0")
    need(cfg["SLIDING_BETA0S"] and min(cfg["SLIDING_BETA0S"]) >= 0,
         f"SLIDING_BETA0S={cfg['SLIDING_BETA0S']}: each β0 must be >= 0 (β is a distance)")
    need(cfg["VAL_SIZE"] >= 0, f"VAL_SIZE={cfg['VAL_SIZE']} must be >= 0 (0: no validation set)")
    need(cfg["HOFER_BETAS"] and min(cfg["HOFER_BETAS"]) >= 0, f"HOFER_BETAS={cfg['HOFER_BETAS']}: each β must be >= 0")
    need(cfg["LRS"] and min(cfg["LRS"]) > 0, f"LRS={cfg['LRS']}: learning rates must be > 0")
    need(cfg["SPLITS"] and min(cfg["SPLITS"]) >= 0, f"SPLITS={cfg['SPLITS']}: give split indices >= 0")
    need(cfg["EVAL_EPOCHS"] >= 1 and cfg["CKPT_EVERY"] >= 1, "EVAL_EPOCHS and CKPT_EVERY must be >= 1")
    need(cfg["EVAL_BATCH"] >= 1, f"EVAL_BATCH={cfg['EVAL_BATCH']} must be >= 1 (images per evaluation forward pass)")
    need(cfg["EXECUTOR"] in EXECUTORS, f"EXECUTOR={cfg['EXECUTOR']!r} unknown; choose one of {', '.join(EXECUTORS)}")
    need(cfg["CPUS_PER_RUN"] >= 1, f"CPUS_PER_RUN={cfg['CPUS_PER_RUN']} must be >= 1")
    need(0 <= cfg["GPUS_PER_RUN"] <= 1, f"GPUS_PER_RUN={cfg['GPUS_PER_RUN']} must be in [0, 1] (a fraction of a GPU)")
    missing = [p for p in cfg["PAIR_WITH"] if not (Path(p) / "runs").is_dir()]
    need(not missing, f"PAIR_WITH: no runs/ folder in {', '.join(missing)}; give results folders such as "
                      "results/mnist-250")
    need(cfg["THREADS"] >= 0, f"THREADS={cfg['THREADS']} must be >= 0 (0: torch's default)")
    need(cfg["DEVICE"] in ("", "cpu", "cuda") or cfg["DEVICE"].startswith("cuda:"),
         f"DEVICE={cfg['DEVICE']!r}; use '' (auto), 'cpu' or 'cuda'")
    need(not cfg["DEVICE"].startswith("cuda") or torch.cuda.is_available(),
         f"DEVICE={cfg['DEVICE']}, but this torch ({torch.__version__}) sees no CUDA device; use DEVICE=cpu (or '' "
         "for CUDA where available), or run on a machine with a GPU and a CUDA build of torch")
    need(0 <= cfg["MOMENTUM"] < 1, f"MOMENTUM={cfg['MOMENTUM']} must be in [0, 1) (SGD's momentum; 0.9 is usual)")
    need(cfg["WEIGHT_DECAY"] >= 0, f"WEIGHT_DECAY={cfg['WEIGHT_DECAY']} must be >= 0")
    need(cfg["CROP_PADDING"] >= 0, f"CROP_PADDING={cfg['CROP_PADDING']} must be >= 0 (pixels of translation)")
    infinite = [k for k, v in cfg.items() if any(isinstance(x, float) and not math.isfinite(x)
                                                  for x in (v if isinstance(v, list) else [v]))]
    need(not infinite, f"{', '.join(infinite)}: not a finite number; give finite values")


def out_dir(cfg: dict) -> Path:
    return Path(cfg["OUT_DIR"]) if cfg["OUT_DIR"] else Path("results") / f"{cfg['DATASET'].lower()}-{cfg['TRAIN_SIZE']}"


def load_data(cfg: dict, device: torch.device, root: Path) -> dict:
    """Training set (all images, for drawing splits), test set as normalised-later tensors, and the metadata."""
    x_tr, y_tr = data.load_dataset(cfg["DATASET"], root, train=True, download=cfg["DOWNLOAD"], verify=cfg["VERIFY_DATA"])
    x_te, y_te = data.load_dataset(cfg["DATASET"], root, train=False, download=cfg["DOWNLOAD"], verify=cfg["VERIFY_DATA"])
    val = data.validation_indices(cfg["DATASET"], cfg["TRAIN_SIZE"], cfg["VAL_SIZE"], y_tr)
    return dict(x_train=x_tr, y_train=y_tr, x_test=x_te.to(device), y_test=y_te.to(device),
                x_val=x_tr[val].to(device), y_val=y_tr[val].to(device), val=val,
                num_classes=int(y_tr.max()) + 1, in_channels=x_tr.shape[1],
                data_files=dict(md5=data.file_digests(cfg["DATASET"], root),
                                verified=cfg["VERIFY_DATA"]))  # VERIFY_DATA checks them or refuses them


def prepare(cfg: dict, argv: list[str], constants: dict, device: torch.device) -> dict:
    """Load the data and check every split and the model against it, before any run folder is created."""
    given = {a[2:].split("=", 1)[0] for a in argv}  # --DATA_ROOT beats $DATA_ROOT, which beats the constant
    root = data.resolve_data_root(constants["DATA_ROOT"], override=cfg["DATA_ROOT"] if "DATA_ROOT" in given else "")
    d = load_data(cfg, device, root)
    for split in cfg["SPLITS"]:
        idx, _ = data.get_split(cfg["DATASET"], cfg["TRAIN_SIZE"], split, d["y_train"], seed=cfg["SEED"],
                                exclude=d["val"])
        empty = (torch.bincount(d["y_train"][idx], minlength=d["num_classes"]) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"split {split} of {cfg['DATASET']}-{cfg['TRAIN_SIZE']} has no image of class(es) "
                             f"{empty}: use a TRAIN_SIZE of at least {d['num_classes']} (one image per class)")
    check_model_input(cfg, d, device)
    return d


def check_model_input(cfg: dict, d: dict, device: torch.device) -> None:
    """One forward pass of two training images: a model that does not fit the data fails here, not hours later."""
    model = make_model(cfg["MODEL"], d["num_classes"], d["in_channels"],
                       etf_classifier=cfg["ETF_CLASSIFIER"]).to(device).eval()
    try:
        with torch.no_grad():
            model(d["x_train"][:2].to(device).float())
    except RuntimeError as e:
        raise ValueError(f"MODEL={cfg['MODEL']} does not fit {cfg['DATASET']}'s images of shape "
                         f"{tuple(d['x_train'].shape[1:])}: {str(e).splitlines()[0]}") from None


def check_settings(out: Path, cfg: dict) -> None:
    """Refuse to mix settings in one OUT_DIR, before any run folder is created: the report pairs every run in it.

    The folder's run-defining settings live in settings.json beside the runs/ folder they rule (`settings_home`:
    OUT_DIR, or the folder a symlinked runs/ points into), created exclusively under a lock there (for a folder made
    before the file existed: after checking every run's config.json against these settings), so that no two
    processes started together can both pass with different settings.
    """
    out.mkdir(parents=True, exist_ok=True)
    home = settings_home(out)
    with locked(home / ".settings.lock"):
        if not compare_settings(out, cfg):
            atomic_write(home / SETTINGS_FILE, json.dumps(defining_settings(cfg), indent=1))


def compare_settings(out: Path, cfg: dict) -> bool:
    """One ConfigError where OUT_DIR's runs were trained with other run-defining settings than `cfg`'s: those of its
    settings.json, else of each run's config.json (a folder made before settings.json existed). Returns whether
    there is a settings.json; writes nothing."""
    home, defining = settings_home(out), defining_settings(cfg)
    path = home / SETTINGS_FILE
    if path.exists():
        diff = setting_differences(read_settings(out, ConfigError), defining)
        if diff:
            shared = f" (its runs/ is {home / 'runs'})" if home != out.resolve() else ""
            raise ConfigError(f"{out}{shared} holds runs with other settings {diff} (theirs, yours; {path}): run "
                              f"with those, or choose another OUT_DIR (for a first look: --OUT_DIR=results/first-look)")
        return True
    for old in sorted((home / "runs").glob("*/config.json")):
        config = read_json_object(old, "a run's record", RECOVER, ConfigError)
        diff = setting_differences(config.get("config", {}), defining)
        if diff:
            raise ConfigError(f"{old.parent} was trained with other settings {diff} (old, new); choose another "
                              f"OUT_DIR (for a first look: --OUT_DIR=results/first-look) or move that folder away")
    return False


def check_run_names(out: Path, planned: list[dict]) -> None:
    """One ConfigError where two planned runs would share a folder (naming both values), or where a planned run's
    folder already holds the config.json of another run (naming what differs): a run is never adopted by a command
    that did not plan it. Reads only config.json files; writes nothing."""
    seen = {}
    for run in planned:
        if (first := seen.setdefault(run["name"], run)) is not run:
            diff = {k: (first[k], run[k]) for k in ("regularizer", "split", "lr", "beta", "lam") if first[k] != run[k]}
            raise ConfigError(f"two planned runs would share the folder {run['name']}: they differ only in {diff}, "
                              "which the folder's name cannot tell apart; drop one of the values")
    for run in planned:
        path = out / "runs" / run["name"] / "config.json"
        if not path.is_file():
            continue
        record = read_json_object(path, "a run's record", RECOVER, ConfigError)
        old = record.get("run") if isinstance(record.get("run"), dict) else {}
        try:
            was = dict(regularizer=old.get("regularizer"), split=old.get("split"),
                       **run_settings(old, record.get("config") or {}))
        except (KeyError, TypeError):
            was = dict(old)
        now = dict(regularizer=run["regularizer"], split=run["split"], **run_settings(run, {}))
        diff = {k: (was.get(k), v) for k, v in now.items()  # an older record may lack λ: only what it holds differs
                if was.get(k) != v and (was.get(k) is not None or k in ("regularizer", "split"))}
        if diff:
            raise ConfigError(f"{path.parent} holds another run than the planned {run['name']}: {diff} (its "
                              "config.json's, the plan's); move that folder away, or run with its values")


def execute_local(cfg: dict, d: dict, todo: list[dict], out: Path, device: torch.device, meta: dict) -> list[str]:
    """Train the runs one after the other in this process; returns the names of those that did not finish."""
    failures = []
    for run in tqdm(todo, desc="runs", disable=not cfg["PROGRESS"], dynamic_ncols=True):
        if train.run_one(cfg, d, run, out, device, meta)["status"] in ("diverged", "failed"):
            failures.append(run["name"])
    return failures


EXECUTORS = {"local": execute_local, "ray": ray_executor.execute_ray}  # (cfg, data, runs, OUT_DIR, device, provenance) → failed


def write_study(out: Path, constants: dict, cfg: dict) -> None:
    """OUT_DIR/study.json: what the report needs of the script, so that it never imports one. The script's defaults
    before overrides (`REPORT_DEFAULTS`: the values a held-out sweep has to beat) as they were when the folder's first
    run started, and every folder the study was ever paired with (repository-relative where inside it)."""
    def where(p):
        p = Path(p).resolve()
        return p.relative_to(Path.cwd()).as_posix() if p.is_relative_to(Path.cwd()) else p.as_posix()
    with locked(out / ".settings.lock"):
        study = read_study(out)
        defaults = study.get("script_defaults", {k: constants[k] for k in REPORT_DEFAULTS})
        pair_with = list(study.get("pair_with", []))
        pair_with += [p for p in map(where, cfg["PAIR_WITH"]) if p not in pair_with]
        new = dict(script_defaults=defaults, pair_with=pair_with)
        if new != study:
            atomic_write(out / STUDY_FILE, json.dumps(new, indent=1) + "\n")


def main(constants: dict, argv: list[str] | None = None) -> int:
    """Entry point of both scripts: settings → data → plan → execute → report. Exit code 0 when every run
    finished, 1 when a run diverged or failed, 2 for bad settings or data (nothing trained)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = apply_overrides(constants, argv)
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = out_dir(cfg)
    planned = plan_runs(cfg)
    try:
        check_run_names(out, planned)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg["REPORT_ONLY"] or out.is_dir() and all(is_done(out / "runs" / r["name"]) for r in planned):
        return report_only(out, cfg, len(planned))
    device = torch.device(cfg["DEVICE"]) if cfg["DEVICE"] else default_device()
    configure_torch(cfg, device)
    try:
        if cfg["EXECUTOR"] == "ray":
            ray_executor.require_ray()
        d = prepare(cfg, argv, constants, device)
        check_settings(out, cfg)
        write_study(out, constants, cfg)
    except (ConfigError, data.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only OUT_DIR, a full disk, an unreadable data file: before any run started
        where = Path(e.filename) if e.filename else out
        print(f"error: cannot {'write in' if where.is_relative_to(out) else 'read'} {where.parent if where != out else out} "
              f"({e.strerror or type(e).__name__}: {where}); "
              + ("make it writable, free space, or choose another OUT_DIR" if where.is_relative_to(out) else
                 "check the file and its permissions"), file=sys.stderr)
        return 2
    todo = announce(cfg, d, out, device)
    try:
        failures = EXECUTORS[cfg["EXECUTOR"]](cfg, d, todo, out, device, process_provenance(device))
    except ConfigError as e:  # e.g. OUT_DIR not visible from a Ray node: the study stops, its runs resume later
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        print(report.write_report(out, cfg["PAIR_WITH"]))
    except ReportError as e:  # the logs are safe; a report problem must not hide the runs' outcome
        print(f"report failed: {e}", file=sys.stderr)
    except Exception:
        print(f"report failed (regenerate with --REPORT_ONLY=True):\n{traceback.format_exc()}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} run(s) did not finish: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def report_only(out: Path, cfg: dict, planned: int) -> int:
    """REPORT_ONLY, or every planned run finished: no data needed, nothing written but the report (where runs would
    be trained, their settings are checked first). Exit code 0, or 2 with one message."""
    try:
        if not cfg["REPORT_ONLY"]:
            compare_settings(out, cfg)
            print(f"{cfg['DATASET']}-{cfg['TRAIN_SIZE']}: all {planned} runs in {out} are finished; rewriting the "
                  "report only")
        print(report.write_report(out, cfg["PAIR_WITH"]))
    except (ConfigError, ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only folder, a full disk: the runs' files are untouched
        print(f"error: cannot write the report in {out} ({e.strerror or type(e).__name__}: {e.filename}); make it "
              "writable or free space, then run the same command again", file=sys.stderr)
        return 2
    return 0


def announce(cfg: dict, d: dict, out: Path, device: torch.device) -> list[dict]:
    """Print the plan (and, on a CPU, the time it will take); returns the runs still to train."""
    runs = plan_runs(cfg)
    todo = [r for r in runs if not is_done(out / "runs" / r["name"])]
    print(f"{cfg['DATASET']}-{cfg['TRAIN_SIZE']}: {len(runs)} runs in {out} ({len(runs) - len(todo)} already "
          f"finished), device {device}")
    if todo and device.type == "cpu":
        train_set = data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], todo[0]["split"], cfg["SEED"], device)[0]
        step = train.estimate_step_seconds(cfg, train_set, d["num_classes"], d["in_channels"], device)
        per_run = step * cfg["EPOCHS"] * (cfg["TRAIN_SIZE"] // cfg["GROUPS_PER_BATCH"]) * 1.3  # + evaluation
        total = per_run * len(todo)
        print(f"CPU: about {step * 1e3:.0f} ms per training step, so about {per_run / 60:.1f} min per run and "
              + (f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.0f} min")
              + f" for the {len(todo)} unfinished runs."
              + (" For a first look: --EPOCHS=20 --SPLITS=0 --OUT_DIR=results/first-look" if total >= 1800 else ""))
    return todo
