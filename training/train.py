"""One run's training, top to bottom: build it, a step, an epoch, the run's loop, and the outcome in its folder.

    run_one(cfg, d, run, OUT_DIR, device, meta): lock the run's folder → train_run → final.json, diverged.json or
        failed.json
    train_run: config.json checked → build_run → resume → per epoch: train_epoch (a train_step per group batch),
        evaluate, a log line, and every CKPT_EVERY epochs a checkpoint

The one code path of a run, whatever executes it (`experiment.execute_local`, `ray_executor.train_task`). A run lives
in `OUT_DIR/runs/<name>/` (see `runs.py`); what lets it resume bit for bit is in `checkpoints.py`, what it measures in
`evaluation.py`, and where it trained in `provenance.py`.
"""
import json
import math
import os
import platform
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
from common.runs import atomic_write, first_fit_epoch, is_done, locked, read_log, run_seed, run_settings
from common.schedules import make_schedule
from models import make_model, make_optimizer
from regularizers import TopologicalLoss, make_loss
from training.checkpoints import (RunError, RunState, check_run_config, plain, resume, run_record, save_checkpoint,
                                  trained_segments)
from training.evaluation import eval_epochs, evaluate


class RunDiverged(RuntimeError):
    """A non-finite loss: the run stops, the others go on."""


def build_run(cfg: dict, run: dict, num_classes: int, in_channels: int, device: torch.device,
              record: dict | None = None) -> RunState:
    """Model, optimiser, schedules, penalty and batch generator of `run` at its start, with its `record` (what
    config.json holds; its checkpoints carry it)."""
    seed = run_seed(cfg["SEED"], run["split"])
    torch.manual_seed(seed)
    model = make_model(cfg["MODEL"], num_classes, in_channels, etf_classifier=cfg["ETF_CLASSIFIER"], device=device)
    opt = make_optimizer(model, run["lr"], cfg["MOMENTUM"], cfg["NESTEROV"], cfg["WEIGHT_DECAY"],
                         fused=device.type == "cuda")
    sched_lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["EPOCHS"])  # stepped once per epoch
    settings = run_settings(run, cfg)
    schedule = make_schedule(run["regularizer"], cfg["EPOCHS"],  # 0.0 for a parameter the schedule does not use
                             **{k: 0.0 if settings[k] is None else settings[k] for k in ("lam", "beta", "beta0")})
    penalty = make_loss(run["regularizer"], cfg["METRIC"])
    copies_equal = not cfg["AUGMENT"] and not any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    return RunState(model, opt, sched_lr, schedule, penalty, torch.Generator(device=device).manual_seed(seed),
                    copies_equal, record)


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


def train_epoch(cfg: dict, state: RunState, train: data.TrainSubset, lam: float,
                beta: float) -> tuple[float, float, float]:
    """One pass over the anchors in group batches; the mean cross-entropy and penalty, and the fraction of tree edges
    between copies of one image (`duplicate_edges`), in one host read."""
    G, n = cfg["GROUPS_PER_BATCH"], cfg["SAMPLES_PER_GROUP"]
    batches = data.group_batches(train.y, train.members, train.counts, G, n, state.gen)          # (B, G·n)
    black = -train.mean / train.std  # the crop's padding is black, as when cropping before normalising
    device = train.y.device
    ce_sum, top_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    for idx in batches:
        x = train.x[idx]                                                                   # (G·n, C, H, W)
        if cfg["AUGMENT"]:
            x = data.random_crop(x, cfg["CROP_PADDING"], state.gen, fill=black)
        ce, top = train_step(state.model, state.opt, state.penalty, x, train.y[idx], lam, beta, G, n)
        if top is not None:
            top_sum += top
        ce_sum += ce
    ce_mean, top_mean, dup = torch.cat([torch.stack([ce_sum, top_sum]).div(len(batches)),
                                        duplicate_edges(batches, G, n).view(1)]).tolist()
    return ce_mean, top_mean, dup


