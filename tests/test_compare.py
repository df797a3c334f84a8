"""compare.py: the one paired comparison, the one verdict rule, dirty marks and the settings paired runs differ in."""
import json

import numpy as np
import pytest
from scipy import stats

import report
from reporting import compare
from reporting import stats as report_stats  # the report's; `stats` alone is scipy's in the tests below
from reporting.summary import write_summary
from tests.report_helpers import METRICS, labelled_run, patch_final, verdicts


def test_runs_of_another_folder_are_paired_by_split_and_seed_and_differences_are_listed(tmp_path, drawn):
    main, wd = tmp_path / "main", tmp_path / "wd"
    old = main / "runs" / "vanilla_lr0.1_split00"
    labelled_run(main, "vanilla_lr0.1_split00", "vanilla", 0, 0.90)
    labelled_run(main, "vanilla_lr0.1_split01", "vanilla", 1, 0.91)
    cfg = json.loads((old / "config.json").read_text())
    del cfg["config"]["NESTEROV"]                            # an older run: a missing key counts as its default
    (old / "config.json").write_text(json.dumps(cfg))
    labelled_run(main, "vanilla_lr0.1_split05", "vanilla", 5, 0.50, seed=1005)   # another seed: never paired
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
    assert not (main / "paired.png").exists()
    panel = drawn["paired.png: NC1 (training subset)"]                # those paired in first, then this folder's
    curves = {label: (x, y) for label, x, y in panel if not label.startswith("_")}
    assert list(curves) == ["main: vanilla", "vanilla", "hofer β=0.5"]
    assert all(x == [1] and y == pytest.approx([METRICS["nc1"]]) for x, y in curves.values())
    assert [x for label, x, _ in panel if label.startswith("_")] == [[1, 1]] * 3   # dotted: first fit at epoch 1


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
    summary = verdicts(write_summary(spec).read_text())
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
    text = write_summary(spec).read_text()
    assert "| dirty † | main: hofer |" in text and "| clean | other: vanilla |" in text
    assert "main: hofer: 2 of 3 runs." in text and "main: vanilla" not in text.split("† pairs")[1].split("\n")[0]


def run(split: int, seed: int, acc) -> dict:
    """A finished run as the report keeps it, with only what a paired comparison reads."""
    return dict(run=dict(split=split), seed=seed, final=dict(test_acc=acc))


def test_the_one_paired_comparison_is_the_paired_t_test_and_wilcoxon_of_the_shared_splits():
    a = [run(0, 0, 0.93), run(1, 0, 0.95), run(2, 0, 0.94), run(3, 0, 0.90), run(4, 0, 0.96), run(5, 7, 0.99)]
    b = [run(0, 0, 0.92), run(1, 0, 0.93), run(2, 0, 0.945), run(3, 0, 0.89), run(4, 0, 0.94), run(5, 0, 0.50)]
    c = compare.paired(a, b)                       # split 5 has another seed in A: its runs are no pair
    x, y = np.array([0.93, 0.95, 0.94, 0.90, 0.96]), np.array([0.92, 0.93, 0.945, 0.89, 0.94])
    d = 100 * (x - y)
    assert c.shared == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)] and c.n == 5 and c.left_out == 0
    assert (c.mean, c.std) == pytest.approx((d.mean(), d.std(ddof=1)))
    assert c.t_p == pytest.approx(stats.ttest_rel(x, y).pvalue) and c.w_p == pytest.approx(stats.wilcoxon(d).pvalue)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert c.ci == pytest.approx((d.mean() - half, d.mean() + half)) and c.wins == 4    # B better on split 2
    assert (c.a[(1, 0)], c.b[(1, 0)]) == (0.95, 0.93)


def test_a_paired_comparison_of_a_metric_leaves_out_the_pairs_without_a_value():
    def collapse(split, v):
        return dict(run=dict(split=split), seed=0, final=dict(train=dict(etf_distance_means=v)))
    a = [collapse(0, 0.1), collapse(1, 0.2), collapse(2, None), collapse(3, 0.15)]
    b = [collapse(0, 0.5), collapse(1, 0.4), collapse(2, 0.3), collapse(3, 0.45)]
    def etf(r):
        return r["final"]["train"]["etf_distance_means"]
    c = compare.paired(a, b, etf, unit=1)
    d = np.array([0.1, 0.2, 0.15]) - [0.5, 0.4, 0.45]
    assert (c.n, c.left_out) == (3, 1) and (c.mean, c.std) == pytest.approx((d.mean(), d.std(ddof=1)))
    assert c.wins == 0 and c.t_p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    one = compare.paired(a[:1], b[:1], etf, unit=1)  # one pair: a mean, but no spread, CI or p
    assert one.n == 1 and np.isnan(one.std) and np.isnan(one.ci[0]) and np.isnan(one.t_p)
    assert compare.paired(a, [], etf, unit=1).n == 0 and compare.family([None, one, c]) == (0.95, pytest.approx(
        [np.nan, np.nan, c.t_p], nan_ok=True), pytest.approx([np.nan, np.nan, c.w_p], nan_ok=True))
