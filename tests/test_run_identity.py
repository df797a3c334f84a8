"""The report believes only what it can check: a run is counted where its folder, config.json, final.json and log agree
about which run it is and what it scored; anything else is listed under "Runs not in the tables" with the reason, and
no file of a results folder stops the report with a traceback. Run folders written by hand (no training)."""
import json
import shutil
from pathlib import Path

import pytest

import report
from reporting import records
from tests.report_helpers import METRICS, labelled_run


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two splits of vanilla and sliding, each run's log two epochs long, as experiment.py writes them."""
    for split in (0, 1):
        for reg, acc in (("vanilla", 0.90 + split / 100), ("sliding", 0.93 + split / 100)):
            run = labelled_run(tmp_path, "", reg, split, acc, beta=1.1 if reg == "sliding" else None, EPOCHS=2)
            last = (run / "log.jsonl").read_text()
            (run / "log.jsonl").write_text(json.dumps(dict(epoch=1, train_acc=0.5)) + "\n"
                                           + json.dumps(dict(json.loads(last), epoch=2)) + "\n")
            final = json.loads((run / "final.json").read_text())
            (run / "final.json").write_text(json.dumps(dict(final, tpt_epoch=2, run=json.loads(
                (run / "config.json").read_text())["run"] | dict(name=run.name))))
    return tmp_path


def table(out: Path) -> tuple[str, dict]:
    """table.md and {group: its accuracy row} after a report."""
    report.write_report(out)
    text = (out / "table.md").read_text()
    accuracy = text[:text.index("\n\n", text.index("| regulariser | splits |"))]   # the first table
    return text, {l.split(" | ")[0][2:]: l for l in accuracy.splitlines() if l.startswith("| vanilla |")
                  or l.startswith("| sliding β0=1.1 |")}


def not_counted(text: str, name: str) -> str:
    """The line of "Runs not in the tables" that lists `name`."""
    section = text[text.index("## Runs not in the tables"):]
    return next(l for l in section.splitlines() if l.startswith(f"| {name} |"))


def test_a_consistent_folder_counts_every_run(folder):
    text, rows = table(folder)
    assert rows["vanilla"].startswith("| vanilla | 2 (0, 1) | 90.50 ± 0.71 |") and "Runs not in the tables" not in text


def test_a_run_folder_copied_under_another_name_is_listed_not_counted_twice(folder):
    shutil.copytree(folder / "runs" / "vanilla_lr0.1_split00", folder / "runs" / "vanilla_lr0.1_split00.bak")
    text, rows = table(folder)
    assert rows["vanilla"].startswith("| vanilla | 2 (0, 1) | 90.50 ± 0.71 |")
    assert "config.json defines run vanilla_lr0.1_split00, not vanilla_lr0.1_split00.bak" in not_counted(
        text, "vanilla_lr0.1_split00.bak") and "(4 finished, 0 diverged, 0 failed, 0 unfinished, 1 inconsistent)" in text


def test_a_final_json_copied_from_another_run_is_listed_not_reported_as_this_run(folder):
    runs = folder / "runs"
    shutil.copyfile(runs / "sliding_beta1.1_lr0.1_split01" / "final.json", runs / "vanilla_lr0.1_split01" / "final.json")
    text, rows = table(folder)
    assert rows["vanilla"].startswith("| vanilla | 1 (0) | 90.00 |")
    assert "final.json is the record of run sliding_beta1.1_lr0.1_split01" in not_counted(text, "vanilla_lr0.1_split01")


def test_a_final_json_whose_accuracy_is_not_the_logs_is_listed(folder):
    path = folder / "runs" / "vanilla_lr0.1_split01" / "final.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), test_acc=0.2564)))
    text, rows = table(folder)
    assert "final.json's test accuracy 0.2564 is not the log's last evaluated one (0.91)" in not_counted(
        text, "vanilla_lr0.1_split01") and rows["vanilla"].startswith("| vanilla | 1 (0) |")


def test_a_finished_run_whose_log_misses_an_epoch_is_listed(folder):
    log = folder / "runs" / "vanilla_lr0.1_split01" / "log.jsonl"
    log.write_text(log.read_text().split("\n", 1)[1])                 # epoch 1 gone, epoch 2 kept
    text, _ = table(folder)
    assert "does not hold epochs 1–2 once each, in order (missing 1)" in not_counted(text, "vanilla_lr0.1_split01")


@pytest.mark.parametrize("damage, says", [
    (lambda run: (run / "config.json").unlink(), "no config.json"),
    (lambda run: [p.unlink() for p in run.iterdir()], "no config.json"),      # an empty folder
    (lambda run: ((run / "final.json").unlink(), (run / "final.json").mkdir()), "final.json cannot be read"),
    (lambda run: (run / "config.json").write_text(json.dumps(
        dict(json.loads((run / "config.json").read_text()), run=dict(regularizer="vanilla", split=1, lr=None,
                                                                      beta=None)))), "not a run's record"),
    (lambda run: (run / "config.json").write_text('{"run": ' + "9" * 5000 + "}"), "not valid JSON")])
