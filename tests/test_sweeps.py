"""sweeps.py: sweeps of one parameter and grids of two, their tables and held-out choice, and their figures."""
import json
from pathlib import Path

import numpy as np
import pytest

import report
from common import runs
from reporting import records, sweeps
from tests.report_helpers import fake_run, labelled_run, study


def test_beta_sweep_compares_betas_on_the_splits_all_of_them_finished(tmp_path, drawn):
    study(tmp_path, HOFER_BETAS=[4.0])
    acc = {(1.0, 10): 0.90, (1.0, 11): 0.92, (2.0, 10): 0.93, (2.0, 11): 0.91, (4.0, 10): 0.89, (4.0, 11): 0.90}
    for (b, s), a in acc.items():
        fake_run(tmp_path, "hofer", b, s, a)
    fake_run(tmp_path, "hofer", 1.0, 12, 0.99)   # split 12 only for β = 1: left out of the comparison
    fake_run(tmp_path, "hofer", 2.0, 12, None)   # still running
    fake_run(tmp_path, "vanilla", 0.0, 10, 0.5)  # other regularisers are not part of the sweep
    finished = [r for r in records.load_runs(tmp_path) if r["final"]]
    sw = next(sw for sw in sweeps.sweeps(finished) if (sw["reg"], sw["param"]) == ("hofer", "beta"))
    betas, splits, table = sw["values"], sw["splits"], sw["test"]
    assert betas == [1.0, 2.0, 4.0] and splits == [10, 11]
    np.testing.assert_allclose(table, [[0.90, 0.92], [0.93, 0.91], [0.89, 0.90]])
    assert "sweep.png" in report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "| 2 (held-out choice) | 93.00 | 91.00 | 92.00 ± 1.41 | – |" in text   # mean over 10, 11: 92.0 vs 91.0
    # the default β = 4 is beaten by 2.50 points, more than one paired standard error: std(4, 1)/√2 = 1.50
    assert "Held-out choice by test accuracy: β = 2 (beats the default 4 by 2.50 > one paired SE (1.50)" in text
    assert "split 12" not in text
    assert "| hofer β=2 − hofer β=1 | 2 | +1.00 | [-24.41, +26.41] | 2.83 | 1 of 2 |" in text   # 93 > 90, 91 < 92
    lines = {label: (x, y) for label, x, y in drawn["sweep.png"]}
    x, y = lines["test: mean ± std over 2 splits"]                      # the mean over splits 10, 11 per β
    assert x == [1.0, 2.0, 4.0] and y == pytest.approx([91.0, 92.0, 89.5])
    greys = [y for label, x, y in drawn["sweep.png"] if label.startswith("_")][:2]   # one grey line per split
    assert greys == [pytest.approx([90, 93, 89]), pytest.approx([92, 91, 90])]


def test_several_betas_on_reported_splits_are_shown_without_a_best(tmp_path):
    for b, a in ((2.0, 0.92), (4.0, 0.93)):
        fake_run(tmp_path, "hofer", b, 0, a)
        fake_run(tmp_path, "hofer", b, 10, a)
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "hofer's β values" in text and "choice" not in text and "β is chosen on the held-out splits" in text


@pytest.mark.parametrize("betas", [[2.0], []])
def test_no_sweep_without_several_betas(tmp_path, betas):
    for b in betas:
        fake_run(tmp_path, "hofer", b, 0, 0.9)
    fake_run(tmp_path, "sliding", 1.1, 0, 0.95)
    fake_run(tmp_path, "sliding", 1.1, 1, 0.95)
    finished = [r for r in records.load_runs(tmp_path) if r["final"]]
    assert sweeps.sweeps(finished) == []
    report.write_report(tmp_path)
    assert "β sweep" not in (tmp_path / "table.md").read_text() and not (tmp_path / "sweep.png").exists()


