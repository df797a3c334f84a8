"""checkpoints.py: a run's record, its checkpoint saved and restored bit for bit, and every way a folder refuses to go
on (one message that says what to do, nothing changed). Unit tests on a generated study first (`tests.test_train`),
then the same protections end to end through `experiment.main`."""
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import mnist_top
import report
from common import runs
from tests.test_experiment import TINY, constants, interrupted, lines
from tests.test_reliability import RUN, Planted, argv_for, reference  # noqa: F401 - the fixture
from tests.test_train import CPU, META, subset, tiny_study
from training import checkpoints, experiment, provenance, train
from training.checkpoints import RunError


def started() -> tuple[dict, dict, dict, checkpoints.RunState]:
    """(cfg, run, record, state) of a generated run one epoch in: weights, momentum, schedules and RNGs moved. On one
    thread, as in `tests.test_train` (the end-to-end tests below keep conftest's two, as their reference run)."""
    torch.set_num_threads(1)
    cfg, d, run = tiny_study()
    train_set = subset(cfg, d, run)
    record = checkpoints.run_record(cfg, d, run, train_set, "generated")
    state = train.build_run(cfg, run, 10, 1, CPU, record)
    train.train_epoch(cfg, state, train_set, 0.1, 1.1)
    state.schedule.end_epoch(1, 0.5)
    state.sched_lr.step()
    state.segment = dict(first_epoch=1, **META)
    return cfg, run, record, state


def saved(tmp_path: Path, state: checkpoints.RunState, text: str = '{"epoch": 1}\n') -> tuple[Path, Path]:
    """(ckpt.pt, log.jsonl) of `state` checkpointed after epoch 1 with the log `text`, and a line written after it."""
    ckpt, log = tmp_path / "ckpt.pt", tmp_path / "log.jsonl"
    log.write_text(text + '{"epoch": 2}\n')
    checkpoints.save_checkpoint(ckpt, state, CPU, 1, text, 12.5)
    return ckpt, log


def edited(ckpt: Path, **changes) -> None:
    """Rewrite a checkpoint with keys changed (None: removed)."""
    ck = torch.load(ckpt, weights_only=True)
    for k, v in changes.items():
        ck.pop(k) if v is None else ck.__setitem__(k, v)
    torch.save(ck, ckpt)


def refused(ckpt: Path, log: Path, state: checkpoints.RunState) -> str:
    """The message of a refused restore, checked to have changed neither the checkpoint nor the log."""
    before = ckpt.read_bytes(), log.read_bytes() if log.exists() else None
    with pytest.raises(RunError) as err:
        checkpoints.restore_checkpoint(ckpt, state, CPU, log)
    assert (ckpt.read_bytes(), log.read_bytes() if log.exists() else None) == before
    return str(err.value)


