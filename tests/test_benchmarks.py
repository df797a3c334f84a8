"""The benchmark scripts run and return what README quotes (a few steps; their figures are never asserted)."""
import math

import torch

from benchmarks.bench_persistence import part_training


def test_the_step_benchmark_times_the_plain_step_and_each_penalty(capsys):
    r = part_training(3, torch.device("cpu"))
    assert all(r[k] > 0 for k in ("without_ms", "with_ms", "center_ms"))
    assert math.isclose(r["ratio"], r["with_ms"] / r["without_ms"])
    assert math.isclose(r["center_vs_top"], r["center_ms"] / r["with_ms"])
    assert set(r["vs_top"]) == {"center", "floor", "ceiling", "center_radius"} and all(v > 0 for v in r["vs_top"].values())
    out = capsys.readouterr().out
    assert "with L_top / without" in out and all(f"{k} / L_top step" in out for k in r["vs_top"])
