"""Overhead of the Ray executor against the local one, on one machine, in one run of this script.

    python benchmarks/bench_ray.py --data DATA_ROOT [--epochs 40] [--splits 0-1] [--workers 2]

The same study, 3 regularisers × the given splits (6 runs by default, of about a minute each at 40 epochs on a
2-core CPU), trained twice into fresh temporary folders:

* local: `--workers` processes of `mnist_top.py --THREADS=1` sharing one OUT_DIR (a lock per run), the way this
  repository ran its studies before Ray;
* ray: one `mnist_top.py --EXECUTOR=ray --CPUS_PER_RUN=1` driver on a fresh local Ray instance (one worker slot
  per core, so give `--workers` the number of cores).

It prints the wall time of each (from start to the last process's exit, including data loading, Ray's start and
the report) and their ratio; target: Ray ≤ 1.10 × local. Nothing else should run on the machine meanwhile.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def study(out: Path, args, *extra) -> list[str]:
    return [sys.executable, "mnist_top.py", f"--DATA_ROOT={args.data}", f"--OUT_DIR={out}", f"--EPOCHS={args.epochs}",
            f"--SPLITS={args.splits}", "--PROGRESS=false", *extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="DATA_ROOT holding MNIST/raw")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--splits", default="0-1")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_USAGE_STATS_ENABLED": "0"}
    if args.workers != os.cpu_count():
        print(f"note: the local Ray instance has one worker slot per core ({os.cpu_count()}), not --workers "
              f"({args.workers}): the comparison is fair only where they are equal")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        procs = [subprocess.Popen(study(Path(tmp) / "local", args, "--THREADS=1"), cwd=HERE, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(args.workers)]
        codes = [p.wait() for p in procs]
        local = time.perf_counter() - t
        if any(codes):
            sys.exit(f"local study failed: {[p.stderr.read()[-1000:] for p in procs]}")
        t = time.perf_counter()
        r = subprocess.run(study(Path(tmp) / "ray", args, "--EXECUTOR=ray", "--CPUS_PER_RUN=1"), cwd=HERE, env=env,
                           capture_output=True, text=True)
        ray = time.perf_counter() - t
        if r.returncode:
            sys.exit(f"Ray study failed:\n{r.stderr[-2000:]}")
        runs = len(list((Path(tmp) / "ray" / "runs").glob("*/final.json")))
    print(f"{runs} runs of {args.epochs} epochs, {args.workers} workers, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"local ({args.workers} processes): {local:.1f} s; ray ({args.workers} workers): {ray:.1f} s; "
          f"ratio ray / local {ray / local:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
