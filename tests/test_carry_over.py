"""carry_over.py: the --SUMMARY table of one pre-registered family per dataset, and the rule that reads them together."""
import json
from pathlib import Path

import numpy as np
import pytest

import report
from common.runs import ReportError
from reporting import carry_over
from reporting import stats as report_stats
from tests.report_helpers import METRICS, labelled_run

CONTRASTS = [("sliding − vanilla", "{main}: sliding", "{main}: vanilla"), ("sliding − hofer", "{main}: sliding", "hofer"),
             ("hofer − vanilla", "hofer", "{main}: vanilla")]


@pytest.mark.parametrize("dirs, rule", [
    (["+", "+"], "carries over"), (["−", "−"], "carries over"), (["+", "−"], "differs"), (["−", "+"], "differs"),
    (["+", "0"], "unresolved"), (["0", "−"], "unresolved"), (["0", "0"], "not detected on either"),
    (["+", "+", "0"], "unresolved"), (["+", "0", "−"], "differs")])
def test_the_carry_over_rule(dirs, rule):
    assert carry_over.carries_over(dirs) == rule


def test_a_direction_is_the_side_of_zero_the_interval_lies_on():
    assert [carry_over.direction(*ci) for ci in ((0.1, 2), (-2, -0.1), (-0.1, 0.1), (0.0, 1.0))] == ["+", "−", "0", "0"]


def dataset(root: Path, name: str, acc: dict) -> None:
    """<name>-main (vanilla, sliding) and <name>-hofer (hofer, paired with main, holding the contrasts): acc[reg] is
    the test accuracy of splits 0..n-1."""
    main, hofer = root / f"{name}-main", root / f"{name}-hofer"
    for reg, values in acc.items():
        for split, a in enumerate(values):
            labelled_run(hofer if reg == "hofer" else main, f"{reg}_lr0.1_split{split:02d}", reg, split, a,
                         beta=0.5 if reg == "hofer" else 1.1 if reg == "sliding" else None,
                         lam=None if reg == "vanilla" else 0.1)
    hofer.mkdir(parents=True, exist_ok=True)
    (hofer / "study.json").write_text(json.dumps(dict(script_defaults={}, pair_with=[str(main)])))
    (hofer / "contrasts.json").write_text(json.dumps(dict(note="named first", contrasts=[
        dict(name=n, a=a.format(main=main.name), b=b.format(main=main.name)) for n, a, b in CONTRASTS])))


def spec(root: Path, **datasets) -> Path:
    path = root / "carry.json"
    path.write_text(json.dumps(dict(title="T", note="N", carry_over={k: f"{v}-hofer" for k, v in datasets.items()})))
    return path


def test_each_contrast_is_read_in_its_own_datasets_family_and_the_rule_sets_the_last_column(tmp_path):
    rng = np.random.default_rng(0)
    v = 0.90 + 0.01 * rng.standard_normal(6)
    # dataset A: sliding 2 points above both (clear), hofer = vanilla ± noise; dataset B: sliding 2 points below
    dataset(tmp_path, "a", dict(vanilla=v, sliding=v + 0.02 + 0.002 * rng.standard_normal(6),
                                hofer=v + 0.01 * rng.standard_normal(6)))
    dataset(tmp_path, "b", dict(vanilla=v, sliding=v - 0.02 + 0.002 * rng.standard_normal(6),
                                hofer=v + 0.01 * rng.standard_normal(6)))
    out = report.write_any_summary(spec(tmp_path, A="a", B="b"))
    text = Path(out).read_text()
    rows = {l.split(" | ")[0][2:]: l.split(" | ") for l in text.splitlines() if l.startswith("| ") and " − " in
            l.split(" | ")[0]}
    assert rows["sliding − vanilla"][-1] == "**differs** (+, −) |"
    assert rows["hofer − vanilla"][-1] == "**not detected on either** (0, 0) |"
    assert "| A: 98.3 % CI |" in text and "(A: 98.3 %; B: 98.3 %)" in text      # three contrasts: 1 − 0.05/3
    # each dataset's cells are those of its folder's table.md: the same family, CI and Holm p
    report.write_report(tmp_path / "a-hofer")
    table = (tmp_path / "a-hofer" / "table.md").read_text()
    line = next(l for l in table.splitlines() if l.startswith("| sliding − vanilla |")).split(" | ")
    assert rows["sliding − vanilla"][2:5] == [line[7], line[5].split(" (")[1][:-1], line[8]]


