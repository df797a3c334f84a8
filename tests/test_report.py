"""report.py, tables.py, figures.py: tables and figures from run folders written by hand (no training)."""
import json
from pathlib import Path

import numpy as np
import pytest

import figures
import report
import runs
import stats as report_stats  # the report's; `stats` alone is scipy's in the tests below
import tables

METRICS = dict(nc1=0.1, etf_distance_means=0.2, etf_distance_classifiers=0.3, nc3_self_duality=0.04,
               nc4_ncc_mismatch=0.0, within_class_variation=1.0, between_class_variation=10.0)


def fake_run(out: Path, regularizer: str, beta: float, split: int, test_acc: float | None) -> None:
    """A run folder as experiment.py writes it; test_acc None = still running (no final.json)."""
    run = dict(regularizer=regularizer, beta=beta, lr=0.1, split=split)
    folder = out / "runs" / runs.run_name(run, {})                 # the name experiment.py gives it
    folder.mkdir(parents=True)
    cfg = dict(run=run, seed=split, data_source="test", config=dict(DATASET="MNIST", TRAIN_SIZE=250))
    (folder / "config.json").write_text(json.dumps(cfg))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc or 0.5, train=METRICS, test=METRICS,
                death_mean=[0.5] * 10, death_max=[1.0] * 10)
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    if test_acc is not None:
        (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1,
                                                           train=METRICS, test=METRICS, commit="abc")))


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """{file name: [(line label, x, y) of every line of every axis]} of the figures a test writes: what they show."""
    shown, save = {}, figures._save

    def recording(fig, path):
        lines = []
        for ax in fig.axes:
            handles, labels = ax.get_legend_handles_labels()          # an error bar's data line is its first
            lines += [(label, h.lines[0] if hasattr(h, "lines") else h) for h, label in zip(handles, labels)]
            lines += [(l.get_label(), l) for l in ax.get_lines() if l.get_label().startswith("_")]  # unlabelled
        shown[Path(path).name] = [(label, list(l.get_xdata()), list(l.get_ydata())) for label, l in lines]
        return save(fig, path)
    monkeypatch.setattr(figures, "_save", recording)
    return shown


