"""stats.py: confidence intervals, Holm's correction, verdicts, paired tests and the held-out choice rule."""
import numpy as np
import pytest
from scipy import stats

from reporting import stats as report_stats  # `stats` is scipy's here, as in the tests that compare with it


@pytest.mark.parametrize("n, mean, std, level", [(2, 1.0, 0.5, 0.95), (10, -0.3, 1.2, 0.95), (5, 2.0, 0.7, 0.9875)])
def test_ci95_is_students_t_interval_of_the_mean(n, mean, std, level):
    half = stats.t.ppf(1 - (1 - level) / 2, n - 1) * std / np.sqrt(n)
    assert report_stats.ci95(n, mean, std, level) == pytest.approx((mean - half, mean + half))


@pytest.mark.parametrize("n, std", [(1, 0.5), (0, 0.5), (5, 0.0), (5, float("nan"))])
def test_ci95_is_undefined_for_one_pair_or_no_spread(n, std):
    assert all(np.isnan(report_stats.ci95(n, 1.0, std)))


def test_holm_by_hand():
    # sorted: 0.01 × 4 = 0.04, 0.02 × 3 = 0.06, 0.04 × 2 = 0.08, 0.03 (smaller than 0.08: monotone) → 0.08; in order
    assert report_stats.holm([0.04, 0.01, 0.5, 0.02]) == pytest.approx([0.08, 0.04, 0.5, 0.06])
    assert report_stats.holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])            # capped at 1 after 0.6 × 1; monotone
    adj = report_stats.holm([0.01, float("nan")], m=2)                            # the undefined test still counts
    assert adj[0] == pytest.approx(0.02) and np.isnan(adj[1])


@pytest.mark.parametrize("lo, hi, says", [(-0.5, 0.5, "no difference (95 % CI within ±0.5)"),
                                          (-0.51, 0.4, "not detected (95 % CI allows -0.51 to +0.40)"),
                                          (0.0, 0.6, "not detected (95 % CI allows +0.00 to +0.60)"),
                                          (0.01, 0.6, "A better"), (-0.6, -0.01, "B better"),
                                          (0.1, 0.4, "A better, by less than 0.5 (95 % CI within ±0.5)"),
                                          (-0.5, -0.2, "B better, by less than 0.5 (95 % CI within ±0.5)"),
                                          (float("nan"), float("nan"),
                                           "not detected (no CI: fewer than 2 pairs, or no spread)")])
def test_verdict_boundaries(lo, hi, says):
    assert report_stats.verdict(lo, hi) == says


@pytest.mark.parametrize("level, text", [(0.95, "95 %"), (1 - 0.05 / 4, "98.8 %"), (1 - 0.05 / 15, "99.7 %")])
def test_a_verdict_names_the_level_of_the_ci_it_reads(level, text):
    assert report_stats.family_level(round(0.05 / (1 - level))) == pytest.approx(level)
    assert report_stats.verdict(-0.13, 0.59, level) == f"not detected ({text} CI allows -0.13 to +0.59)"
    assert report_stats.verdict(-0.3, 0.2, level) == f"no difference ({text} CI within ±0.5)"


def test_judge_reads_the_ci_at_the_family_level_so_one_difference_can_be_found_alone_but_not_in_a_family():
    n, mean, std = 10, 0.67, 0.61               # t = 3.47 on 9 degrees of freedom: p ≈ 0.007
    lo, hi, says = report_stats.judge(n, mean, std)
    assert lo > 0 and says == "A better"
    lo, hi, says = report_stats.judge(n, mean, std, report_stats.family_level(15))
    half = stats.t.ppf(1 - 0.025 / 15, n - 1) * std / np.sqrt(n)
    assert (lo, hi) == pytest.approx((mean - half, mean + half)) and lo < 0
    assert says == f"not detected (99.7 % CI allows {lo:+.2f} to {hi:+.2f})"
    # a collapse metric: lower is better, no margin, three digits
    assert report_stats.judge(4, -0.4, 0.05, margin=None, lower_is_better=True, digits=3)[2] == "A better"
    assert report_stats.verdict(-0.01, 0.02, margin=None, digits=3) == "not detected (95 % CI allows -0.010 to +0.020)"


@pytest.mark.parametrize("n, mean, std, lower, says", [
    (1, 0.4, float("nan"), False, "too few pairs for a CI (1)"),
    (0, float("nan"), float("nan"), False, "too few pairs for a CI (0)"),
    (5, 0.0, 0.0, False, "no difference (every pair identical)"),
    (5, -0.2, 0.0, False, "B better on every pair, by the same 0.20 (no spread: no CI)"),
    (5, -0.2, 0.0, True, "A better on every pair, by the same 0.20 (no spread: no CI)")])
def test_without_a_ci_the_verdict_says_why_and_identical_runs_are_no_difference(n, mean, std, lower, says):
    lo, hi, text = report_stats.judge(n, mean, std, lower_is_better=lower)
    assert np.isnan(lo) and np.isnan(hi) and text == says


