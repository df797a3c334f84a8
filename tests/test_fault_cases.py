"""The second fault-injection round, case by case, as a user meets it: every number is read from, or checked against,
the record the report can check (the log); run names are one-to-one; unverified data are refused by default; every
hand-written file is read against its schema; no case gives a wrong number with exit 0, a traceback, silence or a
hang. Run folders are written by hand where no training is needed; the trainings are tiny."""
import gzip
import hashlib
import json
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import torchvision

import mnist_top
import report
from common import runs
from reporting import folder_table
from tests.conftest import make_mnist_format
from tests.report_helpers import METRICS, labelled_run, patch_final, study
from tests.test_experiment import TINY, constants, lines
from tests.test_run_identity import folder, not_counted, table  # noqa: F401 - the fixture of two splits
from training import checkpoints, experiment


@contextmanager
def no_hang(seconds: int = 20):
    """Fail, instead of waiting forever, where the code under test blocks (a named pipe opened for reading)."""
    def stop(*_):
        raise TimeoutError(f"blocked for {seconds} s")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------------------------------ wrong numbers
@pytest.mark.parametrize("field, edit, says", [
    ("val_acc", 0.99, "final.json's val_acc 0.99 is not the log's last line's 0.95"),
    ("train_acc", 0.5, "final.json's train_acc 0.5 is not the log's last line's 1.0"),
    ("train", dict(METRICS, etf_distance_means=0.001), "final.json's train etf_distance_means 0.001 is not the log's "
                                                        "last line's 0.2"),
    ("tpt_epoch", 1, "final.json's tpt_epoch 1 is not the log's first epoch at 100 % training accuracy (2)"),
])
def test_a_final_json_edited_away_from_its_log_is_listed_with_the_field_and_both_values(folder, field, edit, says):
    run = folder / "runs" / "vanilla_lr0.1_split01"
    log = lines(run / "log.jsonl")
    (run / "log.jsonl").write_text("".join(json.dumps(dict(l, val_acc=0.95)) + "\n" for l in log))
    patch_final(run, val_acc=0.95)
    text, rows = table(folder)
    assert "Runs not in the tables" not in text                                     # consistent before the edit
    final = json.loads((run / "final.json").read_text())
    (run / "final.json").write_text(json.dumps(dict(final, **{field: edit})))
    text, rows = table(folder)
    assert says in not_counted(text, "vanilla_lr0.1_split01") and "inconsistent" in not_counted(text, run.name)
    assert rows["vanilla"].startswith("| vanilla | 1 (0) |")                        # counted nowhere


def test_an_edited_val_acc_cannot_flip_a_held_out_choice_and_one_missing_from_final_json_is_read_from_the_log(
        tmp_path):
    val = {1.0: (0.95, 0.96), 2.0: (0.94, 0.95)}                                     # β = 1 is the choice
    for beta, vs in val.items():
        for split, v in zip((10, 11), vs):
            labelled_run(tmp_path, "", "hofer", split, 0.9, val_acc=v, beta=beta, lam=0.1)
    study(tmp_path, HOFER_BETAS=[4.0])
    drop = tmp_path / "runs" / "hofer_beta1_lr0.1_split10"
    final = json.loads((drop / "final.json").read_text())
    (drop / "final.json").write_text(json.dumps({k: v for k, v in final.items() if k != "val_acc"}))  # older runs
    report.write_report(tmp_path)
    assert "β = 1 (best mean)" in (tmp_path / "table.md").read_text()               # read from the log
    edited = tmp_path / "runs" / "hofer_beta2_lr0.1_split11"
    (edited / "final.json").write_text(json.dumps(dict(json.loads((edited / "final.json").read_text()), val_acc=0.99)))
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "β = 2" not in text.split("Held-out choice")[-1].split("\n")[0]           # no flip to β = 2
    assert "final.json's val_acc 0.99 is not the log's last line's 0.95" in text


