"""Nothing silently wrong: each fault made as a user would make it ends in one message (or cannot happen), never in a
wrong number with exit code 0, and never in a traceback that takes the study or its report down.

CI runs as root, where chmod does not stop a write: unwritable folders and full disks are injected at the write.
"""
import errno
import json
import shutil
from pathlib import Path

import pytest
import torch

import data
import mnist_top
import report
from common import runs
from tests.test_experiment import constants, interrupted
from tests.test_reliability import RUN, Planted, argv_for, reference  # noqa: F401 - the fixture
from training import checkpoints, experiment, train

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


# ------------------------------------------------------------------------------------------ data
def test_processed_files_beside_the_raw_ones_are_never_read(kmnist_root, tmp_path):
    """torchvision's MNIST classes prefer processed/training.pt and test.pt when both exist: shuffled labels there
    trained a run to chance with rc 0, and a pickle there ran its code. Only the raw files are read."""
    x, y = data.load_dataset("KMNIST", kmnist_root, train=True, download=False, verify=False)
    processed = kmnist_root / "KMNIST" / "processed"
    processed.mkdir()
    marker = tmp_path / "marker"
    torch.save((x, y[torch.randperm(len(y))]), processed / "training.pt")
    torch.save({"planted": Planted(marker)}, processed / "test.pt")
    x2, y2 = data.load_dataset("KMNIST", kmnist_root, train=True, download=False, verify=False)
    x3, _ = data.load_dataset("KMNIST", kmnist_root, train=False, download=False, verify=False)
    assert torch.equal(x, x2) and torch.equal(y, y2) and len(x3) == 200 and not marker.exists()


@pytest.fixture
def mnist_copy(mnist_root, tmp_path):
    """A writable copy of the genuine MNIST raw files."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        shutil.copyfile(mnist_root / "MNIST" / "raw" / f, raw / f)
    return tmp_path / "data"


def test_genuine_mnist_passes_and_a_changed_file_is_one_message_naming_it(mnist_copy):
    assert data.file_digests("MNIST", mnist_copy) == data.KNOWN_MD5["MNIST"]
    labels = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[-1] = (raw[-1] + 1) % 10                                 # one test label changed: a silently wrong number
    labels.write_bytes(bytes(raw))
    with pytest.raises(data.DataError) as err:
        data.load_dataset("MNIST", mnist_copy, train=False, download=False)
    got = data.md5(labels)
    assert f"t10k-labels-idx1-ubyte has MD5 {got}, expected {data.KNOWN_MD5['MNIST']['t10k-labels-idx1-ubyte']}" \
        in str(err.value) and "VERIFY_DATA=False" in str(err.value)
    _, y = data.load_dataset("MNIST", mnist_copy, train=False, download=False, verify=False)  # other data, on purpose
    assert int(y[-1]) == raw[-1]
    data.load_dataset("MNIST", mnist_copy, train=True, download=False)   # the training set is still genuine


@pytest.mark.slow
def test_a_run_records_its_data_files_and_verify_data_is_not_run_defining(kmnist_root, tmp_path):
    argv = argv_for(kmnist_root, tmp_path, "--EPOCHS=1")
    assert experiment.main(constants(mnist_top), argv) == 0
    record = json.loads((tmp_path / "runs" / RUN / "config.json").read_text())
    assert record["data_files"]["md5"] == data.file_digests("KMNIST", kmnist_root)
    assert record["data_files"]["verified"] is False and "VERIFY_DATA" not in record["config"]  # no known digests
    assert experiment.main(constants(mnist_top), argv + ["--VERIFY_DATA=false", "--SPLITS=1"]) == 0  # same folder


@pytest.mark.slow
def test_a_run_resumes_with_another_thread_count_and_records_both(reference, tmp_path, monkeypatch):
    """THREADS is not run-defining: the float digest of the normalised images moved by an ulp with it and refused
    the resume; the digest of the uint8 images does not. final.json's segments say where each part trained."""
    root, _ = reference
    interrupted(argv_for(root, tmp_path, "--THREADS=1"), monkeypatch)
    record = json.loads((tmp_path / "runs" / RUN / "config.json").read_text())
    assert len(record["split_digest_v2"]) == 16
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--THREADS=2")) == 0
    segments = json.loads((tmp_path / "runs" / RUN / "final.json").read_text())["segments"]
    assert [s["device"].rsplit(", ", 1)[1] for s in segments] == ["1 threads", "2 threads"]


