"""train.py: a step, an epoch, the run's loop and its outcome, on small generated inputs (no dataset files); and what
a training epoch measures besides its losses."""
import json

import pytest
import torch
import torch.nn.functional as F

import data
import mnist_top
from common import runs
from reporting import stats
from tests.conftest import digit_like_images
from tests.test_experiment import constants
from training import train

CPU = torch.device("cpu")
META = {k: f"{k} of this process" for k in runs.PROVENANCE_COMPARED}  # what `provenance.where` would give


@pytest.fixture(autouse=True)
def _one_thread(_few_threads):
    """One thread: tiny models gain nothing from a second, which spin-waits on a busy machine (many times slower)."""
    torch.set_num_threads(1)


def tiny_study(regularizer: str = "sliding", **settings) -> tuple[dict, dict, dict]:
    """(cfg, d, run): a study of 40 generated digit-like images of 10 classes (a seeded draw: no shipped split),
    60 test and 20 validation images, and its one run; `d` as `experiment.load_data` builds it."""
    cfg = {**constants(mnist_top), "DATASET": "KMNIST", "TRAIN_SIZE": 40, "EPOCHS": 3, "GROUPS_PER_BATCH": 4,
           "SAMPLES_PER_GROUP": 4, "EVAL_EPOCHS": 2, "CKPT_EVERY": 2, "PROGRESS": False, "VAL_SIZE": 20,
           "REGULARIZERS": [regularizer], "SPLITS": [0], **settings}
    y = torch.arange(200) % 10
    x = torch.from_numpy(digit_like_images(y.numpy(), 28, 1, seed=0))
    y_test = torch.arange(60) % 10
    x_test = torch.from_numpy(digit_like_images(y_test.numpy(), 28, 1, seed=1))
    val = data.validation_indices("KMNIST", 40, 20, y)
    d = dict(x_train=x, y_train=y, x_test=x_test, y_test=y_test, x_val=x[val], y_val=y[val], val=val, num_classes=10,
             in_channels=1, data_files="generated")
    return cfg, d, runs.plan_runs(cfg)[0]


def subset(cfg: dict, d: dict, run: dict) -> data.TrainSubset:
    return data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], run["split"], cfg["SEED"], CPU)[0]