def test_a_lambda_sweep_on_held_out_splits_is_chosen_by_validation_accuracy(tmp_path, drawn):
    # λ = 0.3 has the best test accuracy, λ = 0.03 the best validation accuracy; the default λ = 0.1 is beaten
    acc = {0.03: ((0.90, 0.92), (0.95, 0.96)), 0.1: ((0.91, 0.92), (0.93, 0.94)), 0.3: ((0.95, 0.96), (0.90, 0.90))}
    for lam, (test, val) in acc.items():
        for split, t, v in zip((10, 11), test, val):
            labelled_run(tmp_path, f"ramp_lam{lam:g}_lr0.1_split{split}", "ramp", split, t, val_acc=v, lam=lam)
    study(tmp_path, LAMBDAS=[0.1])
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "## ramp's λ sweep" in text and "| 0.03 (held-out choice) |" in text
    assert "Held-out choice by validation accuracy: λ = 0.03 (beats the default 0.1 by 2.00 > one paired SE" in text
    lines = {label: (x, y) for label, x, y in drawn["sweep_ramp_lam.png"]}          # the mean over splits 10, 11
    assert lines["validation: mean ± std over 2 splits"] == ([0.03, 0.1, 0.3], pytest.approx([95.5, 93.5, 90.0]))
    assert lines["test: mean ± std over 2 splits"] == ([0.03, 0.1, 0.3], pytest.approx([91.0, 91.5, 95.5]))


GRID_VAL = {(1.1, 0.03): (0.930, 0.920, 0.940), (1.1, 0.1): (0.920, 0.910, 0.930),   # (β0, λ): validation on
            (2.0, 0.03): (0.940, 0.935, 0.945), (2.0, 0.1): (0.900, 0.900, 0.900)}   # splits 10, 11, 12


def _sliding_grid(out: Path, settings) -> None:
    for (beta0, lam) in settings:
        for split, v in zip((10, 11, 12), GRID_VAL[beta0, lam]):
            labelled_run(out, f"sliding_beta{beta0:g}_lam{lam:g}_lr0.1_split{split}", "sliding", split, v - 0.01,
                         val_acc=v, beta=beta0, lam=lam)
    study(out, SLIDING_BETA0S=[1.1], LAMBDAS=[0.1])


def test_a_full_grid_is_one_sweep_over_its_settings_with_one_held_out_choice(tmp_path, drawn):
    _sliding_grid(tmp_path, GRID_VAL)
    [sw] = sweeps.sweeps([r for r in records.load_runs(tmp_path) if r["final"]], {"SLIDING_BETA0S": [1.1],
                                                                                 "LAMBDAS": [0.1]})
    assert sw["param"] == ("beta0", "lam") and sw["values"] == list(GRID_VAL) and sw["default"] == (1.1, 0.1)
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "## sliding's (β0, λ) grid: 4 settings on the 3 splits every setting finished" in text
    assert "β0 sweep" not in text and "λ sweep" not in text                 # not split into one-parameter sweeps
    def cell(setting) -> str:                                              # validation mean ± std (diff ± SE)
        v, d = 100 * np.array(GRID_VAL[setting]), 100 * (np.array(GRID_VAL[setting]) - np.array(GRID_VAL[1.1, 0.1]))
        return f"{v.mean():.2f} ± {v.std(ddof=1):.2f} ({d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(3):.2f})"
    rows = {l.split(" | ")[0]: l for l in text.splitlines() if l.startswith("| 1.1 | ") or l.startswith("| 2 | ")}
    assert rows["| 2"] == f"| 2 | {cell((2.0, 0.03))} **(held-out choice)** | {cell((2.0, 0.1))} |"
    assert rows["| 2"] == "| 2 | 94.00 ± 0.50 (+2.00 ± 0.29) **(held-out choice)** | 90.00 ± 0.00 (-2.00 ± 0.58) |"
    d = 100 * (np.array(GRID_VAL[2.0, 0.03]) - np.array(GRID_VAL[1.1, 0.1]))
    se = d.std(ddof=1) / np.sqrt(3)
    assert rows["| 1.1"].endswith("| 92.00 ± 1.00 (default) |")
    assert text.count("**(held-out choice)**") == 1 and text.count("| 2, 0.03 (held-out choice) |") == 1
    assert (f"Held-out choice by validation accuracy: one for the grid, (β0, λ) = (2, 0.03) (beats the default "
            f"1.1, 0.1 by {d.mean():.2f} > one paired SE ({se:.2f}) points).") in text
    lines = {label: y for label, x, y in drawn["sweep_sliding_grid.png"]}
    for beta0 in (1.1, 2.0):                                         # validation mean against λ = 0.03, 0.1
        assert lines[f"β0 = {beta0:g}: validation"] == pytest.approx(
            [100 * np.mean(GRID_VAL[beta0, lam]) for lam in (0.03, 0.1)])
    assert lines["held-out choice"] == pytest.approx([100 * np.mean(GRID_VAL[2.0, 0.03])])
    assert not (tmp_path / "sweep_sliding_beta0.png").exists()