def test_the_ci_is_the_bonferroni_t_interval_of_the_paired_differences(tmp_path):
    v = np.array([0.90, 0.91, 0.92, 0.93, 0.94])
    up = np.array([0.011, 0.014, 0.009, 0.016, 0.010])
    for name in ("a", "b"):
        dataset(tmp_path, name, dict(vanilla=v, sliding=v + up, hofer=v + up / 2))
    text = Path(report.write_any_summary(spec(tmp_path, A="a", B="b"))).read_text()
    row = next(l for l in text.splitlines() if l.startswith("| sliding − vanilla |")).split(" | ")
    d = 100 * up
    lo, hi = report_stats.ci95(5, d.mean(), d.std(ddof=1), 1 - 0.05 / 3)
    assert row[1] == f"{d.mean():+.2f} (5 pairs)" and row[2] == f"[{lo:+.2f}, {hi:+.2f}]"
    assert row[-1] == "**carries over** (+, +) |"


def test_collapse_geometry_of_the_named_groups_and_a_dataset_not_yet_run(tmp_path):
    v = np.array([0.90, 0.91, 0.92])
    dataset(tmp_path, "a", dict(vanilla=v, sliding=v + 0.01, hofer=v))
    dataset(tmp_path, "b", dict(vanilla=v))                                   # sliding and hofer not run yet
    text = Path(report.write_any_summary(spec(tmp_path, A="a", B="b"))).read_text()
    ratio = METRICS["within_class_variation"] / METRICS["between_class_variation"]
    assert f"| A | a-main: sliding β0=1.1 | 3 | {ratio:.3g} ± " in text and "date not recorded." in text
    assert "| B | a-main" not in text and "| B | b-main: vanilla | 3 |" in text
    row = next(l for l in text.splitlines() if l.startswith("| sliding − vanilla |"))
    assert "not yet: no finished group b-main: sliding" in row and row.endswith("| not yet |")


@pytest.mark.parametrize("payload, says", [
    ('{"carry_over": {"A": "a-hofer"}}', "at least two datasets"),
    ('{"carry_over": ["a-hofer", "b-hofer"]}', "at least two datasets"),
    ('{"carry_over": {"A": "a-hofer", "B": "nowhere"}}', "no contrasts.json in nowhere")])
def test_a_spec_not_of_the_form_is_one_message(tmp_path, payload, says):
    dataset(tmp_path, "a", dict(vanilla=[0.9, 0.91]))
    path = tmp_path / "carry.json"
    path.write_text(payload)
    with pytest.raises(ReportError, match=says):
        carry_over.write_carry_over(path)
    assert not path.with_suffix(".md").exists()


@pytest.mark.parametrize("then, now, says", [("+", "+", "replicates"), ("+", "0", "unresolved"), ("−", "+", "opposite"),
                                             ("0", "0", "not detected under either seed"), (None, "+", "not yet")])
def test_the_replication_rule(then, now, says):
    assert carry_over.replicated({"D": (then, now)}).startswith(f"D: **{says}**" if then else f"D: {says}")


