"""folder_table.py (and replicates.py): the sections of a folder's table.md."""
import json

import numpy as np
import pytest

import report
from reporting import folder_table
from reporting.groups import Group
from tests.report_helpers import METRICS, fake_run, labelled_run, patch_final


def test_trajectory_tables_give_the_median_over_splits_at_the_shared_epochs_nearest_the_targets():
    def run(nc1_by_epoch):
        return dict(log=[dict(epoch=e, test_acc=0.9, train=dict(nc1=v, etf_distance_means=1.0),
                              test=dict(nc1=2 * v, etf_distance_means=1.0)) for e, v in nc1_by_epoch.items()]
                    + [dict(epoch=2, train_acc=1.0)])                     # a line without evaluation
    groups = {"vanilla": Group("", "vanilla", (run({1: 1.0, 4: 0.5, 12: 0.1, 50: 0.01}),
                                               run({1: 3.0, 4: 0.7, 12: 0.3, 50: 0.03}),
                                               run({1: 2.0, 4: 0.6, 12: 0.2, 50: 0.02, 60: 0.0}))),  # 60: not in all
              "sliding": Group("", "sliding", (run({1: 1.0, 4: 0.4, 12: 0.05, 50: 0.001}),))}
    text = "\n".join(folder_table.trajectory_tables(groups, near=(3, 10)))
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


def test_collapse_tables_put_the_trace_ratio_beside_nc1_and_count_runs_where_nc1_is_undefined(tmp_path, drawn):
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
    title = "spectrum.png: normalised Σ_B spectrum at the last epoch ({}); dotted: simplex ETF"
    [(label, k, shown)] = [line for line in drawn[title.format("train")] if not line[0].startswith("_")]
    assert label == "ramp λ=0.1 (3 runs)" and k == list(range(1, 10))       # the geometric mean over the runs
    assert shown[:8] == pytest.approx(spectrum[:8]) and np.isnan(shown[8])  # 0 in every run: a gap on the log axis
    assert [y for label, _, y in drawn[title.format("train")] if label.startswith("_")] == [pytest.approx([1 / 9] * 2)]
    assert not [label for label, _, _ in drawn[title.format("test")] if not label.startswith("_")]  # none logged
