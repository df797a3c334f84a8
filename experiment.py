"""The one training loop behind `mnist_top.py` and `svhn_top.py`.

    main(constants)  →  runs = splits × regularisers (× hofer βs × lrs)  →  train_run each  →  report

Each run lives in `OUT_DIR/runs/<name>/`: `config.json` (what defines it), `log.jsonl` (one JSON line
per epoch; evaluated epochs carry test accuracy and the collapse metrics), `ckpt.pt` (everything
needed to resume bit-for-bit on a CPU) and, once finished, `final.json`. Files are replaced
atomically and the log is cut back to the checkpoint's length on resume, so a run killed at any
moment resumes to exactly the numbers of an uninterrupted one.
"""
import fcntl
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
from collapse_metrics import CollapseAccumulator, class_means, collapse_metrics
from config import ConfigError, apply_overrides
from models import MODELS, default_device, make_model
from regularizers import SCHEDULES, TopologicalLoss, describe, make_loss, make_schedule, vr0_death_times
from runs import NOT_RUN_DEFINING, plan_runs, run_settings, setting_differences

HERE = Path(__file__).resolve().parent


class RunDiverged(RuntimeError):
    """A non-finite loss: the run stops, the others go on."""


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


def provenance(device: torch.device) -> dict:
    """Commit, library versions, device and date: what a number in results/ needs beside it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    import scipy
    import torchvision
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"))  # code, not logs
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return dict(commit=commit + ("+dirty" if dirty else ""), torch=torch.__version__,
                torchvision=torchvision.__version__, numpy=np.__version__, scipy=scipy.__version__,
                python=platform.python_version(),
                device=f"{device.type}: {name}, {torch.get_num_threads()} threads" if device.type == "cpu"
                else f"cuda: {name}", cpu=cpu_name(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
                date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


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
    to choose hyperparameters by."""
    x_test, y_test = held["x_test"], held["y_test"]
    was_training = model.training
    model.eval()
    W, b = model.classifier.weight, model.classifier.bias
    z = torch.cat([model.latent(train.x[i:i + batch]) for i in range(0, train.y.numel(), batch)])  # (N, p)
    out = dict(train_acc=(model.classifier(z).argmax(1) == train.y).float().mean().item())
    if with_test:
        out["train"] = _or_error(lambda: collapse_metrics(z, train.y, W, b, num_classes))
        deaths = [vr0_death_times(z[train.y == c], metric) if int(train.counts[c]) > 1 else None
                  for c in range(num_classes)]  # a class of one image has no death time
        out["death_mean"] = [d.mean().item() if d is not None else None for d in deaths]
        out["death_max"] = [d.max().item() if d is not None else None for d in deaths]
        acc = _or_error(lambda: CollapseAccumulator(num_classes, W, b, class_means(z, train.y, num_classes)))
        correct = torch.zeros((), device=y_test.device)
        for i in range(0, y_test.numel(), batch):
            zt = model.latent(x_test[i:i + batch])                                  # (B, p)
            correct += (model.classifier(zt).argmax(1) == y_test[i:i + batch]).sum()
            if isinstance(acc, CollapseAccumulator):
                acc.update(zt, y_test[i:i + batch])
        out["test_acc"] = correct.item() / y_test.numel()
        out["test"] = _or_error(acc.compute) if isinstance(acc, CollapseAccumulator) else acc
        if held["y_val"].numel():
            x_val, y_val = held["x_val"], held["y_val"]
            correct = sum((model(x_val[i:i + batch]).argmax(1) == y_val[i:i + batch]).sum()
                          for i in range(0, y_val.numel(), batch))
            out["val_acc"] = correct.item() / y_val.numel()
    model.train(was_training)
    return out


