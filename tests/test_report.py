"""report.py: tables and figures from run folders written by hand (no training)."""
import json
from pathlib import Path

import numpy as np
import pytest

import report

METRICS = dict(nc1=0.1, etf_distance_means=0.2, etf_distance_classifiers=0.3, nc3_self_duality=0.04,
               nc4_ncc_mismatch=0.0, within_class_variation=1.0, between_class_variation=10.0)


def fake_run(out: Path, regularizer: str, beta: float, split: int, test_acc: float | None) -> None:
    """A run folder as experiment.py writes it; test_acc None = still running (no final.json)."""
    name = f"{regularizer}_beta{beta:g}_lr0.1_split{split:02d}"
    folder = out / "runs" / name
    folder.mkdir(parents=True)
    cfg = dict(run=dict(regularizer=regularizer, beta=beta, lr=0.1, split=split), seed=split, data_source="test",
               config=dict(DATASET="MNIST", TRAIN_SIZE=250))
    (folder / "config.json").write_text(json.dumps(cfg))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc or 0.5, train=METRICS, test=METRICS,
                death_mean=[0.5] * 10, death_max=[1.0] * 10)
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    if test_acc is not None:
        (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1,
                                                           train=METRICS, test=METRICS, commit="abc")))


def test_beta_sweep_compares_betas_on_the_splits_all_of_them_finished(tmp_path):
    acc = {(1.0, 10): 0.90, (1.0, 11): 0.92, (2.0, 10): 0.93, (2.0, 11): 0.91, (4.0, 10): 0.89, (4.0, 11): 0.90}
    for (b, s), a in acc.items():
        fake_run(tmp_path, "hofer", b, s, a)
    fake_run(tmp_path, "hofer", 1.0, 12, 0.99)   # split 12 only for β = 1: left out of the comparison
    fake_run(tmp_path, "hofer", 2.0, 12, None)   # still running
    fake_run(tmp_path, "vanilla", 0.0, 10, 0.5)  # other regularisers are not part of the sweep
    finished = [r for r in report.load_runs(tmp_path) if r["final"]]
    betas, splits, table = report.beta_sweep(finished)
    assert betas == [1.0, 2.0, 4.0] and splits == [10, 11]
    np.testing.assert_allclose(table, [[0.90, 0.92], [0.93, 0.91], [0.89, 0.90]])
    assert "sweep.png" in report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "| 2 (held-out choice) | 93.00 | 91.00 | 92.00 ± 1.41 | – |" in text   # mean over 10, 11: 92.0 vs 91.0
    # the default β = 4 is beaten by 2.50 points, more than one paired standard error: std(4, 1)/√2 = 1.50
    assert "Held-out choice by test accuracy: β = 2 (beats the default 4 by 2.50 > one paired SE (1.50)" in text
    assert "split 12" not in text
    assert "| hofer β=2 − hofer β=1 | 2 | +1.00 | [-24.41, +26.41] | 2.83 | 1 of 2 |" in text   # 93 > 90, 91 < 92
    assert (tmp_path / "sweep.png").stat().st_size > 5_000


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
    finished = [r for r in report.load_runs(tmp_path) if r["final"]]
    assert report.beta_sweep(finished) is None
    report.write_report(tmp_path)
    assert "β sweep" not in (tmp_path / "table.md").read_text() and not (tmp_path / "sweep.png").exists()


def test_paired_tests_match_scipy_on_the_shared_splits():
    from scipy import stats
    a = {0: 0.93, 1: 0.95, 2: 0.94, 3: 0.96}
    b = {0: 0.92, 1: 0.93, 2: 0.935, 5: 0.50}                 # split 5 unpaired, split 3 unpaired
    n, mean, std, t_p, w_p = report.paired_tests(a, b)
    d = np.array([0.01, 0.02, 0.005]) * 100
    assert n == 3 and mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert t_p == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and w_p == pytest.approx(stats.wilcoxon(d).pvalue)


def test_report_reads_a_log_whose_last_line_is_being_written(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert report._read_log(log) == [{"epoch": 1}, {"epoch": 2}]


def test_trajectory_tables_give_the_median_over_splits_at_the_shared_epochs_nearest_the_targets():
    def run(nc1_by_epoch):
        return dict(log=[dict(epoch=e, test_acc=0.9, train=dict(nc1=v, etf_distance_means=1.0),
                              test=dict(nc1=2 * v, etf_distance_means=1.0)) for e, v in nc1_by_epoch.items()]
                    + [dict(epoch=2, train_acc=1.0)])                     # a line without evaluation
    groups = {"vanilla": [run({1: 1.0, 4: 0.5, 12: 0.1, 50: 0.01}), run({1: 3.0, 4: 0.7, 12: 0.3, 50: 0.03}),
                          run({1: 2.0, 4: 0.6, 12: 0.2, 50: 0.02, 60: 0.0})],   # epoch 60: not in every run
              "sliding": [run({1: 1.0, 4: 0.4, 12: 0.05, 50: 0.001})]}
    text = "\n".join(report.trajectory_tables(groups, near=(3, 10)))
    assert "| regulariser | set | epoch 4 | epoch 12 | epoch 50 |" in text   # nearest to 3, 10, and the last
    assert "| vanilla | train | 0.6 | 0.2 | 0.02 |" in text and "| vanilla | test | 1.2 | 0.4 | 0.04 |" in text
    assert "| sliding | train | 0.4 | 0.05 | 0.001 |" in text


def test_runs_with_other_settings_or_other_splits_are_flagged(tmp_path):
    fake_run(tmp_path, "vanilla", 0.0, 0, 0.9)
    fake_run(tmp_path, "sliding", 1.1, 0, 0.95)
    fake_run(tmp_path, "sliding", 1.1, 1, 0.95)
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "The rows cover different splits" in text and "Warning" not in text
    cfg_path = tmp_path / "runs" / "vanilla_beta0_lr0.1_split00" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["EPOCHS"] = 20
    cfg_path.write_text(json.dumps(cfg))
    report.write_report(tmp_path)
    assert "**Warning: these runs differ in EPOCHS**" in (tmp_path / "table.md").read_text()
