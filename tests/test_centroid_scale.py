"""tools/centroid_scale.py: center_sliding's radius put on sliding's scale of tree edges, measured on a run's steps."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import mnist_top
from reporting import sweeps
from training import experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import centroid_scale  # noqa: E402


def kruskal(D: np.ndarray) -> list[float]:
    """The edge lengths of a minimum spanning tree of the complete graph with distances D, by Kruskal's algorithm
    (scipy's minimum_spanning_tree reads a zero distance, a duplicate draw's, as no edge)."""
    parent = list(range(len(D)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    tree = []
    for d, i, j in sorted((D[i, j], i, j) for i in range(len(D)) for j in range(i + 1, len(D))):
        if root(i) != root(j):
            parent[root(i)] = root(j)
            tree.append(d)
    return tree


@pytest.mark.parametrize("metric, p", [("l1", "cityblock"), ("l2", "euclidean")])
def test_the_medians_are_those_of_the_distances_to_the_means_and_of_scipy_s_tree_edges(metric, p):
    torch.manual_seed(0)
    z = torch.randn(6, 16, 5)
    z[:, 8] = z[:, 3]                                              # a duplicate draw in every group: one zero edge
    m = centroid_scale.medians(z, metric)
    x = z.double().numpy()
    radii = [cdist(g, g.mean(0, keepdims=True), p).ravel() for g in x]
    edges = []
    for g in x:
        edges += kruskal(cdist(g, g, p))
    edges = np.array(edges)
    assert edges.size == 6 * 15
    assert m["median_radius"] == pytest.approx(np.median(np.concatenate(radii)), rel=1e-12)
    assert m["median_edge"] == pytest.approx(np.median(edges), rel=1e-12)
    assert m["median_nonzero_edge"] == pytest.approx(np.median(edges[edges > 0]), rel=1e-12)
    assert m["zero_edge_fraction"] == pytest.approx(6 / (6 * 15))


def test_the_tool_measures_a_sliding_run_s_own_steps_and_writes_what_the_grid_reads(kmnist_root, tmp_path, capsys):
    common = ["--DATASET=KMNIST", f"--DATA_ROOT={kmnist_root}", "--VERIFY_DATA=False", "--TRAIN_SIZE=480",
              "--EPOCHS=4", "--SPLITS=0", "--VAL_SIZE=100", "--PROGRESS=False", "--THREADS=2"]
    out = tmp_path / "grid"
    assert centroid_scale.main(common + ["--EARLY_EPOCHS=2", f"--OUT_DIR={out}"]) == 0
    scale = json.loads((out / "centroid_scale.json").read_text())
    # the epochs measured are the run's own: the cross-entropy of a sliding run trained by the study, epoch by epoch
    constants = {k: v for k, v in vars(mnist_top).items() if k.isupper()}
    assert experiment.main(constants, common + ["--REGULARIZERS=sliding", f"--OUT_DIR={tmp_path / 'run'}"]) == 0
    [log] = (tmp_path / "run" / "runs").glob("*/log.jsonl")
    ce = [json.loads(line)["ce"] for line in log.read_text().splitlines()][:2]
    [split] = scale["measured"]["splits"]
    assert split["ce"] == ce and split["groups"] == 2 * (480 // 8) * 8    # 2 epochs of 60 batches of 8 groups
    assert scale["ratio"] == pytest.approx(split["median_radius"] / split["median_edge"])
    assert scale["r0s"] == [float(f"{b * scale['ratio']:.3g}") for b in (1.1, 2.0)]
    assert scale["default"] == [scale["r0s"][0], 0.1] and scale["measured"]["epochs"] == "1-2 of 4"
    assert "--REGULARIZERS=center_sliding --SLIDING_BETA0S=" in capsys.readouterr().out
    assert sweeps.read_centroid_scale(out)["ratio"] == scale["ratio"]        # the report reads what the tool wrote
    assert centroid_scale.main(common + ["--EARLY_EPOCHS=5", f"--OUT_DIR={out}"]) == 2     # more than EPOCHS