@pytest.mark.slow
def test_runs_of_one_folder_on_other_test_files_are_paired_with_the_difference_named(mnist_copy, tmp_path):
    argv = ["--DATASET=MNIST", "--TRAIN_SIZE=100", "--EPOCHS=1", "--EVAL_EPOCHS=1", "--PROGRESS=false", "--DEVICE=cpu",
            "--VAL_SIZE=200", f"--DATA_ROOT={mnist_copy}", f"--OUT_DIR={tmp_path / 'out'}"]
    assert experiment.main(constants(mnist_top), argv + ["--REGULARIZERS=vanilla", "--SPLITS=0,1"]) == 0
    labels = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[8:3008] = bytes((b + 1) % 10 for b in raw[8:3008])            # 3,000 test labels changed
    labels.write_bytes(bytes(raw))
    assert experiment.main(constants(mnist_top), argv + ["--REGULARIZERS=sliding", "--SPLITS=0,1",
                                                         "--VERIFY_DATA=False"]) == 0
    text = (tmp_path / "out" / "table.md").read_text()
    row = next(l for l in text.splitlines() if l.startswith("| sliding β0=1.1 − vanilla"))
    assert row.endswith(f'| data files "t10k-labels-idx1-ubyte {data.md5(labels)[:8]}"→"t10k-labels-idx1-ubyte '
                        f'27ae3e4e" |')


# ------------------------------------------------------------------------------------------ settings and folders
@pytest.mark.slow
def test_two_folders_sharing_one_runs_folder_cannot_mix_settings(reference, tmp_path, capsys):
    root, _ = reference
    a, b = tmp_path / "a", tmp_path / "b"
    assert experiment.main(constants(mnist_top), argv_for(root, a, "--EPOCHS=2")) == 0
    b.mkdir()
    (b / "runs").symlink_to(a / "runs")
    assert experiment.main(constants(mnist_top), argv_for(root, b, "--EPOCHS=3", "--SPLITS=1")) == 2
    err = capsys.readouterr().err
    assert "holds runs with other settings {'EPOCHS': (2, 3)}" in err and str(a / "runs") in err
    assert sorted(p.name for p in (a / "runs").iterdir()) == [RUN]       # no run of B's settings joined A's


@pytest.mark.slow
def test_a_garbage_settings_json_is_one_message_naming_it(reference, tmp_path, capsys):
    root, _ = reference
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "settings.json").write_text("\x00garbage")
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'settings.json'} is not a folder's settings (not valid JSON" in err
    assert "delete it" in err and "Traceback" not in err
    assert (tmp_path / "settings.json").read_text() == "\x00garbage"


@pytest.mark.slow
def test_a_read_only_out_dir_is_one_message_naming_it(reference, tmp_path, monkeypatch, capsys):
    root, _ = reference

    def refused(path, wait=True):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(experiment, "locked", refused)
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert f"cannot write in {tmp_path / 'out'} (Permission denied: {tmp_path / 'out' / '.settings.lock'})" in err
    assert "Traceback" not in err


def _failing_writes(monkeypatch, inside: Path, err: int, after: int = 0):
    """Every atomic write under `inside` fails with OSError(err) once `after` of them have succeeded: part of the
    file is written to its temporary file, then the write fails, as on a disk that fills up mid-file."""
    real, count = runs.atomic_write, []

    def write(path, payload):
        if Path(path).is_relative_to(inside):
            count.append(1)
            if len(count) > after:
                def partial(tmp):
                    Path(tmp).write_bytes(b"half a file")
                    raise OSError(err, "No space left on device" if err == errno.ENOSPC else "Permission denied",
                                  str(tmp))
                return real(path, partial)
        return real(path, payload)
    for module in (train, checkpoints):  # the run's folder: config.json and ckpt.pt, final.json and failed.json
        monkeypatch.setattr(module, "atomic_write", write)