def test_two_settings_that_the_short_form_writes_alike_get_two_names_and_a_folder_of_another_run_is_refused(
        tmp_path, capsys):
    cfg = dict(constants(mnist_top), HOFER_BETAS=[1.0000001, 1.0000002], REGULARIZERS=["hofer"], SPLITS=[0])
    names = [r["name"] for r in runs.plan_runs(cfg)]
    assert names == ["hofer_beta1.0000001_lr0.1_split00", "hofer_beta1.0000002_lr0.1_split00"]
    assert runs.run_name(dict(regularizer="hofer", beta=4.0, lam=0.1, lr=0.1, split=3), {}) == "hofer_beta4_lr0.1_split03"
    # a folder whose config.json holds another run than the planned one of its name (written by hand, or by an
    # older version that named both runs hofer_beta1) is refused before anything is written, naming the difference
    labelled_run(tmp_path, "", "hofer", 0, 0.9, beta=1.0000001, lam=0.1)
    (tmp_path / "runs" / "hofer_beta1.0000001_lr0.1_split00").rename(tmp_path / "runs" / "hofer_beta1_lr0.1_split00")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    argv = ["--REGULARIZERS=hofer", "--HOFER_BETAS=1", "--SPLITS=0", f"--OUT_DIR={tmp_path}"]
    assert experiment.main(constants(mnist_top), argv) == 2
    err = capsys.readouterr().err
    assert "holds another run than the planned hofer_beta1_lr0.1_split00: {'beta': (1.0000001, 1.0)" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("verify", ["True", "False"])
def test_data_whose_digests_are_unknown_train_only_unverified_and_their_table_says_so(tmp_path, capsys, verify):
    root = make_mnist_format(tmp_path / "data", "KMNIST")                 # not the genuine KMNIST (MNIST-like files)
    argv = [a for a in TINY if not a.startswith("--VERIFY_DATA")] + [
        f"--DATA_ROOT={root}", f"--OUT_DIR={tmp_path / 'out'}", "--REGULARIZERS=vanilla", "--EPOCHS=1",
        f"--VERIFY_DATA={verify}"]
    code = experiment.main(constants(mnist_top), argv)
    if verify == "True":
        assert code == 2 and not (tmp_path / "out").exists()
        assert "this project knows no MD5 of its files" in capsys.readouterr().err
    else:
        assert code == 0
        assert (tmp_path / "out" / "table.md").read_text().startswith("# KMNIST-120 (unverified data): ")


def test_torchvisions_archives_beside_the_raw_files_verify_them(tmp_path, monkeypatch):
    root = make_mnist_format(tmp_path / "data", "KMNIST")
    raw = root / "KMNIST" / "raw"
    listed = []
    for f in sorted(raw.iterdir()):
        with gzip.open(raw / f"{f.name}.gz", "wb") as g:
            g.write(f.read_bytes())
        listed.append((f"https://example.invalid/{f.name}.gz", hashlib.md5((raw / f"{f.name}.gz").read_bytes())
                       .hexdigest()))
    monkeypatch.setattr(torchvision.datasets.KMNIST, "resources", listed)  # as torchvision lists the genuine ones
    import data
    x, _ = data.load_dataset("KMNIST", root, train=True, download=False)   # verified through the archives
    assert x.shape[0] == 600
    (raw / "train-labels-idx1-ubyte").write_bytes((raw / "train-labels-idx1-ubyte").read_bytes()[:-1] + b"\x03")
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte has MD5 .*, expected"):
        data.load_dataset("KMNIST", root, train=True, download=False)


def test_a_run_copied_as_another_split_is_caught_by_its_seed(folder):
    src, dst = folder / "runs" / "vanilla_lr0.1_split01", folder / "runs" / "vanilla_lr0.1_split05"
    shutil.copytree(src, dst)
    for name in ("config.json", "final.json"):
        record = json.loads((dst / name).read_text())
        record["run"] = dict(record["run"], split=5, name=dst.name)
        (dst / name).write_text(json.dumps(record))
    text, rows = table(folder)
    assert "config.json's seed 1 is not split 5's under SEED=0 (5" in not_counted(text, dst.name)
    assert rows["vanilla"].startswith("| vanilla | 2 (0, 1) |")


