"""The entry scripts end to end with tiny settings, through the real code path."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mnist_top
import svhn_top
from training import checkpoints, evaluation, experiment, train

REPO = Path(__file__).resolve().parents[1]
TINY = ["--DATASET=KMNIST", "--TRAIN_SIZE=120", "--EPOCHS=4", "--SPLITS=0", "--GROUPS_PER_BATCH=4",
        "--SAMPLES_PER_GROUP=8", "--EVAL_EPOCHS=3", "--CKPT_EVERY=2", "--PROGRESS=false", "--VAL_SIZE=200",
        "--DEVICE=cpu", "--VERIFY_DATA=False"]  # every end-to-end test pins the device (the same on a CUDA machine);
# generated files are no dataset this project knows the digests of


def constants(module) -> dict:
    return {k: v for k, v in vars(module).items() if k.isupper()}


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


def interrupted(argv, monkeypatch, after_evaluations=4):
    """Run main and kill it (KeyboardInterrupt) in the epoch of the given evaluation: past the epoch-2 checkpoint."""
    calls, real = [], train.evaluate

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == after_evaluations:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", killed)
    with pytest.raises(KeyboardInterrupt):
        experiment.main(constants(mnist_top), argv)
    monkeypatch.setattr(train, "evaluate", real)


@pytest.mark.slow
def test_a_run_at_train_size_100_trains_on_the_shipped_split(mnist_root, tmp_path):
    """The size curve's runs use Hofer et al.'s split of that size: the run's training images are the file's."""
    import data
    argv = ["--TRAIN_SIZE=100", "--SPLITS=3", "--REGULARIZERS=vanilla", "--EPOCHS=1", "--EVAL_EPOCHS=1",
            "--VAL_SIZE=100", "--PROGRESS=false", "--DEVICE=cpu", f"--DATA_ROOT={mnist_root}", f"--OUT_DIR={tmp_path}"]
    assert experiment.main(constants(mnist_top), argv) == 0
    config = json.loads((tmp_path / "runs" / "vanilla_lr0.1_split03" / "config.json").read_text())
    idx = json.loads((mnist_root / "splits" / "stratified_splits.json").read_text())["MNIST"]["100"][3]
    x, y = data.load_dataset("MNIST", mnist_root, train=True, download=False)
    assert len(idx) == 100 and config["data_source"].startswith("shipped split 3")
    assert config["split_digest"] == checkpoints.split_digest(data.TrainSubset.build(x[idx], y[idx], 10, "cpu"))


@pytest.mark.slow
def test_mnist_script_end_to_end_writes_logs_table_and_figures(kmnist_root, tmp_path):
    out = tmp_path / "out"
    # one thread: a second OpenMP thread spin-waits, and on a busy machine made this run time out (> 300 s)
    cmd = [sys.executable, "mnist_top.py", *TINY, f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={out}", "--THREADS=1"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "seeded stratified draw" in r.stdout + r.stderr            # KMNIST-120 has no shipped split
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["hofer_beta4_lr0.1_split00", "sliding_beta1.1_lr0.1_split00", "vanilla_lr0.1_split00"]
    for name in runs:
        log = lines(out / "runs" / name / "log.jsonl")
        assert [l["epoch"] for l in log] == [1, 2, 3, 4]
        evaluated = [l for l in log if "test_acc" in l]
        assert [l["epoch"] for l in evaluated] == evaluation.eval_epochs(4, 3)
        last = log[-1]
        assert set(last["train"]) == set(last["test"]) and "nc1" in last["test"]
        assert len(last["death_mean"]) == 10 and all(m <= x for m, x in zip(last["death_mean"], last["death_max"]))
        final = json.loads((out / "runs" / name / "final.json").read_text())
        assert final["test_acc"] == last["test_acc"] and final["commit"] and final["device"].startswith("cpu")
    sliding = lines(out / "runs" / runs[1] / "log.jsonl")
    assert [l["lam"] for l in sliding] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert sliding[-1]["beta"] == 0.0 and sliding[0]["beta"] == pytest.approx(1.1 * 0.75 ** 0.5)
    assert all(l["lam"] == 0 and l["top"] is None for l in lines(out / "runs" / runs[2] / "log.jsonl"))
    table = (out / "table.md").read_text()
    for row in ("| vanilla | 1 (0)", "| hofer β=4 | 1 (0)", "| sliding β0=1.1 | 1 (0)", "Paired comparisons",
                "commit", "torch"):
        assert row in table
    for fig in ("accuracy.png", "collapse.png", "deaths.png"):
        assert (out / fig).stat().st_size > 10_000
    # running again skips finished runs
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "all 3 runs" in r.stdout and "are finished; rewriting the report only" in r.stdout


@pytest.mark.slow
def test_svhn_script_end_to_end_on_generated_mat_files(svhn_root, tmp_path):
    out = tmp_path / "out"
    argv = [f"--DATA_ROOT={svhn_root}", f"--OUT_DIR={out}", "--TRAIN_SIZE=40", "--EPOCHS=1", "--SPLITS=0", "--DEVICE=cpu",
            "--GROUPS_PER_BATCH=2", "--SAMPLES_PER_GROUP=4", "--EVAL_EPOCHS=1", "--PROGRESS=false", "--VAL_SIZE=40",
            "--REGULARIZERS=vanilla,sliding"]
    assert experiment.main(constants(svhn_top), argv) == 0
    for name in ("vanilla_lr0.03_split00", "sliding_beta1_lr0.03_split00"):
        final = json.loads((out / "runs" / name / "final.json").read_text())
        assert 0 <= final["test_acc"] <= 1
        cfg = json.loads((out / "runs" / name / "config.json").read_text())["config"]
        assert cfg["MODEL"] == "CNN13" and cfg["AUGMENT"] and cfg["METRIC"] == "l2"
    assert "| sliding β0=1 | 1 (0)" in (out / "table.md").read_text()


@pytest.mark.parametrize("arg, msg", [("--HOFER_BETAS=-0.5", "HOFER_BETAS"), ("--SAMPLES_PER_GROUP=1", "SAMPLES_PER_GROUP"),
                                      ("--REGULARIZERS=vanilla,topo", "topo"), ("--DATASET=CIFAR", "supported"),
                                      ("--GROUPS_PER_BATCH=500", "GROUPS_PER_BATCH"), ("--SLIDING_BETA0S=-1", "SLIDING_BETA0S"),
                                      ("--EPOCHS=ten", "EPOCHS"), ("--METRIC=l3", "METRIC"),
                                      ("--SPLITS=0-2,1", "twice"), ("--MODEL=ResNet", "MODEL"),
                                      ("--MOMENTUM=-5", "MOMENTUM=-5.0 must be in [0, 1)"),
                                      ("--WEIGHT_DECAY=-1", "WEIGHT_DECAY=-1.0 must be >= 0"),
                                      ("--CROP_PADDING=-3", "CROP_PADDING=-3 must be >= 0"),
                                      ("--SLIDING_BETA0S=1e400", "--SLIDING_BETA0S='1e400': not a finite number"),
                                      ("--LRS=1e400", "--LRS='1e400': not a finite number"),
                                      ("--LRS=inf", "--LRS='inf': expected float")])
def test_a_bad_constant_fails_before_training(arg, msg, tmp_path, capsys):
    assert experiment.main(constants(mnist_top), [f"--OUT_DIR={tmp_path}", arg, "--AUGMENT=True"]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.startswith("error: ") and "Traceback" not in err   # one message
    assert not any(tmp_path.iterdir())                                   # nothing trained, nothing written


def test_an_infinite_constant_in_the_script_itself_is_refused(tmp_path, capsys):
    assert experiment.main({**constants(mnist_top), "WEIGHT_DECAY": float("inf")}, [f"--OUT_DIR={tmp_path}"]) == 2
    assert "WEIGHT_DECAY: not a finite number" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: DEVICE=cuda is valid here")
def test_device_cuda_without_a_gpu_says_so(tmp_path, capsys):
    assert experiment.main(constants(mnist_top), [f"--OUT_DIR={tmp_path}", "--DEVICE=cuda"]) == 2
    assert "sees no CUDA device; use DEVICE=cpu" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_changed_settings_are_not_mixed_into_an_existing_run(kmnist_root, tmp_path, capsys):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla", "--EPOCHS=1"]
    assert experiment.main(constants(mnist_top), argv) == 0
    assert experiment.main(constants(mnist_top), argv + ["--WEIGHT_DECAY=0.01"]) == 2
    assert "WEIGHT_DECAY" in capsys.readouterr().err
    # another run in the same OUT_DIR would be paired with it in the report: refused as well
    assert experiment.main(constants(mnist_top), argv + ["--EPOCHS=2", "--REGULARIZERS=sliding"]) == 2
    assert "EPOCHS" in capsys.readouterr().err and not (tmp_path / "runs" / "sliding_beta1.1_lr0.1_split00").exists()


@pytest.mark.slow
@pytest.mark.parametrize("step, said", [  # one run of 1 epoch × 120 // 4 = 30 steps, × 1.3 for evaluation
    (1e-3, "about 1 ms per training step, so about 0.0 min per run and 0 min for the 1 unfinished runs.\n"),
    (100.0, "so about 65.0 min per run and 1.1 h for the 1 unfinished runs. For a first look: --EPOCHS=20")])
def test_the_cpu_estimate_reads_in_minutes_below_an_hour_and_suggests_a_first_look_for_long_plans_only(
        kmnist_root, tmp_path, monkeypatch, capsys, step, said):
    monkeypatch.setattr(train, "estimate_step_seconds", lambda *args: step)
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla", "--EPOCHS=1"]
    assert experiment.main(constants(mnist_top), argv) == 0
    assert said in capsys.readouterr().out


def test_missing_data_is_reported_before_training(tmp_path, capsys):
    argv = [f"--DATA_ROOT={tmp_path / 'nothing'}", f"--OUT_DIR={tmp_path / 'out'}", "--DOWNLOAD=false", "--DEVICE=cpu"]
    assert experiment.main(constants(mnist_top), argv) == 2
    err = capsys.readouterr().err
    assert "MNIST" in err and "train-images-idx3-ubyte" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_diverging_run_stops_with_its_epoch_and_the_others_go_on(kmnist_root, tmp_path, capsys):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla,hofer",
                   "--HOFER_BETAS=0", "--LAMBDAS=1e30"]
    assert experiment.main(constants(mnist_top), argv) == 1                        # a run did not finish
    diverged = list((tmp_path / "runs").glob("*/diverged.json"))
    assert [p.parent.name for p in diverged] == ["hofer_beta0_lam1e+30_lr0.1_split00"]
    assert (tmp_path / "runs" / "vanilla_lr0.1_split00" / "final.json").exists()
    msg = json.loads(diverged[0].read_text())["message"]
    assert "non-finite loss in epoch" in msg and "checkpoint" in msg


@pytest.mark.slow
def test_data_root_on_the_command_line_beats_the_environment(kmnist_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "empty"))
    argv = TINY + [f"--OUT_DIR={tmp_path / 'out'}", "--REGULARIZERS=vanilla", "--EPOCHS=1", "--DOWNLOAD=false"]
    assert experiment.main(constants(mnist_top), argv) == 2                       # $DATA_ROOT: nothing there
    assert str(tmp_path / "empty") in capsys.readouterr().err
    assert experiment.main(constants(mnist_top), argv + [f"--DATA_ROOT={kmnist_root}"]) == 0


def test_a_split_out_of_range_fails_before_training(mnist_root, tmp_path, capsys):
    argv = [f"--DATA_ROOT={mnist_root}", f"--OUT_DIR={tmp_path}", "--SPLITS=18-20", "--PROGRESS=false", "--DEVICE=cpu"]
    assert experiment.main(constants(mnist_top), argv) == 2
    assert "splits 0-19" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_a_model_that_does_not_fit_the_images_fails_before_training(svhn_root, tmp_path, capsys):
    argv = [f"--DATA_ROOT={svhn_root}", f"--OUT_DIR={tmp_path / 'out'}", "--MODEL=SimpleCNN_MNIST", "--TRAIN_SIZE=40",
            "--VAL_SIZE=0", "--DEVICE=cpu"]
    assert experiment.main(constants(svhn_top), argv) == 2
    assert "does not fit SVHN" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_tiny_run_of_each_ablation_logs_its_schedule_and_penalty(kmnist_root, tmp_path):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=sliding_fixed_beta,ramp,center",
                   "--LAMBDAS=0.2", "--EVAL_EPOCHS=4"]
    assert experiment.main(constants(mnist_top), argv) == 0
    runs = {p.name: lines(p / "log.jsonl") for p in (tmp_path / "runs").iterdir()}
    assert sorted(runs) == ["center_lam0.2_lr0.1_split00", "ramp_lam0.2_lr0.1_split00",
                            "sliding_fixed_beta_beta1.1_lam0.2_lr0.1_split00"]
    for name, log in runs.items():
        assert [l["lam"] for l in log] == pytest.approx([0.05, 0.1, 0.15, 0.2])     # λmax · e/E
        assert [l["beta"] for l in log] == [1.1 if name.startswith("sliding") else 0.0] * 4
        assert all(l["top"] > 0 and 0 <= l["val_acc"] <= 1 for l in log)          # evaluated every epoch here
    # the centroid penalty is not the tree's (same batches and initialisation): other numbers from epoch 1 on
    assert runs["center_lam0.2_lr0.1_split00"][0]["top"] != runs["ramp_lam0.2_lr0.1_split00"][0]["top"]


@pytest.mark.slow
def test_nesterov_reaches_the_optimiser_and_the_metric_the_config(kmnist_root, tmp_path):
    cfg = {**constants(mnist_top), "NESTEROV": True, "METRIC": "l2"}
    run = dict(name="hofer_beta0.5_lr0.1_split00", regularizer="hofer", split=0, lr=0.1, beta=0.5, lam=0.1)
    state = train.build_run(cfg, run, 10, 1, torch.device("cpu"))
    assert [g["nesterov"] for g in state.opt.param_groups] == [True] and state.penalty.metric == "l2"
    assert not train.build_run(constants(mnist_top), run, 10, 1, torch.device("cpu")).opt.param_groups[0]["nesterov"]
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=hofer", "--METRIC=l2",
                   "--NESTEROV=true", "--EPOCHS=1"]
    assert experiment.main(constants(mnist_top), argv) == 0
    config = json.loads((tmp_path / "runs" / "hofer_beta4_lr0.1_split00" / "config.json").read_text())["config"]
    assert config["METRIC"] == "l2" and config["NESTEROV"] is True
    assert json.loads((tmp_path / "settings.json").read_text())["METRIC"] == "l2"


@pytest.mark.slow
def test_a_tiny_run_of_each_mechanism_arm_logs_its_schedule_and_penalty(kmnist_root, tmp_path):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=floor,ceiling,center_radius",
                   "--LAMBDAS=0.2", "--SLIDING_BETA0S=0.5", "--EVAL_EPOCHS=4"]
    assert experiment.main(constants(mnist_top), argv) == 0
    runs = {p.name: lines(p / "log.jsonl") for p in (tmp_path / "runs").iterdir()}
    assert sorted(runs) == ["ceiling_beta0.5_lam0.2_lr0.1_split00", "center_radius_beta0.5_lam0.2_lr0.1_split00",
                            "floor_beta0.5_lam0.2_lr0.1_split00"]
    for log in runs.values():
        assert [l["lam"] for l in log] == pytest.approx([0.05, 0.1, 0.15, 0.2])     # λmax · e/E
        assert [l["beta"] for l in log] == [0.5] * 4                                # β (or r) ≡ β0
        assert all(l["top"] >= 0 and math.isfinite(l["top"]) for l in log)
        assert len(log[-1]["train"]["between_class_spectrum"]) == 9 and "etf_scale" not in log[-1]
    tops = {name.split("_beta")[0]: log[0]["top"] for name, log in runs.items()}
    assert len(set(tops.values())) == 3  # three penalties on the same batches and initialisation


@pytest.mark.slow
def test_etf_classifier_keeps_the_backbone_and_batches_and_logs_its_scale(kmnist_root, tmp_path):
    run = dict(name="vanilla_lr0.1_split00", regularizer="vanilla", split=0, lr=0.1, beta=None, lam=None)
    plain = train.build_run(constants(mnist_top), run, 10, 1, torch.device("cpu"))
    etf = train.build_run({**constants(mnist_top), "ETF_CLASSIFIER": True}, run, 10, 1, torch.device("cpu"))
    for (k, a), b in zip(plain.model.latent.state_dict().items(), etf.model.latent.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert torch.equal(plain.gen.get_state(), etf.gen.get_state())
    assert len(plain.opt.param_groups) == 1 and [g["weight_decay"] for g in etf.opt.param_groups] == [1e-3, 0.0]

    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla,sliding",
                   "--ETF_CLASSIFIER=true"]
    assert experiment.main(constants(mnist_top), argv) == 0
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["sliding_beta1.1_etf_lr0.1_split00", "vanilla_etf_lr0.1_split00"]
    for name in names:
        log = lines(tmp_path / "runs" / name / "log.jsonl")
        assert all(l["etf_scale"] > 0 for l in log) and len({l["etf_scale"] for l in log}) == 4  # learned
        assert log[-1]["train"]["etf_distance_classifiers"] == pytest.approx(0, abs=1e-6)       # the frame itself
        assert json.loads((tmp_path / "runs" / name / "config.json").read_text())["config"]["ETF_CLASSIFIER"] is True
    assert json.loads((tmp_path / "settings.json").read_text())["ETF_CLASSIFIER"] is True


@pytest.mark.slow
def test_a_folder_written_before_the_etf_constant_accepts_new_runs(kmnist_root, tmp_path):
    argv = TINY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla", "--EPOCHS=1"]
    assert experiment.main(constants(mnist_top), argv) == 0
    settings = json.loads((tmp_path / "settings.json").read_text())
    del settings["ETF_CLASSIFIER"]  # as written by an older commit
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    assert experiment.main(constants(mnist_top), argv + ["--SPLITS=1"]) == 0
    assert experiment.main(constants(mnist_top), argv + ["--SPLITS=1", "--ETF_CLASSIFIER=true"]) == 2


def test_study_file_keeps_the_first_defaults_and_every_folder_paired_with(tmp_path):
    consts = constants(mnist_top)
    a, b = tmp_path / "a", tmp_path / "b"
    experiment.write_study(tmp_path, consts, dict(PAIR_WITH=[str(a)]))
    edited = {**consts, "HOFER_BETAS": [0.5]}  # a later edit of the script's default must not move the held-out choice
    experiment.write_study(tmp_path, edited, dict(PAIR_WITH=[str(b), str(a)]))
    experiment.write_study(tmp_path, edited, dict(PAIR_WITH=[]))
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["script_defaults"] == {k: consts[k] for k in ("HOFER_BETAS", "SLIDING_BETA0S", "LAMBDAS")}
    assert study["pair_with"] == [a.resolve().as_posix(), b.resolve().as_posix()]
    experiment.write_study(tmp_path, consts, dict(PAIR_WITH=["results/mnist-250"]))  # inside the repository: relative
    assert json.loads((tmp_path / "study.json").read_text())["pair_with"][-1] == "results/mnist-250"


@pytest.mark.slow
def test_with_every_planned_run_finished_the_command_needs_no_data_and_writes_only_the_report(kmnist_root, tmp_path,
                                                                                             capsys):
    argv = TINY + [f"--OUT_DIR={tmp_path}", "--REGULARIZERS=vanilla", "--EPOCHS=1"]
    assert experiment.main(constants(mnist_top), argv + [f"--DATA_ROOT={kmnist_root}"]) == 0
    (tmp_path / "settings.json").unlink()                                # as in a folder committed before it existed
    (tmp_path / "table.md").unlink()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix != ".png")
    assert experiment.main(constants(mnist_top), argv + [f"--DATA_ROOT={tmp_path / 'no-data'}"]) == 0
    assert "are finished; rewriting the report only" in capsys.readouterr().out
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix != ".png")
    assert after == sorted(before + [Path("table.md")]) and not (tmp_path / "no-data").exists()
    assert experiment.main(constants(mnist_top), argv + ["--WEIGHT_DECAY=0.01"]) == 2   # other settings: refused
    assert "trained with other settings {'WEIGHT_DECAY': (0.001, 0.01)}" in capsys.readouterr().err
