"""Whether a run's folder can go on, and from where: its record, its checkpoint saved and restored, the resume checks.

    check_run_config(folder, record)     config.json written, or checked against this process's settings and images
    resume(state, ...)                   the first epoch to train: `restore_checkpoint` where ckpt.pt is, else epoch 1
    save_checkpoint(path, state, ...)    everything needed to resume bit for bit, and the log up to it

A run killed at any moment resumes to exactly the numbers of an uninterrupted one (on the same kind of device). What
cannot go on as the folder stands is one `RunError` that names the file and what to do: a checkpoint that cannot be
read, that holds no record of its run (an older format: ckpt.pt is never committed, so such a run trains anew), that
belongs to another run or was written on another device, and a config.json of other settings. A log changed before
its checkpoint is kept beside and rebuilt from the text the checkpoint holds.
"""
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

import data
from common.runs import (PROVENANCE_COMPARED, SPLIT_DIGEST_V2, atomic_write, defining_settings, images_difference,
                         loads, not_regular, run_seed, run_settings, setting_differences)
from common.schedules import Schedule

# what a checkpoint holds besides `RunState.stateful`'s state dicts and its record (`save_checkpoint`)
CHECKPOINT_KEYS = ("rng_cpu", "rng_batches", "rng_cuda", "epoch", "log_text", "log_bytes", "device", "seconds")


class RunError(RuntimeError):
    """A run that cannot go on as its folder stands (an unreadable checkpoint, a log that does not match it,
    other settings): the message names the file and what to do. Recorded in failed.json; the other runs go on."""


@dataclass
class RunState:
    """Everything of one run that training changes, built the same way for a fresh start and a resume
    (`train.build_run`): what a checkpoint saves and restores, with the record and segments that say whose it is and
    where its epochs trained."""
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched_lr: torch.optim.lr_scheduler.LRScheduler
    schedule: Schedule
    penalty: torch.nn.Module  # the loss that λ weighs (a module of regularizers.LOSSES)
    gen: torch.Generator      # draws batches (and crops): on the run's device
    copies_equal: bool        # two copies of an image in a batch get equal codes (no crop, no dropout)
    record: dict | None = None  # what config.json holds: saved in each checkpoint, checked on resume
    segments: list = field(default_factory=list)  # the epochs trained before this process, and where (checkpoint)
    segment: dict | None = None  # this process's first epoch and PROVENANCE_COMPARED

    def stateful(self) -> dict:
        """The one list of what a checkpoint saves and restores through state_dict (plus the RNG states)."""
        return {"model": self.model, "optimizer": self.opt, "lr_scheduler": self.sched_lr, "schedule": self.schedule}


# ----------------------------------------------------------------------------------------------- the run's record
def run_record(cfg: dict, d: dict, run: dict, train: data.TrainSubset, source: str) -> dict:
    """What config.json holds, and each checkpoint: the run, its run-defining settings, where its training images
    came from and their digests, its seed and the data files' MD5 (`d` from `experiment.prepare`)."""
    idx, _ = data.get_split(cfg["DATASET"], cfg["TRAIN_SIZE"], run["split"], d["y_train"], seed=cfg["SEED"],
                            exclude=d["val"])
    return dict(run=run, config=defining_settings(cfg), data_source=source, split_digest=split_digest(train),
                **{SPLIT_DIGEST_V2: data.images_digest(d["x_train"][idx], d["y_train"][idx])},
                seed=run_seed(cfg["SEED"], run["split"]), data_files=d.get("data_files", "not recorded"))


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
    if wrong := not_regular(path):
        raise RunError(f"{path} {wrong}: move it away (it is no run's record), then run the same command again")
    if not path.exists():
        atomic_write(path, json.dumps(record, indent=1))
        return
    try:
        old = loads(path.read_text())
        old["config"], old["run"]["regularizer"]  # noqa: B018 - the keys every record has
    except (ValueError, KeyError, TypeError) as e:  # not JSON (nor UTF-8), an integer too large, or not a record
        raise RunError(f"{path} cannot be read ({type(e).__name__}: {first_sentence(str(e))}): restore it, or move "
                       f"{folder} away to train the run anew") from None
    diff = config_differences(old, record)
    if diff:
        raise RunError(f"{path} was written with other settings {diff} (old, new): run with those, or move "
                       f"{folder} away to train the run anew")


