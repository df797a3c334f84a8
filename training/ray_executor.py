"""Ray as the executor of a study: each unfinished run one Ray task, on one machine or a cluster.

    python mnist_top.py --EXECUTOR=ray                        # a fresh local Ray instance on this machine
    python mnist_top.py --EXECUTOR=ray --RAY_ADDRESS=auto     # a running cluster (`ray start --head` / `--address`)

A task is `train.run_one`, the same function the local executor calls, so a run's folder holds the same
files and numbers whichever executor trained it (on the same kind of device and thread count: CPUS_PER_RUN is a
task's torch threads, as THREADS is a local process's). The driver loads the dataset once and puts it in Ray's
object store: worker nodes need no copy of the data, only OUT_DIR on storage that every node sees, which each
task checks (a marker the driver writes) before it trains. A task that dies with its worker or node is retried
by Ray and resumes from the run's last checkpoint; one that finds the run still locked waits for the lock, and a
run still locked after that is reported as not finished, never as finished. Ctrl-C cancels the tasks; running
the same command again resumes. Imported only for EXECUTOR=ray, so that local studies need no Ray.
"""
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import torch
from tqdm import tqdm

from common.runs import atomic_write
from training import train
from training.config import ConfigError
from training.provenance import configure_torch, where

INSTALL = 'pip install -e ".[ray]"'
MARKER = ".ray-driver-"         # + a token: written by each driver into OUT_DIR; a task that cannot read it cannot see OUT_DIR
LOCK_WAIT_S = 600               # how long a task waits for a run locked by another (e.g. a dead attempt's) process
RETRIES = 3                     # Ray retries of a task whose worker or node died


class OutDirNotVisible(RuntimeError):
    """A task's node does not see OUT_DIR as the driver wrote it."""


def require_ray():
    """The ray module, or one ConfigError that says how to install it."""
    try:
        import ray
        return ray
    except ImportError:
        raise ConfigError(f"EXECUTOR=ray needs Ray, which is not installed: {INSTALL} "
                          "(or run with EXECUTOR=local)") from None


def task_options(cfg: dict, cluster: dict) -> dict:
    """Ray's resource request of one run: CPUS_PER_RUN CPUs, and GPUS_PER_RUN of a GPU where the cluster has GPUs
    and DEVICE does not ask for the CPU (a fraction packs several small runs onto one GPU)."""
    gpu = cluster.get("GPU", 0) > 0 and cfg["DEVICE"] != "cpu" and cfg["GPUS_PER_RUN"] > 0
    return dict(num_cpus=cfg["CPUS_PER_RUN"], num_gpus=cfg["GPUS_PER_RUN"] if gpu else 0, max_retries=RETRIES)


def write_marker(out: Path) -> str:
    """A file only this driver writes (several drivers may share an OUT_DIR); returns its token."""
    token = uuid.uuid4().hex
    atomic_write(out / f"{MARKER}{token}", token)
    return token


def train_task(cfg: dict, d: dict, run: dict, out: str, token: str, meta: dict) -> dict:
    """One run in a Ray worker: check OUT_DIR, set threads and device, train through `train.run_one`."""
    out = Path(out)
    marker = out / f"{MARKER}{token}"
    try:
        seen = marker.read_text()
    except OSError:
        seen = None
    if seen != token:
        raise OutDirNotVisible(f"OUT_DIR {out} is not visible from node {os.uname().nodename} as the driver wrote it "
                               f"({marker} {'missing' if seen is None else 'differs'}): put OUT_DIR on storage that "
                               "every node of the cluster sees (a shared file system)")
    local = dict(cfg, THREADS=cfg["CPUS_PER_RUN"])
    import ray
    device = torch.device("cuda" if ray.get_gpu_ids() else "cpu")
    configure_torch(local, device)  # before any CUDA work: threads, determinism, CUBLAS_WORKSPACE_CONFIG
    d = dict(d, **{k: d[k].to(device) for k in ("x_test", "y_test", "x_val", "y_val")})
    meta = dict(meta, **where(device))  # this worker's device, CPU and kernels, not the driver's
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        result = train.run_one(local, d, run, out, device, meta, position=0)
        if result["status"] != "busy" or time.monotonic() > deadline:
            return result
        time.sleep(5)  # a retried attempt: the dead one's lock goes when its process does


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def execute_ray(cfg: dict, d: dict, todo: list[dict], out: Path, device: torch.device, meta: dict) -> list[str]:
    """Train `todo` as Ray tasks; returns the names of the runs that did not finish."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:  # "" starts a fresh local instance; a bare ray.init() would join $RAY_ADDRESS or an earlier `ray start`
        ray.init(address=cfg["RAY_ADDRESS"] or "local", include_dashboard=False, log_to_driver=True,
                 **({"_node_ip_address": "127.0.0.1"} if not cfg["RAY_ADDRESS"] else {}))
    refs, token = {}, None
    stop = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM (kill, timeout) cancels as Ctrl-C does
        stop = signal.signal(signal.SIGTERM, _interrupt)
    try:
        token = write_marker(out)
        opts = task_options(cfg, ray.cluster_resources())
        remote = ray.remote(train_task).options(**opts)
        data_ref = ray.put({k: (v.cpu() if torch.is_tensor(v) else v) for k, v in d.items()})  # once, for every task
        refs = {remote.remote(cfg, data_ref, r, str(out.resolve()), token, meta): r for r in todo}
        print(f"Ray: {len(todo)} tasks of {opts['num_cpus']} CPU(s)"
              + (f" and {opts['num_gpus']} GPU" if opts["num_gpus"] else "") + f" each on {ray.cluster_resources()}")
        failures, pending = [], list(refs)
        bar = tqdm(total=len(todo), desc="runs", disable=not cfg["PROGRESS"], dynamic_ncols=True)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            r = refs[ready[0]]
            try:
                res = ray.get(ready[0])
            except Exception as e:  # OutDirNotVisible stops the study; anything else fails this run only
                cause = getattr(e, "cause", None) or e
                if isinstance(cause, OutDirNotVisible):
                    raise ConfigError(str(cause)) from None
                res = dict(status="failed", message=f"{type(cause).__name__}: {cause}")
            bar.update()
            status = res["status"]
            if status == "finished":
                tqdm.write(f"{r['name']}: test accuracy {res['test_acc']:.4f}")
            elif status != "done":
                tqdm.write(f"{r['name']}: {status}" + (f" ({res['message']})" if res.get("message") else ""))
                failures.append(r["name"])
        bar.close()
        return failures
    except (KeyboardInterrupt, ConfigError):
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if token:
            (out / f"{MARKER}{token}").unlink(missing_ok=True)
        if started:
            ray.shutdown()
        if stop is not None:
            signal.signal(signal.SIGTERM, stop)
