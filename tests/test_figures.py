"""figures.py: what the figures of a folder show (through `drawn`, a recording of figures._save)."""
import json

import numpy as np
import pytest

import report
from reporting import figures, groups, records
from reporting.labels import LABELS
from tests.report_helpers import METRICS, labelled_run, patch_final


def per_split_drawn(drawn: dict) -> tuple[list, list]:
    """(the grey lines, each joining the runs of one split and seed; the black marks of the means and their CI's
    ends, each (x, y)) of the per_split.png last written."""
    grey = [(x, y) for label, x, y in drawn["per_split.png"] if label.startswith("_child")]
    return grey, [(x, y) for label, x, y in drawn["per_split.png"] if label == "_nolegend_"]


def test_the_per_split_figure_is_written_for_a_folder_and_for_a_pairing_and_joins_the_runs_of_one_split(tmp_path,
                                                                                                         drawn):
    main, seed1 = tmp_path / "main", tmp_path / "seed1"
    for split in range(3):
        labelled_run(main, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.92 + split / 100)
        labelled_run(main, f"sliding_beta1.1_lr0.1_split{split:02d}", "sliding", split, 0.94, beta=1.1, lam=0.1)
        labelled_run(seed1, f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.93, seed=1000 + split)
    half = 4.303 * 1.0 / np.sqrt(3)                       # vanilla 92, 93, 94: std 1, t(0.975, 2) = 4.303
    assert "per_split.png" in report.write_report(main)
    grey, black = per_split_drawn(drawn)
    assert grey == [([0, 1], pytest.approx([92 + split, 94])) for split in range(3)]   # vanilla, then sliding
    assert black == [([0.25], [93.0]), ([0.25], pytest.approx([93 - half], abs=1e-3)),  # vanilla: mean and CI
                     ([0.25], pytest.approx([93 + half], abs=1e-3)), ([1.25], [94.0])]  # sliding: no spread, no CI
    assert "per_split.png" in report.write_report(seed1, [main])
    grey, black = per_split_drawn(drawn)                  # main's columns first; another seed: its own points
    assert grey == [([0, 1], pytest.approx([92 + split, 94])) for split in range(3)] + [([2], [93.0])] * 3
    assert [x for x, _ in black] == [[0.25]] * 3 + [[1.25], [2.25]]
    shown = {**groups.grouped(records.load_runs(main, prefix="main")), **groups.grouped(records.load_runs(seed1))}
    labels, lines, means = figures.per_split_points(shown)
    assert labels == ["main: vanilla", "main: sliding β0=1.1", "vanilla"]
    assert lines[(1, 1)] == [(0, pytest.approx(93.0)), (1, pytest.approx(94.0))]   # split 1, SEED 0: main's runs
    assert lines[(1, 1001)] == [(2, pytest.approx(93.0))]                         # another seed: its own line
    x, m, lo, hi = means[0]
    assert (x, m) == (0, pytest.approx(93.0)) and (lo, hi) == pytest.approx((93 - half, 93 + half), abs=1e-3)


EPOCHS = (1, 2, 4, 8)  # the evaluated epochs of every run below