def confirm_folder(root: Path, name: str, gains: list, ratios: dict) -> Path:
    """A folder of vanilla and sliding on splits 0–3 whose contrasts.json holds two families, accuracy and collapse:
    sliding's test accuracy is vanilla's + gains[split] points; train Tr Σ_W / Tr Σ_B is ratios[reg][split]."""
    out = root / name
    for split in range(4):
        for reg in ("vanilla", "sliding"):
            run = labelled_run(out, "", reg, split, 0.9 + (gains[split] / 100 if reg == "sliding" else 0),
                               beta=1.1 if reg == "sliding" else None, lam=0.1 if reg == "sliding" else None)
            final = json.loads((run / "final.json").read_text())
            train = dict(METRICS, within_class_variation=10 * ratios[reg][split], between_class_variation=10.0)
            (run / "final.json").write_text(json.dumps(dict(final, train=train)))
            line = json.loads((run / "log.jsonl").read_text())
            (run / "log.jsonl").write_text(json.dumps(dict(line, train=train)) + "\n")
    (out / "contrasts.json").write_text(json.dumps(dict(families=[
        dict(name="accuracy", contrasts=[dict(name="sliding − vanilla", a="sliding", b="vanilla")]),
        dict(name="collapse", contrasts=[dict(name="sliding − vanilla: log10 train Tr Σ_W / Tr Σ_B", a="sliding",
                                              b="vanilla", metric="train:scale_free_variation", scale="log10")])])))
    return out


def test_two_families_per_dataset_each_at_its_level_and_the_replication_of_an_earlier_seed(tmp_path):
    low = dict(vanilla=[0.03, 0.02, 0.04, 0.05], sliding=[0.0003, 0.0004, 0.0002, 0.0006])
    confirm_folder(tmp_path, "a-confirm", [1.0, 1.5, 0.8, 1.2], low)
    confirm_folder(tmp_path, "b-confirm", [0.5, -0.4, 0.2, -0.1], low)
    for name, gains in (("a-seed0", [1.1, 0.9, 1.3, 1.0]), ("b-seed0", [1.0, 1.4, 0.9, 1.2])):  # one family, older form
        for split, g in enumerate(gains):
            for reg in ("vanilla", "sliding"):
                labelled_run(tmp_path / name, "", reg, split, 0.9 + (g / 100 if reg == "sliding" else 0),
                             beta=1.1 if reg == "sliding" else None, lam=0.1 if reg == "sliding" else None)
        (tmp_path / name / "contrasts.json").write_text(json.dumps(dict(contrasts=[
            dict(name="sliding − vanilla", a="sliding", b="vanilla")])))
    path = tmp_path / "confirm.json"
    path.write_text(json.dumps(dict(title="t", carry_over={"A": "a-confirm", "B": "b-confirm"},
                                    replicates=dict(contrasts=["sliding − vanilla"],
                                                    folders={"A": "a-seed0", "B": "b-seed0"}))))
    assert report.main([f"--SUMMARY={path}"]) == 0
    text = (tmp_path / "confirm.md").read_text()
    rows = {l.split(" | ")[0][2:]: l.split(" | ") for l in text.splitlines() if l.startswith("| sliding − vanilla")}
    acc, ratio = rows["sliding − vanilla"], rows["sliding − vanilla: log10 train Tr Σ_W / Tr Σ_B"]
    assert acc[1] == "accuracy" and ratio[1] == "collapse"
    d = np.array([1.0, 1.5, 0.8, 1.2])                   # each family of one contrast: its CI at 95 %
    lo, hi = report_stats.ci95(4, d.mean(), d.std(ddof=1))
    assert acc[3] == f"[{lo:+.2f}, {hi:+.2f}] (95 %)"
    r = np.log10(low["sliding"]) - np.log10(low["vanilla"])
    lo, hi = report_stats.ci95(4, r.mean(), r.std(ddof=1))
    assert ratio[2] == f"{r.mean():+.3f} (4 pairs)" and ratio[3] == f"[{lo:+.3f}, {hi:+.3f}] (95 %)"
    assert "**carries over** (−, −)" in ratio[-2] and "**unresolved** (+, 0)" in acc[-2]
    # the accuracy contrast is replicated from SEED 0: A replicates (+, +), B is unresolved (+ then 0); the collapse one
    # is not named for replication
    assert acc[-1].startswith("A: **replicates** (+, +); B: **unresolved** (+, 0)") and ratio[-1] == "– |"
