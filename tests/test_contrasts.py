"""contrasts.py: the comparisons named in a contrasts.json before the runs finished, read family by family."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import report
from reporting import contrasts, records
from reporting import stats as report_stats  # the report's; `stats` alone is scipy's in the tests below
from reporting.groups import grouped
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


def _confirm_folder(out, ratios, etf, accs):
    """Five splits of vanilla, hofer and sliding: each run's test accuracy, train Tr Σ_W / Tr Σ_B (Tr Σ_B = 10) and
    train ETF distance of the means from the per-arm lists."""
    for split in range(5):
        for reg in ("vanilla", "hofer", "sliding"):
            folder = labelled_run(out, "", reg, split, accs[reg][split], beta=None if reg == "vanilla" else 2.0,
                                  lam=None if reg == "vanilla" else 0.03)
            patch_final(folder, train=dict(METRICS, within_class_variation=10.0 * ratios[reg][split],
                                           between_class_variation=10.0, etf_distance_means=etf[reg][split]))


FAMILIES = dict(note="named first", families=[
    dict(name="accuracy", note="does it help?", contrasts=[
        dict(name="sliding − vanilla", a="sliding", b="vanilla"),
        dict(name="hofer − vanilla", a="hofer", b="vanilla", metric="test_acc")]),
    dict(name="collapse", contrasts=[
        dict(name="sliding − vanilla, log10 ratio", a="sliding", b="vanilla", metric="train:scale_free_variation",
             scale="log10"),
        dict(name="sliding − vanilla, ETF", a="sliding", b="vanilla", metric="train:etf_distance_means"),
        dict(name="hofer − vanilla, log10 ratio", a="hofer", b="vanilla", metric="train:scale_free_variation",
             scale="log10")]),
    dict(name="NC3 and NC4", exploratory=True, contrasts=[
        dict(name="sliding − vanilla, NC3", a="sliding", b="vanilla", metric="train:nc3_self_duality")])])


def test_two_families_are_each_holm_corrected_within_themselves_and_log10_scores_the_ratio(tmp_path):
    ratios = dict(vanilla=[0.03, 0.02, 0.04, 0.03, 0.05], hofer=[0.02, 0.03, 0.03, 0.02, 0.04],
                  sliding=[0.0003, 0.0005, 0.0002, 0.0004, 0.0003])
    etf = dict(vanilla=[0.27, 0.30, 0.25, 0.28, 0.26], hofer=[0.3] * 5, sliding=[0.46, 0.40, 0.50, 0.45, 0.44])
    accs = dict(vanilla=[0.93, 0.94, 0.92, 0.935, 0.93], hofer=[0.931, 0.945, 0.925, 0.93, 0.94],
                sliding=[0.94, 0.952, 0.93, 0.944, 0.941])
    _confirm_folder(tmp_path, ratios, etf, accs)
    (tmp_path / "contrasts.json").write_text(json.dumps(FAMILIES))
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    from scipy import stats

    # the collapse family: log10(A) − log10(B) split by split, Holm over its 3, each CI at 1 − 0.05/3
    d_ratio = np.log10(ratios["sliding"]) - np.log10(ratios["vanilla"])
    d_etf = np.array(etf["sliding"]) - etf["vanilla"]
    d_hofer = np.log10(ratios["hofer"]) - np.log10(ratios["vanilla"])
    p = [stats.ttest_1samp(d, 0).pvalue for d in (d_ratio, d_etf, d_hofer)]
    order = np.argsort(p)
    holm3 = np.empty(3)
    holm3[order] = np.maximum.accumulate([min(1, (3 - k) * p[i]) for k, i in enumerate(order)])
    rows = {l.split(" | ")[0][2:]: l for l in text.splitlines() if l.startswith("| ") and " − " in l}
    lo, hi = report_stats.ci95(5, d_ratio.mean(), d_ratio.std(ddof=1), 1 - 0.05 / 3)
    ratio_row = rows["sliding − vanilla, log10 ratio"]
    assert "| log10 scale_free_variation (train, last epoch) |" in ratio_row
    assert f"| 5 | {d_ratio.mean():+.3f} |" in ratio_row and f"({holm3[0]:.3g})" in ratio_row
    assert f"| [{lo:+.3f}, {hi:+.3f}] | A better (98.3 % CI) |" in ratio_row     # lower: nearer collapse
    lo, hi = report_stats.ci95(5, d_etf.mean(), d_etf.std(ddof=1), 1 - 0.05 / 3)
    assert f"| [{lo:+.3f}, {hi:+.3f}] | B better (98.3 % CI) |" in rows["sliding − vanilla, ETF"]
    # the accuracy family: its own Holm over 2, CI at 97.5 %
    d_acc = 100 * (np.array(accs["sliding"]) - accs["vanilla"])
    d_hv = 100 * (np.array(accs["hofer"]) - accs["vanilla"])
    pa = [stats.ttest_1samp(d, 0).pvalue for d in (d_acc, d_hv)]
    holm2 = [min(1, 2 * min(pa)), min(1, max(2 * min(pa), max(pa)))]
    holm2 = holm2 if pa[0] <= pa[1] else holm2[::-1]
    assert f"{pa[0]:.3g} ({holm2[0]:.3g})" in rows["sliding − vanilla"]
    assert "97.5 % CI" in rows["sliding − vanilla"] and "97.5 % CI" in rows["hofer − vanilla"]
    assert "### accuracy: a family of 2 contrasts" in text and "does it help?" in text
    assert "### collapse: a family of 3 contrasts" in text
    # the exploratory comparison: 95 %, uncorrected, and says it is exploratory
    assert "### NC3 and NC4: exploratory, 1 comparison" in text
    assert rows["sliding − vanilla, NC3"].split(" | ")[-2].startswith("exploratory: ")
    # other tables read a test-accuracy contrast in its family (97.5 %), never an exploratory or collapse one
    groups = grouped([r for r in records.load_runs(tmp_path) if r["final"]])
    pre = contrasts.preregistered_pairs(tmp_path, groups)
    assert set(pre) == {("sliding β0=2 λ=0.03", "vanilla"), ("hofer β=2 λ=0.03", "vanilla")}
    assert pre["sliding β0=2 λ=0.03", "vanilla"] == (pytest.approx(1 - 0.05 / 2), pytest.approx(holm2[0]))


def test_a_log10_contrast_leaves_out_a_run_whose_value_is_not_positive():
    m = contrasts.contrast_metric("test:scale_free_variation", "log10")
    run = lambda w, b: dict(final=dict(test=dict(within_class_variation=w, between_class_variation=b)))  # noqa: E731
    assert m["get"](run(1.0, 100.0)) == pytest.approx(-2.0) and m["label"] == ("log10 scale_free_variation (test, "
                                                                                 "last epoch)")
    assert m["get"](run(0.0, 100.0)) is None and m["get"](run(1.0, 0.0)) is None and m["get"](run(None, 1.0)) is None
    assert contrasts.contrast_metric("train:scale_free_variation")["get"](dict(final=dict(train=dict(
        within_class_variation=1.0, between_class_variation=4.0)))) == 0.25
    assert contrasts.contrast_metric("train:between_class_variation")["lower_is_better"] is False


@pytest.mark.parametrize("spec, says", [
    ({"families": []}, "families: found [] (a list): an empty list"),
    ({"families": [{"name": "a", "contrasts": [{"name": "x", "a": "s", "b": "v", "metric": "nc1"}]}]},
     "families[0].contrasts[0].metric: found 'nc1' (a string): unknown metric 'nc1'"),
    ({"families": [{"name": "a", "contrasts": [{"name": "x", "a": "s", "b": "v", "scale": "ln"}]}]},
     "families[0].contrasts[0].scale: found 'ln' (a string): unknown scale; expected log10"),
    ({"families": [{"name": "a", "contrasts": [{"name": "x", "a": "s", "b": "v", "metrc": "test_acc"}]}]},
     "families[0].contrasts[0].metrc: unknown field"),
    ({"families": [{"name": "a", "exploratory": "yes", "contrasts": [{"name": "x", "a": "s", "b": "v"}]}]},
     "families[0].exploratory: found 'yes' (a string), expected true for a family"),
    ({"families": [{"name": "a", "contrasts": [{"name": "x", "a": "s", "b": "v"}]},
                   {"name": "b", "contrasts": [{"name": "x", "a": "s", "b": "v"}]}]},
     "contrast name 'x' is used in more than one family"),
    ({"families": [{"name": "a", "contrasts": [{"name": "x", "a": "s", "b": "v"}, {"name": "x", "a": "s", "b": "w"}]}]},
     "families[0].contrasts: found"),
    ({"note": 5, "contrasts": []}, "note: found 5 (a number), expected what the contrasts ask"),
    ({"contrasts": [{"name": "x", "a": 1, "b": "v"}]}, "contrasts[0].a: found 1 (a number), expected side A"),
    ([1, 2], "the file: found [1, 2] (a list), expected an object"),
])
def test_a_contrasts_file_of_the_wrong_form_is_one_error_naming_the_field(tmp_path, spec, says):
    labelled_run(tmp_path, "", "vanilla", 0, 0.9)
    (tmp_path / "contrasts.json").write_text(json.dumps(spec))
    with pytest.raises(report.ReportError) as err:
        report.write_report(tmp_path)
    assert str(tmp_path / "contrasts.json") in str(err.value) and says in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "table.md").exists()


ROOT = Path(__file__).resolve().parents[1]


def trained_commits(folder: Path) -> dict[str, set]:
    """{commit: the runs of a results folder that trained epochs from it}, from every final.json and its segments."""
    found = {}
    for path in sorted(folder.glob("runs/*/final.json")):
        final = json.loads(path.read_text())
        for commit in {final["commit"], *(s.get("commit") for s in final.get("segments", []))} - {None}:
            found.setdefault(commit, set()).add(path.parent.name)
    return found


@pytest.mark.parametrize("spec", sorted((ROOT / "results").glob("*/contrasts.json")), ids=lambda p: p.parent.name)
def test_a_committed_contrasts_file_was_in_the_tree_of_every_commit_its_runs_trained_from(spec):
    """Pre-registered means named before the runs: the very file is in the tree of every commit that trained a run of
    its folder, from a clean tree (a dirty one proves nothing). (A folder paired in may predate it: the ablations
    pair with the original study.)"""
    text, relative = spec.read_text(), spec.relative_to(ROOT).as_posix()
    contrasts.read_contrasts(spec)                                     # of a form the report reads
    for commit, runs in trained_commits(spec.parent).items():
        assert not commit.endswith("+dirty"), f"{sorted(runs)[:3]} trained from a dirty tree"
        shown = subprocess.run(["git", "show", f"{commit}:{relative}"], cwd=ROOT, capture_output=True, text=True)
        assert shown.returncode == 0, f"{relative} is not in commit {commit}, which trained {sorted(runs)[:3]}"
        assert shown.stdout == text, f"{relative} changed after commit {commit} trained {sorted(runs)[:3]}"