def test_an_l_of_one_parameter_sweeps_is_not_a_grid(tmp_path):
    _sliding_grid(tmp_path, [(1.1, 0.03), (1.1, 0.1), (2.0, 0.1)])          # (2, 0.03) not run
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "grid" not in text and "## sliding's β0 sweep (λ=0.1)" in text and "## sliding's λ sweep (β0=1.1)" in text


def test_without_study_json_a_sweep_has_no_default_and_the_best_mean_is_the_choice(tmp_path):
    for split, accs in ((10, (0.91, 0.92)), (11, (0.92, 0.925))):   # β = 4 is 0.75 points better, SE 0.25
        for beta, acc in zip((2.0, 4.0), accs):
            fake_run(tmp_path, "hofer", beta, split, acc)
    report.write_report(tmp_path)
    assert "Held-out choice by test accuracy: β = 4 (best mean)." in (tmp_path / "table.md").read_text()
    study(tmp_path, HOFER_BETAS=[2.0])                               # the default 2 is beaten by more than one SE
    report.write_report(tmp_path)
    assert "β = 4 (beats the default 2 by 0.75 > one paired SE (0.25) points)" in (tmp_path / "table.md").read_text()


def test_a_sweep_where_some_runs_log_no_validation_accuracy_names_them_and_makes_no_choice(tmp_path, drawn):
    # λ = 0.3 would win on test accuracy; split 11 of λ = 0.03 logged no val_acc (trained before validation sets)
    acc = {0.03: ((0.90, 0.92), (0.95, None)), 0.1: ((0.91, 0.92), (0.93, 0.94)), 0.3: ((0.95, 0.96), (0.90, 0.90))}
    for lam, (test, val) in acc.items():
        for split, t, v in zip((10, 11), test, val):
            labelled_run(tmp_path, "", "ramp", split, t, val_acc=v, lam=lam)
    study(tmp_path, LAMBDAS=[0.1])
    [sw] = sweeps.sweeps([r for r in records.load_runs(tmp_path) if r["final"]], {"LAMBDAS": [0.1]})
    assert sw["val"] is None and sw["without_val"] == ["ramp_lam0.03_lr0.1_split11"]
    assert sweeps.held_out_choice(sw, 0.1) is None
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "held-out choice" not in text.replace("No held-out choice", "")
    assert ("No held-out choice: 1 of 6 runs log no validation accuracy (ramp_lam0.03_lr0.1_split11), so the rows "
            "cannot all be compared on it") in text
    assert "the choice uses the test images" not in text
    rows = {l.split(" | ")[0]: l for l in text.splitlines() if l.startswith("| 0.")}
    assert rows["| 0.03"].endswith("| 91.00 ± 1.41 | – |") and rows["| 0.1"].endswith("| 93.50 ± 0.71 |")
    # the figure shows no validation curve either (it would lack a point) and rings nothing
    labels = [label for label, _, _ in drawn["sweep_ramp_lam.png"]]
    assert "test: mean ± std over 2 splits" in labels and not any("validation" in label for label in labels)


