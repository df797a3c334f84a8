"""summary.py: the --SUMMARY table of rows, one paired comparison per row across folders."""
import json

import numpy as np
import pytest

from common.runs import ReportError
from reporting import summary
from tests.report_helpers import labelled_run


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
    text = summary.write_summary(spec).read_text()
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
    with pytest.raises(ReportError, match="expected .*rows"):
        summary.write_summary(spec)
    assert not spec.with_suffix(".md").exists()