def test_a_folder_that_is_not_a_readable_run_is_listed_with_the_reason(folder, damage, says):
    damage(folder / "runs" / "vanilla_lr0.1_split01")
    text, rows = table(folder)
    assert says in not_counted(text, "vanilla_lr0.1_split01") and rows["vanilla"].startswith("| vanilla | 1 (0) |")


def test_a_log_line_with_an_integer_too_long_to_read_is_skipped_and_named(folder):
    log = folder / "runs" / "vanilla_lr0.1_split01" / "log.jsonl"
    log.write_text(log.read_text() + '{"epoch": ' + "9" * 5000 + "}\n")
    text, _ = table(folder)
    assert "Skipped in vanilla_lr0.1_split01/log.jsonl: line(s) 3" in text


def test_run_symlinks_that_form_a_loop_are_listed(folder):
    runs = folder / "runs"
    (runs / "a").symlink_to(runs / "b")
    (runs / "b").symlink_to(runs / "a")
    text, rows = table(folder)
    assert "leads nowhere (or into a loop)" in not_counted(text, "a") and rows["vanilla"].startswith(
        "| vanilla | 2 (0, 1) |")


def test_every_committed_run_is_consistent():
    """The checks refuse none of the runs in results/ (a refused one would be a finding to report)."""
    root = Path(__file__).resolve().parents[1] / "results"
    runs = [r for f in sorted(root.glob("*/runs")) for r in records.load_runs(f.parent)]
    assert len(runs) > 300 and [r["name"] for r in runs if r["problem"]] == []
    assert all(r["final"] and r["final"]["train"] != METRICS for r in runs)


# ------------------------------------------------------------------------------ the command line: one message each
def test_report_on_a_folder_that_does_not_exist_is_one_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match=f"no such results folder: {tmp_path / 'nowhere'}"):
        report.main([str(tmp_path / "nowhere")])


def test_report_on_a_read_only_folder_is_one_message_and_leaves_no_temporary_file(folder, monkeypatch, capsys):
    def refuse(tmp):
        raise PermissionError(13, "Permission denied", str(tmp))
    real = report.write_table.__globals__["atomic_write"]
    monkeypatch.setitem(report.write_table.__globals__, "atomic_write", lambda path, payload: real(path, refuse))
    assert report.main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the report (Permission denied: ") and "Traceback" not in err
    assert not list(folder.glob(".*tmp*")) and not (folder / "table.md").exists()


def test_a_temporary_file_left_by_a_killed_report_is_removed_by_the_next(folder):
    stale = folder / ".table.999999999.tmp.md"                        # no such process
    stale.write_text("half a table")
    mine = folder / ".figure.1.tmp.png"                              # a live process's (pid 1): left alone
    mine.write_text("being written")
    table(folder)
    assert not stale.exists() and mine.exists()


@pytest.mark.parametrize("payload, says", [("[1, 2]", "(a JSON list)"), ("not json", "Expecting value"),
                                           ('"text"', "(a JSON str)")])
def test_a_summary_spec_that_is_not_an_object_is_one_message(tmp_path, capsys, payload, says):
    spec = tmp_path / "s.json"
    spec.write_text(payload)
    assert report.main([f"--SUMMARY={spec}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec} is not a summary spec (") and says in err and "Traceback" not in err


@pytest.mark.parametrize("contrast", [dict(name="x", a=1, b="vanilla"), dict(name="x", a="sliding"), "sliding",
                                      dict(name="x", a="sliding", b="vanilla", metric=3)])
def test_a_contrast_not_of_strings_is_one_message(folder, capsys, contrast):
    (folder / "contrasts.json").write_text(json.dumps(dict(note="n", contrasts=[contrast])))
    assert report.main([str(folder)]) == 2
    assert "cannot be read as contrasts" in capsys.readouterr().err


def test_pair_with_naming_the_folder_itself_is_refused_and_a_study_naming_it_adds_nothing(folder, capsys):
    with pytest.raises(SystemExit, match="names .* itself"):
        report.main([str(folder), f"--PAIR_WITH={folder}"])
    alone, _ = table(folder)
    (folder / "study.json").write_text(json.dumps(dict(script_defaults={}, pair_with=[str(folder)])))
    assert table(folder)[0] == alone                                   # same family, same Holm p


def test_report_only_on_a_read_only_folder_is_one_message(folder, monkeypatch, capsys):
    import mnist_top
    from tests.test_experiment import constants
    from training import experiment

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(folder / "table.md"))
    monkeypatch.setattr(report, "write_report", refuse)
    assert experiment.main(constants(mnist_top), [f"--OUT_DIR={folder}", "--REPORT_ONLY=True"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the report in {folder} (Permission denied") and "Traceback" not in err
