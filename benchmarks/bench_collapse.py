"""Cost of the neural-collapse metrics relative to the forward pass that produces the features.

For N test features (p = 128, C = 10) this times

* metrics: ``CollapseAccumulator`` with the training means, ``update`` on batches of 1,000
  features plus one ``compute`` (all the metrics of `collapse_metrics.METRIC_NAMES`, streamed as
  the evaluation does), and
* forward: one pass of ``SimpleCNN_MNIST`` (eval mode, ``torch.no_grad``) over N images of
  1x28x28 in batches of 1,000,

in the same run, interleaved (alternating which goes first), and prints the median of the
per-repeat ratios metrics / forward. Target: <= 10 % at N = 10,000 (MNIST's test set). N = 26,032
(SVHN's test set) is printed for scale, still against SimpleCNN_MNIST on 1x28x28 inputs (SVHN
uses the much larger CNN13, so its true ratio is smaller).

Run from the repository root with the repository installed (``pip install -e .``):
``python benchmarks/bench_collapse.py [--repeats R] [--sizes N ...]``, or without installing:
``python -m benchmarks.bench_collapse``.
"""

import argparse
import statistics
import time

import torch

try:
    from collapse_metrics import CollapseAccumulator
    from models import SimpleCNN_MNIST, default_device
except ImportError as e:  # pragma: no cover - depends on how the script is launched
    raise SystemExit(
        f"{e}. Install the repository first (pip install -e .) or run "
        "`python -m benchmarks.bench_collapse` from the repository root."
    )

P, C, BATCH = 128, 10, 1000


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(model, X, device):
    _sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(X), BATCH):
            model(X[i: i + BATCH])
    _sync(device)
    return time.perf_counter() - t


def time_metrics(Hf, y, W, b, R, device):
    _sync(device)
    t = time.perf_counter()
    acc = CollapseAccumulator(C, W, b, train_means=R)
    for i in range(0, len(y), BATCH):
        acc.update(Hf[i: i + BATCH], y[i: i + BATCH])
    acc.compute()  # returns python floats: synchronises
    return time.perf_counter() - t


def bench(n, repeats, device, gen):
    model = SimpleCNN_MNIST(num_classes=C).to(device, memory_format=torch.channels_last).eval()  # as in experiment.py
    X = torch.randn(n, 1, 28, 28, generator=gen).to(device)
    # features shaped like the latent codes: float32 clusters around C class means
    y = torch.randint(0, C, (n,), generator=gen).to(device)
    mu = 3.0 * torch.randn(C, P, generator=gen)
    Hf = (mu.to(device)[y] + torch.randn(n, P, generator=gen).to(device)).float()
    R = (mu + 0.1 * torch.randn(C, P, generator=gen)).to(device)  # "training" means
    W, b = model.classifier.weight.detach(), model.classifier.bias.detach()

    time_forward(model, X, device), time_metrics(Hf, y, W, b, R, device)  # warm-up
    fwd, met = [], []
    for r in range(repeats):
        if r % 2:
            met.append(time_metrics(Hf, y, W, b, R, device))
            fwd.append(time_forward(model, X, device))
        else:
            fwd.append(time_forward(model, X, device))
            met.append(time_metrics(Hf, y, W, b, R, device))
    ratio = statistics.median(m / f for m, f in zip(met, fwd))
    return statistics.median(met), statistics.median(fwd), ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 26_032])
    args = parser.parse_args()
    device = default_device()
    gen = torch.Generator().manual_seed(0)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"p={P}, C={C}, batches of {BATCH}, median of {args.repeats} interleaved repeats")
    print(f"{'N':>7}  {'metrics [ms]':>12}  {'forward [ms]':>12}  {'metrics/forward':>15}")
    for n in args.sizes:
        met, fwd, ratio = bench(n, args.repeats, device, gen)
        print(f"{n:>7}  {1e3 * met:>12.1f}  {1e3 * fwd:>12.1f}  {100 * ratio:>14.1f}%")


if __name__ == "__main__":
    main()
