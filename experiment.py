"""The one training loop behind `mnist_top.py` and `svhn_top.py`.

    main(constants): settings → data (`prepare`) → OUT_DIR's settings.json (`check_settings`) → plan (`plan_runs`)
                     → execute (`EXECUTORS`: each run through `run_one` → `train_run`) → report

Each run lives in `OUT_DIR/runs/<name>/`: `config.json` (what defines it), `log.jsonl` (one JSON line
per epoch; evaluated epochs carry test and validation accuracy and the collapse metrics), `ckpt.pt`
(everything needed to resume bit-for-bit on a CPU, and the log up to it) and, once finished,
`final.json`. Files are replaced atomically and the log is cut back to the checkpoint on resume, so a
run killed at any moment resumes to exactly the numbers of an uninterrupted one.
"""
import fcntl
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
from collapse_metrics import CollapseAccumulator, class_means, collapse_metrics
from config import ConfigError, apply_overrides
from models import MODELS, default_device, make_model, make_optimizer
from regularizers import SCHEDULES, Schedule, TopologicalLoss, describe, make_loss, make_schedule, vr0_death_times
from runs import defining_settings, plan_runs, run_settings, setting_differences

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------- config
def validate(cfg: dict) -> None:
    """Reject invalid constants with one clear message, before any data is loaded or any step taken."""
    def need(ok, msg):
        if not ok:
            raise ConfigError(msg)
    need(cfg["DATASET"] in data.DATASETS, f"DATASET={cfg['DATASET']!r} unknown; supported: {', '.join(data.DATASETS)}")
    unknown = [r for r in cfg["REGULARIZERS"] if r not in SCHEDULES]
    need(cfg["REGULARIZERS"] and not unknown,
         f"REGULARIZERS has unknown {unknown or 'nothing'}; choose from:\n{describe()}")
    for name in ("REGULARIZERS", "SPLITS", "LRS", "HOFER_BETAS", "SLIDING_BETA0S", "LAMBDAS"):
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


def out_dir(cfg: dict) -> Path:
    return Path(cfg["OUT_DIR"]) if cfg["OUT_DIR"] else HERE / "results" / f"{cfg['DATASET'].lower()}-{cfg['TRAIN_SIZE']}"


def eval_epochs(epochs: int, count: int) -> list[int]:
    """About `count` log-spaced epochs in 1..epochs, plus the last (as Papyan et al. sample training)."""
    e = np.unique(np.round(np.logspace(0, np.log10(epochs), count)).astype(int))
    return sorted(set(e.tolist()) | {epochs})