def _runs_with_curves(out):
    """vanilla and sliding on splits 0–2, each log evaluated at EPOCHS with values set by (group, split, epoch): test
    and train accuracy, NC1 and Tr Σ_W (train and test), the ETF distance of the means and per-class death times;
    returns {(group, split): [the run's log lines]}."""
    logs = {}
    for g, reg in enumerate(("vanilla", "sliding")):
        for split in range(3):
            lines = []
            for k, e in enumerate(EPOCHS):
                v = (g + 1) * (split + 1) * (k + 1)                                      # distinct, positive
                metrics = lambda s: dict(METRICS, nc1=0.1 * v * s, within_class_variation=v * s,   # noqa: E731
                                         etf_distance_means=0.01 * v * s)
                lines.append(dict(epoch=e, train_acc=min(1.0, 0.5 + 0.2 * k + 0.1 * split), test_acc=0.5 + 0.01 * v,
                                  train=metrics(1), test=metrics(2), death_mean=[0.1 * v, 0.3 * v, None],
                                  death_max=[v, 3.0 * v]))
            run = labelled_run(out, "", reg, split, lines[-1]["test_acc"], **({} if g == 0 else dict(beta=1.1, lam=0.1)))
            tpt = next((l["epoch"] for l in lines if l["train_acc"] >= 1.0), None)
            patch_final(run, train_acc=lines[-1]["train_acc"], tpt_epoch=tpt, train=lines[-1]["train"],
                        test=lines[-1]["test"])
            (run / "log.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))   # final.json's, line by line
            logs[reg if g == 0 else "sliding β0=1.1", split] = lines
    return logs


def _mean_band(values, log=False):
    """The mean over runs (rows) epoch by epoch and its band, written out: mean ± std (ddof 1); on a log axis the
    geometric mean ×/÷ the geometric std."""
    y = np.log(values) if log else np.asarray(values, dtype=float)
    m, s = y.mean(0), y.std(0, ddof=1)
    return (np.exp(m), np.exp(m - s), np.exp(m + s)) if log else (m, m - s, m + s)


def _check_panel(drawn, figure, title, logs, get, log=False, where=None, upper=None):
    """The panel `title` of `figure` draws, for each group, the mean of get(line) over its runs at every evaluated
    epoch, labelled by the group (and `where`: train or test, as two line styles of one panel), and its band (clipped
    at `upper`); bands are drawn group by group, train before test."""
    lines = {label: (x, y) for label, x, y in drawn[f"{figure}: {title}"]}
    bands = drawn[f"{figure}: {title}: bands"]
    for i, group in enumerate(("vanilla", "sliding β0=1.1")):
        values = np.array([[get(l) for l in logs[group, split]] for split in range(3)])
        m, lo, hi = _mean_band(values, log)
        label = group + (f" ({where})" if where else "")
        assert lines[label] == (list(EPOCHS), pytest.approx(m))
        band = bands[2 * i + ("train", "test").index(where) if where else i]
        assert band[0] == pytest.approx(list(EPOCHS)) and band[1] == pytest.approx(lo)
        assert band[2] == pytest.approx(hi if upper is None else np.minimum(hi, upper))
    return lines


def test_the_accuracy_figure_draws_each_group_s_mean_band_and_its_first_epoch_at_100_percent(tmp_path, drawn):
    logs = _runs_with_curves(tmp_path)
    report.write_report(tmp_path)
    for title, key in (("test accuracy (%)", "test_acc"), ("train accuracy (%)", "train_acc")):
        lines = _check_panel(drawn, "accuracy.png", title, logs, lambda l, key=key: 100 * l[key], upper=100)
    markers = [x for label, x, y in drawn["accuracy.png: train accuracy (%)"] if label.startswith("_") and len(x) == 2]
    # train accuracy first reaches 100 % at epoch 8, 4, 4 (splits 0, 1, 2) in both groups: mean 16/3, one line each
    assert markers == [pytest.approx([16 / 3, 16 / 3])] * 2
    assert {label for label in lines if not label.startswith("_")} == {"vanilla", "sliding β0=1.1"}


def test_the_collapse_figure_draws_train_and_test_of_each_metric_on_its_scale(tmp_path, drawn):
    logs = _runs_with_curves(tmp_path)
    report.write_report(tmp_path)
    for key, log in (("nc1", True), ("within_class_variation", True), ("etf_distance_means", False)):
        for where in ("train", "test"):
            _check_panel(drawn, "collapse.png", LABELS[key]["panel"], logs, lambda l, k=key, w=where: l[w][k], log=log,
                         where=where)


def test_the_deaths_figure_draws_the_mean_over_classes_of_each_class_s_death_times(tmp_path, drawn):
    logs = _runs_with_curves(tmp_path)
    report.write_report(tmp_path)
    _check_panel(drawn, "deaths.png", f"{LABELS['death_mean']['panel']} (training subset)", logs,
                 lambda l: np.mean([d for d in l["death_mean"] if d is not None]), log=True)   # a class without: out
    _check_panel(drawn, "deaths.png", LABELS["death_max"]["panel"], logs, lambda l: np.mean(l["death_max"]), log=True)


def test_a_folder_with_collapse_contrasts_draws_their_quantities_median_and_quartiles_train_and_test(tmp_path, drawn):
    logs = _runs_with_curves(tmp_path)
    report.write_report(tmp_path)
    assert "collapse_contrasts.png" not in drawn                                  # no contrasts.json: no such figure
    (tmp_path / "contrasts.json").write_text(json.dumps(dict(families=[
        dict(name="accuracy", contrasts=[dict(name="acc", a="sliding", b="vanilla")]),
        dict(name="collapse", contrasts=[
            dict(name="ratio", a="sliding", b="vanilla", metric="train:scale_free_variation", scale="log10"),
            dict(name="etf", a="sliding", b="vanilla", metric="test:etf_distance_means")]),
        dict(name="NC3", exploratory=True, contrasts=[
            dict(name="nc3", a="sliding", b="vanilla", metric="train:nc3_self_duality")])])))
    report.write_report(tmp_path)
    for key, title, get in (
            ("scale_free_variation", f"{LABELS['scale_free_variation']['panel']} (log scale)",
             lambda l, w: l[w]["within_class_variation"] / l[w]["between_class_variation"]),
            ("etf_distance_means", LABELS["etf_distance_means"]["panel"], lambda l, w: l[w]["etf_distance_means"])):
        lines = {label: (x, y) for label, x, y in drawn[f"collapse_contrasts.png: {title}"]}
        bands = drawn[f"collapse_contrasts.png: {title}: bands"]
        for i, group in enumerate(("vanilla", "sliding β0=1.1")):
            for k, where in enumerate(("train", "test")):                         # both sets, whichever one is scored
                values = np.array([[get(l, where) for l in logs[group, split]] for split in range(3)])
                assert lines[f"{group} ({where})"] == (list(EPOCHS), pytest.approx(np.median(values, 0)))
                x, lo, hi = bands[2 * i + k]
                assert lo == pytest.approx(np.percentile(values, 25, 0)) and hi == pytest.approx(
                    np.percentile(values, 75, 0))
        markers = [x for label, x, y in drawn[f"collapse_contrasts.png: {title}"] if label.startswith("_")
                   and len(x) == 2]
        assert markers == [pytest.approx([4, 4])] * 2                 # the median of epochs 8, 4, 4 in both groups
    assert "NC3" not in str([k for k in drawn if k.startswith("collapse_contrasts.png")])   # exploratory: not drawn
