"""records.py: how a folder's runs and the report's JSON files are read."""
import json
import math
import re

import pytest

from common import runs
from common.runs import ReportError
from reporting import records


def test_report_reads_a_log_whose_last_line_is_being_written(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert runs.read_log(log)[0] == [{"epoch": 1}, {"epoch": 2}]


def test_the_one_json_reader_tells_a_missing_file_from_an_unreadable_one(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(dict(a=1)))
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "folder.json").mkdir()
    assert records.read_json(tmp_path / "ok.json") == (dict(a=1), None)
    assert records.read_json(tmp_path / "none.json") == (None, None)               # not there: no problem
    assert records.read_json(tmp_path / "bad.json")[1].startswith("is not valid JSON (Expecting")
    assert records.read_json(tmp_path / "folder.json")[1].startswith("cannot be read: it is a folder")


@pytest.mark.parametrize("payload, found", [("[1, 2]", "(a JSON list)"), ("{", "(it is not valid JSON (Expecting"),
                                            (None, "(no such file)")])
def test_a_summary_spec_that_is_not_a_json_object_is_one_report_error(tmp_path, payload, found):
    spec = tmp_path / "s.json"
    if payload is not None:
        spec.write_text(payload)
    with pytest.raises(ReportError, match=re.escape(f"s.json is not a summary spec {found}")):
        records.read_summary_spec(spec)


def test_the_value_readers_leave_undefined_metrics_as_nan():
    m = dict(nc1=None, within_class_variation=2.0, between_class_variation=8.0, etf_distance_means={"error": "x"})
    assert records.metric_value(m, "scale_free_variation") == 0.25                 # Tr Σ_W / Tr Σ_B
    assert all(math.isnan(records.metric_value(m, k)) for k in ("nc1", "etf_distance_means", "nc4_ncc_mismatch"))
    run = dict(log=[dict(epoch=1, death_mean=[1.0, 3.0], zero_edges=0.5), dict(epoch=2, death_mean=[2.0, None])],
               final=dict(test_acc=0.9))
    assert records.last_death(run) == 2.0 and records.mean_over_run(run, "zero_edges") == 0.5
    assert records.final_test_acc(run) == 0.9 and records.final_val_acc(run) is None
