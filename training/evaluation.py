"""What a run measures at an epoch: accuracies, collapse metrics and death times, and at which epochs.

    eval_epochs(epochs, count)   the log-spaced epochs with test metrics (as Papyan et al. sample training)
    evaluate(model, train, held, ...)   one epoch's measurements, in one host read (`read_once`)

Called by the training loop (`train.train_run`) after each epoch. It draws no random number and leaves the model as it
found it, so how often a run evaluates never changes what it trains.
"""
import numpy as np
import torch

import data
from collapse_metrics import CollapseAccumulator, class_means, collapse_metrics
from regularizers import vr0_death_times


def eval_epochs(epochs: int, count: int) -> list[int]:
    """About `count` log-spaced epochs in 1..epochs, plus the last (as Papyan et al. sample training)."""
    e = np.unique(np.round(np.logspace(0, np.log10(epochs), count)).astype(int))
    return sorted(set(e.tolist()) | {epochs})


def _or_error(metrics) -> dict:
    """The collapse metrics, or the reason they are undefined (e.g. class means collapsed onto a
    lower-dimensional set): logged as {"error": ...} so that one undefined evaluation never stops a run."""
    try:
        return metrics()
    except ValueError as e:
        return {"error": str(e)}


@torch.no_grad()
def evaluate(model, train: data.TrainSubset, held: dict, metric: str, num_classes: int,
             with_test: bool, batch: int) -> dict:
    """Train accuracy, collapse metrics on the training subset and death times per class; with
    `with_test`, test accuracy and test collapse metrics from the same forward pass (NCC with the
    training class means), and the accuracy on the validation set (`held` from `data.device_subset`), the one
    to choose hyperparameters by. Counts stay on the device and are read once at the end (the
    collapse metrics read theirs once each)."""
    x_test, y_test = held["x_test"], held["y_test"]
    was_training = model.training
    model.eval()
    W, b = model.classifier.weight, model.classifier.bias
    z = torch.cat([model.latent(train.x[i:i + batch]) for i in range(0, train.y.numel(), batch)])  # (N, p)
    dev = {"train_acc": (model.classifier(z).argmax(1) == train.y).float().mean()}  # device values, read once
    out = {}
    if with_test:
        out["train"] = _or_error(lambda: collapse_metrics(z, train.y, W, b, num_classes))
        has_deaths = [n > 1 for n in train.class_sizes]  # a class of one image has no death time
        deaths = [vr0_death_times(z[train.y == c], metric) for c in range(num_classes) if has_deaths[c]]
        if deaths:
            dev["death_mean"] = torch.stack([d.mean() for d in deaths])
            dev["death_max"] = torch.stack([d.max() for d in deaths])
        acc = _or_error(lambda: CollapseAccumulator(num_classes, W, b, class_means(z, train.y, num_classes)))
        dev["test_correct"] = torch.zeros((), dtype=torch.long, device=y_test.device)
        for i in range(0, y_test.numel(), batch):
            zt = model.latent(x_test[i:i + batch])                                  # (B, p)
            dev["test_correct"] += (model.classifier(zt).argmax(1) == y_test[i:i + batch]).sum()
            if isinstance(acc, CollapseAccumulator):
                acc.update(zt, y_test[i:i + batch])
        out["test"] = _or_error(acc.compute) if isinstance(acc, CollapseAccumulator) else acc
        x_val, y_val = held["x_val"], held["y_val"]
        if y_val.numel():
            dev["val_correct"] = sum((model(x_val[i:i + batch]).argmax(1) == y_val[i:i + batch]).sum()
                                     for i in range(0, y_val.numel(), batch))
    host = read_once(dev)
    model.train(was_training)
    result = dict(train_acc=host["train_acc"])  # the log's key order: train_acc, train, deaths, test, val
    if with_test:
        mean, top = iter(host.get("death_mean", [])), iter(host.get("death_max", []))
        result.update(train=out["train"], death_mean=[next(mean) if h else None for h in has_deaths],
                      death_max=[next(top) if h else None for h in has_deaths],
                      test_acc=host["test_correct"] / y_test.numel(), test=out["test"])
        if "val_correct" in host:
            result["val_acc"] = host["val_correct"] / y_val.numel()
    return result


def read_once(values: dict) -> dict:
    """Device scalars and vectors → python floats and lists of floats, in one host read. float64 holds every
    float32 value and every count exactly, so the numbers are those of a `.item()` each."""
    flat = torch.cat([v.detach().double().reshape(-1) for v in values.values()]).tolist()
    out, i = {}, 0
    for k, v in values.items():
        out[k] = flat[i] if v.dim() == 0 else flat[i:i + v.numel()]
        out[k] = int(out[k]) if k.endswith("_correct") else out[k]
        i += v.numel()
    return out