def train_run(cfg: dict, d: dict, run: dict, folder: Path, device: torch.device, meta: dict,
              position: int = 0) -> dict:
    """Train `run` to the end in `folder` (under its lock): write or check its config.json, resume from its ckpt.pt
    where there is one, then per epoch `train_epoch`, `evaluate`, a log line, and every CKPT_EVERY epochs (and at
    the last) a checkpoint. Returns what final.json holds (`final_record`); `meta` is this process's provenance."""
    E = cfg["EPOCHS"]
    train, held, source = data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], run["split"], cfg["SEED"], device)
    record = run_record(cfg, d, run, train, source)
    check_run_config(folder, record)
    if "seeded" in source:
        tqdm.write(f"{run['name']}: {source}")
    state = build_run(cfg, run, d["num_classes"], d["in_channels"], device, record)
    log_path, ckpt_path = folder / "log.jsonl", folder / "ckpt.pt"
    start, seconds = resume(state, run["name"], device, ckpt_path, log_path, meta)
    evals = set(eval_epochs(E, cfg["EVAL_EPOCHS"]))
    bar = tqdm(range(start, E + 1), desc=run["name"], position=position, leave=False, initial=start - 1, total=E,
               disable=not cfg["PROGRESS"], dynamic_ncols=True)
    last_ckpt = start - 1 if start > 1 else None
    t0 = time.perf_counter() - seconds
    with open(log_path, "a") as log:
        for epoch in bar:
            lam, beta = state.schedule.values(epoch)
            lr = state.opt.param_groups[0]["lr"]
            ce_mean, top_mean, dup = train_epoch(cfg, state, train, lam, beta)
            if not (math.isfinite(ce_mean) and math.isfinite(top_mean)):
                good = (f"{ckpt_path} (epoch {last_ckpt})" if last_ckpt else
                        "none (diverged before the first checkpoint)")
                raise RunDiverged(f"{run['name']}: non-finite loss in epoch {epoch} (cross-entropy {ce_mean}, "
                                  f"topological {top_mean}); last good checkpoint: {good}")
            ev = evaluate(state.model, train, held, cfg["METRIC"], d["num_classes"],
                          with_test=epoch in evals or cfg["EVAL_TEST_EVERY_EPOCH"], batch=cfg["EVAL_BATCH"])
            state.schedule.end_epoch(epoch, ev["train_acc"])
            state.sched_lr.step()
            dup = dup if state.copies_equal else None  # crops or dropout make two copies of an image differ
            log.write(json.dumps(log_line(state, epoch, lr, lam, beta, ce_mean, top_mean, dup, ev)) + "\n")
            log.flush()  # on disk before the checkpoint that counts it (fsync there); a resume cuts what follows
            bar.set_postfix(ce=f"{ce_mean:.3f}", top=f"{top_mean:.2f}", train=f"{ev['train_acc']:.3f}",
                            **({"test": f"{ev['test_acc']:.4f}"} if "test_acc" in ev else {}))
            if epoch % cfg["CKPT_EVERY"] == 0 or epoch == E:
                os.fsync(log.fileno())
                save_checkpoint(ckpt_path, state, device, epoch, log_path.read_text(), time.perf_counter() - t0)
                last_ckpt = epoch
    bar.close()
    return final_record(state, log_path, E, t0)


def log_line(state: RunState, epoch: int, lr: float, lam: float, beta: float, ce: float, top: float, dup,
             ev: dict) -> dict:
    """One epoch's line of log.jsonl: the penalty only where λ > 0, the fraction of tree edges between copies of one
    image (`duplicate_edges`; None with augmentation), the ETF classifier's learned scale s where there is one, and
    the evaluation."""
    scale = getattr(state.model.classifier, "scale", None)
    return dict(epoch=epoch, lr=lr, lam=lam, beta=beta, ce=ce, top=top if lam > 0 else None, zero_edges=dup,
                **({} if scale is None else {"etf_scale": scale.item()}), **ev)


