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


def labelled_run(out: Path, name: str, regularizer: str, split: int, test_acc: float, seed: int = 0, val_acc=None,
                 **settings) -> None:
    """A finished run as experiment.py now writes it (run-level λ, config with every run-defining setting)."""
    folder = out / "runs" / name
    folder.mkdir(parents=True)
    run = dict(regularizer=regularizer, split=split, lr=0.1, beta=settings.pop("beta", None),
               lam=settings.pop("lam", None))
    config = {**dict(DATASET="MNIST", TRAIN_SIZE=250, METRIC="l1", WEIGHT_DECAY=1e-3, NESTEROV=False), **settings}
    (folder / "config.json").write_text(json.dumps(dict(run=run, config=config, seed=seed, data_source="test")))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc, train=METRICS, test=METRICS, death_mean=[0.5] * 10,
                death_max=[1.0] * 10, **({} if val_acc is None else dict(val_acc=val_acc)))
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1, train=METRICS,
                                                       test=METRICS, commit="abc")))


def test_runs_of_another_folder_are_paired_by_split_and_seed_and_differences_are_listed(tmp_path):
    main, wd = tmp_path / "main", tmp_path / "wd"
    old = main / "runs" / "vanilla_lr0.1_split00"
    labelled_run(main, "vanilla_lr0.1_split00", "vanilla", 0, 0.90)
    labelled_run(main, "vanilla_lr0.1_split01", "vanilla", 1, 0.91)
    cfg = json.loads((old / "config.json").read_text())
    del cfg["config"]["NESTEROV"]                            # an older run: a missing key counts as its default
    (old / "config.json").write_text(json.dumps(cfg))
    labelled_run(main, "vanilla_lr0.1_split05", "vanilla", 5, 0.50, seed=1)   # another seed: never paired
    for split, acc in ((0, 0.93), (1, 0.95)):
        labelled_run(wd, f"hofer_beta0.5_lr0.1_split{split:02d}", "hofer", split, acc, beta=0.5, lam=0.1,
                     METRIC="l2")
        labelled_run(wd, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, acc - 0.01, WEIGHT_DECAY=1e-2)
    report.write_report(wd, [main])
    text = (wd / "table.md").read_text()
    # 3 and 4 points: mean 3.5, std 0.71, CI 3.5 ± 12.706 · 0.71 / √2
    assert "| hofer β=0.5 − main: vanilla | 2 | +3.50 | [-2.85, +9.85] | 0.71 | 2 of 2 |" in text
    row = next(l for l in text.splitlines() if l.startswith("| hofer β=0.5 − main: vanilla |"))
    assert "NESTEROV" not in row and "METRIC" not in row   # vanilla uses no metric; NESTEROV missing = False
    assert row.endswith("| – |")                         # hofer and main's vanilla share weight decay 1e-3
    row = next(l for l in text.splitlines() if l.startswith("| vanilla − main: vanilla |"))
    assert row.endswith("| WEIGHT_DECAY 0.01→0.001 |") and "| 2 | +2.50 |" in row   # 92 − 90, 94 − 91
    assert (wd / "paired.png").stat().st_size > 5_000 and not (main / "paired.png").exists()


def test_pre_registered_contrasts_get_holm_corrected_p_values_and_a_verdict(tmp_path):
    diffs = {"a": [3.0, 2.5, 3.5, 2.8, 3.1], "b": [0.1, -0.1, 0.2, 0.0, 0.05], "c": [2.0, -1.5, 1.0, -2.0, 0.5]}
    for split in range(5):
        labelled_run(tmp_path, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.90)
        for reg, d in zip(("ramp", "center", "sliding"), diffs.values()):
            labelled_run(tmp_path, f"{reg}_lam0.3_lr0.1_split{split:02d}", reg, split, 0.90 + d[split] / 100,
                         lam=0.3, beta=1.1 if reg == "sliding" else None)
    (tmp_path / "contrasts.json").write_text(json.dumps(dict(note="named first", contrasts=[
        dict(name="A", a="ramp", b="vanilla"), dict(name="B", a="center", b="vanilla"),
        dict(name="C", a="sliding β0=1.1 λ=0.3", b="vanilla"), dict(name="D", a="hofer", b="vanilla")])))
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    from scipy import stats
    p = [stats.ttest_1samp(d, 0).pvalue for d in diffs.values()]
    order = np.argsort(p)                                  # Holm: the k-th smallest p times (m − k + 1), monotone
    holm = np.empty(3)
    holm[order] = np.maximum.accumulate([min(1, (3 - k) * p[i]) for k, i in enumerate(order)])
    assert report.holm(p + [float("nan")])[:3] == pytest.approx(holm.tolist())
    rows = {l.split(" | ")[0][2:]: l for l in text.splitlines() if l.startswith("| ") and " − " in l and "(" in l}
    assert f"{p[0]:.3g} ({holm[0]:.3g})" in rows["A"] and rows["A"].endswith("| A better |")
    assert rows["B"].endswith("| no difference (CI within ±0.5) |")
    assert rows["C"].endswith("| not resolved (CI spans 0) |")
    assert "| D | hofer − vanilla | 0 |" in text and "not yet" in text


