"""runs.py: run names, the settings that define a run, and how two runs' settings differ."""
from runs import LEGACY_LAMBDA, plan_runs, run_differences, run_settings, setting_differences

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
