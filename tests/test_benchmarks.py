"""The benchmark scripts run and return what README quotes (a few steps; their figures are never asserted)."""
import math

import torch

from benchmarks.bench_persistence import part_training


def test_the_step_benchmark_times_the_plain_the_topological_and_the_center_step(capsys):
    r = part_training(3, torch.device("cpu"))
    assert all(r[k] > 0 for k in ("without_ms", "with_ms", "center_ms"))
    assert math.isclose(r["ratio"], r["with_ms"] / r["without_ms"])
    assert math.isclose(r["center_vs_top"], r["center_ms"] / r["with_ms"])
    out = capsys.readouterr().out
    assert "with L_top" in out and "with L_center" in out and "L_center / L_top" in out
