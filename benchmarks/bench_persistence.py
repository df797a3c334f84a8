"""Speed of the topological loss (`regularizers.TopologicalLoss`) against what a user would otherwise pick.

Part 1, persistence. For (G, n, d) in {(8, 16, 128), (10, 64, 128), (16, 128, 512)} and each metric
(l2, l1, linf) it times, on the CPU, interleaved in the same run (the order rotates every round):

* ours: forward + backward of L_top = (1/G) Σ_g Σ_k |d_gk − β| (Hofer et al., ICML 2020);
* pytorch-topological (PyPI ``torch-topological``): ``VietorisRipsComplex(dim=0, p=...)``, the same
  loss on its finite diagram, forward + backward (it calls giotto-ph group by group);
* forward only, per group, from numpy arrays: scipy (``pdist`` + ``minimum_spanning_tree``),
  giotto-ph ``ripser_parallel(maxdim=0, metric=...)`` and gudhi ``RipsComplex`` (from points for l2,
  from scipy's distance matrix for l1 / linf).

It prints each median in ms and the ratio other / ours (> 1: ours is faster). Target for l2: ≥ 2×
against pytorch-topological at every size and faster than giotto-ph's forward alone. A library that
is not installed is reported as such and skipped.

Part 2, overhead in a real training step: ``SimpleCNN_MNIST``, a batch of 8 groups × 16 images
(each group an anchor plus 15 draws with replacement from 25 images of its class, so with duplicates),
SGD step with cross-entropy, without a penalty, with + 0.1 · L_top (l1, β = 0.5) as in the MNIST protocol,
and with + 0.1 · each other penalty (`regularizers.LOSSES`: the centroid controls `center` and `center_radius`,
the halves `floor` and `ceiling` of L_top): the training loop's own step, `train.train_step`. The kinds of step
follow each other in an order that rotates every round, ``--steps`` of each; it prints the median step times, the
ratio of the L_top step to the step without a penalty (median and quartiles of the per-round ratios) and each
other penalty's step against the L_top step. Targets: L_top ≤ 1.05 × the plain step; every other penalty ≤ L_top.

Run from the repository root with the repository installed (``pip install -e .``):
``python benchmarks/bench_persistence.py [--repeats R] [--steps S] [--threads T]``,
or without installing: ``python -m benchmarks.bench_persistence``.
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch

try:
    from models import default_device, make_model, make_optimizer
    from regularizers import LOSSES, TopologicalLoss
    from training.train import train_step
except ImportError as e:  # pragma: no cover - depends on how the script is launched
    raise SystemExit(f"{e}. Install the repository first (pip install -e .) or run "
                     "`python -m benchmarks.bench_persistence` from the repository root.")

SIZES = [(8, 16, 128), (10, 64, 128), (16, 128, 512)]
METRICS = ["l2", "l1", "linf"]
P = {"l2": 2.0, "l1": 1.0, "linf": float("inf")}
SCIPY_NAME = {"l2": "euclidean", "l1": "cityblock", "linf": "chebyshev"}
GPH_NAME = {"l2": "euclidean", "l1": "manhattan", "linf": "chebyshev"}
BETA = 0.5


def optional_imports():
    """The other libraries, each None with the reason where it cannot be imported."""
    libs, missing = {}, {}
    try:
        from torch_topological.nn import VietorisRipsComplex
        libs["torch_topological"] = VietorisRipsComplex
    except ImportError as e:
        missing["pytorch-topological"] = f"not installed ({e}); pip install torch-topological"
    try:
        from gph import ripser_parallel
        libs["gph"] = ripser_parallel
    except ImportError as e:
        missing["giotto-ph"] = f"not installed ({e}); pip install giotto-ph"
    try:
        import gudhi
        libs["gudhi"] = gudhi
    except ImportError as e:
        missing["gudhi"] = f"not installed ({e}); pip install gudhi"
    try:
        from scipy.sparse.csgraph import minimum_spanning_tree
        from scipy.spatial.distance import pdist, squareform
        libs["scipy"] = (pdist, squareform, minimum_spanning_tree)
    except ImportError as e:
        missing["scipy"] = f"not installed ({e})"
    return libs, missing


def contenders(x, metric, libs):
    """name -> zero-argument callable doing one timed unit of work on the cloud x (G, n, d)."""
    loss = TopologicalLoss(BETA, metric)
    xg = x.clone().requires_grad_()
    xs = x.numpy()

    def ours():
        xg.grad = None
        loss(xg).backward()

    fs = {"ours fwd+bwd": ours}
    if "torch_topological" in libs:
        vr = libs["torch_topological"](dim=0, p=P[metric])
        xt = x.clone().requires_grad_()

        def torch_topological():
            xt.grad = None
            out = vr(xt)  # one list of PersistenceInformation per group
            d = [info[0].diagram[:, 1] for info in out]
            (sum((di - BETA).abs().sum() for di in d) / len(d)).backward()
        fs["pytorch-topological fwd+bwd"] = torch_topological
    if "scipy" in libs:
        pdist, squareform, mst = libs["scipy"]
        fs["scipy MST fwd"] = lambda: [mst(squareform(pdist(c, SCIPY_NAME[metric]))) for c in xs]
    if "gph" in libs:
        rp = libs["gph"]
        fs["giotto-ph fwd"] = lambda: [rp(c, maxdim=0, metric=GPH_NAME[metric]) for c in xs]
    if "gudhi" in libs:
        gd = libs["gudhi"]
        if metric == "l2":
            def gudhi_rips():
                for c in xs:
                    gd.RipsComplex(points=c).create_simplex_tree(max_dimension=1).persistence()
        else:
            pdist, squareform, _ = libs.get("scipy", (None,) * 3)
            if pdist is None:
                return fs

            def gudhi_rips():
                for c in xs:
                    D = squareform(pdist(c, SCIPY_NAME[metric]))
                    gd.RipsComplex(distance_matrix=D).create_simplex_tree(max_dimension=1).persistence()
        fs["gudhi fwd"] = gudhi_rips
    return fs


def interleaved_medians(fs, repeats):
    """Median seconds of each callable, rounds interleaved, first callable rotated every round."""
    for f in fs.values():  # warm-up
        f()
    names, times = list(fs), {k: [] for k in fs}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            fs[k]()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def part_persistence(repeats, libs, sizes):
    gen = torch.Generator().manual_seed(0)
    print(f"\n== persistence on CPU: median of {repeats} interleaved rounds; ratio = other / ours ==")
    print(f"{'(G, n, d)':>15} {'metric':>6}  {'contender':<30} {'ms':>9} {'ratio':>7}")
    for G, n, d in sizes:
        x = torch.randn(G, n, d, generator=gen)
        for metric in METRICS:
            med = interleaved_medians(contenders(x, metric, libs), repeats)
            base = med["ours fwd+bwd"]
            for k, v in med.items():
                print(f"{str((G, n, d)):>15} {metric:>6}  {k:<30} {1e3 * v:>9.2f} {v / base:>7.2f}")


def group_batch(pool, labels, G, n, gen):
    """G groups of n: an anchor and n − 1 same-class draws with replacement (group-major rows)."""
    idx = []
    for a in torch.randint(len(labels), (G,), generator=gen).tolist():
        same = (labels == labels[a]).nonzero().squeeze(1)
        idx += [a] + same[torch.randint(len(same), (n - 1,), generator=gen)].tolist()
    idx = torch.tensor(idx)
    return pool[idx], labels[idx]


PENALTIES = {"top": "topological", "center": "center", "floor": "floor", "ceiling": "ceiling",
             "center_radius": "center_radius"}  # step kind -> its penalty, a key of regularizers.LOSSES


def part_training(steps, device, model_name="SimpleCNN_MNIST", metric="l1", lam=0.1, warmup=10) -> dict:
    """Median times of `train.train_step` without a penalty and with + λ · each penalty of `PENALTIES` (L_top, the
    centroid control and the halves of β > 0), interleaved in rotating order after `warmup` untimed rounds; prints
    and returns them."""
    G, n = 8, 16
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(250) % 10  # 25 images per class, as in MNIST-250
    shape = (1, 28, 28) if model_name == "SimpleCNN_MNIST" else (3, 32, 32)
    pool = torch.randn(250, *shape, generator=gen)
    x, y = (t.to(device) for t in group_batch(pool, labels, G, n, gen))
    model = make_model(model_name, 10, shape[0], device=device)  # as a run builds it (train.build_run)
    opt = make_optimizer(model, lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0, fused=device.type == "cuda")
    kinds = {"without": (TopologicalLoss(BETA, metric), 0.0),
             **{kind: (LOSSES[loss](metric=metric), lam) for kind, loss in PENALTIES.items()}}

    def step(kind):
        penalty, weight = kinds[kind]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        train_step(model, opt, penalty, x, y, weight, BETA, G, n)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    for _ in range(warmup):
        for kind in kinds:
            step(kind)
    times = {kind: [] for kind in kinds}
    order = list(kinds)
    for i in range(steps):
        k = i % len(order)
        for kind in order[k:] + order[:k]:  # rotate, so that no kind always follows another
            times[kind].append(step(kind))
    return _training_summary(times, device, model_name, G, n, lam, metric, steps)


def _training_summary(times: dict, device, model_name: str, G: int, n: int, lam: float, metric: str,
                      steps: int) -> dict:
    """Print the medians and ratios of `part_training`'s step times; return what README and device_check quote."""
    med = {kind: statistics.median(t) for kind, t in times.items()}
    print(f"\n== training step on {device}: {model_name}, {G} groups x {n}, + {lam} * penalty ({metric}), "
          f"{steps} interleaved steps of each, deterministic={torch.are_deterministic_algorithms_enabled()} ==")
    print("median step: " + ", ".join(f"{kind} {1e3 * m:.2f} ms" for kind, m in med.items()))
    q1, q2, q3 = np.percentile(np.array(times["top"]) / np.array(times["without"]), [25, 50, 75])
    print(f"with L_top / without: ratio of medians {med['top'] / med['without']:.3f}, per-step ratio median "
          f"{q2:.3f}, quartiles [{q1:.3f}, {q3:.3f}] (target <= 1.05)")
    for kind in PENALTIES:
        if kind != "top":
            r = np.array(times[kind]) / np.array(times["top"])
            print(f"{kind} / L_top step: ratio of medians {med[kind] / med['top']:.3f}, per-step ratio median "
                  f"{np.median(r):.3f} (a control should cost no more than the topological loss: <= 1)")
    return dict(model=model_name, without_ms=1e3 * med["without"], with_ms=1e3 * med["top"],
                center_ms=1e3 * med["center"], ratio=med["top"] / med["without"],
                pair_median=float(q2), center_vs_top=med["center"] / med["top"],
                vs_top={kind: med[kind] / med["top"] for kind in PENALTIES if kind != "top"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="rounds per persistence size and metric")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each kind (>= 200)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS threads (default: the libraries' own)")
    parser.add_argument("--sizes", nargs="+", default=[",".join(map(str, s)) for s in SIZES],
                        help="persistence sizes as G,n,d (default: %(default)s)")
    parser.add_argument("--skip-persistence", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        try:  # the same cap for numpy's BLAS, which giotto-ph's distances (through scikit-learn) use
            from threadpoolctl import threadpool_limits
            threadpool_limits(args.threads)
        except ImportError:
            pass
    libs, missing = optional_imports()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start (other work makes every figure noisy; "
          "compare ratios, measured in the same run)")
    for name, why in missing.items():
        print(f"{name}: {why}: skipped")
    if not args.skip_persistence:
        part_persistence(args.repeats, libs, [tuple(int(v) for v in s.split(",")) for s in args.sizes])
    if not args.skip_training:
        part_training(args.steps, default_device())


if __name__ == "__main__":
    main()
