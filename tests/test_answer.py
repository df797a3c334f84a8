"""answer.py: a carry-over spec's questions answered in sentences whose words follow the direction of each CI."""
import json

import numpy as np
import pytest

import report
from reporting import answer
from reporting import stats as report_stats
from tests.test_carry_over import confirm_folder

WORDS = {"subject": "sliding's ratio", "+": "is larger", "−": "is smaller", "0": "is not detectably different"}


def reading(mean, lo, hi, direction, points=False, log10=False, n=10, level=0.95):
    return answer.Reading(n, mean, lo, hi, level, direction, points, log10)


def test_an_estimate_is_printed_in_the_contrasts_own_terms():
    assert answer.estimate(reading(1.114, 0.207, 2.011, "+", points=True, level=0.9875)) == \
        "+1.11 points, 98.8 % CI [+0.21, +2.01]"
    assert answer.estimate(reading(0.3384, 0.2721, 0.4049, "+")) == "+0.338, 95 % CI [+0.272, +0.405]"
    # a log10 difference is the ratio 10^d: -1 is a tenth, its CI the powers of its ends
    assert answer.estimate(reading(-1.0, -2.0, np.log10(0.5), "−", log10=True)) == "a ratio of 0.1, 95 % CI 0.01 to 0.5"


def test_datasets_that_agree_share_the_words_and_the_meaning_of_that_direction():
    spec = dict(WORDS, contrast="c", meaning={"−": "collapse goes further"})
    said = answer.clause(spec, {"A": reading(-1, -2, -0.5, "−", log10=True), "B": reading(-2, -3, -1, "−", log10=True)})
    assert said == ("sliding's ratio is smaller on both datasets (A: a ratio of 0.1, 95 % CI 0.01 to 0.32; B: a ratio "
                    "of 0.01, 95 % CI 0.001 to 0.1): collapse goes further")


def test_datasets_that_disagree_each_get_their_own_words_and_no_meaning():
    spec = dict(WORDS, contrast="c", meaning={"−": "collapse goes further", "0": "nothing detected"})
    said = answer.clause(spec, {"A": reading(-0.5, -0.8, -0.2, "−"), "B": reading(0.1, -0.3, 0.5, "0")})
    assert said == ("sliding's ratio is smaller on A (-0.500, 95 % CI [-0.800, -0.200]) and is not detectably "
                    "different on B (+0.100, 95 % CI [-0.300, +0.500])")


def test_a_dataset_without_the_pairs_for_a_ci_leaves_the_clause_not_yet():
    spec = dict(WORDS, contrast="c")
    said = answer.clause(spec, {"A": reading(-0.5, -0.8, -0.2, "−"), "B": reading(1, np.nan, np.nan, None, n=1),
                                "C": None})
    assert said == "sliding's ratio: not yet (B: 1 pairs; C: 0 pairs)"


def test_the_replication_verdicts_follow_the_clause():
    said = answer.clause(dict(WORDS, contrast="c"), {"A": reading(1, 0.5, 1.5, "+"), "B": reading(1, 0.2, 1.8, "+")},
                         {"A": "replicates", "B": "unresolved"})
    assert said.endswith("— against the earlier seed: replicates on A, unresolved on B")


def test_a_clause_naming_no_contrast_of_the_table_is_refused():
    with pytest.raises(ValueError, match="no contrast named 'sliding − ramp'"):
        answer.answer_section([dict(question="Q?", clauses=[dict(WORDS, contrast="sliding − ramp")])],
                              {"sliding − vanilla": {}}, {}, "spec.json")


def confirm_spec(tmp_path, clauses) -> "Path":
    low = dict(vanilla=[0.03, 0.02, 0.04, 0.05], sliding=[0.0003, 0.0004, 0.0002, 0.0006])
    confirm_folder(tmp_path, "a-confirm", [1.0, 1.5, 0.8, 1.2], low)
    confirm_folder(tmp_path, "b-confirm", [0.5, -0.4, 0.2, -0.1], low)
    path = tmp_path / "confirm.json"
    path.write_text(json.dumps(dict(title="t", carry_over={"A": "a-confirm", "B": "b-confirm"},
                                    answer=[dict(question="Does it collapse?", clauses=clauses)])))
    return path


def test_the_carry_over_opens_with_the_answer_generated_from_its_own_table(tmp_path):
    path = confirm_spec(tmp_path, [
        dict(WORDS, contrast="sliding − vanilla: log10 train Tr Σ_W / Tr Σ_B", meaning={"−": "it collapses"}),
        dict(WORDS, contrast="sliding − vanilla", subject="its accuracy", **{"+": "is higher"})])
    assert report.main([f"--SUMMARY={path}"]) == 0
    text = (tmp_path / "confirm.md").read_text()
    assert text.index("## The answer") < text.index("## The contrasts") < text.index("| contrast |")
    bullet = next(l for l in text.splitlines() if l.startswith("- **Does it collapse?**"))
    r = np.log10([0.0003, 0.0004, 0.0002, 0.0006]) - np.log10([0.03, 0.02, 0.04, 0.05])
    lo, hi = report_stats.ci95(4, r.mean(), r.std(ddof=1))  # each family holds one contrast: 95 %
    d = np.array([0.5, -0.4, 0.2, -0.1])
    lo_b, hi_b = report_stats.ci95(4, d.mean(), d.std(ddof=1))
    assert f"(A: a ratio of {10 ** r.mean():.2g}, 95 % CI {10 ** lo:.2g} to {10 ** hi:.2g}; B: a ratio of" in bullet
    assert bullet.startswith("- **Does it collapse?** Sliding's ratio is smaller on both datasets")
    assert ": it collapses; its accuracy is higher on A (+1.12 points" in bullet
    assert f"is not detectably different on B ({d.mean():+.2f} points, 95 % CI [{lo_b:+.2f}, {hi_b:+.2f}])." in bullet


def test_an_answer_naming_an_unknown_contrast_stops_the_report_with_one_line(tmp_path, capsys):
    path = confirm_spec(tmp_path, [dict(WORDS, contrast="sliding − ramp")])
    assert report.main([f"--SUMMARY={path}"]) == 2
    assert "no contrast named 'sliding − ramp'" in capsys.readouterr().err
    assert not (tmp_path / "confirm.md").exists()