# ----------------------------------------------------------------------------------------------- files
def atomic_write(path: Path, payload, binary=False) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    if binary:
        torch.save(payload, tmp)
    else:
        tmp.write_text(payload)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cpu_name() -> str:
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def device_description(device: torch.device) -> str:
    """"cpu: <model>, N threads" or "cuda: <GPU name>": where a run trained."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()}, {torch.get_num_threads()} threads"


def provenance(device: torch.device, cfg: dict) -> dict:
    """Commit, library versions, device, determinism and date: what a number in results/ needs beside it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    import scipy
    import torchvision
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"))  # code, not logs
    return dict(commit=commit + ("+dirty" if dirty else ""), torch=torch.__version__,
                torchvision=torchvision.__version__, numpy=np.__version__, scipy=scipy.__version__,
                python=platform.python_version(), **where(device),
                date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def where(device: torch.device) -> dict:
    """The provenance of the process that trains: device, CPU, kernels (after `configure_torch`)."""
    return dict(device=device_description(device), cpu=cpu_name(),
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
                deterministic=torch.are_deterministic_algorithms_enabled(),
                tf32=device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32),
                cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"))


# ----------------------------------------------------------------------------------------------- data
def load_data(cfg: dict, device: torch.device, root: Path) -> dict:
    """Training set (all images, for drawing splits), test set as normalised-later tensors, and the metadata."""
    x_tr, y_tr = data.load_dataset(cfg["DATASET"], root, train=True, download=cfg["DOWNLOAD"])
    x_te, y_te = data.load_dataset(cfg["DATASET"], root, train=False, download=cfg["DOWNLOAD"])
    val = data.validation_indices(cfg["DATASET"], cfg["TRAIN_SIZE"], cfg["VAL_SIZE"], y_tr)
    return dict(x_train=x_tr, y_train=y_tr, x_test=x_te.to(device), y_test=y_te.to(device),
                x_val=x_tr[val].to(device), y_val=y_tr[val].to(device), val=val,
                num_classes=int(y_tr.max()) + 1, in_channels=x_tr.shape[1])


def subset_for(cfg: dict, d: dict, split: int, device: torch.device) -> tuple[data.TrainSubset, dict, str]:
    """The split's training subset, and its test and validation sets normalised by the subset's channel stats."""
    idx, source = data.get_split(cfg["DATASET"], cfg["TRAIN_SIZE"], split, d["y_train"], seed=cfg["SEED"],
                                 exclude=d["val"])
    train = data.TrainSubset.build(d["x_train"][idx], d["y_train"][idx], d["num_classes"], device)
    held = dict(x_test=data.normalize(d["x_test"].float() / 255, train.mean, train.std), y_test=d["y_test"],
                x_val=data.normalize(d["x_val"].float() / 255, train.mean, train.std), y_val=d["y_val"])
    return train, held, source


# ----------------------------------------------------------------------------------------------- evaluation
def _or_error(metrics) -> dict:
    """The collapse metrics, or the reason they are undefined (e.g. class means collapsed onto a
    lower-dimensional set): logged as {"error": ...} so that one undefined evaluation never stops a run."""
    try:
        return metrics()
    except ValueError as e:
        return {"error": str(e)}


@torch.no_grad()
def evaluate(model, train: data.TrainSubset, held: dict, metric: str, num_classes: int,
             with_test: bool, batch: int) -> dict:
    """Train accuracy, collapse metrics on the training subset and death times per class; with
    `with_test`, test accuracy and test collapse metrics from the same forward pass (NCC with the
    training class means), and the accuracy on the validation set (`held` from `subset_for`), the one
    to choose hyperparameters by. Counts stay on the device and are read once at the end (the
    collapse metrics read theirs once each)."""
    x_test, y_test = held["x_test"], held["y_test"]
    was_training = model.training
    model.eval()
    W, b = model.classifier.weight, model.classifier.bias
    z = torch.cat([model.latent(train.x[i:i + batch]) for i in range(0, train.y.numel(), batch)])  # (N, p)
    dev = {"train_acc": (model.classifier(z).argmax(1) == train.y).float().mean()}  # device values, read once
    out = {}
    if with_test:
        out["train"] = _or_error(lambda: collapse_metrics(z, train.y, W, b, num_classes))
        has_deaths = [n > 1 for n in train.class_sizes]  # a class of one image has no death time
        deaths = [vr0_death_times(z[train.y == c], metric) for c in range(num_classes) if has_deaths[c]]
        if deaths:
            dev["death_mean"] = torch.stack([d.mean() for d in deaths])
            dev["death_max"] = torch.stack([d.max() for d in deaths])
        acc = _or_error(lambda: CollapseAccumulator(num_classes, W, b, class_means(z, train.y, num_classes)))
        dev["test_correct"] = torch.zeros((), dtype=torch.long, device=y_test.device)
        for i in range(0, y_test.numel(), batch):
            zt = model.latent(x_test[i:i + batch])                                  # (B, p)
            dev["test_correct"] += (model.classifier(zt).argmax(1) == y_test[i:i + batch]).sum()
            if isinstance(acc, CollapseAccumulator):
                acc.update(zt, y_test[i:i + batch])
        out["test"] = _or_error(acc.compute) if isinstance(acc, CollapseAccumulator) else acc
        x_val, y_val = held["x_val"], held["y_val"]
        if y_val.numel():
            dev["val_correct"] = sum((model(x_val[i:i + batch]).argmax(1) == y_val[i:i + batch]).sum()
                                     for i in range(0, y_val.numel(), batch))
    host = read_once(dev)
    model.train(was_training)
    result = dict(train_acc=host["train_acc"])  # the log's key order: train_acc, train, deaths, test, val
    if with_test:
        mean, top = iter(host.get("death_mean", [])), iter(host.get("death_max", []))
        result.update(train=out["train"], death_mean=[next(mean) if h else None for h in has_deaths],
                      death_max=[next(top) if h else None for h in has_deaths],
                      test_acc=host["test_correct"] / y_test.numel(), test=out["test"])
        if "val_correct" in host:
            result["val_acc"] = host["val_correct"] / y_val.numel()
    return result


def read_once(values: dict) -> dict:
    """Device scalars and vectors → python floats and lists of floats, in one host read. float64 holds every
    float32 value and every count exactly, so the numbers are those of a `.item()` each."""
    flat = torch.cat([v.detach().double().reshape(-1) for v in values.values()]).tolist()
    out, i = {}, 0
    for k, v in values.items():
        out[k] = flat[i] if v.dim() == 0 else flat[i:i + v.numel()]
        out[k] = int(out[k]) if k.endswith("_correct") else out[k]
        i += v.numel()
    return out


# ----------------------------------------------------------------------------------------------- one run
class RunError(RuntimeError):
    """A run that cannot go on as its folder stands (an unreadable checkpoint, a log that does not match it,
    other settings): the message names the file and what to do. Recorded in failed.json; the other runs go on."""


class RunDiverged(RuntimeError):
    """A non-finite loss: the run stops, the others go on."""


@dataclass
class Run:
    """Everything of one run that training changes, built the same way for a fresh start and a resume."""
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched_lr: torch.optim.lr_scheduler.LRScheduler
    schedule: Schedule
    penalty: torch.nn.Module  # the loss that λ weighs (TopologicalLoss or CenterLoss)
    gen: torch.Generator      # draws batches (and crops): on the run's device

    def stateful(self) -> dict:
        """The one list of what a checkpoint saves and restores through state_dict (plus the RNG states)."""
        return {"model": self.model, "optimizer": self.opt, "lr_scheduler": self.sched_lr, "schedule": self.schedule}


def run_seed(cfg: dict, run: dict) -> int:
    return 1000 * cfg["SEED"] + run["split"]  # the same for every regulariser: paired runs share init and batches


def build_run(cfg: dict, run: dict, num_classes: int, in_channels: int, device: torch.device) -> Run:
    """Model, optimiser, schedules, penalty and batch generator of a run at its start."""
    seed = run_seed(cfg, run)
    torch.manual_seed(seed)
    # channels_last: measured 1.9× faster training steps and evaluation of SimpleCNN_MNIST on a 2-core CPU
    model = make_model(cfg["MODEL"], num_classes, in_channels, etf_classifier=cfg["ETF_CLASSIFIER"]).to(
        device, memory_format=torch.channels_last)
    opt = make_optimizer(model, run["lr"], cfg["MOMENTUM"], cfg["NESTEROV"], cfg["WEIGHT_DECAY"],
                         fused=device.type == "cuda")
    sched_lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["EPOCHS"])  # stepped once per epoch
    settings = run_settings(run, cfg)
    schedule = make_schedule(run["regularizer"], cfg["EPOCHS"],  # 0.0 for a parameter the schedule does not use
                             **{k: 0.0 if settings[k] is None else settings[k] for k in ("lam", "beta", "beta0")})
    penalty = make_loss(run["regularizer"], cfg["METRIC"])
    return Run(model, opt, sched_lr, schedule, penalty, torch.Generator(device=device).manual_seed(seed))


