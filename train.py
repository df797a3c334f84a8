"""One run, from its folder to its outcome: build, step, epoch, evaluate, checkpoint, resume, and its provenance.

    run_one(cfg, data, run, OUT_DIR, device, meta): lock the run's folder → check or write config.json
        → train_run (build_run, then per epoch: train_epoch of train_step's, evaluate, log, checkpoint)
        → final.json, diverged.json or failed.json

The one code path of a run, whatever executes it (`experiment.execute_local`, `ray_executor.train_task`).
A run lives in `OUT_DIR/runs/<name>/` (see `runs.py`): `ckpt.pt` holds everything needed to resume bit for
bit on a CPU, and the log up to it, so a run killed at any moment resumes to exactly the numbers of an
uninterrupted one.
"""
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy
import torch
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

import data
from collapse_metrics import CollapseAccumulator, class_means, collapse_metrics
from models import make_model, make_optimizer
from regularizers import TopologicalLoss, make_loss, vr0_death_times
from runs import (PROVENANCE_COMPARED, SPLIT_DIGEST_V2, atomic_write, defining_settings, first_fit_epoch,
                  images_difference, is_done, locked, read_log, run_settings, setting_differences)
from schedules import Schedule, make_schedule

HERE = Path(__file__).resolve().parent


def eval_epochs(epochs: int, count: int) -> list[int]:
    """About `count` log-spaced epochs in 1..epochs, plus the last (as Papyan et al. sample training)."""
    e = np.unique(np.round(np.logspace(0, np.log10(epochs), count)).astype(int))
    return sorted(set(e.tolist()) | {epochs})


# ----------------------------------------------------------------------------------------------- provenance
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
    training class means), and the accuracy on the validation set (`held` from `data.device_subset`), the one
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
    penalty: torch.nn.Module  # the loss that λ weighs (a module of regularizers.LOSSES)
    gen: torch.Generator      # draws batches (and crops): on the run's device
    record: dict | None = None  # what config.json holds: saved in each checkpoint, checked on resume
    copies_equal: bool = True   # two copies of an image in a batch get equal codes (no crop, no dropout)
    segments: list = field(default_factory=list)  # the epochs trained before this process, and where (checkpoint)
    segment: dict | None = None  # this process's first epoch and PROVENANCE_COMPARED

    def stateful(self) -> dict:
        """The one list of what a checkpoint saves and restores through state_dict (plus the RNG states)."""
        return {"model": self.model, "optimizer": self.opt, "lr_scheduler": self.sched_lr, "schedule": self.schedule}


def build_run(cfg: dict, run: dict, num_classes: int, in_channels: int, device: torch.device) -> Run:
    """Model, optimiser, schedules, penalty and batch generator of a run at its start."""
    seed = data.run_seed(cfg["SEED"], run["split"])
    torch.manual_seed(seed)
    model = make_model(cfg["MODEL"], num_classes, in_channels, etf_classifier=cfg["ETF_CLASSIFIER"], device=device)
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


def duplicate_edges(batches: torch.Tensor, G: int, n: int) -> torch.Tensor:
    """The fraction of each group's n − 1 spanning-tree edges that join two copies of one image, averaged over the
    epoch's groups (a device scalar). A group of n draws holding k distinct images has n − k such edges, of length
    exactly 0 (without augmentation, copies have equal codes): they carry no gradient, whatever the regulariser."""
    s = batches.view(-1, G, n).sort(-1).values                                             # (B, G, n)
    distinct = 1 + (s[..., 1:] != s[..., :-1]).sum(-1)                                     # (B, G)
    return (n - distinct).float().mean() / (n - 1)


def train_epoch(cfg: dict, r: Run, train: data.TrainSubset, lam: float, beta: float) -> tuple[float, float, float]:
    """One pass over the anchors in group batches; the mean cross-entropy and penalty, and the fraction of tree edges
    between copies of one image (`duplicate_edges`), in one host read."""
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
    ce_mean, top_mean, dup = torch.cat([torch.stack([ce_sum, top_sum]).div(len(batches)),
                                        duplicate_edges(batches, G, n).view(1)]).tolist()
    return ce_mean, top_mean, dup