def test_a_lambda_sweep_on_held_out_splits_is_chosen_by_validation_accuracy(tmp_path):
    # λ = 0.3 has the best test accuracy, λ = 0.03 the best validation accuracy; the default λ = 0.1 is beaten
    acc = {0.03: ((0.90, 0.92), (0.95, 0.96)), 0.1: ((0.91, 0.92), (0.93, 0.94)), 0.3: ((0.95, 0.96), (0.90, 0.90))}
    for lam, (test, val) in acc.items():
        for split, t, v in zip((10, 11), test, val):
            labelled_run(tmp_path, f"ramp_lam{lam:g}_lr0.1_split{split}", "ramp", split, t, val_acc=v, lam=lam)
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "## ramp's λ sweep" in text and "| 0.03 (held-out choice) |" in text
    assert "Held-out choice by validation accuracy: λ = 0.03 (beats the default 0.1 by 2.00 > one paired SE" in text
    assert (tmp_path / "sweep_ramp_lam.png").stat().st_size > 5_000


def test_the_default_stays_unless_beaten_by_more_than_one_paired_standard_error():
    acc = np.array([[0.95, 0.90], [0.92, 0.925]])       # values 1, 2: 1 is 0.25 points better on average, SE 2.75
    assert report.choose([1.0, 2.0], acc, default=2.0)[0] == 2.0
    assert report.choose([1.0, 2.0], acc, default=7.0)[0] == 1.0   # the default not swept: the best mean