def test_a_difference_found_within_the_margin_is_named_with_its_side():
    # ten differences of about +0.3 with little spread: the CI excludes 0 and lies within ±0.5
    d = 0.3 + 0.04 * np.linspace(-1, 1, 10)
    lo, hi, says = report_stats.judge(10, d.mean(), d.std(ddof=1), report_stats.family_level(3))
    assert 0 < lo < hi < 0.5 and says == "A better, by less than 0.5 (98.3 % CI within ±0.5)"


def test_choose_keeps_the_default_unless_the_best_beats_it_by_more_than_one_paired_se():
    acc = np.array([[0.90, 0.92], [0.92, 0.95]])        # value 2 is 2 and 3 points better: mean 2.5, SE 0.5
    assert report_stats.choose([1.0, 2.0], acc, default=1.0) == (
        2.0, "beats the default 1 by 2.50 > one paired SE (0.50) points")
    assert report_stats.choose([1.0, 2.0], acc, default=2.0) == (2.0, "best mean")
    assert report_stats.choose([1.0, 2.0], acc, default=None) == (2.0, "best mean")   # no default recorded
    close = np.array([[0.90, 0.92], [0.93, 0.91]])      # 3 better, 1 worse: mean 1, SE 2
    assert report_stats.choose([1.0, 2.0], close, default=1.0) == (
        1.0, "the default: 2 is +1.00 points, within one paired SE (2.00)")


def test_a_grid_is_one_sweep_over_its_settings_with_one_choice_against_the_default_pair():
    pairs = [(1.1, 0.03), (1.1, 0.1), (2.0, 0.03), (2.0, 0.1)]          # (β0, λmax), rows of acc
    acc = np.array([[0.93, 0.92, 0.94], [0.92, 0.91, 0.93], [0.94, 0.935, 0.945], [0.90, 0.90, 0.90]])
    d = 100 * (acc[2] - acc[1])                                          # the best pair against the default pair
    se = d.std(ddof=1) / np.sqrt(3)
    assert d.mean() > se
    assert report_stats.choose(pairs, acc, default=(1.1, 0.1)) == (
        (2.0, 0.03), f"beats the default 1.1, 0.1 by {d.mean():.2f} > one paired SE ({se:.2f}) points")
    near = acc.copy()
    near[0] = acc[1] - 0.01
    near[2] = acc[1] + np.array([0.003, -0.003, 0.0015])                 # best mean, but within one paired SE
    value, why = report_stats.choose(pairs, near, default=(1.1, 0.1))
    assert value == (1.1, 0.1) and why.startswith("the default: 2, 0.03 is +")
    assert report_stats.choose(pairs, acc, default=(4.0, 0.1)) == ((2.0, 0.03), "best mean")   # default not in grid


def test_mean_std_of_several_one_and_no_values():
    assert report_stats.mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00"
    assert report_stats.mean_std([1.5]) == "1.50" and report_stats.mean_std([]) == "–"


def test_paired_tests_match_scipy_on_the_shared_splits():
    a = {0: 0.93, 1: 0.95, 2: 0.94, 3: 0.96}
    b = {0: 0.92, 1: 0.93, 2: 0.935, 5: 0.50}                 # split 5 unpaired, split 3 unpaired
    n, mean, std, t_p, w_p = report_stats.paired_tests(a, b)
    d = np.array([0.01, 0.02, 0.005]) * 100
    assert n == 3 and mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert t_p == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and w_p == pytest.approx(stats.wilcoxon(d).pvalue)


def test_the_default_stays_unless_beaten_by_more_than_one_paired_standard_error():
    acc = np.array([[0.95, 0.90], [0.92, 0.925]])       # values 1, 2: 1 is 0.25 points better on average, SE 2.75
    assert report_stats.choose([1.0, 2.0], acc, default=2.0)[0] == 2.0
    assert report_stats.choose([1.0, 2.0], acc, default=7.0)[0] == 1.0   # the default not swept: the best mean


def test_equal_count_differences_are_equal_despite_float_rounding():
    a = {10: 0.9246, 11: 0.9032}
    b = {k: round(v - 0.0024, 4) for k, v in a.items()}     # 24 images more on both splits
    n, mean, std, t_p, w_p = report_stats.paired_tests(a, b)
    assert n == 2 and mean == pytest.approx(0.24) and std == 0 and np.isnan(t_p)
    assert report_stats.judge(n, mean, std)[2] == "A better on every pair, by the same 0.24 (no spread: no CI)"


def test_with_one_split_the_default_stays_and_the_reason_says_why():
    acc = np.array([[0.95], [0.92]])                    # value 1 is 3 points better, on a single split
    value, why = report_stats.choose([1.0, 2.0], acc, default=2.0)
    assert value == 2.0 and "undefined with one split" in why and "inf" not in why