def train_step(model, opt, penalty, x, y, lam: float, beta: float, G: int, n: int):
    """One SGD step on a group batch: cross-entropy + λ · penalty(codes as (G, n, p), β).

    Returns the detached cross-entropy and penalty (None when λ = 0, which skips the penalty); reads
    nothing back to the host. The one step of the training loop, the step-time estimate and the benchmarks.
    """
    z = model.latent(x)                                                                # (G·n, p)
    ce = F.cross_entropy(model.classifier(z), y)
    loss, top = ce, None
    if lam > 0:
        top = penalty(z.view(G, n, -1), beta=beta)                                     # groups (G, n, p)
        loss = ce + lam * top
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return ce.detach(), None if top is None else top.detach()


def train_epoch(cfg: dict, r: Run, train: data.TrainSubset, lam: float, beta: float) -> tuple[float, float]:
    """One pass over the anchors in group batches; the mean cross-entropy and penalty (one host read)."""
    G, n = cfg["GROUPS_PER_BATCH"], cfg["SAMPLES_PER_GROUP"]
    batches = data.group_batches(train.y, train.members, train.counts, G, n, r.gen)          # (B, G·n)
    black = -train.mean / train.std  # the crop's padding is black, as when cropping before normalising
    device = train.y.device
    ce_sum, top_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    for idx in batches:
        x = train.x[idx]                                                                   # (G·n, C, H, W)
        if cfg["AUGMENT"]:
            x = data.random_crop(x, cfg["CROP_PADDING"], r.gen, fill=black)
        ce, top = train_step(r.model, r.opt, r.penalty, x, train.y[idx], lam, beta, G, n)
        if top is not None:
            top_sum += top
        ce_sum += ce
    ce_mean, top_mean = torch.stack([ce_sum, top_sum]).div(len(batches)).tolist()
    return ce_mean, top_mean