def study(out: Path, pair_with=(), **script_defaults) -> None:
    """OUT_DIR/study.json as experiment.main writes it: the entry script's defaults and the folders paired with."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(dict(script_defaults=script_defaults, pair_with=list(pair_with))))


def test_beta_sweep_compares_betas_on_the_splits_all_of_them_finished(tmp_path, drawn):
    study(tmp_path, HOFER_BETAS=[4.0])
    acc = {(1.0, 10): 0.90, (1.0, 11): 0.92, (2.0, 10): 0.93, (2.0, 11): 0.91, (4.0, 10): 0.89, (4.0, 11): 0.90}
    for (b, s), a in acc.items():
        fake_run(tmp_path, "hofer", b, s, a)
    fake_run(tmp_path, "hofer", 1.0, 12, 0.99)   # split 12 only for β = 1: left out of the comparison
    fake_run(tmp_path, "hofer", 2.0, 12, None)   # still running
    fake_run(tmp_path, "vanilla", 0.0, 10, 0.5)  # other regularisers are not part of the sweep
    finished = [r for r in tables.load_runs(tmp_path) if r["final"]]
    sw = next(sw for sw in tables.sweeps(finished) if (sw["reg"], sw["param"]) == ("hofer", "beta"))
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
    finished = [r for r in tables.load_runs(tmp_path) if r["final"]]
    assert tables.sweeps(finished) == []
    report.write_report(tmp_path)
    assert "β sweep" not in (tmp_path / "table.md").read_text() and not (tmp_path / "sweep.png").exists()


def test_report_reads_a_log_whose_last_line_is_being_written(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert runs.read_log(log)[0] == [{"epoch": 1}, {"epoch": 2}]


def test_trajectory_tables_give_the_median_over_splits_at_the_shared_epochs_nearest_the_targets():
    def run(nc1_by_epoch):
        return dict(log=[dict(epoch=e, test_acc=0.9, train=dict(nc1=v, etf_distance_means=1.0),
                              test=dict(nc1=2 * v, etf_distance_means=1.0)) for e, v in nc1_by_epoch.items()]
                    + [dict(epoch=2, train_acc=1.0)])                     # a line without evaluation
    groups = {"vanilla": [run({1: 1.0, 4: 0.5, 12: 0.1, 50: 0.01}), run({1: 3.0, 4: 0.7, 12: 0.3, 50: 0.03}),
                          run({1: 2.0, 4: 0.6, 12: 0.2, 50: 0.02, 60: 0.0})],   # epoch 60: not in every run
              "sliding": [run({1: 1.0, 4: 0.4, 12: 0.05, 50: 0.001})]}
    text = "\n".join(tables.trajectory_tables(groups, near=(3, 10)))
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
    cfg_path = tmp_path / "runs" / "vanilla_lr0.1_split00" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["EPOCHS"] = 1                                       # the others do not record it
    cfg_path.write_text(json.dumps(cfg))
    report.write_report(tmp_path)
    assert "**Warning: these runs differ in EPOCHS**" in (tmp_path / "table.md").read_text()


def labelled_run(out: Path, name: str, regularizer: str, split: int, test_acc: float, seed: int = 0, val_acc=None,
                 **settings) -> Path:
    """A finished run as experiment.py now writes it (run-level λ, config with every run-defining setting), in the
    folder its settings name (`runs.run_name`; `name` is what a reader of the test calls it)."""
    run = dict(regularizer=regularizer, split=split, lr=0.1, beta=settings.pop("beta", None),
               lam=settings.pop("lam", None))
    config = {**dict(DATASET="MNIST", TRAIN_SIZE=250, METRIC="l1", WEIGHT_DECAY=1e-3, NESTEROV=False), **settings}
    folder = out / "runs" / runs.run_name(run, config)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(run=run, config=config, seed=seed, data_source="test")))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc, train=METRICS, test=METRICS, death_mean=[0.5] * 10,
                death_max=[1.0] * 10, **({} if val_acc is None else dict(val_acc=val_acc)))
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1, train=METRICS,
                                                       test=METRICS, commit="abc")))
    return folder


def test_runs_with_an_etf_classifier_are_labelled_so_and_have_no_published_number(tmp_path):
    base, etf = tmp_path / "base", tmp_path / "etf"
    for split, (a, b) in enumerate(((0.92, 0.93), (0.93, 0.95), (0.94, 0.94))):
        labelled_run(base, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, a, ETF_CLASSIFIER=False)
        labelled_run(etf, f"vanilla_etf_lr0.1_split{split:02d}", "vanilla", split, b, ETF_CLASSIFIER=True)
    (etf / "contrasts.json").write_text(json.dumps(dict(note="n", contrasts=[
        dict(name="ETF with vanilla", a="vanilla", b="base: vanilla")])))
    report.write_report(etf, pair_with=[base])
    rows = [l for l in (etf / "table.md").read_text().splitlines() if l.startswith("| ")]
    assert any(l.startswith("| vanilla ETF | 3 (0, 1, 2) | 94.00 ± 1.00 | – |") for l in rows)
    assert any(l.startswith("| vanilla ETF − base: vanilla | 3 | +1.00 |") for l in rows)
    assert any(l.startswith("| ETF with vanilla | vanilla ETF − base: vanilla | 3 | +1.00 |") for l in rows)


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
    assert report_stats.holm(p + [float("nan")])[:3] == pytest.approx(holm.tolist())
    # the family is the four contrasts named in advance, also while D has no run: m = 4, Bonferroni 1 − 0.05/4
    holm4 = np.empty(3)
    holm4[order] = np.maximum.accumulate([min(1, (4 - k) * p[i]) for k, i in enumerate(order)])
    assert report_stats.holm(p + [float("nan")], m=4)[:3] == pytest.approx(holm4.tolist())
    rows = {l.split(" | ")[0][2:]: l for l in text.splitlines() if l.startswith("| ") and " − " in l and "(" in l}
    assert f"{p[0]:.3g} ({holm4[0]:.3g})" in rows["A"] and rows["A"].endswith("| A better | – |")
    assert rows["B"].endswith("| no difference (98.8 % CI within ±0.5) | – |")
    d = np.array(diffs["c"])
    lo, hi = report_stats.ci95(5, d.mean(), d.std(ddof=1), 1 - 0.05 / 4)
    assert rows["C"].endswith(f"| not detected (98.8 % CI allows {lo:+.2f} to {hi:+.2f}) | – |")
    assert "| D | hofer − vanilla | 0 |" in text and "not yet" in text


def test_a_lambda_sweep_on_held_out_splits_is_chosen_by_validation_accuracy(tmp_path):
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
    assert (tmp_path / "sweep_ramp_lam.png").stat().st_size > 5_000


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
    [sw] = tables.sweeps([r for r in tables.load_runs(tmp_path) if r["final"]], {"SLIDING_BETA0S": [1.1],
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
    se = np.std(d1 - d0, ddof=1) / np.sqrt(3)             # the std of the difference of two 3-split means
    assert row.endswith(f"| {seed_sd:.2f} | {se:.2f} | {split_sd:.2f} | {sd:.2f} | {mde:.2f} |")
    assert "| sliding β0=1.1 − main: vanilla |" not in text  # other seeds: never paired as if the same runs
    v0, v1 = np.array([93.0, 92.0, 94.0]), np.array([92.0, 93.0, 93.5])   # vanilla alone, seed 0 and seed 1
    lo, hi = stats.t.interval(0.95, 2, loc=(v1 - v0).mean(), scale=np.std(v1 - v0, ddof=1) / np.sqrt(3))
    row = next(l for l in text.splitlines() if l.startswith("| vanilla | main |"))
    assert row == (f"| vanilla | main | 3 | {v1.mean():.2f} | {v0.mean():.2f} | {(v1 - v0).mean():+.2f} [{lo:+.2f}, "
                   f"{hi:+.2f}] | {np.std(v1 - v0, ddof=1) / np.sqrt(2):.2f} | {np.std(v1 - v0, ddof=1) / np.sqrt(3):.2f} |")


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
    lo, hi = report_stats.ci95(5, np.mean(d), np.std(d, ddof=1), 1 - 0.05 / 4)
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
    for beta in (1, 2):                                    # two hofer groups: "two: hofer" names neither
        labelled_run(tmp_path / "two", f"hofer_beta{beta}_lr0.1_split00", "hofer", 0, 0.9, beta=beta, lam=0.1)
    spec = tmp_path / "row.json"
    spec.write_text(json.dumps(dict(title="T", rows=[
        dict(setting="L2", a="l2: hofer", b="main: vanilla"),
        dict(setting="metric", a="l2: hofer", b="main: hofer β=4"),
        dict(setting="later", a="nesterov: hofer", b="main: vanilla"),
        dict(setting="ambiguous", a="two: hofer", b="main: vanilla")])))
    text = tables.write_summary(spec).read_text()
    from scipy import stats
    d = np.array([3.0, 3.0, 3.0])                          # l2 − vanilla: no spread, so no CI
    row = next(l for l in text.splitlines() if l.startswith("| L2 |"))
    assert ("| 3 (0, 1, 2) | 96.00 ± 1.00 | 93.00 ± 1.00 | +3.00 | – | – | A better on every pair, by the same 3.00 "
            "(no spread: no CI) |") in row                 # split 7 has no pair; no spread, so no p either
    assert row.endswith("| – |")                           # vanilla uses no metric
    d = np.array([2.0, 1.5, 2.5])                          # l2 − hofer β=4
    h = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    row = next(l for l in text.splitlines() if l.startswith("| metric |"))
    p = stats.ttest_1samp(d, 0).pvalue    # Holm over the 2 rows with pairs (L2's p is undefined, yet it was made)
    assert f"| +2.00 | [{2 - h:+.2f}, {2 + h:+.2f}] | {p:.3g} ({2 * p:.3g}) | A better | METRIC \"l2\"→\"l1\", beta 0.5→4.0 |" in row
    assert "| later | nesterov: hofer | main: vanilla | 0 |" in text and "not yet: no finished group nesterov: hofer" in text
    assert "two: hofer names 2 groups (two: hofer β=1, two: hofer β=2): name one by its label" in text


@pytest.mark.parametrize("rows", [[], [dict(setting="x", a="no folder", b="main: vanilla")], [dict(a="m: x")],
                                  [dict(setting="typo", a="main: vanila", b="main: sliding")]])
def test_a_summary_spec_of_the_wrong_form_is_refused_with_its_expected_form(tmp_path, rows):
    spec = tmp_path / "row.json"
    spec.write_text(json.dumps(dict(rows=rows)))
    with pytest.raises(SystemExit, match="expected .*rows"):
        tables.write_summary(spec)
    assert not spec.with_suffix(".md").exists()


def test_without_study_json_a_sweep_has_no_default_and_the_best_mean_is_the_choice(tmp_path):
    for split, accs in ((10, (0.91, 0.92)), (11, (0.92, 0.925))):   # β = 4 is 0.75 points better, SE 0.25
        for beta, acc in zip((2.0, 4.0), accs):
            fake_run(tmp_path, "hofer", beta, split, acc)
    report.write_report(tmp_path)
    assert "Held-out choice by test accuracy: β = 4 (best mean)." in (tmp_path / "table.md").read_text()
    study(tmp_path, HOFER_BETAS=[2.0])                               # the default 2 is beaten by more than one SE
    report.write_report(tmp_path)
    assert "β = 4 (beats the default 2 by 0.75 > one paired SE (0.25) points)" in (tmp_path / "table.md").read_text()


def test_without_pair_with_a_folder_is_paired_with_the_folders_its_study_json_names(tmp_path):
    main, other, wd = tmp_path / "main", tmp_path / "other", tmp_path / "wd"
    for folder, acc in ((main, 0.90), (other, 0.80), (wd, 0.93)):
        for split in (0, 1):
            labelled_run(folder, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, acc + split / 100)
    study(wd, pair_with=[str(main)])                      # absolute here; relative ones are to the repository root
    report.write_report(wd)
    assert "| vanilla − main: vanilla | 2 | +3.00 |" in (wd / "table.md").read_text()
    report.write_report(wd, [other])                      # given ones replace the study's
    text = (wd / "table.md").read_text()
    assert "| vanilla − other: vanilla | 2 | +13.00 |" in text and "main: vanilla" not in text


@pytest.mark.parametrize("argv, msg", [([], "usage: python report.py RESULTS_DIR"),
                                       (["a", "b"], "usage: python report.py RESULTS_DIR"),
                                       (["a", "--PAIR_WITH=nowhere,x"], "--PAIR_WITH: no runs/ folder in nowhere, x"),
                                       (["--SUMMARY=none.json"], "--SUMMARY: no such file none.json")])
def test_the_command_line_refuses_arguments_of_neither_form_with_its_message(tmp_path, monkeypatch, argv, msg):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(SystemExit, match=msg.replace("[", r"\[")):
        report.parse_args(argv)


def test_the_command_line_takes_a_folder_with_folders_to_pair_or_summaries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m" / "runs").mkdir(parents=True)
    (tmp_path / "r").mkdir()
    (tmp_path / "s.json").write_text("{}")
    assert report.parse_args(["r", "--PAIR_WITH=m,", "--PAIR_WITH=m"]) == dict(summaries=[], out=Path("r"),
                                                                                 pair_with=["m", "m"])
    assert report.parse_args(["--SUMMARY=s.json", "r"]) == dict(summaries=[Path("s.json")], out=None, pair_with=[])


def patch_final(folder: Path, **changes) -> None:
    """Change a finished run's final.json (and its last log line's metrics, where given)."""
    final = json.loads((folder / "final.json").read_text())
    final.update(changes)
    (folder / "final.json").write_text(json.dumps(final))
    if "train" in changes:
        line = json.loads((folder / "log.jsonl").read_text())
        line.update(train=changes["train"])
        (folder / "log.jsonl").write_text(json.dumps(line) + "\n")


def test_a_contrast_scores_the_etf_distance_against_a_group_of_a_paired_folder(tmp_path):
    etf, base = tmp_path / "etf", tmp_path / "base"
    distances = {"etf": [0.10, 0.12, 0.08, 0.11], "base": [0.50, 0.45, 0.55, 0.52]}
    for split in range(4):
        for folder, key in ((etf, "etf"), (base, "base")):
            name = f"sliding_beta1.1_lr0.1_split{split:02d}"
            labelled_run(folder, name, "sliding", split, 0.95 + split / 1000, beta=1.1, lam=0.1)
            patch_final(folder / "runs" / name, train=dict(METRICS, etf_distance_means=distances[key][split]))
        labelled_run(etf, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.94)
    (etf / "contrasts.json").write_text(json.dumps(dict(note="n", contrasts=[
        dict(name="ETF (acc)", a="sliding", b="base: sliding", metric="test_acc"),
        dict(name="ETF (dist)", a="sliding", b="base: sliding", metric="train:etf_distance_means"),
        dict(name="sliding with ETF", a="sliding", b="vanilla")])))
    report.write_report(etf, [base])
    rows = {l.split(" | ")[0][2:]: l for l in (etf / "table.md").read_text().splitlines()
            if l.startswith("| ETF (") or l.startswith("| sliding with ETF |")}
    d = np.array(distances["etf"]) - distances["base"]
    lo, hi = report_stats.ci95(4, d.mean(), d.std(ddof=1))
    dist = rows["ETF (dist)"]
    assert "etf_distance_means (train, last epoch)" in dist and f"| 4 | {d.mean():+.3f} | [{lo:+.3f}, {hi:+.3f}] |" in dist
    assert dist.endswith("| A better | – |")                          # A's distance is lower: nearer the simplex ETF
    assert "test accuracy (% points)" in rows["ETF (acc)"] and "| 4 | +0.00 |" in rows["ETF (acc)"]
    assert "| 4 | +1.15 |" in rows["sliding with ETF"]               # 95.0–95.3 against 94: mean 1.15 points
    with pytest.raises(ValueError, match="unknown metric 'nc1'"):
        tables.contrast_metric("nc1")


def test_paired_runs_name_the_commit_and_cpu_capability_they_differ_in(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for split in range(2):
        labelled_run(a, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93)
        labelled_run(b, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92)
        patch_final(b / "runs" / f"vanilla_lr0.1_split{split:02d}", commit="def", cpu_capability="AVX512")
    report.write_report(a, [b])
    row = next(l for l in (a / "table.md").read_text().splitlines() if l.startswith("| vanilla − b: vanilla |"))
    assert row.endswith('| commit "abc"→"def", cpu_capability "not recorded"→"AVX512" |')


def test_paired_runs_name_every_provenance_they_differ_in_also_beside_a_contrast(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for split in range(3):
        labelled_run(a, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93 + split / 100)
        labelled_run(b, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92)
    patch_final(b / "runs" / "vanilla_lr0.1_split01", torch="2.9.0", device="cuda: NVIDIA H200", deterministic=False,
                tf32=True)
    (a / "contrasts.json").write_text(json.dumps(dict(note="n", contrasts=[dict(name="c", a="vanilla", b="b: vanilla")])))
    report.write_report(a, [b])
    text = (a / "table.md").read_text()
    differs = ('deterministic "not recorded"→"False", device "not recorded"→"cuda: NVIDIA H200", '
               'tf32 "not recorded"→"True", torch "not recorded"→"2.9.0"')
    assert next(l for l in text.splitlines() if l.startswith("| vanilla − b: vanilla |")).endswith(f"| {differs} |")
    assert next(l for l in text.splitlines() if l.startswith("| c | vanilla − b: vanilla |")).endswith(f"| {differs} |")


def test_a_run_of_a_paired_folder_that_is_not_in_the_tables_is_named_with_its_status(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for split in range(3):
        labelled_run(a, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93)
        labelled_run(b, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92)
    diverged = b / "runs" / "vanilla_lr0.1_split02"
    (diverged / "final.json").rename(diverged / "diverged.json")       # its split leaves every pairing with b
    (b / "runs" / "vanilla_lr0.1_split01" / "final.json").unlink()       # still training
    report.write_report(a, [b])
    text = (a / "table.md").read_text()
    section = text[text.index("## Runs not in the tables"):text.index("## Paired")]
    assert "| b: vanilla_lr0.1_split02 | diverged |" in section and "| b: vanilla_lr0.1_split01 | unfinished |" in section
    assert next(l for l in text.splitlines() if l.startswith("| vanilla − b: vanilla |")).startswith(
        "| vanilla − b: vanilla | 1 |")


def test_a_contrast_counts_the_pairs_left_out_for_a_missing_value_and_names_an_ambiguous_side(tmp_path):
    for split in range(4):
        for reg, acc in (("sliding", 0.95), ("vanilla", 0.94)):
            folder = labelled_run(tmp_path, f"{reg}_lr0.1_split{split:02d}", reg, split, acc,
                                  beta=1.1 if reg == "sliding" else None)
            if reg == "sliding" and split == 3:                         # every class mean equal: no ETF distance
                patch_final(folder, train=dict(METRICS, etf_distance_means=None))
        labelled_run(tmp_path, f"floor_beta{0.5 + split % 2}_split{split:02d}", "floor", split, 0.9, beta=0.5 + split % 2)
    (tmp_path / "contrasts.json").write_text(json.dumps(dict(note="n", contrasts=[
        dict(name="dist", a="sliding", b="vanilla", metric="train:etf_distance_means"),
        dict(name="two floors", a="floor", b="vanilla")])))
    report.write_report(tmp_path)
    rows = {l.split(" | ")[0][2:]: l for l in (tmp_path / "table.md").read_text().splitlines() if l.startswith("| ")}
    assert "| 3 (1 left out: no value) | +0.000 |" in rows["dist"]
    assert "| floor names 2 groups (floor β0=0.5, floor β0=1.5): name one by its label |" in rows["two floors"]


def test_collapse_tables_put_the_trace_ratio_beside_nc1_and_count_runs_where_nc1_is_undefined(tmp_path):
    spectrum = [0.2] * 4 + [0.1] * 4 + [0.0]
    for split in range(3):
        name = f"ramp_lr0.1_split{split:02d}"
        labelled_run(tmp_path, name, "ramp", split, 0.93, lam=0.1)
        undefined = dict(METRICS, nc1=None, undefined="span fewer", between_class_spectrum=spectrum)
        patch_final(tmp_path / "runs" / name, train=undefined if split else dict(METRICS, between_class_spectrum=spectrum))
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "| regulariser | NC1 | Tr Σ_W / Tr Σ_B | ETF dist. means |" in text
    assert any(l.startswith("| ramp λ=0.1 | 0.1 (1 of 3 defined) | 0.1 ± ") for l in text.splitlines())
    assert "Runs with NC1 undefined: ramp λ=0.1: 2 of 3 runs." in text
    train = text[text.index("on the train set"):text.index("on the test set")]
    assert "| mean death time (run metric) |" in train and any(   # the last log line's death_mean, 0.5 per class
        l.startswith("| ramp λ=0.1 |") and l.endswith("| 0.5 ± 0 (median 0.5) |") for l in train.splitlines())
    assert (tmp_path / "spectrum.png").stat().st_size > 10_000


def verdicts(text: str, column: int = -2) -> dict:
    """{first cell: verdict} of the table rows of a markdown text (the verdict in `column`)."""
    return {l.split(" | ")[0][2:]: l.removesuffix(" |").split(" | ")[column] for l in text.splitlines()
            if l.startswith("| ")}


def test_the_verdict_rule_is_the_same_in_every_table_family_wise_and_not(tmp_path):
    """A pre-registered contrast gets one verdict in its contrasts section, in the paired table and in a summary; the
    other comparisons are read in their table's own family: a CI within ±0.5 at 95 % is not one at 97.5 %."""
    abl = tmp_path / "abl"
    diffs = {"ramp": [0.1, 0.0, 0.05, 0.1, 0.0],          # pre-registered: within ±0.5 even family-wise
             "center": [1.0, -1.0, 0.5, -0.5, 0.2],       # pre-registered: spans 0 and more than ±0.5
             "sliding": [0.4, -0.4, 0.3, -0.3, 0.0]}      # not: within ±0.5 on its 95 % CI, not on the 97.5 % one
    for split in range(5):
        labelled_run(abl, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.90)
        for reg, d in diffs.items():
            labelled_run(abl, f"{reg}_lr0.1_split{split:02d}", reg, split, 0.90 + d[split] / 100, lam=0.1,
                         beta=1.1 if reg == "sliding" else None)
    (abl / "contrasts.json").write_text(json.dumps(dict(contrasts=[
        dict(name="X", a="ramp", b="vanilla"), dict(name="Y", a="center", b="vanilla")])))
    report.write_report(abl)
    table = (abl / "table.md").read_text()
    contrasts = table[table.index("## Pre-registered"):]
    paired = verdicts(table[table.index("## Paired"):table.index("## Pre-registered")])
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(dict(rows=[dict(setting="X", a="abl: ramp", b="abl: vanilla"),
                                          dict(setting="Y", a="abl: center", b="abl: vanilla"),
                                          dict(setting="Z", a="abl: sliding", b="abl: vanilla"),
                                          dict(setting="W", a="abl: center", b="abl: ramp")])))
    summary = verdicts(tables.write_summary(spec).read_text())
    pre = verdicts(contrasts)
    for name, reg in (("X", "ramp"), ("Y", "center")):
        d = np.array(diffs[reg])
        lo, hi = report_stats.ci95(5, d.mean(), d.std(ddof=1), 1 - 0.05 / 2)   # Bonferroni over 2 contrasts
        says = report_stats.verdict(lo, hi, 1 - 0.05 / 2)
        assert pre[name] == summary[name] == paired[f"{reg} λ=0.1 − vanilla"] == says
    assert pre["X"] == "no difference (97.5 % CI within ±0.5)" and pre["Y"].startswith("not detected (97.5 % CI allows")
    d = np.array(diffs["sliding"])
    assert report_stats.judge(5, d.mean(), d.std(ddof=1))[2] == "no difference (95 % CI within ±0.5)"  # alone
    lo, hi, says = report_stats.judge(5, d.mean(), d.std(ddof=1), 1 - 0.05 / 2)   # Z and W: the summary's family
    assert summary["Z"] == says == f"not detected (97.5 % CI allows {lo:+.2f} to {hi:+.2f})"
    # the paired table's own family: its 6 comparisons less the 2 pre-registered
    assert paired["sliding β0=1.1 − vanilla"] == report_stats.judge(5, d.mean(), d.std(ddof=1), 1 - 0.05 / 4)[2]
    assert "Rows read in a pre-registered family: X (abl/contrasts.json); Y (abl/contrasts.json)." in \
        spec.with_suffix(".md").read_text()