def test_a_sweep_where_no_run_logs_validation_accuracy_keeps_the_labelled_choice_by_test(tmp_path):
    for lam, test in ((0.03, (0.90, 0.92)), (0.1, (0.95, 0.96))):
        for split, t in zip((10, 11), test):
            labelled_run(tmp_path, "", "ramp", split, t, lam=lam)
    [sw] = sweeps.sweeps([r for r in records.load_runs(tmp_path) if r["final"]])
    assert sw["without_val"] == [] and sweeps.held_out_choice(sw) == (0.1, "best mean", "test")
    report.write_report(tmp_path)
    assert ("Held-out choice by test accuracy: λ = 0.1 (best mean). These runs log no validation accuracy, so the "
            "choice uses the test images") in (tmp_path / "table.md").read_text()


def test_a_two_by_two_grid_says_its_choice_is_a_corner(tmp_path):
    _sliding_grid(tmp_path, GRID_VAL)
    report.write_report(tmp_path)
    assert "every setting is a corner of the grid" in (tmp_path / "table.md").read_text()


def test_a_center_sliding_grid_states_its_scale_and_holds_the_mapped_default(tmp_path):
    ratio, r0s = 1.376, [1.51, 2.75]
    for r0, v in zip(r0s, (0.93, 0.95)):
        for lam, dv in ((0.03, 0.0), (0.1, 0.005)):
            for split, noise in zip((10, 11, 12), (0.0, 0.004, -0.002)):
                labelled_run(tmp_path, "", "center_sliding", split, 0.9, val_acc=v + dv + noise, beta=r0, lam=lam)
    study(tmp_path, SLIDING_BETA0S=[1.1], LAMBDAS=[0.1])
    (tmp_path / "centroid_scale.json").write_text(json.dumps(dict(
        ratio=ratio, beta0s=[1.1, 2.0], r0s=r0s, lambdas=[0.03, 0.1], default=[1.51, 0.1],
        measured=dict(epochs="1-5 of 310", splits=[dict(split=s) for s in (10, 11, 12)]))))
    [sw] = sweeps.sweeps([r for r in records.load_runs(tmp_path) if r["final"]], {"SLIDING_BETA0S": [1.1]},
                         sweeps.read_centroid_scale(tmp_path))
    assert sw["default"] == (1.51, 0.1)                     # sliding's default (1.1, 0.1) on the centroid's scale
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert ("r0 = β0 × 1.376 (β0 1.1 → r0 1.51, β0 2 → r0 2.75), the ratio of the median code-to-group-mean distance "
            "to the median spanning-tree edge over the group batches of epochs 1-5 of 310 of sliding runs on splits "
            "10, 11, 12") in text
    assert "| 1.51 | " in text and "(default)" in text
    # (2.75, 0.1) is best, by 2.0 points with a paired SE far below that: it beats the mapped default
    assert "(β0, λ) = (2.75, 0.1) (beats the default 1.51, 0.1 by 2.00 > one paired SE" in text
    (tmp_path / "centroid_scale.json").write_text(json.dumps(dict(ratio="big", beta0s=[1.1], r0s=[1.5], default=[1.5])))
    with pytest.raises(runs.ReportError, match="centroid_scale.json: expected a number 'ratio'"):
        report.write_report(tmp_path)


def test_a_grid_whose_default_lies_outside_it_gives_its_differences_from_the_held_out_choice(tmp_path):
    _sliding_grid(tmp_path, GRID_VAL)
    study(tmp_path, SLIDING_BETA0S=[4.0], LAMBDAS=[0.1])                    # (4, 0.1): not a setting of the grid
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "in brackets, the paired difference from the held-out choice (2, 0.03) ± its paired standard error" in text
    d = 100 * (np.array(GRID_VAL[1.1, 0.1]) - np.array(GRID_VAL[2.0, 0.03]))
    row = next(l for l in text.splitlines() if l.startswith("| 1.1 | "))
    assert row.endswith(f"| 92.00 ± 1.00 ({d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(3):.2f}) |")
    assert "(default)" not in text and "(β0, λ) = (2, 0.03) (best mean)" in text