def save_checkpoint(path: Path, r: Run, device: torch.device, epoch: int, tpt_epoch, log_text: str,
                    seconds: float) -> None:
    """Everything needed to resume bit for bit: state dicts, RNG states, and the log up to here (to verify the log
    on resume, and rebuild it if it was changed). Tensors and plain types only, so it loads with weights_only."""
    atomic_write(path, dict(
        **{k: obj.state_dict() for k, obj in r.stateful().items()},
        rng_cpu=torch.get_rng_state(), rng_batches=r.gen.get_state(),
        rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        epoch=epoch, tpt_epoch=tpt_epoch, log_text=log_text, log_bytes=len(log_text.encode()), device=device.type,
        seconds=seconds), binary=True)


def restore_checkpoint(path: Path, r: Run, device: torch.device, log_path: Path) -> tuple[int, object, float]:
    """Load `path` into `r` and bring the log back to the checkpoint; returns (next epoch, tpt_epoch, seconds).

    A log changed before the checkpoint is kept beside (log.changed-<time>.jsonl) and rebuilt from the text the
    checkpoint holds; checkpoints written before they held it check that the cut falls between unchanged lines.
    """
    folder = path.parent
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
        missing = [k for k in (*r.stateful(), "rng_cpu", "rng_batches", "epoch", "log_bytes") if k not in ck]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
    except Exception as e:  # truncated, random bytes, empty, or a pickle that is not a checkpoint: never executed
        raise RunError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). "
                       f"The log {log_path.name} beside it is intact. Restore ckpt.pt (from a backup), or move "
                       f"{folder} away to train the run from the start.") from None
    written_on = ck.get("device", "cpu")
    if written_on != device.type:  # a cpu and a cuda generator draw different batches
        raise RunError(f"{path} was written on {written_on}; resume it with --DEVICE={written_on}, "
                       f"or move {folder} away to restart it on {device}")
    text = log_path.read_bytes() if log_path.exists() else None
    if "log_text" in ck:
        want = ck["log_text"].encode()
        if text is None or not text.startswith(want):
            if text is not None:
                kept = log_path.with_name(f"log.changed-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
                log_path.rename(kept)
                tqdm.write(f"{log_path} did not match its checkpoint: kept as {kept.name}, rebuilt from {path.name}")
            atomic_write(log_path, ck["log_text"])
    else:  # a checkpoint from before the log text was kept in it: only the byte count to go by
        size = len(text) if text is not None else -1
        if size < ck["log_bytes"]:
            raise RunError(f"{log_path} is {'missing' if size < 0 else f'shorter ({size} bytes)'} than at the "
                           f"checkpoint ({ck['log_bytes']} bytes): restore it, or move {folder} away to restart")
        if not _whole_lines(text[:ck["log_bytes"]]):
            raise RunError(f"{log_path} was changed before its checkpoint (its first {ck['log_bytes']} bytes are no "
                           f"longer whole log lines), and {path.name} is too old to rebuild it: restore the log, or "
                           f"move {folder} away to restart the run")
    with open(log_path, "r+b") as f:  # drop lines written after the checkpoint: they will be recomputed
        f.truncate(ck["log_bytes"])
    for k, obj in r.stateful().items():
        obj.load_state_dict(ck[k])
    torch.set_rng_state(ck["rng_cpu"]), r.gen.set_state(ck["rng_batches"])
    if device.type == "cuda" and ck.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ck["rng_cuda"], device)
    return ck["epoch"] + 1, ck["tpt_epoch"], ck.get("seconds", 0.0)