# ----------------------------------------------------------------------------------------------- one run
def train_run(cfg: dict, run: dict, train: data.TrainSubset, held: dict, num_classes: int, in_channels: int,
              device: torch.device, folder: Path, position: int = 0) -> dict:
    """Train one (split, regulariser) run to the end, resuming from `folder/ckpt.pt` if it is there."""
    E, G, n = cfg["EPOCHS"], cfg["GROUPS_PER_BATCH"], cfg["SAMPLES_PER_GROUP"]
    seed = 1000 * cfg["SEED"] + run["split"]  # the same for every regulariser: paired runs share init and batches
    torch.manual_seed(seed)
    # channels_last: measured 1.9× faster training steps and evaluation of SimpleCNN_MNIST on a 2-core CPU
    model = make_model(cfg["MODEL"], num_classes, in_channels).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=run["lr"], momentum=cfg["MOMENTUM"], nesterov=cfg["NESTEROV"],
                          weight_decay=cfg["WEIGHT_DECAY"])
    sched_lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=E)  # stepped once per epoch
    settings = run_settings(run, cfg)
    unused = 0.0  # a parameter the schedule does not use (its `params`)
    schedule = make_schedule(run["regularizer"], E, **{k: unused if settings[k] is None else settings[k]
                                                       for k in ("lam", "beta", "beta0")})
    top_loss = make_loss(run["regularizer"], cfg["METRIC"])  # the penalty λ weighs (logged as "top")
    gen = torch.Generator(device=device).manual_seed(seed)
    log_path, ckpt_path = folder / "log.jsonl", folder / "ckpt.pt"
    evals = set(eval_epochs(E, cfg["EVAL_EPOCHS"]))
    start, tpt_epoch, seconds = 1, None, 0.0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
        written_on = ck.get("device", "cpu")
        if written_on != device.type:  # a cpu and a cuda generator draw different batches
            raise RuntimeError(f"{ckpt_path} was written on {written_on}; resume it with --DEVICE={written_on}, "
                               f"or delete {folder} to restart it on {device}")
        size = log_path.stat().st_size if log_path.exists() else -1
        if size < ck["log_bytes"]:
            raise RuntimeError(f"{log_path} is {'missing' if size < 0 else f'shorter ({size} bytes)'} than at the "
                               f"checkpoint ({ck['log_bytes']} bytes): restore it, or delete {folder} to restart")
        model.load_state_dict(ck["model"]), opt.load_state_dict(ck["optimizer"])
        sched_lr.load_state_dict(ck["lr_scheduler"]), schedule.load_state_dict(ck["schedule"])
        torch.set_rng_state(ck["rng_cpu"]), gen.set_state(ck["rng_batches"])
        if device.type == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"], device)
        start, tpt_epoch, seconds = ck["epoch"] + 1, ck["tpt_epoch"], ck.get("seconds", 0.0)
        with open(log_path, "r+b") as f:  # drop lines written after the checkpoint: they will be recomputed
            f.truncate(ck["log_bytes"])
    elif log_path.exists():  # from a run killed before its first checkpoint (or a clone without checkpoints)
        kept = log_path.with_name(f"log.orphan-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        log_path.rename(kept)
        tqdm.write(f"{run['name']}: no checkpoint, so training starts again; the old log is kept as {kept.name}")

    bar = tqdm(range(start, E + 1), desc=run["name"], position=position, leave=False, initial=start - 1, total=E,
               disable=not cfg["PROGRESS"], dynamic_ncols=True)
    last_ckpt = start - 1 if start > 1 else None
    black = -train.mean / train.std  # the crop's padding is black, as when cropping before normalising
    t0 = time.perf_counter() - seconds
    for epoch in bar:
        lam, beta = schedule.values(epoch)
        lr = opt.param_groups[0]["lr"]
        batches = data.group_batches(train.y, train.members, train.counts, G, n, gen)         # (B, G·n)
        ce_sum = torch.zeros((), device=device)
        top_sum = torch.zeros((), device=device)
        for idx in batches:
            x = train.x[idx]                                                                   # (G·n, C, H, W)
            if cfg["AUGMENT"]:
                x = data.random_crop(x, cfg["CROP_PADDING"], gen, fill=black)
            z = model.latent(x)                                                                # (G·n, p)
            ce = F.cross_entropy(model.classifier(z), train.y[idx])
            loss = ce
            if lam > 0:
                top = top_loss(z.view(G, n, -1), beta=beta)                                    # groups (G, n, p)
                loss = ce + lam * top
                top_sum += top.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ce_sum += ce.detach()
        ce_mean, top_mean = (ce_sum / len(batches)).item(), (top_sum / len(batches)).item()
        if not (math.isfinite(ce_mean) and math.isfinite(top_mean)):
            where = f"{ckpt_path} (epoch {last_ckpt})" if last_ckpt else "none (diverged before the first checkpoint)"
            raise RunDiverged(f"{run['name']}: non-finite loss in epoch {epoch} (cross-entropy {ce_mean}, "
                              f"topological {top_mean}); last good checkpoint: {where}")
        ev = evaluate(model, train, held, cfg["METRIC"], num_classes,
                      with_test=epoch in evals or cfg["EVAL_TEST_EVERY_EPOCH"], batch=cfg["EVAL_BATCH"])
        schedule.end_epoch(epoch, ev["train_acc"])
        if tpt_epoch is None and ev["train_acc"] >= 1.0:
            tpt_epoch = epoch
        sched_lr.step()
        line = dict(epoch=epoch, lr=lr, lam=lam, beta=beta, ce=ce_mean, top=top_mean if lam > 0 else None, **ev)
        with open(log_path, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())
        bar.set_postfix(ce=f"{ce_mean:.3f}", top=f"{top_mean:.2f}", train=f"{ev['train_acc']:.3f}",
                        **({"test": f"{ev['test_acc']:.4f}"} if "test_acc" in ev else {}))
        if epoch % cfg["CKPT_EVERY"] == 0 or epoch == E:
            atomic_write(ckpt_path, dict(
                model=model.state_dict(), optimizer=opt.state_dict(), lr_scheduler=sched_lr.state_dict(),
                schedule=schedule.state_dict(), rng_cpu=torch.get_rng_state(), rng_batches=gen.get_state(),
                rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                epoch=epoch, tpt_epoch=tpt_epoch, log_bytes=log_path.stat().st_size, device=device.type,
                seconds=time.perf_counter() - t0), binary=True)
            last_ckpt = epoch
    bar.close()
    line = [json.loads(l) for l in log_path.read_text().splitlines()][-1]  # also when resumed at the end
    return dict(test_acc=line["test_acc"], train_acc=line["train_acc"], tpt_epoch=tpt_epoch,
                schedule_state=schedule.state_dict(), train=line["train"], test=line["test"],
                seconds=round(time.perf_counter() - t0, 1))


# ----------------------------------------------------------------------------------------------- study
def estimate_step_seconds(cfg, train, num_classes, in_channels, device, steps=4) -> float:
    """Median wall time of a training step with the topological loss, on a throwaway model (RNG restored)."""
    rng = torch.get_rng_state()
    model = make_model(cfg["MODEL"], num_classes, in_channels).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn, G, n = TopologicalLoss(0.5, cfg["METRIC"]), cfg["GROUPS_PER_BATCH"], cfg["SAMPLES_PER_GROUP"]
    x = train.x[torch.arange(G * n, device=device) % train.y.numel()]
    y = train.y[torch.arange(G * n, device=device) % train.y.numel()]
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        z = model.latent(x)
        loss = F.cross_entropy(model.classifier(z), y) + 0.1 * loss_fn(z.view(G, n, -1))
        opt.zero_grad(), loss.backward(), opt.step()
        times.append(time.perf_counter() - t)
    torch.set_rng_state(rng)
    return float(np.median(times[1:]))


def main(constants: dict, argv: list[str] | None = None) -> int:
    """Entry point of both scripts: apply overrides, validate, run what is unfinished, write the report."""
    import report
    try:
        argv = sys.argv[1:] if argv is None else argv
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
    if cfg["THREADS"]:
        torch.set_num_threads(cfg["THREADS"])
    runs = plan_runs(cfg)
    defining = {k: v for k, v in cfg.items() if k not in NOT_RUN_DEFINING}
    # refuse to mix settings in one OUT_DIR, before any training: the report pairs every run in it by split
    for old in sorted((out / "runs").glob("*/config.json")):
        prev = json.loads(old.read_text())
        diff = setting_differences(prev["config"], defining)
        same = next((r for r in runs if r["name"] == old.parent.name), None)
        if same:
            was, now = run_settings(prev["run"], prev["config"]), run_settings(same, cfg)
            diff.update({k: (was[k], now[k]) for k in was if was[k] != now[k]})
        if diff:
            print(f"error: {old.parent} was trained with other settings {diff} (old, new); choose another "
                  f"OUT_DIR (for a first look: --OUT_DIR=results/first-look) or delete that folder", file=sys.stderr)
            return 2
    try:
        given = {a[2:].split("=", 1)[0] for a in argv}  # --DATA_ROOT beats $DATA_ROOT, which beats the constant
        root = data.resolve_data_root(constants["DATA_ROOT"], override=cfg["DATA_ROOT"] if "DATA_ROOT" in given else "")
        d = load_data(cfg, device, root)
        for split in cfg["SPLITS"]:  # every split checked before any training
            data.get_split(cfg["DATASET"], cfg["TRAIN_SIZE"], split, d["y_train"], seed=cfg["SEED"])
        check_model_input(cfg, d, device)
    except (data.DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    todo = [r for r in runs if not any((out / "runs" / r["name"] / f).exists() for f in ("final.json", "diverged.json"))]
    print(f"{cfg['DATASET']}-{cfg['TRAIN_SIZE']}: {len(runs)} runs in {out} ({len(runs) - len(todo)} already "
          f"finished), device {device}")
    if todo and device.type == "cpu":
        step = estimate_step_seconds(cfg, subset_for(cfg, d, todo[0]["split"], device)[0], d["num_classes"],
                                     d["in_channels"], device)
        per_run = step * cfg["EPOCHS"] * (cfg["TRAIN_SIZE"] // cfg["GROUPS_PER_BATCH"]) * 1.3  # + evaluation
        print(f"CPU: about {step * 1e3:.0f} ms per training step, so about {per_run / 60:.1f} min per run and "
              f"{per_run * len(todo) / 3600:.1f} h for the {len(todo)} unfinished runs. For a first look: "
              f"--EPOCHS=20 --SPLITS=0 --OUT_DIR=results/first-look")
    failures = []
    meta = provenance(device)
    for r in tqdm(todo, desc="runs", disable=not cfg["PROGRESS"], dynamic_ncols=True):
        folder = out / "runs" / r["name"]
        folder.mkdir(parents=True, exist_ok=True)
        train, held, source = subset_for(cfg, d, r["split"], device)
        with open(folder / ".lock", "w") as lock:
            try:  # several processes may share OUT_DIR: each run is trained by one of them
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                tqdm.write(f"{r['name']}: being trained by another process, skipped")
                continue
            if any((folder / f).exists() for f in ("final.json", "diverged.json")):  # done by another process
                continue
            if not (folder / "config.json").exists():
                atomic_write(folder / "config.json", json.dumps(dict(run=r, config=defining, data_source=source,
                                                                     seed=1000 * cfg["SEED"] + r["split"]), indent=1))
            if "seeded" in source:
                tqdm.write(f"{r['name']}: {source}")
            try:
                res = train_run(cfg, r, train, held, d["num_classes"], d["in_channels"], device, folder, position=1)
            except RunDiverged as e:  # deterministic: recorded as the run's outcome, not retried
                tqdm.write(f"stopped: {e}")
                atomic_write(folder / "diverged.json", json.dumps(dict(message=str(e), **meta), indent=1))
                failures.append(r["name"])
                continue
            except Exception:  # anything else: recorded, retried on the next start; the other runs go on
                tqdm.write(f"{r['name']} failed:\n{traceback.format_exc()}")
                atomic_write(folder / "failed.json", json.dumps(dict(traceback=traceback.format_exc(), **meta), indent=1))
                failures.append(r["name"])
                continue
            res.update(run=r, **meta)
            atomic_write(folder / "final.json", json.dumps(res, indent=1))
            (folder / "failed.json").unlink(missing_ok=True)
            tqdm.write(f"{r['name']}: test accuracy {res['test_acc']:.4f} ({res['seconds']:.0f} s of training)")
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
    model = make_model(cfg["MODEL"], d["num_classes"], d["in_channels"]).to(device).eval()
    try:
        with torch.no_grad():
            model(d["x_train"][:2].to(device).float())
    except RuntimeError as e:
        raise ValueError(f"MODEL={cfg['MODEL']} does not fit {cfg['DATASET']}'s images of shape "
                         f"{tuple(d['x_train'].shape[1:])}: {str(e).splitlines()[0]}") from None
