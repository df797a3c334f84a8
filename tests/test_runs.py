"""runs.py: run names, the settings that define a run, how two runs' settings differ, and a run folder's files."""
import json
from pathlib import Path

import pytest

from common.runs import (LEGACY_LAMBDA, STUDY_FILE, atomic_write, folder_status, is_done, plan_runs, read_log,
                         read_study, run_differences, run_name, run_settings, setting_differences, status)

REPO = Path(__file__).resolve().parents[1]

STUDY = dict(SPLITS=[0], LRS=[0.1], HOFER_BETAS=[4.0], SLIDING_BETA0S=[1.1], LAMBDAS=[0.1])


def names(**cfg):
    return [r["name"] for r in plan_runs({**STUDY, **cfg})]


def test_names_of_the_original_regularisers_are_those_of_the_committed_folders():
    assert names(REGULARIZERS=["vanilla", "hofer", "sliding"]) == [
        "vanilla_lr0.1_split00", "hofer_beta4_lr0.1_split00", "sliding_beta1.1_lr0.1_split00"]
    assert LEGACY_LAMBDA == 0.1


def test_each_regulariser_is_run_at_every_value_of_the_lists_it_uses_and_only_those():
    got = names(REGULARIZERS=["vanilla", "ramp", "center", "sliding", "sliding_fixed_beta"], LAMBDAS=[0.03, 0.1],
                SLIDING_BETA0S=[0.5, 2.0], HOFER_BETAS=[1.0, 2.0, 3.0])
    assert got == ["vanilla_lr0.1_split00",
                   "ramp_lam0.03_lr0.1_split00", "ramp_lr0.1_split00",
                   "center_lam0.03_lr0.1_split00", "center_lr0.1_split00",
                   "sliding_beta0.5_lam0.03_lr0.1_split00", "sliding_beta2_lam0.03_lr0.1_split00",
                   "sliding_beta0.5_lr0.1_split00", "sliding_beta2_lr0.1_split00",
                   "sliding_fixed_beta_beta0.5_lam0.03_lr0.1_split00", "sliding_fixed_beta_beta2_lam0.03_lr0.1_split00",
                   "sliding_fixed_beta_beta0.5_lr0.1_split00", "sliding_fixed_beta_beta2_lr0.1_split00"]
    assert len(set(got)) == len(got)
    ramp = plan_runs({**STUDY, "REGULARIZERS": ["ramp"], "LAMBDAS": [0.3]})[0]
    assert ramp["lam"] == 0.3 and ramp["beta"] is None


def test_settings_of_a_run_written_before_lambda_was_run_level_come_from_its_config():
    old_hofer = dict(regularizer="hofer", split=0, lr=0.1, beta=4.0)             # no "lam": LAMBDA in the config
    assert run_settings(old_hofer, dict(LAMBDA=0.1)) == dict(lr=0.1, lam=0.1, beta=4.0, beta0=None)
    old_vanilla = dict(regularizer="vanilla", split=0, lr=0.1, beta=1.1)         # held an unused β
    assert run_settings(old_vanilla, dict(LAMBDA=0.1)) == dict(lr=0.1, lam=None, beta=None, beta0=None)
    new_sliding = dict(regularizer="sliding", split=0, lr=0.1, beta=1.1, lam=0.3)
    assert run_settings(new_sliding, {}) == dict(lr=0.1, lam=0.3, beta=None, beta0=1.1)


def test_a_missing_key_counts_as_its_implied_default_and_a_real_difference_is_listed():
    old = dict(EPOCHS=310, WEIGHT_DECAY=1e-3, LAMBDA=0.1)                      # before NESTEROV and VAL_SIZE
    assert setting_differences(old, dict(EPOCHS=310, WEIGHT_DECAY=1e-3, NESTEROV=False, VAL_SIZE=10_000)) == {}
    assert setting_differences(old, dict(EPOCHS=310, WEIGHT_DECAY=1e-2, NESTEROV=True)) == {
        "NESTEROV": (False, True), "WEIGHT_DECAY": (1e-3, 1e-2)}


def record(reg, beta=None, lam=None, **config):
    return dict(run=dict(regularizer=reg, split=0, lr=0.1, beta=beta, lam=lam),
                config={"DATASET": "MNIST", "EPOCHS": 310, "METRIC": "l1", **config})


def test_settings_a_run_does_not_use_are_no_difference():
    vanilla_l1 = record("vanilla")
    hofer_l2 = record("hofer", beta=0.5, lam=0.1, METRIC="l2")
    assert run_differences(hofer_l2, vanilla_l1) == {}                          # vanilla has no metric
    assert run_differences(hofer_l2, record("hofer", beta=0.5, lam=0.1)) == {"METRIC": ("l2", "l1")}
    assert run_differences(record("ramp", lam=0.03), record("center", lam=0.1)) == {"lam": (0.03, 0.1)}
    # hofer's β and sliding's β0 are different parameters, and a legacy config key is compared through run_settings
    assert run_differences(record("hofer", beta=1.1, lam=0.1), record("sliding", beta=1.1, lam=0.1, LAMBDA=0.1)) == {}
    assert run_differences(record("vanilla", NESTEROV=True), record("vanilla")) == {"NESTEROV": (True, False)}


