"""groups.py: which runs belong together (the Group record), and how a side a user names is found."""
import json

import pytest

import report
from reporting import groups, records
from tests.report_helpers import labelled_run


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


def test_a_group_is_a_record_of_its_folder_label_and_runs_made_by_grouping(tmp_path):
    for split in (0, 1):
        labelled_run(tmp_path / "main", "", "vanilla", split, 0.9)
        labelled_run(tmp_path / "main", "", "hofer", split, 0.9, beta=4.0, lam=0.1)
        labelled_run(tmp_path / "main", "", "hofer", split, 0.9, beta=2.0, lam=0.01)
        labelled_run(tmp_path / "other", "", "sliding", split, 0.9, beta=1.1, lam=0.1)
    mine = groups.grouped(records.load_runs(tmp_path / "main"))
    theirs = groups.grouped(records.load_runs(tmp_path / "other", prefix="other"))
    assert list(mine) == ["vanilla", "hofer β=2 λ=0.01", "hofer β=4"]              # the table's order, by name
    hofer = mine["hofer β=4"]
    assert (hofer.folder, hofer.label, hofer.name, hofer.regularizer) == ("", "hofer β=4", "hofer β=4", "hofer")
    assert [(r["run"]["split"], r["run"]["beta"]) for r in hofer.runs] == [(0, 4.0), (1, 4.0)]
    [sliding] = theirs.values()
    assert (sliding.folder, sliding.label, sliding.name) == ("other", "sliding β0=1.1", "other: sliding β0=1.1")
    assert groups.own(theirs) == {"sliding β0=1.1": groups.Group("", "sliding β0=1.1", sliding.runs)}
    with pytest.raises(AttributeError):
        hofer.label = "changed"                                                    # a record: frozen


@pytest.mark.parametrize("text, side", [("mnist-250: hofer β=4", ("mnist-250", "hofer β=4")),
                                        ("../results/mnist-250: sliding", ("../results/mnist-250", "sliding")),
                                        ("ramp", ("", "ramp")), ("vanilla ETF", ("", "vanilla ETF"))])
def test_a_side_a_user_names_is_read_in_one_place(text, side):
    assert groups.parse_side(text) == side


def test_a_side_finds_the_group_it_labels_or_the_one_group_of_its_regulariser(tmp_path):
    for split in (0, 1):
        labelled_run(tmp_path, "", "vanilla", split, 0.9)
        labelled_run(tmp_path, "", "vanilla", split, 0.9, ETF_CLASSIFIER=True)
        labelled_run(tmp_path, "", "sliding", split, 0.9, beta=1.1, lam=0.1)
        labelled_run(tmp_path, "", "floor", split, 0.9, beta=0.5)
        labelled_run(tmp_path, "", "floor", split, 0.9, beta=1.5)
    found = {**groups.grouped(records.load_runs(tmp_path)),
             **groups.grouped(records.load_runs(tmp_path, prefix="base"))}
    assert groups.resolve(found, "", "vanilla") == "vanilla"                        # its label, not vanilla ETF too
    assert groups.resolve(found, "", "sliding") == "sliding β0=1.1"                 # the one group of sliding
    assert groups.resolve(found, "base", "sliding") == "base: sliding β0=1.1"       # in the folder it names
    assert groups.matches(found, "", "floor") == ["floor β0=0.5", "floor β0=1.5"]
    assert groups.resolve(found, "", "floor") is None and groups.resolve(found, "", "hofer") is None
    assert groups.unresolved({"floor": ["floor β0=0.5", "floor β0=1.5"]}) == (
        "floor names 2 groups (floor β0=0.5, floor β0=1.5): name one by its label")
    assert groups.unresolved({"hofer": [], "x: ramp": []}) == "not yet: no finished group hofer nor x: ramp"
