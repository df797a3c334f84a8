"""Where a process trains, on which kernels and with which code: set once per process, recorded beside every number.

    configure_torch(cfg, device)   threads, deterministic or fast kernels (before any CUDA work)
    where(device)                  device, CPU, kernels: what each segment of a run records (`runs.PROVENANCE_COMPARED`)
    process_provenance(device)     `where`, plus commit, library versions and date: what final.json holds beside a run

Not the report's provenance section (`folder_table.provenance_section`), which reads these fields back from final.json.
"""
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy
import torch
import torchvision

HERE = Path(__file__).resolve().parent


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


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def device_description(device: torch.device) -> str:
    """"cpu: <model>, N threads" or "cuda: <GPU name>": where a run trained."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()}, {torch.get_num_threads()} threads"


def where(device: torch.device) -> dict:
    """The provenance of the process that trains: device, CPU, kernels (after `configure_torch`)."""
    return dict(device=device_description(device), cpu=cpu_name(),
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
                deterministic=torch.are_deterministic_algorithms_enabled(),
                tf32=device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32),
                cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"))


def git(*args: str, cwd: Path = HERE) -> str:
    """git's output in `cwd` ("" where git or a repository is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version() -> tuple[str, bool]:
    """(the commit of the running code, whether its tracked files differ from it) where this file is tracked by the
    git checkout around it; ("unknown", False) for an installed copy (a wheel in site-packages, even one inside a
    checkout, holds code no commit of that checkout names)."""
    if not git("ls-files", "--error-unmatch", Path(__file__).name):
        return "unknown", False
    top = Path(git("rev-parse", "--show-toplevel"))
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", cwd=top))  # code, not logs
    return git("rev-parse", "--short", "HEAD") or "unknown", dirty


def process_provenance(device: torch.device) -> dict:
    """Commit, library versions, device, determinism and date: what a number in results/ needs beside it."""
    commit, dirty = code_version()
    return dict(commit=commit + ("+dirty" if dirty else ""), torch=torch.__version__,
                torchvision=torchvision.__version__, numpy=np.__version__, scipy=scipy.__version__,
                python=platform.python_version(), **where(device),
                date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