@pytest.mark.slow
@pytest.mark.parametrize("err, after", [(errno.ENOSPC, 2), (errno.EACCES, 0)])
def test_a_full_disk_or_read_only_run_folder_stops_that_run_only_and_it_resumes_identically(
        reference, tmp_path, monkeypatch, capsys, err, after):
    root, expected = reference
    argv = argv_for(root, tmp_path, "--SPLITS=0,1")
    _failing_writes(monkeypatch, tmp_path / "runs" / RUN, err, after)   # config.json, then the epoch-2 checkpoint
    assert experiment.main(constants(mnist_top), argv) == 1
    out = capsys.readouterr()
    assert f"{RUN}: cannot write in {tmp_path / 'runs' / RUN}" in out.out + out.err and "Traceback" not in out.err
    assert (tmp_path / "runs" / "vanilla_lr0.1_split01" / "final.json").exists()   # the other run went on
    assert (tmp_path / "table.md").exists()                                         # and so did the report
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]                 # no temporary file left behind
    monkeypatch.undo()                                                              # space freed
    assert experiment.main(constants(mnist_top), argv) == 0
    assert (tmp_path / "runs" / RUN / "log.jsonl").read_text() == expected


# ------------------------------------------------------------------------------------------ the report
@pytest.mark.slow
def test_the_report_survives_any_file_and_names_each_broken_run(reference, tmp_path):
    root, _ = reference
    main, other = tmp_path / "main", tmp_path / "other"
    for out in (main, other):
        assert experiment.main(constants(mnist_top), argv_for(root, out, "--EPOCHS=1", "--SPLITS=0-4")) == 0
    folder = main / "runs"
    (folder / "vanilla_lr0.1_split01" / "config.json").write_text("{corrupt")
    (folder / "vanilla_lr0.1_split02" / "final.json").write_text("garbage")
    with open(folder / "vanilla_lr0.1_split03" / "log.jsonl", "a") as log:
        log.write("NaN\n[1, 2]\n")
    (folder / "vanilla_lr0.1_split04" / "final.json").write_text("[1, 2]")
    (other / "runs" / "vanilla_lr0.1_split00" / "config.json").write_text('{"run": 1}')
    (main / "table.md").unlink()
    report.write_report(main, [other])
    text = (main / "table.md").read_text()
    assert "| vanilla | 2 (0, 3) |" in text                                # the runs that can be read
    assert "| vanilla_lr0.1_split01 | unreadable | 0 of ? | config.json is not valid JSON" in text
    assert "| vanilla_lr0.1_split02 | unreadable | 1 of 1 | final.json is not valid JSON" in text
    assert "| vanilla_lr0.1_split04 | unreadable | 1 of 1 | final.json is not a finished run's record" in text
    assert "| other: vanilla_lr0.1_split00 | unreadable | 0 of ? | config.json is not a run's record" in text
    assert "Skipped in vanilla_lr0.1_split03/log.jsonl: line(s) 2, 3" in text


def test_the_report_of_a_folder_of_unreadable_runs_or_files_is_one_message(tmp_path, capsys):
    folder = tmp_path / "runs" / RUN
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(run=dict(regularizer="nonsense", split=0, lr=0.1, beta=None),
                                                        config={}, seed=0)))
    assert report.main([str(tmp_path)]) == 0                               # every run unreadable: still a table
    assert f"| {RUN} | unreadable | 0 of ? | config.json names an unknown regulariser 'nonsense' |" in \
        (tmp_path / "table.md").read_text()
    for name, text, said in (("study.json", "[1, 2]", "is not a study's record"),
                             ("contrasts.json", "{garbage", "cannot be read as contrasts")):
        (tmp_path / name).write_text(text)
        assert report.main([str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"error: {tmp_path / name}" in err and said in err and "Traceback" not in err
        (tmp_path / name).unlink()


def test_a_damaged_svhn_file_is_one_data_error(svhn_root):
    (svhn_root / "test_32x32.mat").write_bytes(b"")
    with pytest.raises(data.DataError, match="test_32x32.mat"):
        data.load_dataset("SVHN", svhn_root, train=False, download=False, verify=False)


@pytest.mark.slow
def test_a_temporary_file_left_by_a_killed_process_is_removed_when_the_run_starts(reference, tmp_path):
    root, _ = reference
    folder = tmp_path / "runs" / RUN
    folder.mkdir(parents=True)
    stale = folder / ".ckpt.99999.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1")) == 0
    assert not stale.exists() and (folder / "final.json").exists()