def test_a_replicate_with_another_seed_gives_the_noise_floor(tmp_path):
    main, seed1 = tmp_path / "main", tmp_path / "seed1"
    acc = {  # split: (vanilla, sliding) for seed 0, then for seed 1
        0: ((0.93, 0.95), (0.92, 0.95)), 1: ((0.92, 0.93), (0.93, 0.935)), 2: ((0.94, 0.945), (0.935, 0.95))}
    for split, (s0, s1) in acc.items():
        for folder, seed, (v, sl) in ((main, split, s0), (seed1, 1000 + split, s1)):
            labelled_run(folder, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, v, seed=seed)
            labelled_run(folder, f"sliding_beta1.1_lr0.1_split{split:02d}", "sliding", split, sl, seed=seed,
                         beta=1.1, lam=0.1)
    report.write_report(seed1, [main])
    text = (seed1 / "table.md").read_text()
    d0 = np.array([2.0, 1.0, 0.5])                     # sliding − vanilla, seed 0
    d1 = np.array([3.0, 0.5, 1.5])                     # seed 1
    from scipy import stats
    seed_sd, split_sd = np.std(d1 - d0, ddof=1) / np.sqrt(2), np.std((d0 + d1) / 2, ddof=1)
    sd = np.std(np.r_[d0, d1], ddof=1)
    mde = (stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * sd / np.sqrt(3)
    row = next(l for l in text.splitlines() if l.startswith("| sliding β0=1.1 − vanilla | main |"))
    assert f"| 3 | {d1.mean():+.2f} | {d0.mean():+.2f} | {(d0 + d1).mean() / 2:+.2f} [" in row
    assert row.endswith(f"| {seed_sd:.2f} | {split_sd:.2f} | {sd:.2f} | {mde:.2f} |")
    assert "| sliding β0=1.1 − main: vanilla |" not in text  # other seeds: never paired as if the same runs
    v0, v1 = np.array([93.0, 92.0, 94.0]), np.array([92.0, 93.0, 93.5])   # vanilla alone, seed 0 and seed 1
    lo, hi = stats.t.interval(0.95, 2, loc=(v1 - v0).mean(), scale=np.std(v1 - v0, ddof=1) / np.sqrt(3))
    row = next(l for l in text.splitlines() if l.startswith("| vanilla | main |"))
    assert row == (f"| vanilla | main | 3 | {v1.mean():.2f} | {v0.mean():.2f} | {(v1 - v0).mean():+.2f} [{lo:+.2f}, "
                   f"{hi:+.2f}] | {np.std(v1 - v0, ddof=1) / np.sqrt(2):.2f} | {np.std(v1 - v0, ddof=1) / np.sqrt(3):.2f} |")


def test_equal_count_differences_are_equal_despite_float_rounding():
    a = {10: 0.9246, 11: 0.9032}
    b = {k: round(v - 0.0024, 4) for k, v in a.items()}     # 24 images more on both splits
    n, mean, std, t_p, w_p = report.paired_tests(a, b)
    assert n == 2 and mean == pytest.approx(0.24) and std == 0 and np.isnan(t_p)
    assert report.verdict(*report.ci95(n, mean, std)).startswith("not resolved")


def test_a_contrast_verdict_holds_for_the_family_not_one_contrast(tmp_path):
    d = [1.0, 1.5, 0.5, 1.2, 0.8]   # p ≈ 0.004 alone; the Bonferroni CI over 4 contrasts is wider than the 95 % one
    for split in range(5):
        labelled_run(tmp_path, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.90)
        labelled_run(tmp_path, f"ramp_lam0.3_lr0.1_split{split:02d}", "ramp", split, 0.90 + d[split] / 100, lam=0.3)
    (tmp_path / "contrasts.json").write_text(json.dumps(dict(contrasts=[
        dict(name=str(i), a="ramp", b="vanilla") for i in range(4)])))
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    from scipy import stats
    lo, hi = report.ci95(5, np.mean(d), np.std(d, ddof=1), 1 - 0.05 / 4)
    half = stats.t.ppf(1 - 0.025 / 4, 4) * np.std(d, ddof=1) / np.sqrt(5)
    assert (lo, hi) == pytest.approx((np.mean(d) - half, np.mean(d) + half))
    assert f"| [{lo:+.2f}, {hi:+.2f}] | A better |" in text and "98.8 % CI" in text


def test_a_summary_pairs_groups_of_several_folders_row_by_row(tmp_path):
    for split, (v, h, h2) in enumerate(((0.92, 0.93, 0.95), (0.93, 0.945, 0.96), (0.94, 0.945, 0.97))):
        labelled_run(tmp_path / "main", f"vanilla_lr0.1_split{split:02d}", "vanilla", split, v)
        labelled_run(tmp_path / "main", f"hofer_beta4_lr0.1_split{split:02d}", "hofer", split, h, beta=4.0, lam=0.1)
        labelled_run(tmp_path / "l2", f"hofer_beta0.5_lr0.1_split{split:02d}", "hofer", split, h2, beta=0.5, lam=0.1,
                     METRIC="l2")
    labelled_run(tmp_path / "l2", "hofer_beta0.5_lr0.1_split07", "hofer", 7, 0.99, beta=0.5, lam=0.1, METRIC="l2")
    spec = tmp_path / "row.json"
    spec.write_text(json.dumps(dict(title="T", rows=[
        dict(setting="L2", a="l2: hofer", b="main: vanilla"),
        dict(setting="metric", a="l2: hofer", b="main: hofer β=4"),
        dict(setting="later", a="nesterov: hofer", b="main: vanilla")])))
    text = report.write_summary(spec).read_text()
    from scipy import stats
    d = np.array([3.0, 3.0, 3.0])                          # l2 − vanilla: no spread, so no CI
    row = next(l for l in text.splitlines() if l.startswith("| L2 |"))
    assert "| 3 (0, 1, 2) | 96.00 ± 1.00 | 93.00 ± 1.00 | +3.00 | – | not resolved" in row  # split 7 has no pair
    assert row.endswith("| – |")                           # vanilla uses no metric
    d = np.array([2.0, 1.5, 2.5])                          # l2 − hofer β=4
    h = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    row = next(l for l in text.splitlines() if l.startswith("| metric |"))
    assert f"| +2.00 | [{2 - h:+.2f}, {2 + h:+.2f}] | A better | METRIC \"l2\"→\"l1\", beta 0.5→4.0 |" in row
    assert "| later | nesterov: hofer | main: vanilla | 0 |" in text and "not yet: no finished group nesterov: hofer" in text


@pytest.mark.parametrize("rows", [[], [dict(setting="x", a="no folder", b="main: vanilla")], [dict(a="m: x")]])
def test_a_summary_spec_of_the_wrong_form_is_refused_with_its_expected_form(tmp_path, rows):
    spec = tmp_path / "row.json"
    spec.write_text(json.dumps(dict(rows=rows)))
    with pytest.raises(SystemExit, match="expected .*rows"):
        report.write_summary(spec)
    assert not spec.with_suffix(".md").exists()


def test_with_one_split_the_default_stays_and_the_reason_says_why():
    acc = np.array([[0.95], [0.92]])                    # value 1 is 3 points better, on a single split
    value, why = report.choose([1.0, 2.0], acc, default=2.0)
    assert value == 2.0 and "undefined with one split" in why and "inf" not in why