def test_runs_trained_from_a_dirty_tree_are_counted_per_group_and_marked_where_they_are_compared(tmp_path):
    main, other = tmp_path / "main", tmp_path / "other"
    for split in range(3):
        labelled_run(main, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92 + split / 100)
        labelled_run(main, f"hofer_beta4_lr0.1_split{split:02d}", "hofer", split, 0.91, beta=4.0, lam=0.1)
        labelled_run(other, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93)
    for split in (0, 2):
        patch_final(main / "runs" / f"hofer_beta4_lr0.1_split{split:02d}", commit="abc+dirty")
    report.write_report(main, [other])
    text = (main / "table.md").read_text()
    assert ("- trained from a dirty tree (a `+dirty` commit: uncommitted code, which no checkout gives back): "
            "hofer β=4: 2 of 3 runs") in text
    assert "- commit: abc (vanilla 3, hofer β=4 1); abc+dirty (hofer β=4 2)" in text   # where they vary, by group
    assert "- cpu: not recorded\n" in text
    rows = verdicts(text)
    assert "hofer β=4 − vanilla †" in rows and "hofer β=4 − other: vanilla †" in rows
    assert "vanilla − other: vanilla" in rows                       # no dirty run in these pairs: no mark
    assert "† pairs that hold a run trained from a dirty tree" in text and "hofer β=4: 2 of 3 runs." in text
    report.write_report(other)
    assert "trained from a dirty tree (a `+dirty` commit: uncommitted code, which no checkout gives back): none" in \
        (other / "table.md").read_text()
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(dict(rows=[dict(setting="dirty", a="main: hofer", b="main: vanilla"),
                                          dict(setting="clean", a="other: vanilla", b="main: vanilla")])))
    text = tables.write_summary(spec).read_text()
    assert "| dirty † | main: hofer |" in text and "| clean | other: vanilla |" in text
    assert "main: hofer: 2 of 3 runs." in text and "main: vanilla" not in text.split("† pairs")[1].split("\n")[0]