def final_record(state: RunState, log_path: Path, epochs: int, t0: float) -> dict:
    """What final.json holds besides the run and its provenance: the last log line's accuracies and collapse metrics,
    the first epoch that fit the training set, the schedule's state, the seconds of training (since `t0`, less those
    before this process) and the segments. Read from the log, so also for a run resumed at its end."""
    lines = read_log(log_path)[0]
    line = lines[-1]
    return dict(test_acc=line["test_acc"], train_acc=line["train_acc"], val_acc=line.get("val_acc"),
                tpt_epoch=first_fit_epoch(lines), schedule_state=state.schedule.state_dict(), train=line["train"],
                test=line["test"], seconds=round(time.perf_counter() - t0, 1), segments=trained_segments(state, epochs))


# ----------------------------------------------------------------------------------------------- the run's folder
def run_one(cfg: dict, d: dict, run: dict, out: Path, device: torch.device, meta: dict, position: int = 1) -> dict:
    """Train `run` of a study in its folder, under the run's lock, and record the outcome there: final.json,
    diverged.json or failed.json. Returns {"status": finished | diverged | failed | busy | done, ...}. The one code
    path of a run, whatever executes it. A folder that cannot be written (read-only, a full disk) stops this run with
    one message, also where its failed.json cannot be written; the other runs go on."""
    folder = out / "runs" / run["name"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / ".lock", wait=False) as lock:  # several processes may share OUT_DIR: one trains each
            lock.truncate(0)
            lock.write(f"{platform.node()} {os.getpid()}\n")  # who trains it, for a person (or a test) to see
            lock.flush()
            if is_done(folder):  # finished by another process meanwhile
                return dict(status="done")
            for stale in folder.glob(".*.tmp.*"):  # left by a process killed mid-write; nobody writes them now
                stale.unlink()
            try:
                final = train_run(cfg, d, run, folder, device, meta, position)
            except OSError:
                raise  # a folder that cannot be written: said below, without a traceback
            except Exception as e:  # the other runs go on
                return record_stopped(folder, run["name"], meta, e)
            return record_finished(folder, run, meta, final)
    except BlockingIOError:
        tqdm.write(f"{run['name']}: being trained by another process, skipped")
        return dict(status="busy")
    except OSError as e:  # even failed.json could not be written: nothing more to record here
        message = (f"{run['name']}: cannot write in {folder} ({e.strerror or type(e).__name__}: "
                   f"{e.filename or folder}); free space or make the folder writable, then run the same command "
                   "again to resume")
        tqdm.write(message)
        return dict(status="failed", message=message)


def record_finished(folder: Path, run: dict, meta: dict, final: dict) -> dict:
    """final.json: what `train_run` returned, the run and this process's provenance; a failed.json of an earlier
    try goes. Returns `run_one`'s answer."""
    final.update(run=run, **meta)
    atomic_write(folder / "final.json", json.dumps(final, indent=1))
    (folder / "failed.json").unlink(missing_ok=True)
    tqdm.write(f"{run['name']}: test accuracy {final['test_acc']:.4f} ({final['seconds']:.0f} s of training)")
    return dict(status="finished", test_acc=final["test_acc"])


def record_stopped(folder: Path, name: str, meta: dict, error: Exception) -> dict:
    """diverged.json for a non-finite loss (deterministic: the run's outcome, not retried); failed.json for a
    RunError (the folder needs the user: its message says what to do) or anything else (with its traceback), retried
    on the next start. Returns `run_one`'s answer."""
    if isinstance(error, (RunDiverged, RunError)):
        status = "diverged" if isinstance(error, RunDiverged) else "failed"
        tqdm.write(f"stopped: {error}" if status == "diverged" else f"{name} failed: {error}")
        atomic_write(folder / f"{status}.json", json.dumps(dict(message=str(error), **meta), indent=1))
        return dict(status=status, message=str(error))
    trace = "".join(traceback.format_exception(error))
    tqdm.write(f"{name} failed:\n{trace}")
    message = plain(trace.strip().splitlines()[-1])
    atomic_write(folder / "failed.json", json.dumps(dict(message=message, traceback=plain(trace), **meta), indent=1))
    return dict(status="failed", message=message)


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
