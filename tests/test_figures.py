"""figures.py: what the figures of a folder show (through `drawn`, a recording of figures._save)."""
import numpy as np
import pytest

import figures
import groups
import records
import report
from tests.report_helpers import labelled_run


def per_split_drawn(drawn: dict) -> tuple[list, list]:
    """(the grey lines, each joining the runs of one split and seed; the black marks of the means and their CI's
    ends, each (x, y)) of the per_split.png last written."""
    grey = [(x, y) for label, x, y in drawn["per_split.png"] if label.startswith("_child")]
    return grey, [(x, y) for label, x, y in drawn["per_split.png"] if label == "_nolegend_"]


def test_the_per_split_figure_is_written_for_a_folder_and_for_a_pairing_and_joins_the_runs_of_one_split(tmp_path,
                                                                                                         drawn):
    main, seed1 = tmp_path / "main", tmp_path / "seed1"
    for split in range(3):
        labelled_run(main, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92 + split / 100)
        labelled_run(main, f"sliding_beta1.1_lr0.1_split{split:02d}", "sliding", split, 0.94, beta=1.1, lam=0.1)
        labelled_run(seed1, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93, seed=1000 + split)
    half = 4.303 * 1.0 / np.sqrt(3)                       # vanilla 92, 93, 94: std 1, t(0.975, 2) = 4.303
    assert "per_split.png" in report.write_report(main)
    grey, black = per_split_drawn(drawn)
    assert grey == [([0, 1], pytest.approx([92 + split, 94])) for split in range(3)]   # vanilla, then sliding
    assert black == [([0.25], [93.0]), ([0.25], pytest.approx([93 - half], abs=1e-3)),  # vanilla: mean and CI
                     ([0.25], pytest.approx([93 + half], abs=1e-3)), ([1.25], [94.0])]  # sliding: no spread, no CI
    assert "per_split.png" in report.write_report(seed1, [main])
    grey, black = per_split_drawn(drawn)                  # main's columns first; another seed: its own points
    assert grey == [([0, 1], pytest.approx([92 + split, 94])) for split in range(3)] + [([2], [93.0])] * 3
    assert [x for x, _ in black] == [[0.25]] * 3 + [[1.25], [2.25]]
    shown = {**groups.grouped(records.load_runs(main, prefix="main")), **groups.grouped(records.load_runs(seed1))}
    labels, lines, means = figures.per_split_points(shown)
    assert labels == ["main: vanilla", "main: sliding β0=1.1", "vanilla"]
    assert lines[(1, 1)] == [(0, pytest.approx(93.0)), (1, pytest.approx(94.0))]   # split 1, SEED 0: main's runs
    assert lines[(1, 1001)] == [(2, pytest.approx(93.0))]                         # another seed: its own line
    x, m, lo, hi = means[0]
    assert (x, m) == (0, pytest.approx(93.0)) and (lo, hi) == pytest.approx((93 - half, 93 + half), abs=1e-3)