def test_the_per_split_figure_is_written_for_a_folder_and_for_a_pairing_and_joins_the_runs_of_one_split(tmp_path):
    main, seed1 = tmp_path / "main", tmp_path / "seed1"
    for split in range(3):
        labelled_run(main, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92 + split / 100)
        labelled_run(main, f"sliding_beta1.1_lr0.1_split{split:02d}", "sliding", split, 0.94, beta=1.1, lam=0.1)
        labelled_run(seed1, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93, seed=1000 + split)
    assert "per_split.png" in report.write_report(main)
    assert (main / "per_split.png").stat().st_size > 5_000
    assert "per_split.png" in report.write_report(seed1, [main])
    assert (seed1 / "per_split.png").stat().st_size > 5_000
    shown = {**tables.grouped(tables.load_runs(main, prefix="main")), **tables.grouped(tables.load_runs(seed1))}
    labels, lines, means = figures.per_split_points(shown)
    assert labels == ["main: vanilla", "main: sliding β0=1.1", "vanilla"]
    assert lines[(1, 0)] == [(0, pytest.approx(93.0)), (1, pytest.approx(94.0))]   # split 1, seed 0: main's runs
    assert lines[(1, 1001)] == [(2, pytest.approx(93.0))]                         # another seed: its own line
    x, m, lo, hi = means[0]
    half = 4.303 * 1.0 / np.sqrt(3)                       # vanilla 92, 93, 94: std 1, t(0.975, 2) = 4.303
    assert (x, m) == (0, pytest.approx(93.0)) and (lo, hi) == pytest.approx((93 - half, 93 + half), abs=1e-3)