def test_runs_on_other_training_images_differ_in_them_where_both_record_the_digest():
    a, b, old = (dict(record("vanilla"), split_digest=d) for d in ("aa", "bb", None))
    assert run_differences(a, b) == {"training images": ("aa", "bb")}
    assert run_differences(a, dict(a)) == {} and run_differences(a, old) == {}  # older runs recorded no digest


def test_the_uint8_digest_decides_where_both_runs_hold_it_and_the_float_digest_only_where_not():
    a = dict(record("vanilla"), split_digest="f1", split_digest_v2="u1")
    threads = dict(a, split_digest="f2")                       # another thread count: the floats' last bit moved
    assert run_differences(a, threads) == {}
    assert run_differences(a, dict(threads, split_digest_v2="u2")) == {"training images": ("u1", "u2")}
    older = {k: v for k, v in a.items() if k != "split_digest_v2"}   # recorded before v2: the float digest decides
    assert run_differences(older, threads) == {"training images": ("f1", "f2")}


MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb", "t10k-labels-idx1-ubyte": "27ae3e4e09519cfb"}


def test_runs_on_other_data_files_differ_in_them_where_both_record_their_md5():
    a = dict(record("vanilla"), data_files=dict(md5=MD5, verified=True))
    changed = dict(a, data_files=dict(md5=dict(MD5, **{"t10k-labels-idx1-ubyte": "0123456789abcdef"}), verified=False))
    assert run_differences(a, changed) == {"data files": ("t10k-labels-idx1-ubyte 27ae3e4e",
                                                          "t10k-labels-idx1-ubyte 01234567")}
    assert run_differences(a, dict(a, data_files="not recorded")) == {}     # unknown, not different
    assert run_differences(a, {k: v for k, v in a.items() if k != "data_files"}) == {}


def test_run_name_is_the_name_plan_runs_gives():
    for r in plan_runs({**STUDY, "REGULARIZERS": ["vanilla", "hofer", "sliding", "ramp"], "LAMBDAS": [0.03, 0.1],
                        "ETF_CLASSIFIER": True}):
        assert run_name(r, {"ETF_CLASSIFIER": True}) == r["name"]
    assert run_name(dict(regularizer="vanilla", split=3, lr=0.1, beta=1.1), {}) == "vanilla_lr0.1_split03"  # unused β


def test_plan_reproduces_every_committed_run_name():
    """Every committed run's name is the name `plan_runs` gives it from its folder's settings and its own
    (regulariser, λ, β, lr, split): renaming would orphan finished runs and their checkpoints."""
    folders = [f for f in sorted((REPO / "results").glob("*/runs")) if any(f.iterdir())]
    checked = 0
    for runs_dir in folders:
        for cfg_path in sorted(runs_dir.glob("*/config.json")):
            rec = json.loads(cfg_path.read_text())
            run, config = rec["run"], rec["config"]
            s = run_settings(run, config)
            cfg = dict(config, SPLITS=[run["split"]], REGULARIZERS=[run["regularizer"]], LRS=[run["lr"]],
                       LAMBDAS=[s["lam"] if s["lam"] is not None else LEGACY_LAMBDA],
                       HOFER_BETAS=[s["beta"] if s["beta"] is not None else 1.0],
                       SLIDING_BETA0S=[s["beta0"] if s["beta0"] is not None else 1.0])
            names = [r["name"] for r in plan_runs(cfg)]
            assert names == [cfg_path.parent.name], cfg_path
            checked += 1
    assert checked == len(list((REPO / "results").glob("*/runs/*/config.json"))) > 100  # every committed run


def test_status_reads_the_outcome_files(tmp_path):
    assert folder_status(tmp_path) == "unfinished" and not is_done(tmp_path)
    (tmp_path / "failed.json").write_text("{}")
    assert folder_status(tmp_path) == "failed" and not is_done(tmp_path)    # retried on the next start
    (tmp_path / "diverged.json").write_text("{}")
    assert folder_status(tmp_path) == "diverged" and is_done(tmp_path)
    (tmp_path / "final.json").write_text("{}")
    assert folder_status(tmp_path) == "finished" and is_done(tmp_path)
    assert status({"final": None, "diverged": None, "failed": {"message": "x"}}) == "failed"


def test_read_log_skips_bad_lines_and_a_line_being_written(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n{"epo')
    assert read_log(log) == ([{"epoch": 1}, {"epoch": 3}], [2])
    assert read_log(tmp_path / "missing.jsonl") == ([], [])


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "final.json"
    atomic_write(path, '{"a": 1}')
    atomic_write(tmp_path / "blob.bin", lambda tmp: tmp.write_bytes(b"\x00\x01"))
    assert path.read_text() == '{"a": 1}' and (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"

    def fails(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        atomic_write(path, fails)
    assert path.read_text() == '{"a": 1}'                                       # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "final.json"]  # no temporary file left


def test_study_file_round_trip(tmp_path):
    assert read_study(tmp_path) == {}
    (tmp_path / STUDY_FILE).write_text(json.dumps({"script_defaults": {"LAMBDAS": [0.1]}, "pair_with": []}))
    assert read_study(tmp_path)["script_defaults"] == {"LAMBDAS": [0.1]}