def test_runs_of_one_split_and_seed_on_other_images_are_listed(folder):
    for run in (folder / "runs").iterdir():
        record = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps(dict(record, split_digest_v2="aaaa")))
    odd = folder / "runs" / "sliding_beta1.1_lr0.1_split01"
    (odd / "config.json").write_text(json.dumps(dict(json.loads((odd / "config.json").read_text()),
                                                     split_digest_v2="bbbb")))
    text, rows = table(folder)
    line = not_counted(text, odd.name)
    assert "shares MNIST-250 split 1, seed 1 with vanilla_lr0.1_split01 but not its training images (digests bbbb vs " \
           "aaaa)" in line
    # two runs that disagree: nothing tells which holds the split's images, so neither counts; split 0 still does
    assert "but not its training images (digests aaaa vs bbbb)" in not_counted(text, "vanilla_lr0.1_split01")
    assert rows["vanilla"].startswith("| vanilla | 1 (0) |")


# ------------------------------------------------------------------------------------------------ tracebacks
@pytest.mark.parametrize("arg, says", [
    ("--LRS=" + "9" * 400, "--LRS='99999999999999999999…': a number of 400 digits, too large"),
    ("--MOMENTUM=" + "1" * 400, "--MOMENTUM='11111111111111111111…': a number of 400 digits"),
    ("--EPOCHS=" + "1" * 400, "--EPOCHS='11111111111111111111…': a number of 400 digits"),
    ("--SEED=" + str(10 ** 17), "--SEED='100000000000000000': a number of 18 digits, too large"),
    ("--SEED=-1", "SEED=-1: each run's seed"),
])
def test_a_number_too_large_on_the_command_line_is_one_message_before_anything_is_written(tmp_path, capsys, arg, says):
    assert experiment.main(constants(mnist_top), [arg, f"--OUT_DIR={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_an_integer_too_large_for_a_number_in_a_record_or_a_log_line_is_one_reason(folder):
    run = folder / "runs" / "vanilla_lr0.1_split01"
    log = (run / "log.jsonl").read_text()
    (run / "log.jsonl").write_text(log + '{"epoch": 3, "test_acc": ' + "9" * 400 + "}\n")
    text, _ = table(folder)
    assert "Skipped in vanilla_lr0.1_split01/log.jsonl: line(s) 3" in text
    (run / "log.jsonl").write_text(log)
    final = (run / "final.json").read_text()
    (run / "final.json").write_text(final.replace('"test_acc": 0.91', '"test_acc": ' + "9" * 400))
    text, _ = table(folder)
    assert "an integer of 400 digits, too large for a number" in not_counted(text, "vanilla_lr0.1_split01")


@pytest.mark.parametrize("name, payload, says", [
    ("study.json", {"pair_with": 5}, "pair_with: found 5 (a number), expected a list of the folders"),
    ("study.json", {"script_defaults": 5}, "script_defaults: found 5 (a number), expected {\"HOFER_BETAS\""),
    ("study.json", {"script_defaults": {"HOFER_BETAS": ["a"]}}, "script_defaults: found"),
    ("settings.json", {"EPOCHS": "310"}, "EPOCHS: found '310' (a string), expected int"),
    ("settings.json", {"EPOCH": 310}, "EPOCH: unknown field"),
])
def test_a_hand_written_file_of_the_wrong_form_is_one_line_naming_the_field(folder, capsys, name, payload, says):
    (folder / name).write_text(json.dumps(payload))
    if name == "study.json":                                     # the report reads it
        assert report.main([str(folder)]) == 2
    else:                                                        # read before any training: one message, exit 2
        assert experiment.main(constants(mnist_top), [f"--OUT_DIR={folder}", "--SPLITS=0", "--REGULARIZERS=vanilla"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / name} is not " in err and says in err and "Traceback" not in err


@pytest.mark.parametrize("payload, says", [
    ({"rows": 5}, "rows: found 5 (a number), expected a non-empty list of rows"),
    ({"rows": [{"setting": "s", "a": "x: vanilla", "b": "y: vanilla"}], "note": 5}, "note: found 5 (a number)"),
    ({"carry_over": {"A": "x"}}, "carry_over: found {'A': 'x'} (an object): fewer than two datasets"),
    ({"size_curve": {"vanilla": {"ten": "x: vanilla"}}}, "sizes ['ten'] are not a positive integer"),
])
def test_a_summary_spec_with_a_field_of_the_wrong_type_is_one_message(tmp_path, capsys, payload, says):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(payload))
    assert report.main([f"--SUMMARY={spec}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec} is not a summary spec of") and says in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_is_one_message_and_the_run_resumes_identically(kmnist_root, tmp_path,
                                                                                         monkeypatch, capsys):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", "--REGULARIZERS=sliding", "--EPOCHS=6"]
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'whole'}"]) == 0
    real, calls = checkpoints.write_bytes, []

    def full_at_the_second(path, data):                       # epochs 2 and 4 are checkpoints: the disk fills at 4
        calls.append(path)
        real(path if len(calls) < 2 else Path("/dev/full"), data)   # the kernel's own "No space left on device"
    monkeypatch.setattr(checkpoints, "write_bytes", full_at_the_second)
    out = tmp_path / "cut"
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={out}"]) == 1
    said = capsys.readouterr()
    err = said.out + said.err
    assert "No space left on device" in err and "Traceback" not in err and "RuntimeError" not in err
    monkeypatch.setattr(checkpoints, "write_bytes", real)
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={out}"]) == 0
    [whole], [cut] = ((tmp_path / f / "runs").glob("*/log.jsonl") for f in ("whole", "cut"))
    assert lines(cut) == lines(whole)


def test_ctrl_c_during_a_report_says_so_and_leaves_table_md_as_it_was(folder, monkeypatch, capsys):
    report.write_report(folder)
    before = (folder / "table.md").read_bytes()
    (folder / "runs" / "vanilla_lr0.1_split00").rename(folder / "runs" / "gone")   # the next table would differ

    def interrupt(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(folder_table, "collapse_tables", interrupt)
    assert report.main([str(folder)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: the report is not finished") and "Traceback" not in err
    assert (folder / "table.md").read_bytes() == before and not list(folder.glob(".*.tmp*"))


# ------------------------------------------------------------------------------------------------ silence, hangs
def test_a_study_that_pairs_with_a_folder_that_is_gone_says_so_in_its_table(folder, tmp_path):
    study(folder, pair_with=["results/gone-folder"])
    text, _ = table(folder)
    assert "Paired with `gone-folder/`, which holds no runs/ here (moved, renamed or not yet trained)" in text


@pytest.mark.parametrize("name", ["config.json", "final.json", "log.jsonl"])
def test_a_named_pipe_in_place_of_a_record_is_listed_not_read(folder, name):
    path = folder / "runs" / "vanilla_lr0.1_split01" / name
    path.unlink()
    os.mkfifo(path)
    with no_hang():
        text, _ = table(folder)
    assert "it is a named pipe (FIFO), not a regular file (never opened)" in not_counted(text, "vanilla_lr0.1_split01")


@pytest.mark.parametrize("name, code", [("config.json", 2), ("ckpt.pt", 1)])  # refused before training; that run fails
def test_a_named_pipe_in_a_run_folder_stops_that_run_with_one_message(kmnist_root, tmp_path, capsys, name, code):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla", "--EPOCHS=1"]
    folder = tmp_path / "runs" / "vanilla_lr0.1_split00"
    folder.mkdir(parents=True)
    os.mkfifo(folder / name)
    with no_hang():
        assert experiment.main(constants(mnist_top), argv) == code
    out = capsys.readouterr()
    assert f"{folder / name} cannot be read: it is a named pipe (FIFO)" in out.out + out.err
    assert "Traceback" not in out.out + out.err