def lines(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------------ a step
@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_a_step_descends_cross_entropy_plus_lambda_times_the_penalty(lam):
    cfg, d, run = tiny_study()
    state, replay = (train.build_run(cfg, run, 10, 1, CPU) for _ in range(2))     # the same seed: equal models
    train_set = subset(cfg, d, run)
    idx = torch.arange(16) % 40
    x, y = train_set.x[idx], train_set.y[idx]
    ce, top = train.train_step(state.model, state.opt, state.penalty, x, y, lam, 0.5, 4, 4)
    z = replay.model.latent(x)                                                     # the step by hand
    want_ce, want_top = F.cross_entropy(replay.model.classifier(z), y), replay.penalty(z.view(4, 4, -1), beta=0.5)
    replay.opt.zero_grad()
    (want_ce + lam * want_top if lam > 0 else want_ce).backward()
    replay.opt.step()
    assert ce.item() == want_ce.item() and not ce.requires_grad
    assert top is None if lam == 0 else top.item() == want_top.item()            # λ = 0 skips the penalty
    for (k, a), b in zip(state.model.state_dict().items(), replay.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert not torch.equal(state.model.classifier.weight, train.build_run(cfg, run, 10, 1, CPU).model.classifier.weight)


# ------------------------------------------------------------------------------------------ an epoch
def test_an_epoch_is_one_step_per_group_batch_and_returns_three_means():
    cfg, d, run = tiny_study()
    train_set = subset(cfg, d, run)
    state, replay = (train.build_run(cfg, run, 10, 1, CPU) for _ in range(2))
    result = train.train_epoch(cfg, state, train_set, 0.1, 1.1)
    assert len(result) == 3 and all(isinstance(v, float) for v in result)        # as annotated: three floats
    ce_mean, top_mean, dup = result
    batches = data.group_batches(train_set.y, train_set.members, train_set.counts, 4, 4, replay.gen)   # (B, G·n)
    steps = [train.train_step(replay.model, replay.opt, replay.penalty, train_set.x[idx], train_set.y[idx], 0.1, 1.1,
                              4, 4) for idx in batches]
    assert len(batches) == 10                                                      # 40 anchors, 4 groups a batch
    assert ce_mean == pytest.approx(sum(ce.item() for ce, _ in steps) / 10, rel=1e-6)
    assert top_mean == pytest.approx(sum(top.item() for _, top in steps) / 10, rel=1e-6)
    assert dup == pytest.approx(train.duplicate_edges(batches, 4, 4).item())
    assert torch.equal(state.gen.get_state(), replay.gen.get_state())
    for (k, a), b in zip(state.model.state_dict().items(), replay.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_an_epoch_without_penalty_reports_zero_for_it():
    cfg, d, run = tiny_study("vanilla")
    state = train.build_run(cfg, run, 10, 1, CPU)
    ce_mean, top_mean, _ = train.train_epoch(cfg, state, subset(cfg, d, run), 0.0, 0.0)
    assert ce_mean > 0 and top_mean == 0.0


# ------------------------------------------------------------------------------------------ the run's loop
def test_a_run_logs_each_epoch_and_final_json_holds_its_last_line(tmp_path):
    cfg, d, run = tiny_study()
    result = train.run_one(cfg, d, run, tmp_path, CPU, META)
    folder = tmp_path / "runs" / run["name"]
    log = lines(folder / "log.jsonl")
    assert result == dict(status="finished", test_acc=log[-1]["test_acc"])
    assert [l["epoch"] for l in log] == [1, 2, 3] and [l["epoch"] for l in log if "test_acc" in l] == [1, 3]
    assert [l["lam"] for l in log] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])     # sliding: λmax · e/E
    final = json.loads((folder / "final.json").read_text())
    assert final["test_acc"] == log[-1]["test_acc"] and final["val_acc"] == log[-1]["val_acc"]
    assert final["run"] == run and {k: final[k] for k in META} == META
    assert [(s["first_epoch"], s["last_epoch"]) for s in final["segments"]] == [(1, 3)]
    assert json.loads((folder / "config.json").read_text())["run"] == run
    assert train.run_one(cfg, d, run, tmp_path, CPU, META) == dict(status="done")  # finished: never trained again


def test_a_resumed_run_logs_the_numbers_of_an_uninterrupted_one(tmp_path, monkeypatch):
    cfg, d, run = tiny_study()
    assert train.run_one(cfg, d, run, tmp_path / "a", CPU, META)["status"] == "finished"
    real, calls = train.evaluate, []

    def killed(*args, **kwargs):  # dies in epoch 3, past the epoch-2 checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(train, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        train.run_one(cfg, d, run, tmp_path / "b", CPU, META)
    monkeypatch.undo()
    a, b = tmp_path / "a" / "runs" / run["name"], tmp_path / "b" / "runs" / run["name"]
    assert len(lines(b / "log.jsonl")) == 2 and not (b / "final.json").exists()
    assert train.run_one(cfg, d, run, tmp_path / "b", CPU, META)["status"] == "finished"
    assert (a / "log.jsonl").read_bytes() == (b / "log.jsonl").read_bytes()      # bit for bit
    first, second = (json.loads((f / "final.json").read_text()) for f in (a, b))
    assert first["schedule_state"] == second["schedule_state"] and first["test"] == second["test"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in second["segments"]] == [(1, 2), (3, 3)]


def test_a_non_finite_loss_stops_the_run_with_diverged_json(tmp_path):
    cfg, d, run = tiny_study("hofer", HOFER_BETAS=[0.0], LAMBDAS=[1e30])
    result = train.run_one(cfg, d, run, tmp_path, CPU, META)
    folder = tmp_path / "runs" / run["name"]
    diverged = json.loads((folder / "diverged.json").read_text())
    assert result == dict(status="diverged", message=diverged["message"]) and diverged["commit"] == META["commit"]
    assert f"{run['name']}: non-finite loss in epoch 1" in diverged["message"]
    assert "last good checkpoint: none (diverged before the first checkpoint)" in diverged["message"]
    assert not (folder / "final.json").exists()


def test_a_failure_is_recorded_in_failed_json_and_the_next_finish_removes_it(tmp_path, monkeypatch):
    cfg, d, run = tiny_study("vanilla")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("\x1b[31mno evaluation\x1b[0m")
    monkeypatch.setattr(train, "evaluate", broken)
    result = train.run_one(cfg, d, run, tmp_path, CPU, META)
    failed = json.loads((tmp_path / "runs" / run["name"] / "failed.json").read_text())
    assert result == dict(status="failed", message="ZeroDivisionError: no evaluation") == \
        dict(status="failed", message=failed["message"])                         # without colour codes
    assert "in train_run" in failed["traceback"] and "\x1b" not in failed["traceback"]
    monkeypatch.undo()
    assert train.run_one(cfg, d, run, tmp_path, CPU, META)["status"] == "finished"
    assert not (tmp_path / "runs" / run["name"] / "failed.json").exists()


def test_a_locked_run_is_skipped_as_busy(tmp_path):
    cfg, d, run = tiny_study()
    folder = tmp_path / "runs" / run["name"]
    folder.mkdir(parents=True)
    with runs.locked(folder / ".lock", wait=False):                               # another process trains it
        assert train.run_one(cfg, d, run, tmp_path, CPU, META) == dict(status="busy")
    assert not (folder / "log.jsonl").exists()


# ------------------------------------------------------------------------------------------ what an epoch measures
def test_duplicate_edges_count_the_copies_of_an_image_in_each_group():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 6                                                # 10 images per class
    sub = data.TrainSubset.build(torch.zeros(60, 1, 4, 4, dtype=torch.uint8), y, 6, "cpu")
    G, n = 5, 7
    batches = data.group_batches(sub.y, sub.members, sub.counts, G, n, g)   # (B, G·n)
    by_loops = [(n - len(set(group))) / (n - 1) for b in batches.tolist() for group in
                (b[i * n:(i + 1) * n] for i in range(G))]
    assert train.duplicate_edges(batches, G, n).item() == pytest.approx(sum(by_loops) / len(by_loops), rel=1e-6)


@pytest.mark.parametrize("per_class, expected", [(10, 7.9), (25, 4.0), (50, 2.2)])
def test_duplicate_edges_at_the_training_sizes_of_the_size_curve(per_class, expected):
    """An anchor and 15 draws with replacement from m same-class images hold 1 + (m − 1)(1 − (1 − 1/m)^15) distinct
    images on average, so about 7.9, 4.0 and 2.2 of the 15 tree edges join copies at 100, 250 and 500 images."""
    m, n = per_class, 16
    formula = n - (1 + (m - 1) * (1 - (1 - 1 / m) ** (n - 1)))
    assert formula == pytest.approx(expected, abs=0.05)
    assert stats.expected_duplicate_edges(m, n) * (n - 1) == pytest.approx(formula)  # what the size curve shows
    y = torch.arange(10 * m) % 10
    sub = data.TrainSubset.build(torch.zeros(10 * m, 1, 4, 4, dtype=torch.uint8), y, 10, "cpu")
    g = torch.Generator().manual_seed(1)
    fractions = [train.duplicate_edges(data.group_batches(sub.y, sub.members, sub.counts, 8, n, g), 8, n).item()
                 for _ in range(200)]
    assert sum(fractions) / len(fractions) * (n - 1) == pytest.approx(formula, abs=0.1)