# ----------------------------------------------------------------------------------------------- resume
def resume(state: RunState, name: str, device: torch.device, ckpt_path: Path, log_path: Path,
           meta: dict) -> tuple[int, float]:
    """(first epoch to train, seconds of training so far): from the checkpoint where there is one; a log without one
    (a run killed before its first checkpoint) is kept aside and training starts over. Notes this process's segment
    (its first epoch, and `meta`'s PROVENANCE_COMPARED), and says so where the earlier ones trained elsewhere."""
    start, seconds = 1, 0.0
    for path in (ckpt_path, log_path):
        if wrong := not_regular(path):
            raise RunError(f"{path} {wrong}: move it away, then run the same command again ({ckpt_path.name} and "
                           f"{log_path.name} are the run's own files)")
    if ckpt_path.exists():
        start, seconds = restore_checkpoint(ckpt_path, state, device, log_path)
    elif log_path.exists():
        kept = log_path.with_name(f"log.orphan-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        log_path.rename(kept)
        tqdm.write(f"{name}: no checkpoint, so training starts again; the old log is kept as {kept.name}")
    state.segment = dict(first_epoch=start, **{k: meta.get(k, "not recorded") for k in PROVENANCE_COMPARED})
    say_if_resumed_elsewhere(name, state)
    return start, seconds


def save_checkpoint(path: Path, state: RunState, device: torch.device, epoch: int, log_text: str,
                    seconds: float) -> None:
    """Everything needed to resume bit for bit: state dicts, RNG states, the run's record, and the log up to here (to
    verify the log on resume, and rebuild it if it was changed). Tensors and plain types only (the record and
    segments as JSON text), so it loads with weights_only."""
    ck = dict(**{k: obj.state_dict() for k, obj in state.stateful().items()},
              rng_cpu=torch.get_rng_state(), rng_batches=state.gen.get_state(),
              rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
              epoch=epoch, log_text=log_text, log_bytes=len(log_text.encode()), device=device.type, seconds=seconds,
              segments=json.dumps(trained_segments(state, epoch)), record=json.dumps(state.record))
    # in memory first, then written by Python: a full disk is then an OSError (ENOSPC), which train.run_one says in
    # one message; torch's own file writer raises an unexplained RuntimeError ("unexpected pos ...") instead
    buffer = io.BytesIO()
    torch.save(ck, buffer)
    atomic_write(path, lambda tmp: write_bytes(tmp, buffer.getbuffer()))


def write_bytes(path: Path, data) -> None:
    """Write `data` to `path` (the one place a checkpoint's bytes reach the disk)."""
    with open(path, "wb") as f:
        f.write(data)


def restore_checkpoint(path: Path, state: RunState, device: torch.device, log_path: Path) -> tuple[int, float]:
    """Load `path` into `state` once it shows it is this run's (`state.record`) and of this device, and bring the log
    back to the checkpoint; returns (next epoch, seconds of training so far)."""
    ck = _load_checkpoint(path, state, log_path)
    if ck["device"] != device.type:  # a cpu and a cuda generator draw different batches
        raise RunError(f"{path} was written on {ck['device']}; resume it with --DEVICE={ck['device']}, "
                       f"or move {path.parent} away to restart it on {device}")
    _restore_log(ck, path, log_path)
    for k, obj in state.stateful().items():
        obj.load_state_dict(ck[k])
    torch.set_rng_state(ck["rng_cpu"]), state.gen.set_state(ck["rng_batches"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(ck["rng_cuda"], device)
    # a checkpoint from before segments were kept: where its epochs trained is not known
    state.segments = json.loads(ck["segments"]) if "segments" in ck else [dict(first_epoch=1, last_epoch=ck["epoch"])]
    return ck["epoch"] + 1, ck["seconds"]


def _load_checkpoint(path: Path, state: RunState, log_path: Path) -> dict:
    """The checkpoint's contents, loaded with weights_only (a planted pickle never executes), once its record shows
    it is this run's (`_check_record`); anything unreadable or incomplete is one RunError that says what to do."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)  # RNG states must stay on the CPU
        if not isinstance(ck, dict):
            raise TypeError(f"it holds a {type(ck).__name__}, not a checkpoint")
    except Exception as e:  # truncated, random bytes, empty, or a pickle that is not a checkpoint: never executed
        raise _unreadable(path, log_path, e) from None
    _check_record(ck, path, state.record)
    missing = [k for k in (*state.stateful(), *CHECKPOINT_KEYS) if k not in ck]
    if missing:
        raise _unreadable(path, log_path, KeyError(f"no {', '.join(missing)}"))
    return ck


def _unreadable(path: Path, log_path: Path, e: Exception) -> RunError:
    """The one message of a checkpoint that cannot be read (`e`, why), and whether the log beside it is safe."""
    log = (f"The log {log_path.name} beside it is intact. " if log_path.exists() else
           f"There is no {log_path.name} beside it. ")
    return RunError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first_sentence(str(e))}). {log}"
                    f"Restore ckpt.pt (from a backup), or move {path.parent} away to train the run from the start.")


def _check_record(ck: dict, path: Path, record: dict) -> None:
    """Refuse a checkpoint of another run (copied in from another folder, say): its record must equal the folder's
    config.json by `config_differences`, the resume check. One without a record (written before checkpoints held
    one) cannot be checked, so it is refused too: no committed run depends on a checkpoint."""
    if "record" not in ck or ck["record"] == "null":
        raise RunError(f"{path} holds no record of its run (it was written before checkpoints held one), so nothing "
                       f"shows that it belongs to {path.parent.name}: move ckpt.pt away (or delete it) and run the "
                       "same command again to train this run from the start")
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
    changed (the changed log kept beside as log.changed-<time>.jsonl), then cut to the checkpoint's length."""
    text = log_path.read_bytes() if log_path.exists() else None
    if text is None or not text.startswith(ck["log_text"].encode()):
        if text is not None:
            kept = log_path.with_name(f"log.changed-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
            log_path.rename(kept)
            tqdm.write(f"{log_path} did not match its checkpoint: kept as {kept.name}, rebuilt from {path.name}")
        atomic_write(log_path, ck["log_text"])
    with open(log_path, "r+b") as f:  # drop lines written after the checkpoint: they will be recomputed
        f.truncate(ck["log_bytes"])


# ----------------------------------------------------------------------------------------------- segments
def trained_segments(state: RunState, last_epoch: int) -> list[dict]:
    """The segments of a run up to `last_epoch`: each a stretch of epochs one process trained, with its
    PROVENANCE_COMPARED (commit, torch, device, CPU capability, determinism, TF32)."""
    if state.segment is None or last_epoch < state.segment["first_epoch"]:
        return list(state.segments)
    return [*state.segments, dict(state.segment, last_epoch=last_epoch)]


def say_if_resumed_elsewhere(name: str, state: RunState) -> None:
    """One line where this process resumes a run with other code or on another machine than its earlier epochs:
    such a run is not bit-exact with one trained in one go (final.json lists its segments; the report marks it)."""
    changed = [k for k in PROVENANCE_COMPARED if any(s[k] != state.segment[k] for s in state.segments if k in s)]
    if changed:
        before = "; ".join(f"{k} {sorted({str(s[k]) for s in state.segments if k in s})}" for k in changed)
        tqdm.write(f"{name}: resumed at epoch {state.segment['first_epoch']} with another {', '.join(changed)} than "
                   f"its earlier epochs ({before}; now {'; '.join(f'{k} {state.segment[k]}' for k in changed)}); it is "
                   "not bit-exact with a run trained in one go, and final.json lists where each segment trained")


# ----------------------------------------------------------------------------------------------- messages
def plain(text: str) -> str:
    """Text without terminal colour codes (torch's weights_only errors carry them)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def first_sentence(text: str) -> str:
    """The first sentence of a message's first line, without colour codes: what a one-line message can quote whole."""
    line = plain(text).strip().split("\n")[0]
    return line.split(". ")[0].rstrip(".") if line else "no message"
