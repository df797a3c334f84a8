"""The scale of sliding's centroid twin: a code's distance to its group's mean, against a spanning-tree edge.

`center_sliding` holds each code at a radius r = r0 · √(1 − t) from its group's mean, where `sliding` holds each death
time (a tree edge) at β = β0 · √(1 − t). A radius is not an edge: to give the twin the same grid as sliding on the
same scale, its r0 values are sliding's β0 values times

    ratio = median_i ‖z_gi − z̄_g‖ / median_k d_gk

both medians taken over every code (edge) of every group of every batch of the first EARLY_EPOCHS epochs of a sliding
run on each split of SPLITS (the run's own steps: `train.train_epoch` with its seed, batches and schedule, the codes
read as the penalty receives them). Duplicate draws of an image give tree edges of length exactly 0 (`zero_edges` in a
run's log) and count, as they do in L_top; the median over the non-zero edges is printed beside it.

    python tools/centroid_scale.py --DATASET=FashionMNIST --SPLITS=10-12 --OUT_DIR=results/fashionmnist-250-grid-center-sliding

writes OUT_DIR/centroid_scale.json (the ratio, the r0 of each β0 rounded to 3 significant digits, the default pair, the
medians split by split, and the provenance), which the report reads to state the ratio under the grid and to hold the
grid's choice to the default pair; then train the grid with the printed command. Any constant of mnist_top.py can be
overridden as --NAME=value; the script's own are below.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
import mnist_top  # noqa: E402
from common.runs import atomic_write  # noqa: E402
from regularizers import METRICS, vr0_death_times  # noqa: E402
from reporting.sweeps import SCALE_FILE  # noqa: E402
from training import experiment, train  # noqa: E402
from training.config import ConfigError, apply_overrides  # noqa: E402
from training.provenance import configure_torch, process_provenance  # noqa: E402

EARLY_EPOCHS = 5                # epochs of the sliding run measured (of EPOCHS: t ≤ 5/310 with the default)
BETA0S = [1.1, 2.0]             # sliding's grid of β0, mapped to center_sliding's r0 by the ratio
GRID_LAMBDAS = [0.03, 0.1]      # λmax of both grids
DEFAULT_PAIR = (1.1, 0.1)       # sliding's default (β0, λmax): its image is center_sliding's default pair



class Recorder(torch.nn.Module):
    """The run's penalty, unchanged, that also keeps a detached copy of every batch of codes (G, n, p) it scores."""

    def __init__(self, penalty):
        super().__init__()
        self.penalty, self.codes = penalty, []

    def forward(self, latent, beta=None):
        self.codes.append(latent.detach().clone())
        return self.penalty(latent, beta=beta)


def measure(cfg: dict, d: dict, split: int, device: torch.device) -> dict:
    """The first EARLY_EPOCHS epochs of the sliding run of `split` (β0 and λmax: the first of SLIDING_BETA0S and
    LAMBDAS), and the medians of its codes' distances to their group means and of its tree edges."""
    run = dict(regularizer="sliding", split=split, lr=cfg["LRS"][0], beta=cfg["SLIDING_BETA0S"][0],
               lam=cfg["LAMBDAS"][0])
    subset, _, _ = data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], split, cfg["SEED"], device)
    state = train.build_run(cfg, run, d["num_classes"], d["in_channels"], device)
    state.penalty = recorder = Recorder(state.penalty)
    ce = []
    for epoch in range(1, cfg["EARLY_EPOCHS"] + 1):
        lam, beta = state.schedule.values(epoch)
        ce.append(train.train_epoch(cfg, state, subset, lam, beta)[0])
        state.sched_lr.step()
    z = torch.cat(recorder.codes)                                                           # (batches·G, n, p)
    return dict(split=split, groups=int(z.shape[0]), **medians(z, cfg["METRIC"]), ce=ce)