def _whole_lines(prefix: bytes) -> bool:
    """Whether bytes are complete JSON log lines (each ending in a newline)."""
    if prefix and not prefix.endswith(b"\n"):
        return False
    try:
        return all(isinstance(json.loads(l), dict) for l in prefix.decode().splitlines())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def split_digest(train: data.TrainSubset) -> str:
    """A fingerprint of a run's training images and labels (as the run sees them, normalised)."""
    h = hashlib.sha256(train.y.cpu().numpy().tobytes())
    h.update(train.x.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def check_run_config(folder: Path, record: dict) -> None:
    """Write the run's config.json, or, resuming, check that it was written with these settings and on the same
    training images (under the run's lock, so that no process resumes a run with other settings than it started
    with). A seeded draw made before validation sets existed came from all images, so it cannot be resumed now."""
    path = folder / "config.json"
    if not path.exists():
        atomic_write(path, json.dumps(record, indent=1))
        return
    old = json.loads(path.read_text())
    diff = setting_differences(old["config"], record["config"])
    was, now = run_settings(old["run"], old["config"]), run_settings(record["run"], record["config"])
    diff.update({k: (was[k], now[k]) for k in was if was[k] != now[k]})
    if old.get("split_digest", record["split_digest"]) != record["split_digest"]:
        diff["training images"] = (old["split_digest"], record["split_digest"])
    if "split_digest" not in old and "VAL_SIZE" not in old["config"] and "seeded" in old.get("data_source", ""):
        diff["training images"] = ("a seeded draw from all images (before validation sets)",
                                   "a draw from the images outside the validation set")
    if diff:
        raise RunError(f"{path} was written with other settings {diff} (old, new): run with those, or move "
                       f"{folder} away to train the run anew")


def train_run(cfg: dict, run: dict, train: data.TrainSubset, held: dict, num_classes: int, in_channels: int,
              device: torch.device, folder: Path, position: int = 0) -> dict:
    """Train one run to the end, resuming from `folder/ckpt.pt` if it is there; returns what final.json holds."""
    E = cfg["EPOCHS"]
    r = build_run(cfg, run, num_classes, in_channels, device)
    log_path, ckpt_path = folder / "log.jsonl", folder / "ckpt.pt"
    evals = set(eval_epochs(E, cfg["EVAL_EPOCHS"]))
    start, tpt_epoch, seconds = 1, None, 0.0
    if ckpt_path.exists():
        start, tpt_epoch, seconds = restore_checkpoint(ckpt_path, r, device, log_path)
    elif log_path.exists():  # from a run killed before its first checkpoint (or a clone without checkpoints)
        kept = log_path.with_name(f"log.orphan-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        log_path.rename(kept)
        tqdm.write(f"{run['name']}: no checkpoint, so training starts again; the old log is kept as {kept.name}")

    bar = tqdm(range(start, E + 1), desc=run["name"], position=position, leave=False, initial=start - 1, total=E,
               disable=not cfg["PROGRESS"], dynamic_ncols=True)
    last_ckpt = start - 1 if start > 1 else None
    t0 = time.perf_counter() - seconds
    with open(log_path, "a") as log:
        for epoch in bar:
            lam, beta = r.schedule.values(epoch)
            lr = r.opt.param_groups[0]["lr"]
            ce_mean, top_mean = train_epoch(cfg, r, train, lam, beta)
            if not (math.isfinite(ce_mean) and math.isfinite(top_mean)):
                where = f"{ckpt_path} (epoch {last_ckpt})" if last_ckpt else "none (diverged before the first checkpoint)"
                raise RunDiverged(f"{run['name']}: non-finite loss in epoch {epoch} (cross-entropy {ce_mean}, "
                                  f"topological {top_mean}); last good checkpoint: {where}")
            ev = evaluate(r.model, train, held, cfg["METRIC"], num_classes,
                          with_test=epoch in evals or cfg["EVAL_TEST_EVERY_EPOCH"], batch=cfg["EVAL_BATCH"])
            r.schedule.end_epoch(epoch, ev["train_acc"])
            if tpt_epoch is None and ev["train_acc"] >= 1.0:
                tpt_epoch = epoch
            r.sched_lr.step()
            scale = getattr(r.model.classifier, "scale", None)  # the ETF classifier's learned scale s
            log.write(json.dumps(dict(epoch=epoch, lr=lr, lam=lam, beta=beta, ce=ce_mean,
                                      top=top_mean if lam > 0 else None,
                                      **({} if scale is None else {"etf_scale": scale.item()}), **ev)) + "\n")
            log.flush()  # on disk before the checkpoint that counts it (fsync there); a resume cuts what follows
            bar.set_postfix(ce=f"{ce_mean:.3f}", top=f"{top_mean:.2f}", train=f"{ev['train_acc']:.3f}",
                            **({"test": f"{ev['test_acc']:.4f}"} if "test_acc" in ev else {}))
            if epoch % cfg["CKPT_EVERY"] == 0 or epoch == E:
                os.fsync(log.fileno())
                save_checkpoint(ckpt_path, r, device, epoch, tpt_epoch, log_path.read_text(),
                                time.perf_counter() - t0)
                last_ckpt = epoch
    bar.close()
    line = [json.loads(l) for l in log_path.read_text().splitlines()][-1]  # also when resumed at the end
    return dict(test_acc=line["test_acc"], train_acc=line["train_acc"], val_acc=line.get("val_acc"),
                tpt_epoch=tpt_epoch, schedule_state=r.schedule.state_dict(), train=line["train"], test=line["test"],
                seconds=round(time.perf_counter() - t0, 1))


# ----------------------------------------------------------------------------------------------- study
def estimate_step_seconds(cfg, train, num_classes, in_channels, device, steps=4) -> float:
    """Median wall time of a training step with the topological loss, on a throwaway model (RNG restored)."""
    rng = torch.get_rng_state()
    model = make_model(cfg["MODEL"], num_classes, in_channels).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    penalty, G, n = TopologicalLoss(0.5, cfg["METRIC"]), cfg["GROUPS_PER_BATCH"], cfg["SAMPLES_PER_GROUP"]
    idx = torch.arange(G * n, device=device) % train.y.numel()
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        ce, _ = train_step(model, opt, penalty, train.x[idx], train.y[idx], 0.1, 0.5, G, n)
        ce.item()  # wait for the device
        times.append(time.perf_counter() - t)
    torch.set_rng_state(rng)
    return float(np.median(times[1:]))


@contextmanager
def locked(path: Path, wait: bool = True):
    """An exclusive lock on `path` (created if missing), held for the `with` block, which gets the open file;
    with wait=False, raise BlockingIOError at once if another process holds it."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield f


def check_settings(out: Path, cfg: dict) -> None:
    """Refuse to mix settings in one OUT_DIR, before any run folder is created: the report pairs every run in it.

    The folder's run-defining settings live in OUT_DIR/settings.json, created exclusively under a folder lock
    (for a folder made before the file existed: after checking every run's config.json against these settings),
    so that no two processes started together can both pass with different settings.
    """
    out.mkdir(parents=True, exist_ok=True)
    defining = defining_settings(cfg)
    with locked(out / ".settings.lock"):
        path = out / "settings.json"
        if path.exists():
            diff = setting_differences(json.loads(path.read_text()), defining)
            if diff:
                raise ConfigError(f"{out} holds runs with other settings {diff} (theirs, yours; {path}): run with "
                                  f"those, or choose another OUT_DIR (for a first look: --OUT_DIR=results/first-look)")
            return
        for old in sorted((out / "runs").glob("*/config.json")):
            diff = setting_differences(json.loads(old.read_text())["config"], defining)
            if diff:
                raise ConfigError(f"{old.parent} was trained with other settings {diff} (old, new); choose another "
                                  f"OUT_DIR (for a first look: --OUT_DIR=results/first-look) or move that folder away")
        atomic_write(path, json.dumps(defining, indent=1))


def is_done(folder: Path) -> bool:
    return any((folder / f).exists() for f in ("final.json", "diverged.json"))


def run_one(cfg: dict, d: dict, r: dict, out: Path, device: torch.device, meta: dict, position: int = 1) -> dict:
    """Train run `r` of a study in its folder, under the run's lock, and record the outcome there: final.json,
    diverged.json or failed.json. Returns {"status": finished | diverged | failed | busy | done, ...}. The one code
    path of a run, whatever executes it."""
    folder = out / "runs" / r["name"]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with locked(folder / ".lock", wait=False) as lock:  # several processes may share OUT_DIR: one trains each
            lock.truncate(0)
            lock.write(f"{platform.node()} {os.getpid()}\n")  # who trains it, for a person (or a test) to see
            lock.flush()
            if is_done(folder):  # finished by another process meanwhile
                return dict(status="done")
            try:
                train, held, source = subset_for(cfg, d, r["split"], device)
                check_run_config(folder, dict(run=r, config=defining_settings(cfg), data_source=source,
                                              split_digest=split_digest(train), seed=run_seed(cfg, r)))
                if "seeded" in source:
                    tqdm.write(f"{r['name']}: {source}")
                res = train_run(cfg, r, train, held, d["num_classes"], d["in_channels"], device, folder, position)
            except RunDiverged as e:  # deterministic: recorded as the run's outcome, not retried
                tqdm.write(f"stopped: {e}")
                atomic_write(folder / "diverged.json", json.dumps(dict(message=str(e), **meta), indent=1))
                return dict(status="diverged", message=str(e))
            except RunError as e:  # the folder needs the user: the message says what to do
                tqdm.write(f"{r['name']} failed: {e}")
                atomic_write(folder / "failed.json", json.dumps(dict(message=str(e), **meta), indent=1))
                return dict(status="failed", message=str(e))
            except Exception:  # anything else: recorded, retried on the next start; the other runs go on
                tqdm.write(f"{r['name']} failed:\n{traceback.format_exc()}")
                atomic_write(folder / "failed.json", json.dumps(dict(message=traceback.format_exc().splitlines()[-1],
                                                                     traceback=traceback.format_exc(), **meta), indent=1))
                return dict(status="failed", message=traceback.format_exc().splitlines()[-1])
            res.update(run=r, **meta)
            atomic_write(folder / "final.json", json.dumps(res, indent=1))
            (folder / "failed.json").unlink(missing_ok=True)
            tqdm.write(f"{r['name']}: test accuracy {res['test_acc']:.4f} ({res['seconds']:.0f} s of training)")
            return dict(status="finished", test_acc=res["test_acc"])
    except BlockingIOError:
        tqdm.write(f"{r['name']}: being trained by another process, skipped")
        return dict(status="busy")


def execute_local(cfg: dict, d: dict, todo: list[dict], out: Path, device: torch.device, meta: dict) -> list[str]:
    """Train the runs one after the other in this process; returns the names of those that did not finish."""
    failures = []
    for r in tqdm(todo, desc="runs", disable=not cfg["PROGRESS"], dynamic_ncols=True):
        if run_one(cfg, d, r, out, device, meta)["status"] in ("diverged", "failed"):
            failures.append(r["name"])
    return failures


def execute_ray(*args) -> list[str]:
    """Train the runs as Ray tasks (ray_executor.py, imported only here, so that local studies need no Ray)."""
    from ray_executor import execute_ray
    return execute_ray(*args)


EXECUTORS = {"local": execute_local, "ray": execute_ray}  # (cfg, data, runs, OUT_DIR, device, provenance) → failed


def configure_torch(cfg: dict, device: torch.device) -> None:
    """Threads, and reproducible or fast kernels: DETERMINISTIC selects deterministic algorithms and no TF32, with
    CUBLAS_WORKSPACE_CONFIG (which torch checks at each cuBLAS call: call this before any CUDA work, in every
    process that trains, a Ray worker too); otherwise TF32 and cuDNN's autotuner."""
    if cfg["THREADS"]:
        torch.set_num_threads(cfg["THREADS"])
    if cfg["DETERMINISTIC"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    fast = not cfg["DETERMINISTIC"]
    torch.use_deterministic_algorithms(cfg["DETERMINISTIC"])
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    torch.backends.cudnn.benchmark = fast


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


def main(constants: dict, argv: list[str] | None = None) -> int:
    """Entry point of both scripts: settings → data → plan → execute → report. Exit code 0 when every run
    finished, 1 when a run diverged or failed, 2 for bad settings or data (nothing trained)."""
    import report
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = apply_overrides(constants, argv)
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = out_dir(cfg)
    if cfg["REPORT_ONLY"]:
        print(report.write_report(out, cfg["PAIR_WITH"]))
        return 0
    device = torch.device(cfg["DEVICE"]) if cfg["DEVICE"] else default_device()
    configure_torch(cfg, device)
    try:
        if cfg["EXECUTOR"] == "ray":
            from ray_executor import require_ray
            require_ray()
        d = prepare(cfg, argv, constants, device)
        check_settings(out, cfg)
    except (ConfigError, data.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = plan_runs(cfg)
    todo = [r for r in runs if not is_done(out / "runs" / r["name"])]
    print(f"{cfg['DATASET']}-{cfg['TRAIN_SIZE']}: {len(runs)} runs in {out} ({len(runs) - len(todo)} already "
          f"finished), device {device}")
    if todo and device.type == "cpu":
        step = estimate_step_seconds(cfg, subset_for(cfg, d, todo[0]["split"], device)[0], d["num_classes"],
                                     d["in_channels"], device)
        per_run = step * cfg["EPOCHS"] * (cfg["TRAIN_SIZE"] // cfg["GROUPS_PER_BATCH"]) * 1.3  # + evaluation
        print(f"CPU: about {step * 1e3:.0f} ms per training step, so about {per_run / 60:.1f} min per run and "
              f"{per_run * len(todo) / 3600:.1f} h for the {len(todo)} unfinished runs. For a first look: "
              f"--EPOCHS=20 --SPLITS=0 --OUT_DIR=results/first-look")
    try:
        failures = EXECUTORS[cfg["EXECUTOR"]](cfg, d, todo, out, device, provenance(device, cfg))
    except ConfigError as e:  # e.g. OUT_DIR not visible from a Ray node: the study stops, its runs resume later
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        print(report.write_report(out, cfg["PAIR_WITH"]))
    except Exception:  # the logs are safe; a report problem must not hide the runs' outcome
        print(f"report failed (regenerate with --REPORT_ONLY=True):\n{traceback.format_exc()}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} run(s) did not finish: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


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
