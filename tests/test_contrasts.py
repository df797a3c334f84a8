"""contrasts.py: the comparisons named in a contrasts.json before the runs finished, read as one family."""
import json

import numpy as np
import pytest

import contrasts
import report
import stats as report_stats  # the report's; `stats` alone is scipy's in the tests below
from tests.report_helpers import METRICS, labelled_run, patch_final


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
        contrasts.contrast_metric("nc1")


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