def save_checkpoint(path: Path, r: Run, device: torch.device, epoch: int, log_text: str, seconds: float) -> None:
    """Everything needed to resume bit for bit: state dicts, RNG states, and the log up to here (to verify the log
    on resume, and rebuild it if it was changed). Tensors and plain types only, so it loads with weights_only."""
    ck = dict(**{k: obj.state_dict() for k, obj in r.stateful().items()},
              rng_cpu=torch.get_rng_state(), rng_batches=r.gen.get_state(),
              rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
              epoch=epoch, tpt_epoch=first_fit_epoch(json.loads(l) for l in log_text.splitlines()), log_text=log_text, log_bytes=len(log_text.encode()), device=device.type,
              seconds=seconds, segments=json.dumps(trained_segments(r, epoch)),
              **({} if r.record is None else {"record": json.dumps(r.record)}))  # text: plain types
    atomic_write(path, lambda tmp: torch.save(ck, tmp))


def restore_checkpoint(path: Path, r: Run, device: torch.device, log_path: Path) -> tuple[int, object, float]:
    """Load `path` into `r` and bring the log back to the checkpoint; returns (next epoch, seconds of training so far).

    A log changed before the checkpoint is kept beside (log.changed-<time>.jsonl) and rebuilt from the text the
    checkpoint holds; checkpoints written before they held it check that the cut falls between unchanged lines.
    """
    ck = _load_checkpoint(path, r, log_path)
    folder = path.parent
    _check_record(ck, path, r.record)
    written_on = ck.get("device", "cpu")
    if written_on != device.type:  # a cpu and a cuda generator draw different batches
        raise RunError(f"{path} was written on {written_on}; resume it with --DEVICE={written_on}, "
                       f"or move {folder} away to restart it on {device}")
    _restore_log(ck, path, log_path)
    for k, obj in r.stateful().items():
        obj.load_state_dict(ck[k])
    torch.set_rng_state(ck["rng_cpu"]), r.gen.set_state(ck["rng_batches"])
    if device.type == "cuda" and ck.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ck["rng_cuda"], device)
    # a checkpoint from before segments were kept: where its epochs trained is not known
    r.segments = json.loads(ck["segments"]) if "segments" in ck else [dict(first_epoch=1, last_epoch=ck["epoch"])]
    return ck["epoch"] + 1, ck.get("seconds", 0.0)


def trained_segments(r: Run, last_epoch: int) -> list[dict]:
    """The segments of a run up to `last_epoch`: each a stretch of epochs one process trained, with its
    PROVENANCE_COMPARED (commit, torch, device, CPU capability, determinism, TF32)."""
    if r.segment is None or last_epoch < r.segment["first_epoch"]:
        return list(r.segments)
    return [*r.segments, dict(r.segment, last_epoch=last_epoch)]


def say_if_resumed_elsewhere(name: str, r: Run) -> None:
    """One line where this process resumes a run with other code or on another machine than its earlier epochs:
    such a run is not bit-exact with one trained in one go (final.json lists its segments; the report marks it)."""
    changed = [k for k in PROVENANCE_COMPARED if any(s[k] != r.segment[k] for s in r.segments if k in s)]
    if changed:
        before = "; ".join(f"{k} {sorted({str(s[k]) for s in r.segments if k in s})}" for k in changed)
        tqdm.write(f"{name}: resumed at epoch {r.segment['first_epoch']} with another {', '.join(changed)} than its "
                   f"earlier epochs ({before}; now {'; '.join(f'{k} {r.segment[k]}' for k in changed)}); it is not "
                   "bit-exact with a run trained in one go, and final.json lists where each segment trained")


