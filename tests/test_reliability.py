"""Runs that survive anything: settings that no interleaving of processes can mix, a report that names every run,
inputs checked up front (checkpoints that never execute code and logs that cannot be silently corrupted:
test_checkpoints.py)."""
import json
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

import mnist_top
import report
from tests.test_experiment import TINY, constants
from training import experiment

RUN = "vanilla_lr0.1_split00"


def argv_for(root, out, *extra):
    return TINY + [f"--DATA_ROOT={root}", f"--OUT_DIR={out}", "--REGULARIZERS=vanilla", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, request):
    """The log of an uninterrupted vanilla run (TINY settings) on the generated KMNIST."""
    from tests.conftest import make_mnist_format
    root = make_mnist_format(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(2)
    assert experiment.main(constants(mnist_top), argv_for(root, out)) == 0
    return root, (out / "runs" / RUN / "log.jsonl").read_text()


class Planted:
    """What a malicious ckpt.pt could hold: unpickling it would write a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return Path.write_text, (Path(self.marker), "code ran")


def _start_together(barrier, root, out, epochs, err):
    """One process of the race: wait for the other, then run the study with its own EPOCHS."""
    import sys
    sys.stderr = open(err, "w")
    torch.set_num_threads(1)
    barrier.wait()
    code = experiment.main(constants(mnist_top), argv_for(root, out, f"--EPOCHS={epochs}"))
    sys.stderr.close()
    os._exit(code)


@pytest.mark.slow
def test_two_processes_with_other_settings_started_together_leave_a_consistent_folder(reference, tmp_path):
    root, _ = reference
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_start_together, args=(barrier, root, tmp_path / "out", e, tmp_path / f"err{e}"))
             for e in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    codes = {e: p.exitcode for e, p in zip((1, 2), procs)}
    assert sorted(codes.values()) == [0, 2]
    winner = next(e for e, c in codes.items() if c == 0)
    loser = 3 - winner
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    configs = [json.loads(p.read_text())["config"] for p in (tmp_path / "out" / "runs").glob("*/config.json")]
    assert settings["EPOCHS"] == winner and [c["EPOCHS"] for c in configs] == [winner]
    assert "EPOCHS" in (tmp_path / f"err{loser}").read_text()
    # the folder is not stuck: the winner's settings resume, the loser's are refused
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "out", f"--EPOCHS={winner}")) == 0
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "out", f"--EPOCHS={loser}")) == 2


@pytest.mark.slow
def test_a_folder_from_before_settings_json_gets_one_from_its_runs(reference, tmp_path, capsys):
    root, _ = reference
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1")) == 0
    (tmp_path / "settings.json").unlink()                                  # as written before this change
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=2")) == 2
    assert "EPOCHS" in capsys.readouterr().err and not (tmp_path / "settings.json").exists()
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1")) == 0
    assert not (tmp_path / "settings.json").exists()                      # nothing trained: nothing but the report
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1", "--SPLITS=0,1")) == 0
    assert json.loads((tmp_path / "settings.json").read_text())["EPOCHS"] == 1


def test_the_report_names_diverged_failed_and_unfinished_runs_even_without_a_finished_one(tmp_path):
    def run(name, epochs_logged, **files):
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(dict(
            run=dict(regularizer="hofer", beta=4.0, lr=0.1, split=int(name[-2:])), seed=0, data_source="test",
            config=dict(DATASET="MNIST", TRAIN_SIZE=250, EPOCHS=310))))
        (folder / "log.jsonl").write_text("".join(json.dumps(dict(epoch=e, train_acc=0.5)) + "\n"
                                                  for e in range(1, epochs_logged + 1)))
        for kind, message in files.items():
            (folder / f"{kind}.json").write_text(json.dumps(dict(message=message)))
        return folder

    run("hofer_beta4_lr0.1_split00", 7, diverged="non-finite loss in epoch 8")
    run("hofer_beta4_lr0.1_split01", 12)
    folder = run("hofer_beta4_lr0.1_split02", 3, failed="checkpoint cannot be read")
    (folder / "log.jsonl").write_text((folder / "log.jsonl").read_text() + "{broken\n")
    report.write_report(tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "(0 finished, 1 diverged, 1 failed, 1 unfinished)" in text
    assert "| hofer_beta4_lr0.1_split00 | diverged | 7 of 310 | non-finite loss in epoch 8 |" in text
    assert "| hofer_beta4_lr0.1_split01 | unfinished | 12 of 310 | – |" in text
    assert "| hofer_beta4_lr0.1_split02 | failed | 3 of 310 | checkpoint cannot be read |" in text
    assert "Skipped in hofer_beta4_lr0.1_split02/log.jsonl: line(s) 4" in text
    assert not list(tmp_path.glob(".*"))                                    # no temporary file left behind


@pytest.mark.parametrize("arg, msg", [("--EVAL_BATCH=0", "EVAL_BATCH=0 must be >= 1"),
                                      ("--TRAIN_SIZE=9", "no image of class(es)"),
                                      ("--PAIR_WITH=nowhere", "PAIR_WITH: no runs/ folder in nowhere"),
                                      ("--EXECUTOR=slurm", "EXECUTOR='slurm' unknown"),
                                      ("--VAL_SIZE=100000", "VAL_SIZE=100000 is more than")])
def test_a_setting_that_would_fail_later_fails_before_any_run_folder(kmnist_root, tmp_path, capsys, arg, msg):
    root = kmnist_root                                       # the data, not a trained reference run: nothing trains
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "out", arg)) == 2
    assert msg in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_missing_data_folder_is_not_created_by_a_failed_download(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets.mnist

    import data

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)  # as without internet
    root = tmp_path / "nowhere"
    with pytest.raises(data.DataError, match="the download failed"):
        data.load_dataset("KMNIST", root, train=True, download=True, verify=False)
    assert not root.exists()
