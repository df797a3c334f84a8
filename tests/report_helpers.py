"""Run folders written by hand, as experiment.py writes them (no training), for the tests of the report: a run, a
study.json, a change to a finished run's record, and the verdicts of a markdown table."""
import json
from pathlib import Path

from common import runs

METRICS = dict(nc1=0.1, etf_distance_means=0.2, etf_distance_classifiers=0.3, nc3_self_duality=0.04,
               nc4_ncc_mismatch=0.0, within_class_variation=1.0, between_class_variation=10.0)


def fake_run(out: Path, regularizer: str, beta: float, split: int, test_acc: float | None) -> None:
    """A run folder as experiment.py writes it; test_acc None = still running (no final.json)."""
    run = dict(regularizer=regularizer, beta=beta, lr=0.1, split=split)
    folder = out / "runs" / runs.run_name(run, {})                 # the name experiment.py gives it
    folder.mkdir(parents=True)
    cfg = dict(run=run, seed=runs.run_seed(0, split), data_source="test", config=dict(DATASET="MNIST", TRAIN_SIZE=250))
    (folder / "config.json").write_text(json.dumps(cfg))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc or 0.5, train=METRICS, test=METRICS,
                death_mean=[0.5] * 10, death_max=[1.0] * 10)
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    if test_acc is not None:
        (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1,
                                                           train=METRICS, test=METRICS, commit="abc")))


def study(out: Path, pair_with=(), **script_defaults) -> None:
    """OUT_DIR/study.json as experiment.main writes it: the entry script's defaults and the folders paired with."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(dict(script_defaults=script_defaults, pair_with=list(pair_with))))


def labelled_run(out: Path, name: str, regularizer: str, split: int, test_acc: float, seed: int | None = None,
                 val_acc=None, **settings) -> Path:
    """A finished run as experiment.py now writes it (run-level λ, config with every run-defining setting), in the
    folder its settings name (`runs.run_name`; `name` is what a reader of the test calls it). Its seed is the
    split's under SEED (`runs.run_seed`): SEED 0 unless a seed of another SEED is given."""
    seed = runs.run_seed(settings.get("SEED", 0), split) if seed is None else seed
    if seed >= 1000 and "SEED" not in settings:
        settings["SEED"] = seed // 1000
    run = dict(regularizer=regularizer, split=split, lr=0.1, beta=settings.pop("beta", None),
               lam=settings.pop("lam", None))
    config = {**dict(DATASET="MNIST", TRAIN_SIZE=250, METRIC="l1", WEIGHT_DECAY=1e-3, NESTEROV=False), **settings}
    folder = out / "runs" / runs.run_name(run, config)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(run=run, config=config, seed=seed, data_source="test")))
    line = dict(epoch=1, train_acc=1.0, test_acc=test_acc, train=METRICS, test=METRICS, death_mean=[0.5] * 10,
                death_max=[1.0] * 10, **({} if val_acc is None else dict(val_acc=val_acc)))
    (folder / "log.jsonl").write_text(json.dumps(line) + "\n")
    (folder / "final.json").write_text(json.dumps(dict(test_acc=test_acc, train_acc=1.0, tpt_epoch=1, train=METRICS,
                                                       test=METRICS, commit="abc")))
    return folder


def patch_final(folder: Path, **changes) -> None:
    """Change a finished run's final.json (and its last log line's metrics, where given)."""
    final = json.loads((folder / "final.json").read_text())
    final.update(changes)
    (folder / "final.json").write_text(json.dumps(final))
    if "train" in changes:
        line = json.loads((folder / "log.jsonl").read_text())
        line.update(train=changes["train"])
        (folder / "log.jsonl").write_text(json.dumps(line) + "\n")


def verdicts(text: str, column: int = -2) -> dict:
    """{first cell: verdict} of the table rows of a markdown text (the verdict in `column`)."""
    return {l.split(" | ")[0][2:]: l.removesuffix(" |").split(" | ")[column] for l in text.splitlines()
            if l.startswith("| ")}