def _load_checkpoint(path: Path, r: Run, log_path: Path) -> dict:
    """The checkpoint's contents, loaded with weights_only (a planted pickle never executes); anything unreadable or
    incomplete is one RunError that says what to do."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
        missing = [k for k in (*r.stateful(), "rng_cpu", "rng_batches", "epoch", "log_bytes") if k not in ck]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
    except Exception as e:  # truncated, random bytes, empty, or a pickle that is not a checkpoint: never executed
        log = (f"The log {log_path.name} beside it is intact. " if log_path.exists() else
               f"There is no {log_path.name} beside it. ")
        raise RunError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first_sentence(str(e))}). {log}"
                       f"Restore ckpt.pt (from a backup), or move {path.parent} away to train the run from the "
                       "start.") from None
    return ck


def plain(text: str) -> str:
    """Text without terminal colour codes (torch's weights_only errors carry them)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def first_sentence(text: str) -> str:
    """The first sentence of a message's first line, without colour codes: what a one-line message can quote whole."""
    line = plain(text).strip().split("\n")[0]
    return line.split(". ")[0].rstrip(".") if line else "no message"


def _check_record(ck: dict, path: Path, record: dict | None) -> None:
    """Refuse a checkpoint of another run (copied in from another folder, say): its record must equal the folder's
    config.json by `config_differences`, the resume check. One without a record (written before checkpoints held
    one) cannot be checked, so it is refused too: no committed run depends on a checkpoint."""
    if "record" not in ck or ck["record"] == "null":
        raise RunError(f"{path} holds no record of its run (it was written before checkpoints held one), so nothing "
                       f"shows that it belongs to {path.parent.name}: move ckpt.pt away (or delete it) and run the "
                       "same command again to train this run from the start")
    if record is None:
        return
    try:
        diff = config_differences(json.loads(ck["record"]), record)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise RunError(f"{path} holds a record that cannot be read ({type(e).__name__}: {first_sentence(str(e))}): "
                       "move ckpt.pt away to train this run from the start") from None
    if diff:
        raise RunError(f"{path} belongs to another run: it differs from {path.parent / 'config.json'} in {diff} "
                       f"(checkpoint, folder). Move ckpt.pt away to train this run from the start, or put the "
                       "checkpoint back in its own run's folder.")


def _restore_log(ck: dict, path: Path, log_path: Path) -> None:
    """Bring the log back to the checkpoint `ck` (read from `path`): rebuilt from the text it holds where it was
    changed (the changed log kept beside), then cut to the checkpoint's length."""
    folder = path.parent
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


def _whole_lines(prefix: bytes) -> bool:
    """Whether bytes are complete JSON log lines (each ending in a newline)."""
    if prefix and not prefix.endswith(b"\n"):
        return False
    try:
        return all(isinstance(json.loads(l), dict) for l in prefix.decode().splitlines())
    except (UnicodeDecodeError, ValueError):  # not JSON, or an integer too long to read
        return False


def split_digest(train: data.TrainSubset) -> str:
    """A fingerprint of a run's training images and labels as the run sees them, normalised: floats whose last bit
    can change with the thread count, so only runs recorded before `SPLIT_DIGEST_V2` are checked by it."""
    h = hashlib.sha256(train.y.cpu().numpy().tobytes())
    h.update(train.x.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def config_differences(old: dict, new: dict) -> dict:
    """{what: (old, new)} in which two runs' records (config.json) differ: every run-defining setting (METRIC too,
    for vanilla, whose logged death times it sets), the run's own settings, and its training images."""
    diff = setting_differences(old["config"], new["config"])
    was, now = run_settings(old["run"], old["config"]), run_settings(new["run"], new["config"])
    diff.update({k: (was[k], now[k]) for k in was if was[k] != now[k]})
    if old["run"]["regularizer"] != new["run"]["regularizer"]:
        diff["regularizer"] = (old["run"]["regularizer"], new["run"]["regularizer"])
    if old["run"].get("name", new["run"].get("name")) != new["run"].get("name"):  # a record of another run
        diff["run"] = (old["run"]["name"], new["run"].get("name"))
    if images := images_difference(old, new):  # records before v2 are checked by their float digest
        diff["training images"] = images
    files = [rec.get("data_files", {}).get("md5") if isinstance(rec.get("data_files"), dict) else None
             for rec in (old, new)]
    if all(files) and files[0] != files[1]:  # recorded since runs hold their data files' MD5; test sets too
        diff["data files (MD5)"] = tuple(files)
    if "split_digest" not in old and "VAL_SIZE" not in old["config"] and "seeded" in old.get("data_source", ""):
        diff["training images"] = ("a seeded draw from all images (before validation sets)",
                                   "a draw from the images outside the validation set")
    return diff


def check_run_config(folder: Path, record: dict) -> None:
    """Write the run's config.json, or, resuming, check that it was written with these settings and on the same
    training images (under the run's lock, so that no process resumes a run with other settings than it started
    with). A seeded draw made before validation sets existed came from all images, so it cannot be resumed now."""
    path = folder / "config.json"
    if not path.exists():
        atomic_write(path, json.dumps(record, indent=1))
        return
    try:
        old = json.loads(path.read_text())
        old["config"], old["run"]["regularizer"]  # noqa: B018 - the keys every record has
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise RunError(f"{path} cannot be read ({type(e).__name__}: {first_sentence(str(e))}): restore it, or move "
                       f"{folder} away to train the run anew") from None
    diff = config_differences(old, record)
    if diff:
        raise RunError(f"{path} was written with other settings {diff} (old, new): run with those, or move "
                       f"{folder} away to train the run anew")


def train_run(cfg: dict, run: dict, train: data.TrainSubset, held: dict, num_classes: int, in_channels: int,
              device: torch.device, folder: Path, position: int = 0, record: dict | None = None,
              meta: dict | None = None) -> dict:
    """Train one run to the end, resuming from `folder/ckpt.pt` if it is there (and if it belongs to `record`, the
    run's config.json); returns what final.json holds, with the segments of epochs each process trained and where
    (`meta`, this process's provenance; default: `provenance`)."""
    E = cfg["EPOCHS"]
    r = build_run(cfg, run, num_classes, in_channels, device)
    r.record = record
    r.copies_equal = not cfg["AUGMENT"] and not any(isinstance(m, torch.nn.Dropout) for m in r.model.modules())
    log_path, ckpt_path = folder / "log.jsonl", folder / "ckpt.pt"
    evals = set(eval_epochs(E, cfg["EVAL_EPOCHS"]))
    start, seconds = resume(r, run, device, ckpt_path, log_path)
    meta = meta or provenance(device, cfg)
    r.segment = dict(first_epoch=start, **{k: meta.get(k, "not recorded") for k in PROVENANCE_COMPARED})
    say_if_resumed_elsewhere(run["name"], r)

    bar = tqdm(range(start, E + 1), desc=run["name"], position=position, leave=False, initial=start - 1, total=E,
               disable=not cfg["PROGRESS"], dynamic_ncols=True)
    last_ckpt = start - 1 if start > 1 else None
    t0 = time.perf_counter() - seconds
    with open(log_path, "a") as log:
        for epoch in bar:
            lam, beta = r.schedule.values(epoch)
            lr = r.opt.param_groups[0]["lr"]
            ce_mean, top_mean, dup = train_epoch(cfg, r, train, lam, beta)
            if not (math.isfinite(ce_mean) and math.isfinite(top_mean)):
                where = f"{ckpt_path} (epoch {last_ckpt})" if last_ckpt else "none (diverged before the first checkpoint)"
                raise RunDiverged(f"{run['name']}: non-finite loss in epoch {epoch} (cross-entropy {ce_mean}, "
                                  f"topological {top_mean}); last good checkpoint: {where}")
            ev = evaluate(r.model, train, held, cfg["METRIC"], num_classes,
                          with_test=epoch in evals or cfg["EVAL_TEST_EVERY_EPOCH"], batch=cfg["EVAL_BATCH"])
            r.schedule.end_epoch(epoch, ev["train_acc"])
            r.sched_lr.step()
            dup = dup if r.copies_equal else None  # crops or dropout make two copies of an image differ
            log.write(json.dumps(log_line(r, epoch, lr, lam, beta, ce_mean, top_mean, dup, ev)) + "\n")
            log.flush()  # on disk before the checkpoint that counts it (fsync there); a resume cuts what follows
            bar.set_postfix(ce=f"{ce_mean:.3f}", top=f"{top_mean:.2f}", train=f"{ev['train_acc']:.3f}",
                            **({"test": f"{ev['test_acc']:.4f}"} if "test_acc" in ev else {}))
            if epoch % cfg["CKPT_EVERY"] == 0 or epoch == E:
                os.fsync(log.fileno())
                save_checkpoint(ckpt_path, r, device, epoch, log_path.read_text(), time.perf_counter() - t0)
                last_ckpt = epoch
    bar.close()
    lines = read_log(log_path)[0]  # also when resumed at the end
    line = lines[-1]
    return dict(test_acc=line["test_acc"], train_acc=line["train_acc"], val_acc=line.get("val_acc"),
                tpt_epoch=first_fit_epoch(lines), schedule_state=r.schedule.state_dict(), train=line["train"],
                test=line["test"], seconds=round(time.perf_counter() - t0, 1), segments=trained_segments(r, E))


def resume(r: Run, run: dict, device: torch.device, ckpt_path: Path, log_path: Path) -> tuple[int, float]:
    """(first epoch to train, seconds of training so far): from the checkpoint where there is one; a log without one
    (a run killed before its first checkpoint) is kept aside and training starts over."""
    if ckpt_path.exists():
        return restore_checkpoint(ckpt_path, r, device, log_path)
    if log_path.exists():
        kept = log_path.with_name(f"log.orphan-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        log_path.rename(kept)
        tqdm.write(f"{run['name']}: no checkpoint, so training starts again; the old log is kept as {kept.name}")
    return 1, 0.0


def log_line(r: Run, epoch: int, lr: float, lam: float, beta: float, ce: float, top: float, dup, ev: dict) -> dict:
    """One epoch's line of log.jsonl: the penalty only where λ > 0, the fraction of tree edges between copies of one
    image (`duplicate_edges`; None with augmentation), the ETF classifier's learned scale s where there is one, and
    the evaluation."""
    scale = getattr(r.model.classifier, "scale", None)
    return dict(epoch=epoch, lr=lr, lam=lam, beta=beta, ce=ce, top=top if lam > 0 else None, zero_edges=dup,
                **({} if scale is None else {"etf_scale": scale.item()}), **ev)


def run_one(cfg: dict, d: dict, r: dict, out: Path, device: torch.device, meta: dict, position: int = 1) -> dict:
    """Train run `r` of a study in its folder, under the run's lock, and record the outcome there: final.json,
    diverged.json or failed.json. Returns {"status": finished | diverged | failed | busy | done, ...}. The one code
    path of a run, whatever executes it. A folder that cannot be written (read-only, a full disk) stops this run with
    one message, also where its failed.json cannot be written; the other runs go on."""
    folder = out / "runs" / r["name"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / ".lock", wait=False) as lock:  # several processes may share OUT_DIR: one trains each
            lock.truncate(0)
            lock.write(f"{platform.node()} {os.getpid()}\n")  # who trains it, for a person (or a test) to see
            lock.flush()
            if is_done(folder):  # finished by another process meanwhile
                return dict(status="done")
            return _train_and_record(cfg, d, r, folder, device, meta, position)
    except BlockingIOError:
        tqdm.write(f"{r['name']}: being trained by another process, skipped")
        return dict(status="busy")
    except OSError as e:  # even failed.json could not be written: nothing more to record here
        message = (f"{r['name']}: cannot write in {folder} ({e.strerror or type(e).__name__}: {e.filename or folder}); "
                   "free space or make the folder writable, then run the same command again to resume")
        tqdm.write(message)
        return dict(status="failed", message=message)


def _train_and_record(cfg: dict, d: dict, r: dict, folder: Path, device: torch.device, meta: dict,
                      position: int) -> dict:
    """`run_one` under the run's lock: check or write config.json, train, and write the outcome's file."""
    for stale in folder.glob(".*.tmp.*"):  # left by a process killed mid-write; under the lock nobody writes them
        stale.unlink()
    try:
        train, held, source = data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], r["split"], cfg["SEED"], device)
        idx, _ = data.get_split(cfg["DATASET"], cfg["TRAIN_SIZE"], r["split"], d["y_train"], seed=cfg["SEED"],
                                exclude=d["val"])
        record = dict(run=r, config=defining_settings(cfg), data_source=source, split_digest=split_digest(train),
                      **{SPLIT_DIGEST_V2: data.images_digest(d["x_train"][idx], d["y_train"][idx])},
                      seed=data.run_seed(cfg["SEED"], r["split"]), data_files=d.get("data_files", "not recorded"))
        check_run_config(folder, record)
        if "seeded" in source:
            tqdm.write(f"{r['name']}: {source}")
        res = train_run(cfg, r, train, held, d["num_classes"], d["in_channels"], device, folder, position, record,
                        meta)
    except RunDiverged as e:  # deterministic: recorded as the run's outcome, not retried
        tqdm.write(f"stopped: {e}")
        atomic_write(folder / "diverged.json", json.dumps(dict(message=str(e), **meta), indent=1))
        return dict(status="diverged", message=str(e))
    except RunError as e:  # the folder needs the user: the message says what to do
        tqdm.write(f"{r['name']} failed: {e}")
        atomic_write(folder / "failed.json", json.dumps(dict(message=str(e), **meta), indent=1))
        return dict(status="failed", message=str(e))
    except OSError:
        raise  # a folder that cannot be written: `run_one` says so, without a traceback
    except Exception:  # anything else: recorded, retried on the next start; the other runs go on
        tqdm.write(f"{r['name']} failed:\n{traceback.format_exc()}")
        message = plain(traceback.format_exc().strip().splitlines()[-1])
        atomic_write(folder / "failed.json", json.dumps(dict(message=message, traceback=plain(traceback.format_exc()),
                                                             **meta), indent=1))
        return dict(status="failed", message=message)
    res.update(run=r, **meta)
    atomic_write(folder / "final.json", json.dumps(res, indent=1))
    (folder / "failed.json").unlink(missing_ok=True)
    tqdm.write(f"{r['name']}: test accuracy {res['test_acc']:.4f} ({res['seconds']:.0f} s of training)")
    return dict(status="finished", test_acc=res["test_acc"])


def estimate_step_seconds(cfg, train, num_classes, in_channels, device, steps=4) -> float:
    """Median wall time of a training step with the topological loss, on a throwaway model (RNG restored)."""
    rng = torch.get_rng_state()
    model = make_model(cfg["MODEL"], num_classes, in_channels, device=device)
    opt = make_optimizer(model, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0)
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