# ------------------------------------------------------------------------------------------ save and restore
def test_a_checkpoint_restores_the_state_the_rng_states_and_the_log_at_its_epoch(tmp_path):
    cfg, run, record, state = started()
    torch.manual_seed(7)
    ckpt, log = saved(tmp_path, state)
    rng_cpu, rng_batches = torch.get_rng_state(), state.gen.get_state()
    torch.rand(3), torch.rand(3, generator=state.gen)                             # drawn after the checkpoint
    fresh = train.build_run(cfg, run, 10, 1, CPU, record)
    assert not torch.equal(fresh.model.classifier.weight, state.model.classifier.weight)
    assert checkpoints.restore_checkpoint(ckpt, fresh, CPU, log) == (2, 12.5)    # (next epoch, seconds so far)
    for (k, a), b in zip(state.model.state_dict().items(), fresh.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    momentum = [[s["momentum_buffer"] for s in r.opt.state_dict()["state"].values()] for r in (state, fresh)]
    torch.testing.assert_close(momentum[0], momentum[1], rtol=0, atol=0)
    assert fresh.opt.state_dict()["param_groups"] == state.opt.state_dict()["param_groups"]
    assert fresh.sched_lr.state_dict() == state.sched_lr.state_dict()
    assert fresh.schedule.state_dict() == state.schedule.state_dict()
    assert torch.equal(torch.get_rng_state(), rng_cpu) and torch.equal(fresh.gen.get_state(), rng_batches)
    assert log.read_text() == '{"epoch": 1}\n'                                    # the line after it is cut
    assert fresh.segments == [dict(first_epoch=1, **META, last_epoch=1)]


@pytest.mark.parametrize("record", ["missing", "null"])
def test_a_checkpoint_without_a_record_of_its_run_is_refused_with_how_to_start_afresh(tmp_path, record):
    """Older checkpoints held no record: nothing shows whose they are, so they are refused (ckpt.pt is never
    committed: such a run trains anew)."""
    _, _, _, state = started()
    ckpt, log = saved(tmp_path, state)
    edited(ckpt, record=None if record == "missing" else "null")
    message = refused(ckpt, log, state)
    assert f"{ckpt} holds no record of its run (it was written before checkpoints held one)" in message
    assert "move ckpt.pt away (or delete it) and run the same command again" in message


def test_a_checkpoint_of_another_run_is_refused_naming_the_difference(tmp_path):
    cfg, run, record, state = started()
    ckpt, log = saved(tmp_path, state)
    other = dict(record, run=dict(run, lr=0.05, name=run["name"].replace("lr0.1", "lr0.05")))
    edited(ckpt, record=json.dumps(other))
    message = refused(ckpt, log, state)
    assert f"{ckpt} belongs to another run" in message and "'lr': (0.05, 0.1)" in message
    assert "Move ckpt.pt away" in message
    edited(ckpt, record="{not json")
    assert f"{ckpt} holds a record that cannot be read (JSONDecodeError" in refused(ckpt, log, state)


@pytest.mark.parametrize("damage", ["truncated", "not a dict", "no log text", "no optimizer"])
def test_a_damaged_checkpoint_cannot_be_read_and_says_whether_the_log_is_safe(tmp_path, damage):
    _, _, _, state = started()
    ckpt, log = saved(tmp_path, state)
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "not a dict":
        torch.save(torch.zeros(3), ckpt)
    else:
        edited(ckpt, **{"log_text" if damage == "no log text" else "optimizer": None})
    message = refused(ckpt, log, state)
    assert message.startswith(f"checkpoint {ckpt} cannot be read (") and "The log log.jsonl beside it is intact" in message
    assert "Restore ckpt.pt (from a backup), or move" in message
    if damage.startswith("no "):
        assert f"(KeyError: 'no {'log_text' if damage == 'no log text' else 'optimizer'}')" in message
    log.unlink()
    assert "There is no log.jsonl beside it" in refused(ckpt, log, state)


def test_a_checkpoint_written_on_another_device_is_refused(tmp_path):
    _, _, _, state = started()
    ckpt, log = saved(tmp_path, state)
    edited(ckpt, device="cuda")
    assert f"{ckpt} was written on cuda; resume it with --DEVICE=cuda" in refused(ckpt, log, state)


@pytest.mark.parametrize("edit", ["changed", "truncated", "missing"])
def test_a_log_that_does_not_reach_the_checkpoint_unchanged_is_rebuilt_from_it(tmp_path, edit):
    _, _, _, state = started()
    text = '{"epoch": 1, "ce": 2.5}\n{"epoch": 2, "ce": 2.25}\n'
    ckpt, log = saved(tmp_path, state, text)
    odd = {"changed": text.replace("2.25", "9.0"), "truncated": text[:30], "missing": None}[edit]
    log.unlink() if odd is None else log.write_text(odd)
    assert checkpoints.restore_checkpoint(ckpt, state, CPU, log) == (2, 12.5)
    assert log.read_text() == text
    kept = list(tmp_path.glob("log.changed-*.jsonl"))
    assert [k.read_text() for k in kept] == ([] if odd is None else [odd])        # an odd log is never lost


# ------------------------------------------------------------------------------------------ resume
def test_resume_without_a_checkpoint_starts_at_epoch_one_and_keeps_an_orphan_log_aside(tmp_path, capsys):
    _, run, _, state = started()
    log = tmp_path / "log.jsonl"
    assert checkpoints.resume(state, run["name"], CPU, tmp_path / "ckpt.pt", log, META) == (1, 0.0)
    assert state.segment == dict(first_epoch=1, **META) and not list(tmp_path.iterdir())
    log.write_text('{"epoch": 1}\n')                                              # killed before its checkpoint
    assert checkpoints.resume(state, run["name"], CPU, tmp_path / "ckpt.pt", log, META) == (1, 0.0)
    orphans = list(tmp_path.glob("log.orphan-*.jsonl"))
    assert not log.exists() and [o.read_text() for o in orphans] == ['{"epoch": 1}\n']
    assert f"{run['name']}: no checkpoint, so training starts again" in capsys.readouterr().out


def test_resume_from_a_checkpoint_notes_the_segments_and_says_where_they_trained_elsewhere(tmp_path, capsys):
    cfg, run, record, state = started()
    ckpt, log = saved(tmp_path, state)
    fresh = train.build_run(cfg, run, 10, 1, CPU, record)
    assert checkpoints.resume(fresh, run["name"], CPU, ckpt, log, META) == (2, 12.5)
    assert checkpoints.trained_segments(fresh, 3) == [dict(first_epoch=1, **META, last_epoch=1),
                                                      dict(first_epoch=2, **META, last_epoch=3)]
    assert "resumed at epoch" not in capsys.readouterr().out                     # the same provenance: no alarm
    elsewhere = dict(META, cpu_capability="another kind")
    assert checkpoints.resume(fresh, run["name"], CPU, ckpt, log, elsewhere) == (2, 12.5)
    assert f"{run['name']}: resumed at epoch 2 with another cpu_capability than its earlier epochs " \
           f"(cpu_capability ['{META['cpu_capability']}']; now cpu_capability another kind)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ the run's record
def test_config_json_is_written_once_and_then_refuses_other_settings(tmp_path):
    cfg, d, run = tiny_study()
    record = checkpoints.run_record(cfg, d, run, subset(cfg, d, run), "generated")
    assert record["run"] == run and record["config"] == runs.defining_settings(cfg) and record["data_files"] == "generated"
    checkpoints.check_run_config(tmp_path, record)
    written = (tmp_path / "config.json").read_text()
    assert json.loads(written) == record
    checkpoints.check_run_config(tmp_path, record)                                 # the same settings: resumed
    other = dict(record, config=dict(record["config"], WEIGHT_DECAY=0.5))
    with pytest.raises(RunError, match=r"was written with other settings \{'WEIGHT_DECAY': \(0.001, 0.5\)\}"):
        checkpoints.check_run_config(tmp_path, other)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(RunError, match="config.json cannot be read \\(JSONDecodeError"):
        checkpoints.check_run_config(tmp_path, record)


def test_a_record_of_other_training_images_differs_in_them():
    cfg, d, run = tiny_study()
    record = checkpoints.run_record(cfg, d, run, subset(cfg, d, run), "generated")
    moved = dict(record, split_digest_v2="0" * 16)
    assert checkpoints.config_differences(record, record) == {}
    assert checkpoints.config_differences(moved, record) == {"training images": ("0" * 16,
                                                                                 record["split_digest_v2"])}


def test_messages_quote_the_first_sentence_without_colour_codes():
    assert checkpoints.first_sentence("\x1b[31mWeights only load failed.\x1b[0m Re-running it may help.\nmore") == \
        "Weights only load failed"
    assert checkpoints.first_sentence("") == "no message" and checkpoints.plain("\x1b[1mbold\x1b[0m") == "bold"


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.parametrize("content", ["planted", "truncated", "random", "empty"])
def test_an_unreadable_or_planted_checkpoint_is_refused_with_one_message(reference, tmp_path, monkeypatch, content):
    root, _ = reference
    marker = tmp_path / "marker"
    run = tmp_path / "out" / "runs" / RUN
    if content == "planted":
        run.mkdir(parents=True)
        torch.save({"model": Planted(marker)}, run / "ckpt.pt")
        pickle.loads(pickle.dumps(Planted(tmp_path / "probe")))           # the plant is real: plain unpickling
        assert (tmp_path / "probe").read_text() == "code ran"              # runs its code
    else:
        interrupted(argv_for(root, tmp_path / "out"), monkeypatch)
        good = (run / "ckpt.pt").read_bytes()
        bad = {"truncated": good[: len(good) // 2], "random": os.urandom(4096), "empty": b""}[content]
        (run / "ckpt.pt").write_bytes(bad)
    log_before = (run / "log.jsonl").read_text() if (run / "log.jsonl").exists() else None
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "out")) == 1
    message = json.loads((run / "failed.json").read_text())["message"]
    assert f"checkpoint {run / 'ckpt.pt'} cannot be read" in message
    assert ("is intact" in message) == (log_before is not None)             # said only where there is a log
    assert "Restore ckpt.pt" in message and "move" in message and "Traceback" not in message
    assert not marker.exists()                                              # the pickle's code never ran
    if log_before is not None:
        assert (run / "log.jsonl").read_text() == log_before                 # nothing lost
    report.write_report(tmp_path / "out")
    assert "| vanilla_lr0.1_split00 | failed |" in (tmp_path / "out" / "table.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("edit", ["insert a line", "change a line", "cut a line"])
def test_a_log_changed_before_its_checkpoint_is_kept_beside_and_rebuilt(reference, tmp_path, monkeypatch, edit):
    root, expected = reference
    argv = argv_for(root, tmp_path)
    interrupted(argv, monkeypatch)
    log = tmp_path / "runs" / RUN / "log.jsonl"
    rows = log.read_text().splitlines(keepends=True)                      # epochs 1-3; checkpoint after epoch 2
    changed = {"insert a line": [rows[0], '{"epoch": 0}\n', *rows[1:]],
               "change a line": [rows[0].replace('"epoch": 1', '"epoch": 11'), *rows[1:]],
               "cut a line": rows[1:]}[edit]
    log.write_text("".join(changed))
    assert experiment.main(constants(mnist_top), argv) == 0
    assert log.read_text() == expected                                    # as if never interrupted nor edited
    kept = list(log.parent.glob("log.changed-*.jsonl"))
    assert len(kept) == 1 and kept[0].read_text() == "".join(changed)      # and the odd log is not lost


@pytest.mark.slow
def test_a_checkpoint_without_the_log_it_was_saved_with_is_refused_and_changes_nothing(reference, tmp_path,
                                                                                      monkeypatch):
    """Checkpoints have held the log's text since before they held their run's record; one without it (damaged, or
    an older format) cannot bring a changed log back to its epoch: one message, nothing appended to the log, and the
    way out the message names gives the uninterrupted run's log."""
    root, expected = reference
    argv = argv_for(root, tmp_path)
    interrupted(argv, monkeypatch)
    ckpt, log = tmp_path / "runs" / RUN / "ckpt.pt", tmp_path / "runs" / RUN / "log.jsonl"
    old = torch.load(ckpt, weights_only=True)
    del old["log_text"]
    torch.save(old, ckpt)
    broken = '{"epoch": 0}\n' + log.read_text()
    log.write_text(broken)
    before = ckpt.read_bytes()
    assert experiment.main(constants(mnist_top), argv) == 1
    message = json.loads((log.parent / "failed.json").read_text())["message"]
    assert f"checkpoint {ckpt} cannot be read (KeyError: 'no log_text')" in message
    assert f"move {log.parent} away to train the run from the start" in message
    assert log.read_text() == broken and ckpt.read_bytes() == before
    shutil.rmtree(log.parent)                                               # as the message says
    assert experiment.main(constants(mnist_top), argv) == 0
    assert log.read_text() == expected


@pytest.mark.slow
def test_a_run_refuses_to_resume_with_other_settings_than_its_config(reference, tmp_path, capsys):
    root, _ = reference
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1")) == 0
    (tmp_path / "runs" / RUN / "final.json").unlink()
    cfg = json.loads((tmp_path / "runs" / RUN / "config.json").read_text())
    cfg["config"]["WEIGHT_DECAY"] = 0.5                                   # as if another process wrote it
    (tmp_path / "runs" / RUN / "config.json").write_text(json.dumps(cfg))
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path, "--EPOCHS=1")) == 1
    assert "was written with other settings {'WEIGHT_DECAY': (0.5, 0.001)}" in \
        json.loads((tmp_path / "runs" / RUN / "failed.json").read_text())["message"]


