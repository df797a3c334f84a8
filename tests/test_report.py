"""report.py: the command line, and which folders a report pairs with."""
import json
from pathlib import Path

import pytest

import report
from tests.report_helpers import labelled_run, study


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


def test_a_summary_spec_of_the_wrong_form_is_one_message_and_a_non_zero_exit(tmp_path, capsys):
    spec = tmp_path / "row.json"
    spec.write_text(json.dumps(dict(rows=[dict(setting="typo", a="main: vanila", b="main: vanilla")])))
    assert report.main([f"--SUMMARY={spec}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {spec}: expected {{"rows": [{{"setting": ..., "a": "<folder>: <group>"')
    assert err.rstrip().endswith("; rows [0] are not of that form") and "Traceback" not in err
    assert not spec.with_suffix(".md").exists()
