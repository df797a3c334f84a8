"""evaluation.py: what a run measures at an epoch (checked against direct counts on generated images), when it does,
and that an undefined collapse metric is logged, never fatal."""
import json

import pytest
import torch

import data
import report
from models import SimpleCNN_MNIST, make_model
from regularizers import vr0_death_times
from tests.test_train import CPU, _one_thread, tiny_study  # noqa: F401 - the fixture
from training.evaluation import eval_epochs, evaluate, read_once


def measured() -> tuple[torch.nn.Module, data.TrainSubset, dict]:
    """(model, training subset, held-out sets) of the generated study of `tests.test_train`, the model seeded."""
    cfg, d, run = tiny_study()
    train_set, held, _ = data.device_subset(d, cfg["DATASET"], cfg["TRAIN_SIZE"], run["split"], cfg["SEED"], CPU)
    torch.manual_seed(0)
    return make_model("SimpleCNN_MNIST", 10, 1), train_set, held


def accuracy(model, x, y) -> float:
    """The fraction of `x` the model classifies as `y`, in one forward pass (in eval mode, as `evaluate`)."""
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def test_the_accuracies_are_those_of_one_pass_over_each_set_in_batches():
    model, train_set, held = measured()
    out = evaluate(model, train_set, held, "l1", 10, with_test=True, batch=16)  # batches smaller than every set
    assert list(out) == ["train_acc", "train", "death_mean", "death_max", "test_acc", "test", "val_acc"]  # log order
    assert out["train_acc"] == pytest.approx(accuracy(model, train_set.x, train_set.y), abs=1e-7)
    assert out["test_acc"] == accuracy(model, held["x_test"], held["y_test"])
    assert out["val_acc"] == accuracy(model, held["x_val"], held["y_val"])
    assert len(held["y_test"]) == 60 and out["test_acc"] * 60 == round(out["test_acc"] * 60)  # a count over 60
    assert {"nc1", "within_class_variation"} <= set(out["train"]) and set(out["train"]) == set(out["test"])


def test_without_the_test_sets_only_the_training_accuracy_is_measured():
    model, train_set, held = measured()
    assert list(evaluate(model, train_set, held, "l1", 10, with_test=False, batch=16)) == ["train_acc"]


def test_evaluation_leaves_the_model_and_the_random_state_as_it_found_them():
    model, train_set, held = measured()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    for training in (True, False):
        model.train(training)
        evaluate(model, train_set, held, "l1", 10, with_test=True, batch=16)
        assert model.training is training
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_death_times_are_each_class_mean_and_largest_and_none_for_a_class_of_one_image():
    y = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2])                                       # class 2: one image
    x = torch.randint(0, 255, (8, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    train_set = data.TrainSubset.build(x, y, 3, "cpu")
    torch.manual_seed(0)
    model = SimpleCNN_MNIST(num_classes=3)
    held = dict(x_test=train_set.x, y_test=y, x_val=train_set.x[:0], y_val=y[:0])
    out = evaluate(model, train_set, held, "l2", 3, with_test=True, batch=3)
    model.eval()
    with torch.no_grad():
        deaths = [vr0_death_times(model.latent(train_set.x)[y == c], "l2") for c in (0, 1)]
    assert out["death_mean"][:2] == pytest.approx([d.mean().item() for d in deaths], rel=1e-5)
    assert out["death_max"][:2] == pytest.approx([d.max().item() for d in deaths], rel=1e-5)
    assert out["death_mean"][2] is None and out["death_max"][2] is None and "val_acc" not in out  # no validation set


def test_read_once_gives_floats_lists_and_counts_as_item_would():
    values = dict(acc=torch.tensor(0.7), spread=torch.tensor([0.1, 2.5]), test_correct=torch.tensor(41))
    host = read_once(values)
    assert host == dict(acc=torch.tensor(0.7).item(), spread=torch.tensor([0.1, 2.5]).tolist(), test_correct=41)
    assert isinstance(host["test_correct"], int)


def test_eval_epochs_are_log_spaced_and_include_the_last():
    e = eval_epochs(310, 40)
    assert e[0] == 1 and e[-1] == 310 and 30 <= len(e) <= 41 and e == sorted(set(e))
    assert eval_epochs(5, 40) == [1, 2, 3, 4, 5]


def test_undefined_collapse_metrics_are_logged_not_fatal(tmp_path):
    """Codes collapsed onto one point (class means coincide): NC metrics are undefined, the run goes on."""
    y = torch.arange(40) % 4
    subset = data.TrainSubset.build(torch.randint(0, 255, (40, 1, 28, 28), dtype=torch.uint8), y, 4, "cpu")
    model = SimpleCNN_MNIST(num_classes=4)

    class Collapsed(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 128)

    model.latent = Collapsed()
    held = dict(x_test=subset.x, y_test=y, x_val=subset.x[:0], y_val=y[:0])
    out = evaluate(model, subset, held, "l1", 4, with_test=True, batch=16)
    for where in ("train", "test"):  # only what needs the class means to span C − 1 dimensions is left empty
        assert out[where]["nc1"] is None and "span fewer" in out[where]["undefined"]
        assert out[where]["within_class_variation"] == 0.0 and out[where]["between_class_spectrum"] is None
    assert out["death_max"] == [0.0] * 4
    folder = tmp_path / "runs" / "vanilla_lr0.1_split00"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(run=dict(regularizer="vanilla", beta=0.0, lr=0.1, split=0),
                                                        config=dict(DATASET="MNIST", TRAIN_SIZE=40), seed=0,
                                                        data_source="test")))
    (folder / "log.jsonl").write_text(json.dumps(dict(epoch=1, **out)) + "\n")
    assert "figures: accuracy.png" in report.write_report(tmp_path)
