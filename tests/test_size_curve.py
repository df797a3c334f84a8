"""size_curve.py: the --SUMMARY table and figure of a size curve."""
import json
import re

import numpy as np
import pytest

import report
from reporting import stats as report_stats
from tests.report_helpers import labelled_run


def test_a_size_curve_pairs_the_gaps_within_each_size_and_marks_sizes_not_run_yet(tmp_path, drawn, capsys):
    accs = {100: {"vanilla": [0.80, 0.82, 0.81], "sliding": [0.84, 0.83, 0.85]},
            250: {"vanilla": [0.90, 0.91, 0.92], "sliding": [0.92, 0.92, 0.93]}}
    for size, by_reg in accs.items():
        for reg, values in by_reg.items():
            for split, acc in enumerate(values):
                name = f"{reg}_lr0.1_split{split:02d}" if reg == "vanilla" else f"{reg}_beta1.1_lr0.1_split{split:02d}"
                labelled_run(tmp_path / f"mnist-{size}", name, reg, split, acc, TRAIN_SIZE=size,
                             **({} if reg == "vanilla" else dict(beta=1.1, lam=0.1)),
                             **(dict(WEIGHT_DECAY=1e-2) if (size, reg) == (250, "sliding") else {}))
                log = tmp_path / f"mnist-{size}" / "runs" / name / "log.jsonl"
                line = json.loads(log.read_text())
                log.write_text(json.dumps(dict(line, zero_edges=0.5 if size == 100 else 0.25)) + "\n")
    labelled_run(tmp_path / "mnist-500", "vanilla_lr0.1_split00", "vanilla", 0, 0.95, TRAIN_SIZE=500)
    for split in (1, 3):  # vanilla split 1 diverged, split 3 and sliding split 0 still training: in no column at 500
        labelled_run(tmp_path / "mnist-500", f"vanilla_lr0.1_split{split:02d}", "vanilla", split, 0.5, TRAIN_SIZE=500)
    (tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split01" / "final.json").rename(
        tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split01" / "diverged.json")
    (tmp_path / "mnist-500" / "runs" / "vanilla_lr0.1_split03" / "final.json").unlink()
    labelled_run(tmp_path / "mnist-500", "sliding_beta1.1_lr0.1_split00", "sliding", 0, 0.5, beta=1.1, lam=0.1,
                 TRAIN_SIZE=500)
    (tmp_path / "mnist-500" / "runs" / "sliding_beta1.1_lr0.1_split00" / "final.json").unlink()
    labelled_run(tmp_path / "mnist-1000", "sliding_beta1.1_lr0.1_split00", "sliding", 0, 0.97, beta=1.1, lam=0.1,
                 TRAIN_SIZE=1000, EPOCHS=1, SAMPLES_PER_GROUP=16)
    labelled_run(tmp_path / "mnist-1000", "sliding_beta2_lr0.1_split00", "sliding", 0, 0.5, beta=2, lam=0.1,
                 TRAIN_SIZE=1000)  # another group, just started: "sliding" still names the finished one
    (tmp_path / "mnist-1000" / "runs" / "sliding_beta2_lr0.1_split00" / "final.json").unlink()
    (tmp_path / "mnist-1000" / "runs" / "broken").mkdir()
    (tmp_path / "mnist-1000" / "runs" / "broken" / "config.json").write_text("{")
    log = tmp_path / "mnist-1000" / "runs" / "sliding_beta1.1_lr0.1_split00" / "log.jsonl"  # vanilla not yet at 1000
    log.write_text(json.dumps(dict(json.loads(log.read_text()), zero_edges=0.125)) + "\n")
    never = tmp_path / "mnist-100" / "runs" / "vanilla_lr0.1_split02"  # never fits its training set: log and record
    (never / "log.jsonl").write_text(json.dumps(dict(json.loads((never / "log.jsonl").read_text()), train_acc=0.99))
                                     + "\n")
    (never / "final.json").write_text(json.dumps(dict(json.loads((never / "final.json").read_text()), tpt_epoch=None,
                                                      train_acc=0.99)))
    spec = tmp_path / "curve.json"
    spec.write_text(json.dumps(dict(title="t", size_curve={
        reg: {str(s): f"mnist-{s}: {reg}" for s in (100, 250, 500, 1000, 2000)} for reg in ("vanilla", "sliding")},
        gaps=[["sliding", "vanilla"]])))
    assert report.main([f"--SUMMARY={spec}"]) == 0
    text = (tmp_path / "curve.md").read_text()
    d = 100 * (np.array(accs[100]["sliding"]) - accs[100]["vanilla"])
    lo, hi = report_stats.ci95(3, d.mean(), d.std(ddof=1))
    row = next(l for l in text.splitlines() if l.startswith("| 100 | sliding |"))
    assert f"| {d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] (3 of 3) |" in row and "| 0.500 (3 runs) |" in row
    assert "| 250 | sliding | 3 (0–2) | 92.33 ± 0.58 | +1.33 " in text
    assert "| 100 | vanilla | 3 (0–2) | 81.00 ± 1.00 |  | 1.00 ± 0.00 (2 of 3 runs; the others never) |" in text
    assert "| 500 | sliding | 0 | not yet |" in text and "| 500 | vanilla | 1 (0) | 95.00 |" in text
    assert "- 500, vanilla: split 1 diverged (epoch 1 of ?), split 3 unfinished (epoch 1 of ?)" in text
    assert "- 500, sliding: split 0 unfinished" in text and "- 1000, sliding" not in text
    assert "- mnist-1000: broken unreadable (config.json is not valid JSON" in text
    sampling = (15 - 99 * (1 - (1 - 1 / 100) ** 15)) / 15  # an anchor and 15 draws from 100 images of its class
    assert f"| 1000 | sliding | 1 (0) | 97.00 | – | 1.00 | 0.125 (1 run); sampling {sampling:.3f} |" in text
    assert "| 1000 | vanilla | 0 |" in text
    assert "| 2000 |" not in text and "without a finished run yet: 2000." in text
    differs = "- 250, sliding − vanilla: WEIGHT_DECAY 0.01→0.001"  # a pair that differs in more than the regulariser
    assert differs in text and "- 100, sliding" not in text
    between = "- sliding: EPOCHS (missing)→1 at 1000; SAMPLES_PER_GROUP (missing)→16 at 1000; WEIGHT_DECAY 0.001→0.01 at 250"
    assert between in text  # settings in which one curve's runs differ between sizes
    assert "- 100: commit abc;" in text
    assert "validation accuracy is not shown" in text.lower()
    acc = {label: (x, y) for label, x, y in drawn["curve.png: final test accuracy (%): mean and 95 % CI over splits"]}
    assert acc["vanilla"] == (pytest.approx([s / 1.04 ** 0.5 for s in (100, 250, 500)]),   # dodged on the log axis
                              pytest.approx([81.0, 91.0, 95.0]))
    assert acc["sliding"] == (pytest.approx([s * 1.04 ** 0.5 for s in (100, 250, 1000)]),
                              pytest.approx([84.0, 92 + 1 / 3, 97.0]))
    gap = {label: (x, y) for label, x, y in drawn["curve.png: paired gap (% points): mean and 95 % CI over splits"]}
    assert gap["sliding − vanilla"] == ([100, 250], pytest.approx([d.mean(), 4 / 3]))   # only sizes with pairs
    zero = {label: (x, y) for label, x, y in drawn["curve.png: zero-length tree edges (copies of one image):\n"
                                                   "fraction, mean over epochs and runs"]}
    assert zero["logged"] == ([100, 250, 1000], pytest.approx([0.5, 0.25, 0.125]))   # mnist-500 logged none
    assert zero["sampling alone"] == ([1000], pytest.approx([sampling]))             # only 1000 records its groups
    for bad in (dict(size_curve={"vanilla": ["mnist-100"]}),
                dict(size_curve={"vanilla": {"100": "mnist-100: vanilla"}}, gaps=[["sliding", "vanilla"]])):
        spec.write_text(json.dumps(bad))
        capsys.readouterr()
        assert report.main([f"--SUMMARY={spec}"]) == 2                                 # one message, no traceback
        err = capsys.readouterr().err
        assert err.startswith(f"error: {spec}") and "expected" in err and err.count("\n") == 1 and "Traceback" not in err
    labelled_run(tmp_path / "mnist-100", "sliding_beta2_lr0.1_split00", "sliding", 0, 0.8, beta=2, lam=0.1,
                 TRAIN_SIZE=100)
    (tmp_path / "mnist-2000" / "runs").mkdir(parents=True)
    (tmp_path / "mnist-2000" / "settings.json").write_text(json.dumps(dict(TRAIN_SIZE=4000)))
    (tmp_path / "mnist-4000" / "runs").mkdir(parents=True)
    (tmp_path / "mnist-4000" / "settings.json").write_text("[")
    for size, side, why in (("100", "mnist-100: vanila", "is no regulariser"),          # a typo
                            ("100", "mnist-100: sliding", "matches 2 groups"),          # two groups
                            ("100", "mnist-250: vanilla", "another TRAIN_SIZE .*config.json: 250"),  # another size
                            ("2000", "mnist-2000: vanilla", r"another TRAIN_SIZE \(settings.json: 4000"),  # no run yet
                            ("4000", "mnist-4000: vanilla", "is not a folder's settings"),
                            ("hundred", "mnist-100: vanilla", "expected"), ("100", 100, "expected")):
        spec.write_text(json.dumps(dict(size_curve={"vanilla": {size: side}})))
        capsys.readouterr()
        assert report.main([f"--SUMMARY={spec}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {spec}") and re.search(why, err) and "Traceback" not in err