def _foreign_checkpoint(root, tmp_path, monkeypatch, other: list[str], mine: list[str]) -> Path:
    """The checkpoint of a finished run with settings `other`, copied over that of an interrupted run with settings
    `mine` (a checkpoint of another length, or of another regulariser)."""
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "other", *other)) == 0
    interrupted(argv_for(root, tmp_path / "mine", *mine), monkeypatch)
    src = next((tmp_path / "other" / "runs").glob("*/ckpt.pt"))
    dst = next((tmp_path / "mine" / "runs").glob("*/ckpt.pt"))
    shutil.copyfile(src, dst)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("other, mine, named", [
    (["--EPOCHS=3"], ["--EPOCHS=6"], "'EPOCHS': (3, 6)"),
    (["--REGULARIZERS=sliding", "--EPOCHS=6"], ["--EPOCHS=6"], "'regularizer': ('sliding', 'vanilla')")])
def test_a_checkpoint_of_another_run_is_refused(reference, tmp_path, monkeypatch, other, mine, named):
    root, _ = reference
    ckpt = _foreign_checkpoint(root, tmp_path, monkeypatch, other, mine)
    before = ckpt.read_bytes(), (ckpt.parent / "log.jsonl").read_text()
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "mine", *mine)) == 1
    message = json.loads((ckpt.parent / "failed.json").read_text())["message"]
    assert f"{ckpt} belongs to another run" in message and named in message and "Move ckpt.pt away" in message
    assert (ckpt.read_bytes(), (ckpt.parent / "log.jsonl").read_text()) == before        # nothing changed
    assert not (ckpt.parent / "final.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("record", ["missing", "null"])
def test_a_checkpoint_without_a_record_is_refused_with_how_to_start_afresh(reference, tmp_path, monkeypatch, record):
    """Such a checkpoint (an older format, or a hofer run's copied into a vanilla run's folder) cannot show whose it
    is: refused, nothing changed, and the way out the message names gives the uninterrupted run's log."""
    root, expected = reference
    argv = argv_for(root, tmp_path)
    interrupted(argv, monkeypatch)
    ckpt = tmp_path / "runs" / RUN / "ckpt.pt"
    old = torch.load(ckpt, weights_only=True)
    if record == "missing":
        del old["record"]                                                # as written before records
    else:
        old["record"] = "null"                                           # a run trained without a record
    torch.save(old, ckpt)
    before = ckpt.read_bytes(), (ckpt.parent / "log.jsonl").read_text()
    assert experiment.main(constants(mnist_top), argv) == 1
    message = json.loads((ckpt.parent / "failed.json").read_text())["message"]
    assert f"{ckpt} holds no record of its run" in message and "move ckpt.pt away (or delete it)" in message
    assert (ckpt.read_bytes(), (ckpt.parent / "log.jsonl").read_text()) == before
    ckpt.unlink()                                                        # as the message says
    assert experiment.main(constants(mnist_top), argv) == 0
    assert (tmp_path / "runs" / RUN / "log.jsonl").read_text() == expected


@pytest.mark.slow
def test_a_run_resumed_on_another_machine_says_so_and_final_json_and_the_report_keep_both_segments(
        reference, tmp_path, monkeypatch, capsys):
    """Resuming on other CPU kernels (or code) gives numbers that a run trained in one go would not: the resume
    says so, final.json lists the segments of epochs and where each trained, and the report names the run."""
    root, expected = reference
    argv = argv_for(root, tmp_path)
    interrupted(argv, monkeypatch)                                       # epochs 1–2 checkpointed here
    real = provenance.where
    here = torch.backends.cpu.get_cpu_capability()
    other = "AVX512" if here == "AVX2" else "AVX2"                      # any kind but this machine's
    monkeypatch.setattr(provenance, "where", lambda device: dict(real(device), cpu_capability=other))
    assert experiment.main(constants(mnist_top), argv) == 0
    assert (tmp_path / "runs" / RUN / "log.jsonl").read_text() == expected    # same kernels really: same numbers
    out = capsys.readouterr().out
    assert f"{RUN}: resumed at epoch 3 with another cpu_capability than its earlier epochs (cpu_capability " \
           f"['{here}']; now cpu_capability {other})" in out
    final = json.loads((tmp_path / "runs" / RUN / "final.json").read_text())
    first, second = final["segments"]
    assert (first["first_epoch"], first["last_epoch"], first["cpu_capability"]) == (1, 2, here)
    assert (second["first_epoch"], second["last_epoch"], second["cpu_capability"]) == (3, 4, other)
    assert {k: first[k] for k in runs.PROVENANCE_COMPARED if k != "cpu_capability"} == \
           {k: second[k] for k in runs.PROVENANCE_COMPARED if k != "cpu_capability"}
    table = (tmp_path / "table.md").read_text()
    assert f"- cpu_capability: {here} then {other}" in table
    assert f"on another machine than their earlier epochs** (not bit-exact with a run trained in one go; " \
           f"final.json lists the segments): {RUN}" in table


@pytest.mark.slow
def test_a_run_trained_in_one_go_has_one_segment_and_an_old_checkpoint_one_of_unknown_provenance(
        reference, tmp_path, monkeypatch, capsys):
    root, expected = reference
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path / "one")) == 0
    final = json.loads((tmp_path / "one" / "runs" / RUN / "final.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in final["segments"]] == [(1, 4)]
    assert {k: final["segments"][0][k] for k in runs.PROVENANCE_COMPARED} == \
           {k: final[k] for k in runs.PROVENANCE_COMPARED}                 # the process's own provenance
    argv = argv_for(root, tmp_path / "old")
    interrupted(argv, monkeypatch)
    ckpt = tmp_path / "old" / "runs" / RUN / "ckpt.pt"
    old = torch.load(ckpt, weights_only=True)
    del old["segments"]                                                  # as written before segments were kept
    torch.save(old, ckpt)
    assert experiment.main(constants(mnist_top), argv) == 0
    assert (tmp_path / "old" / "runs" / RUN / "log.jsonl").read_text() == expected
    assert "resumed at epoch" not in capsys.readouterr().out             # nothing known to differ: no alarm
    segments = json.loads((tmp_path / "old" / "runs" / RUN / "final.json").read_text())["segments"]
    assert segments[0] == dict(first_epoch=1, last_epoch=2) and segments[1]["first_epoch"] == 3


@pytest.mark.slow
def test_a_planted_checkpoint_without_a_log_says_so_in_one_clean_sentence(reference, tmp_path):
    root, _ = reference
    run = tmp_path / "runs" / RUN
    run.mkdir(parents=True)
    torch.save({"model": Planted(tmp_path / "marker")}, run / "ckpt.pt")
    assert experiment.main(constants(mnist_top), argv_for(root, tmp_path)) == 1
    failed = (run / "failed.json").read_text()
    message = json.loads(failed)["message"]
    assert "There is no log.jsonl beside it" in message and "is intact" not in message
    assert "\\u001b" not in failed and "\x1b" not in message and not (tmp_path / "marker").exists()
    quoted = message.split("UnpicklingError: ")[1].split(")")[0]
    assert quoted == "Weights only load failed"                           # a whole sentence, not cut at 200 chars


@pytest.mark.slow
def test_resume_after_an_interruption_gives_the_numbers_of_an_uninterrupted_run(kmnist_root, tmp_path, monkeypatch):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", "--REGULARIZERS=sliding", "--EVAL_EPOCHS=4"]
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'a'}"]) == 0

    interrupted(argv + [f"--OUT_DIR={tmp_path / 'b'}"], monkeypatch)  # dies in epoch 4, past the epoch-2 checkpoint
    run_b = tmp_path / "b" / "runs" / "sliding_beta1.1_lr0.1_split00"
    assert not (run_b / "final.json").exists() and len(lines(run_b / "log.jsonl")) == 3  # line 3: after the ckpt
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'b'}"]) == 0

    run_a = tmp_path / "a" / "runs" / "sliding_beta1.1_lr0.1_split00"
    assert (run_a / "log.jsonl").read_text() == (run_b / "log.jsonl").read_text()   # bit-for-bit
    assert json.loads((run_a / "final.json").read_text())["test_acc"] == \
        json.loads((run_b / "final.json").read_text())["test_acc"]

    # killed after the last checkpoint but before final.json: a rerun writes final.json from the log
    final = json.loads((run_a / "final.json").read_text())
    (run_a / "final.json").unlink()
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'a'}"]) == 0
    assert json.loads((run_a / "final.json").read_text())["test_acc"] == final["test_acc"]


@pytest.mark.slow
def test_a_log_without_a_checkpoint_is_kept_and_the_run_starts_again(kmnist_root, tmp_path):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla"]
    assert experiment.main(constants(mnist_top), argv) == 0
    run = tmp_path / "runs" / "vanilla_lr0.1_split00"
    log = (run / "log.jsonl").read_text()
    (run / "final.json").unlink()
    (run / "ckpt.pt").unlink()
    assert experiment.main(constants(mnist_top), argv) == 0
    orphans = list(run.glob("log.orphan-*.jsonl"))
    assert len(orphans) == 1 and orphans[0].read_text() == log and (run / "log.jsonl").read_text() == log