DOCS = ["README.md", "RESULTS.md", "results/README.md", "benchmarks/README.md"]


def test_the_readme_is_short_and_no_document_speaks_of_one_machine():
    root = Path(__file__).resolve().parents[1]
    assert len((root / "README.md").read_text().splitlines()) <= 200
    for doc in DOCS:
        text = (root / doc).read_text()
        assert "../shared" not in text and "device tool" not in text.lower(), doc


def test_every_relative_link_of_the_documents_exists():
    import re
    root = Path(__file__).resolve().parents[1]
    for doc in DOCS:
        path = root / doc
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{doc}: {target}"


def test_a_size_curve_pairs_the_gaps_within_each_size_and_marks_sizes_not_run_yet(tmp_path):
    accs = {100: {"vanilla": [0.80, 0.82, 0.81], "sliding": [0.84, 0.83, 0.85]},
            250: {"vanilla": [0.90, 0.91, 0.92], "sliding": [0.92, 0.92, 0.93]}}
    for size, by_reg in accs.items():
        for reg, values in by_reg.items():
            for split, acc in enumerate(values):
                name = f"{reg}_lr0.1_split{split:02d}" if reg == "vanilla" else f"{reg}_beta1.1_lr0.1_split{split:02d}"
                labelled_run(tmp_path / f"mnist-{size}", name, reg, split, acc, TRAIN_SIZE=size,
                             **({} if reg == "vanilla" else dict(beta=1.1, lam=0.1)),
                             **(dict(WEIGHT_DECAY=1e-2) if (size, reg) == (250, "sliding") else {}))
                log = tmp_path / f"mnist-{size}" / "runs" / name / "log.jsonl"
                line = json.loads(log.read_text())
                log.write_text(json.dumps(dict(line, zero_edges=0.5 if size == 100 else 0.25)) + "\n")
    labelled_run(tmp_path / "mnist-500", "vanilla_lr0.1_split00", "vanilla", 0, 0.95, TRAIN_SIZE=500)
    for split in (1, 3):  # vanilla split 1 diverged, split 3 and sliding split 0 still training: in no column at 500
        labelled_run(tmp_path / "mnist-500", f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.5, TRAIN_SIZE=500)
    (tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split01" / "final.json").rename(
        tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split01" / "diverged.json")
    (tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split03" / "final.json").unlink()
    labelled_run(tmp_path / "mnist-500", "sliding_beta1.1_lr0.1_split00", "sliding", 0, 0.5, beta=1.1, lam=0.1,
                 TRAIN_SIZE=500)
    (tmp_path / "mnist-500" / "runs" / "sliding_beta1.1_lr0.1_split00" / "final.json").unlink()
    labelled_run(tmp_path / "mnist-1000", "sliding_beta1.1_lr0.1_split00", "sliding", 0, 0.97, beta=1.1, lam=0.1,
                 TRAIN_SIZE=1000, EPOCHS=1, SAMPLES_PER_GROUP=16)
    labelled_run(tmp_path / "mnist-1000", "sliding_beta2_lr0.1_split00", "sliding", 0, 0.5, beta=2, lam=0.1,
                 TRAIN_SIZE=1000)  # another group, just started: "sliding" still names the finished one
    (tmp_path / "mnist-1000" / "runs" / "sliding_beta2_lr0.1_split00" / "final.json").unlink()
    (tmp_path / "mnist-1000" / "runs" / "broken").mkdir()
    (tmp_path / "mnist-1000" / "runs" / "broken" / "config.json").write_text("{")
    log = tmp_path / "mnist-1000" / "runs" / "sliding_beta1.1_lr0.1_split00" / "log.jsonl"  # vanilla not yet at 1000
    log.write_text(json.dumps(dict(json.loads(log.read_text()), zero_edges=0.125)) + "\n")
    never = tmp_path / "mnist-100" / "runs" / "vanilla_lr0.1_split02" / "final.json"  # never fits its training set
    never.write_text(json.dumps(dict(json.loads(never.read_text()), tpt_epoch=None)))
    spec = tmp_path / "curve.json"
    spec.write_text(json.dumps(dict(title="t", size_curve={
        reg: {str(s): f"mnist-{s}: {reg}" for s in (100, 250, 500, 1000, 2000)} for reg in ("vanilla", "sliding")},
        gaps=[["sliding", "vanilla"]])))
    assert report.main([f"--SUMMARY={spec}"]) == 0
    text = (tmp_path / "curve.md").read_text()
    d = 100 * (np.array(accs[100]["sliding"]) - accs[100]["vanilla"])
    lo, hi = report_stats.ci95(3, d.mean(), d.std(ddof=1))
    row = next(l for l in text.splitlines() if l.startswith("| 100 | sliding |"))
    assert f"| {d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] (3 of 3) |" in row and "| 0.500 (3 runs) |" in row
    assert "| 250 | sliding | 3 (0–2) | 92.33 ± 0.58 | +1.33 " in text
    assert "| 100 | vanilla | 3 (0–2) | 81.00 ± 1.00 |  | 1.00 ± 0.00 (2 of 3 runs; the others never) |" in text
    assert "| 500 | sliding | 0 | not yet |" in text and "| 500 | vanilla | 1 (0) | 95.00 |" in text
    assert "- 500, vanilla: split 1 diverged (epoch 1 of ?), split 3 unfinished (epoch 1 of ?)" in text
    assert "- 500, sliding: split 0 unfinished" in text and "- 1000, sliding" not in text
    assert "- mnist-1000: broken unreadable (config.json is not valid JSON" in text
    sampling = (15 - 99 * (1 - (1 - 1 / 100) ** 15)) / 15  # an anchor and 15 draws from 100 images of its class
    assert f"| 1000 | sliding | 1 (0) | 97.00 | – | 1.00 | 0.125 (1 run); sampling {sampling:.3f} |" in text
    assert "| 1000 | vanilla | 0 |" in text
    assert "| 2000 |" not in text and "without a finished run yet: 2000." in text
    differs = "- 250, sliding − vanilla: WEIGHT_DECAY 0.01→0.001"  # a pair that differs in more than the regulariser
    assert differs in text and "- 100, sliding" not in text
    between = "- sliding: EPOCHS (missing)→1 at 1000; SAMPLES_PER_GROUP (missing)→16 at 1000; WEIGHT_DECAY 0.001→0.01 at 250"
    assert between in text  # settings in which one curve's runs differ between sizes
    assert "- 100: commit abc;" in text
    assert "validation accuracy is not shown" in text.lower()
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    for bad in (dict(size_curve={"vanilla": ["mnist-100"]}),
                dict(size_curve={"vanilla": {"100": "mnist-100: vanilla"}}, gaps=[["sliding", "vanilla"]])):
        spec.write_text(json.dumps(bad))
        with pytest.raises(SystemExit, match="expected"):
            report.main([f"--SUMMARY={spec}"])
    labelled_run(tmp_path / "mnist-100", "sliding_beta2_lr0.1_split00", "sliding", 0, 0.8, beta=2, lam=0.1,
                 TRAIN_SIZE=100)
    (tmp_path / "mnist-2000" / "runs").mkdir(parents=True)
    (tmp_path / "mnist-2000" / "settings.json").write_text(json.dumps(dict(TRAIN_SIZE=4000)))
    (tmp_path / "mnist-4000" / "runs").mkdir(parents=True)
    (tmp_path / "mnist-4000" / "settings.json").write_text("[")
    for size, side, why in (("100", "mnist-100: vanila", "is no regulariser"),          # a typo
                            ("100", "mnist-100: sliding", "matches 2 groups"),          # two groups
                            ("100", "mnist-250: vanilla", "another TRAIN_SIZE .*config.json: 250"),  # another size
                            ("2000", "mnist-2000: vanilla", r"another TRAIN_SIZE \(settings.json: 4000"),  # no run yet
                            ("4000", "mnist-4000: vanilla", "is not a folder's settings"),
                            ("hundred", "mnist-100: vanilla", "expected"), ("100", 100, "expected")):
        spec.write_text(json.dumps(dict(size_curve={"vanilla": {size: side}})))
        with pytest.raises(SystemExit, match=why):
            report.main([f"--SUMMARY={spec}"])
