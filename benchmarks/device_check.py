"""Every check that needs a GPU, in one command, each part time-capped, with a markdown summary written part by part.

    python benchmarks/device_check.py OUT_FOLDER [--data DATA_ROOT] [--budget SECONDS]

On a CUDA machine, in this order (the caps add up to about 7 minutes):

1. environment: GPU, torch, CUDA, cuDNN;
2. the CUDA-marked tests (`pytest -m cuda`): loss and gradients equal to the CPU's in float64, reproducible CUDA
   batches and crops, a deterministic tiny run twice identical, kill-and-resume identical, no host sync in a step;
3. persistence on CUDA: forward + backward of the topological loss at Hofer et al.'s sizes, and the pairwise
   distances as one batched `torch.cdist` against a loop of `torch.pdist` (the choice `regularizers._pairwise` makes);
4. collapse metrics against a forward pass (`benchmarks/bench_collapse.py`) on CUDA;
5. training steps of SimpleCNN_MNIST and CNN-13 with and without the topological loss, deterministic on and off
   (`train.train_step` through `benchmarks/bench_persistence.part_training`);
6. last, one full MNIST-250 run (sliding, split 0, 310 epochs, DETERMINISTIC=True): its `seconds` and test accuracy
   from final.json, against the target of 60 s and the committed CPU run's 95.00 % (within the noise floor, not bit
   for bit: another device draws other batches).

On a machine without CUDA it says so and runs parts 3–5 on the CPU (briefly). Each part runs in a child process
with a time cap, so that a part that hangs or is cut off still leaves the summary of the others in
OUT_FOLDER/summary.md (written after every part). MNIST for part 6 is looked up in DATA_ROOT (default: data/ here),
as the four IDX files in MNIST/raw/ or gzip-compressed as *.gz (which this script unpacks to a scratch folder):
copy data/MNIST to that machine with the repository (benchmarks/README.md).
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
COMMITTED_SPLIT0_SLIDING = 95.00  # results/mnist-250/runs/sliding_beta1.1_lr0.1_split00 (CPU, 1 thread)


def part_env() -> str:
    import torch
    if not torch.cuda.is_available():
        return f"CUDA was not found: torch {torch.__version__}, {os.cpu_count()} CPU cores. CUDA parts skipped."
    p = torch.cuda.get_device_properties(0)
    return (f"{torch.cuda.get_device_name(0)} ({p.total_memory / 2 ** 30:.0f} GiB, {torch.cuda.device_count()} "
            f"device(s)); torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")


def part_tests() -> str:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                        "tests/test_cuda.py", "tests/test_regularizers.py", "tests/test_collapse_metrics.py"],
                       cwd=HERE, capture_output=True, text=True)
    tail = (r.stdout + r.stderr).strip().splitlines()
    failures = [l for l in tail if l.startswith(("FAILED", "ERROR"))]
    return "\n".join([f"pytest -m cuda: exit {r.returncode}; {tail[-1] if tail else 'no output'}", *failures])


def _timed(f, repeats, sync):
    import statistics
    f(), sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def part_persistence() -> str:
    import torch
    from regularizers import TopologicalLoss
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = ["| (G, n, d) | metric | loss fwd+bwd (ms) | pdist loop (ms) | batched cdist (ms) |", "|---|---|---|---|---|"]
    for G, n, d in [(8, 16, 128), (10, 64, 128), (16, 128, 512)]:
        x = torch.randn(G, n, d, device=dev, requires_grad=True)
        for metric, p in (("l2", 2.0), ("l1", 1.0)):
            loss = TopologicalLoss(0.5, metric)
            fb = _timed(lambda: loss(x).backward(), 20, sync)
            xd = x.detach()
            loop = _timed(lambda: torch.stack([torch.pdist(xg, p) for xg in xd]), 20, sync)
            batched = _timed(lambda: torch.cdist(xd, xd, p=p, compute_mode="donot_use_mm_for_euclid_dist"), 20, sync)
            rows.append(f"| ({G}, {n}, {d}) | {metric} | {fb:.2f} | {loop:.2f} | {batched:.2f} |")
    return f"device {dev}\n\n" + "\n".join(rows)


def part_collapse() -> str:
    import torch
    quick = [] if torch.cuda.is_available() else ["--sizes", "10000"]  # a CPU forward over 26,032 images is slow
    r = subprocess.run([sys.executable, "benchmarks/bench_collapse.py", "--repeats", "5", *quick], cwd=HERE,
                       capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


def part_steps() -> str:
    import torch
    sys.path.insert(0, str(HERE / "benchmarks"))
    from bench_persistence import part_training
    from models import default_device
    from training.provenance import configure_torch
    dev = default_device()
    steps = 100 if dev.type == "cuda" else 10
    rows = ["| model | deterministic | step without penalty (ms) | with L_top (ms) | ratio | with L_center (ms) | "
            "L_center / L_top |", "|---|---|---|---|---|---|---|"]
    for deterministic in (True, False):
        configure_torch(dict(THREADS=0, DETERMINISTIC=deterministic), dev)  # as a run sets it
        for model in ("SimpleCNN_MNIST", "CNN13") if dev.type == "cuda" else ("SimpleCNN_MNIST",):  # CNN-13: s/step
            r = part_training(steps, dev, model_name=model, metric="l1" if model == "SimpleCNN_MNIST" else "l2")
            rows.append(f"| {model} | {deterministic} | {r['without_ms']:.2f} | {r['with_ms']:.2f} | {r['ratio']:.3f} | "
                        f"{r['center_ms']:.2f} | {r['center_vs_top']:.3f} |")
    return f"device {dev}, {steps} interleaved steps of each kind\n\n" + "\n".join(rows)


def mnist_root(data_root: Path) -> Path:
    """A root holding MNIST/raw with the four IDX files: `data_root` itself, or a scratch copy unpacked from *.gz."""
    raw = data_root / "MNIST" / "raw"
    if all((raw / f).exists() for f in MNIST_FILES):
        return data_root
    if all((raw / f"{f}.gz").exists() for f in MNIST_FILES):
        scratch = Path(tempfile.mkdtemp(prefix="mnist-")) / "MNIST" / "raw"
        scratch.mkdir(parents=True)
        for f in MNIST_FILES:
            with gzip.open(raw / f"{f}.gz", "rb") as src, open(scratch / f, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return scratch.parents[1]
    raise FileNotFoundError(f"no MNIST in {raw} (the four IDX files, or *.gz of them)")


def part_full_run(out: Path, data_root: Path, cap: float) -> str:
    root = mnist_root(data_root)
    run_out = out / "mnist-250-sliding-split0"
    cmd = [sys.executable, "mnist_top.py", "--REGULARIZERS=sliding", "--SPLITS=0", "--DEVICE=cuda",
           "--DETERMINISTIC=true", "--PROGRESS=false", "--DOWNLOAD=false", f"--DATA_ROOT={root}", f"--OUT_DIR={run_out}"]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=cap)
    wall = time.perf_counter() - t
    final = run_out / "runs" / "sliding_beta1.1_lr0.1_split00" / "final.json"
    if not final.exists():
        return f"exit {r.returncode} after {wall:.0f} s, no final.json:\n{(r.stdout + r.stderr)[-2000:]}"
    f = json.loads(final.read_text())
    return (f"`{' '.join(cmd[1:])}`\n\nseconds (final.json) {f['seconds']:.1f} (target <= 60), wall {wall:.0f} s with "
            f"data loading; test accuracy {100 * f['test_acc']:.2f} % (committed CPU run {COMMITTED_SPLIT0_SLIDING:.2f} "
            f"%; another device draws other batches: compare within the noise floor); device {f['device']}, "
            f"deterministic {f.get('deterministic')}, tf32 {f.get('tf32')}, commit {f['commit']}")


PARTS = {"env": (part_env, 30), "tests": (part_tests, 150), "persistence": (part_persistence, 30),
         "collapse": (part_collapse, 30), "steps": (part_steps, 60)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for summary.md")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="DATA_ROOT holding MNIST/raw (default: data/)")
    parser.add_argument("--budget", type=float, default=430, help="seconds for all parts together")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one part in this (child) process
    args = parser.parse_args()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts, in every child too
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))  # children
    sys.path.insert(0, str(HERE))
    if args.part:
        print(PARTS[args.part][0]())
        return 0
    import torch
    cuda = torch.cuda.is_available()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = args.out / "summary.md"
    start = time.perf_counter()
    lines = [f"# device_check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]

    def record(name, text, seconds):
        lines.extend([f"## {name} ({seconds:.0f} s)", "", text.strip(), ""])
        summary.write_text("\n".join(lines))
        print(f"## {name} ({seconds:.0f} s)\n{text.strip()}\n", flush=True)

    for name, (_, cap) in PARTS.items():
        if name == "tests" and not cuda:
            record(name, "skipped: CUDA was not found (the CPU suite is `pytest`)", 0)
            continue
        cap = min(cap, args.budget - (time.perf_counter() - start) - (130 if cuda else 0))
        if cap < 5:
            record(name, "skipped: the time budget is spent", 0)
            continue
        t = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, __file__, str(args.out), "--part", name], cwd=HERE,
                               capture_output=True, text=True, timeout=cap)
            text = r.stdout if r.returncode == 0 else f"exit {r.returncode}:\n{(r.stdout + r.stderr)[-2000:]}"
        except subprocess.TimeoutExpired:
            text = f"cut off at its cap of {cap:.0f} s"
        record(name, text, time.perf_counter() - t)
    if cuda:
        cap = max(10.0, args.budget - (time.perf_counter() - start))
        t = time.perf_counter()
        try:
            text = part_full_run(args.out, args.data, cap)
        except subprocess.TimeoutExpired:
            text = f"cut off at its cap of {cap:.0f} s (the 310-epoch run did not finish)"
        except FileNotFoundError as e:
            text = f"skipped: {e}"
        record("full MNIST-250 run", text, time.perf_counter() - t)
    else:
        record("full MNIST-250 run", "skipped: CUDA was not found (a CPU run takes about 5 minutes: see README)", 0)
    print(f"summary: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
