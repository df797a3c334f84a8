"""The benchmark scripts: the summary quotes the ratios README reads (checked against statistics written out here),
and the step benchmark times the training loop's own step on the batches it describes."""
import math
import statistics

import numpy as np
import torch

from benchmarks.bench_persistence import PENALTIES, _training_summary, part_training


def test_the_step_summary_reports_ratios_of_medians_and_the_median_per_step_ratio(capsys):
    without = [1.0, 2.0, 3.0, 10.0]
    top = [1.5, 2.0, 6.0, 11.0]  # per-step ratios 1.5, 1, 2, 1.1: median 1.3
    times = {"without": without, "top": top, **{k: [2.0, 2.0, 2.0, 2.0] for k in PENALTIES if k != "top"}}
    r = _training_summary(times, torch.device("cpu"), "SimpleCNN_MNIST", 8, 16, 0.1, "l1", 4)
    assert r["without_ms"] == 1e3 * statistics.median(without) == 2500.0
    assert r["with_ms"] == 1e3 * statistics.median(top) == 4000.0
    assert math.isclose(r["ratio"], 4.0 / 2.5) and math.isclose(r["pair_median"], 1.3)
    assert all(math.isclose(v, 2.0 / 4.0) for v in r["vs_top"].values()) and set(r["vs_top"]) == set(PENALTIES) - {"top"}
    assert "ratio of medians 1.600" in capsys.readouterr().out


def test_the_step_benchmark_times_every_penalty_on_a_batch_of_groups(capsys):
    r = part_training(3, torch.device("cpu"), warmup=1)  # what it times and prints, not how fast: one warm-up round
    assert set(r["vs_top"]) == {"center", "floor", "ceiling", "center_radius"}
    assert math.isclose(r["ratio"], r["with_ms"] / r["without_ms"])
    assert np.isfinite([r["without_ms"], r["with_ms"], r["center_ms"], *r["vs_top"].values()]).all()
    out = capsys.readouterr().out
    assert "8 groups x 16" in out and "with L_top / without" in out and all(f"{k} / L_top step" in out for k in r["vs_top"])