def medians(z: torch.Tensor, metric: str) -> dict:
    """Of groups of codes z (G, n, p): the median distance of a code to its group's mean and the median tree edge
    (0-dimensional death time, `regularizers.vr0_death_times`), over all codes (edges) of all groups, in float64;
    also the median of the non-zero edges and the share of zero ones (duplicate draws)."""
    z = z.double()
    radii = torch.linalg.vector_norm(z - z.mean(1, keepdim=True), ord=METRICS[metric], dim=-1).flatten().numpy()
    edges = vr0_death_times(z, metric).flatten().numpy()
    return dict(median_radius=float(np.median(radii)), median_edge=float(np.median(edges)),
                median_nonzero_edge=float(np.median(edges[edges > 0])), zero_edge_fraction=float(np.mean(edges == 0)))


def significant(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def main(argv: list[str]) -> int:
    constants = {k: v for k, v in vars(mnist_top).items() if k.isupper()}
    own = dict(EARLY_EPOCHS=EARLY_EPOCHS, BETA0S=BETA0S, GRID_LAMBDAS=GRID_LAMBDAS)
    try:
        cfg = apply_overrides({**constants, **own}, argv)
        experiment.validate({k: cfg[k] for k in constants})
        if not 1 <= cfg["EARLY_EPOCHS"] <= cfg["EPOCHS"]:
            raise ConfigError(f"EARLY_EPOCHS={cfg['EARLY_EPOCHS']} must be in 1..EPOCHS={cfg['EPOCHS']}")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not cfg["OUT_DIR"]:
        print("error: name the grid's folder with --OUT_DIR=results/<dataset>-250-grid-center-sliding", file=sys.stderr)
        return 2
    device = torch.device(cfg["DEVICE"]) if cfg["DEVICE"] else torch.device("cpu")
    configure_torch(cfg, device)
    d = experiment.prepare(cfg, argv, constants, device)
    per_split = [measure(cfg, d, split, device) for split in cfg["SPLITS"]]
    if any(m["median_edge"] == 0 for m in per_split):
        print("error: more than half of the tree edges are 0 (duplicate draws of an image: too few images per class "
              "for SAMPLES_PER_GROUP), so no ratio to a median edge exists; use a larger TRAIN_SIZE", file=sys.stderr)
        return 2
    for m in per_split:
        print(f"split {m['split']}: median ‖z − z̄‖ {m['median_radius']:.4g}, median tree edge {m['median_edge']:.4g} "
              f"(non-zero {m['median_nonzero_edge']:.4g}, {100 * m['zero_edge_fraction']:.1f} % zero), "
              f"ratio {m['median_radius'] / m['median_edge']:.4g}")
    ratio = float(np.median([m["median_radius"] for m in per_split]) / np.median([m["median_edge"] for m in per_split]))
    r0s = [significant(b * ratio) for b in cfg["BETA0S"]]
    out = Path(cfg["OUT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    record = dict(ratio=ratio, beta0s=cfg["BETA0S"], r0s=r0s, lambdas=cfg["GRID_LAMBDAS"],
                  default=[significant(DEFAULT_PAIR[0] * ratio), DEFAULT_PAIR[1]],
                  measured=dict(dataset=cfg["DATASET"], train_size=cfg["TRAIN_SIZE"], metric=cfg["METRIC"],
                                seed=cfg["SEED"], epochs=f"1-{cfg['EARLY_EPOCHS']} of {cfg['EPOCHS']}",
                                sliding=dict(beta0=cfg["SLIDING_BETA0S"][0], lam=cfg["LAMBDAS"][0]),
                                splits=per_split, how="median radius over splits / median tree edge over splits, "
                                                     "each split's median over all its codes (edges)"),
                  provenance=process_provenance(device))
    atomic_write(out / SCALE_FILE, json.dumps(record, indent=1) + "\n")
    print(f"ratio {ratio:.4g}: β0 {cfg['BETA0S']} → r0 {r0s}; default (r0, λmax) = {tuple(record['default'])}; "
          f"written to {out / SCALE_FILE}")
    lambdas = ",".join(f"{lam:g}" for lam in cfg["GRID_LAMBDAS"])
    print(f"python mnist_top.py --DATASET={cfg['DATASET']} --REGULARIZERS=center_sliding "
          f"--SLIDING_BETA0S={','.join(f'{r:g}' for r in r0s)} --LAMBDAS={lambdas} --SPLITS={','.join(map(str, cfg['SPLITS']))} --OUT_DIR={out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
