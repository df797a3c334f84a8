"""provenance.py: the kernels a process sets, and what it records of where and with what code it trained."""
import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy
import torch
import torchvision

from common import runs
from training import provenance

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def kernels():
    """The kernel switches `configure_torch` sets, restored after the test (conftest restores determinism)."""
    switches = [(torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32"),
                (torch.backends.cudnn, "benchmark")]
    before = [getattr(module, name) for module, name in switches]
    yield
    for (module, name), value in zip(switches, before):
        setattr(module, name, value)


@pytest.mark.parametrize("deterministic", [True, False])
def test_where_records_the_kernels_configure_torch_set(kernels, deterministic):
    provenance.configure_torch(dict(THREADS=1, DETERMINISTIC=deterministic), CPU)
    assert torch.get_num_threads() == 1 and torch.backends.cudnn.benchmark is not deterministic
    here = provenance.where(CPU)
    assert here["deterministic"] is deterministic and here["tf32"] is False     # no TF32 on a CPU, either way
    assert here["device"] == f"cpu: {provenance.cpu_name()}, 1 threads"
    assert here["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(runs.PROVENANCE_COMPARED) - {"commit", "torch"} <= set(here)     # what segments compare, but code
    provenance.configure_torch(dict(THREADS=0, DETERMINISTIC=True), CPU)       # 0: the thread count is left alone
    assert torch.get_num_threads() == 1


def test_the_cpu_is_named_as_proc_cpuinfo_names_it():
    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo on this machine")
    names = [l.split(":", 1)[1].strip() for l in info.read_text().splitlines() if l.startswith("model name")]
    assert provenance.cpu_name() == (names[0] if names else platform.processor() or platform.machine())


def test_process_provenance_names_the_commit_the_libraries_and_the_date():
    meta = provenance.process_provenance(CPU)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    assert meta["commit"].removesuffix("+dirty") == (head.strip() or "unknown")
    assert (meta["torch"], meta["torchvision"], meta["numpy"], meta["scipy"]) == \
        (torch.__version__, torchvision.__version__, np.__version__, scipy.__version__)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", meta["date"])
    assert {k: meta[k] for k in provenance.where(CPU)} == provenance.where(CPU)
    assert list(meta)[0] == "commit" and list(meta)[-1] == "date"              # final.json's order
