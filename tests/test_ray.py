"""The Ray executor on a real local Ray instance (2 CPUs, 127.0.0.1, no dashboard, no usage statistics): the same
run folders as the local executor, retries that resume, and one clear message for each thing that can be wrong."""
import json
import os
import signal
import threading
import time

import pytest

import mnist_top
from tests.test_experiment import TINY, constants
from training import experiment

ray = pytest.importorskip("ray", reason="Ray is in the test extra: pip install -e '.[test]'")
STUDY = TINY + ["--REGULARIZERS=vanilla,sliding"]


@pytest.fixture(scope="module")
def local_ray():
    """A fresh local instance for these tests only, never one that $RAY_ADDRESS or `ray start` points at."""
    saved = {k: os.environ.pop(k, None) for k in ("RAY_ADDRESS",)}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v


def logs(out):
    return {p.parent.name: [{k: v for k, v in json.loads(l).items()} for l in p.read_text().splitlines()]
            for p in sorted((out / "runs").glob("*/log.jsonl"))}


@pytest.mark.slow
def test_a_ray_study_writes_the_run_folders_of_a_local_one(local_ray, kmnist_root, tmp_path):
    base = STUDY + [f"--DATA_ROOT={kmnist_root}"]
    assert experiment.main(constants(mnist_top), base + [f"--OUT_DIR={tmp_path / 'local'}", "--THREADS=1"]) == 0
    assert experiment.main(constants(mnist_top), base + [f"--OUT_DIR={tmp_path / 'ray'}", "--EXECUTOR=ray",
                                                         "--CPUS_PER_RUN=1"]) == 0
    local, remote = logs(tmp_path / "local"), logs(tmp_path / "ray")
    assert sorted(local) == sorted(remote) == ["sliding_beta1.1_lr0.1_split00", "vanilla_lr0.1_split00"]
    assert local == remote                                       # every field of every line, all epochs
    for name in local:
        a, b = (json.loads((tmp_path / o / "runs" / name / "final.json").read_text()) for o in ("local", "ray"))
        assert a["test_acc"] == b["test_acc"] and a["device"] == b["device"] == b["device"].split(",")[0] + ", 1 threads"
    assert (tmp_path / "ray" / "table.md").exists() and not list((tmp_path / "ray").glob(".ray-driver-*"))


@pytest.mark.slow
def test_a_task_killed_mid_run_is_retried_and_ends_with_the_numbers_of_an_uninterrupted_run(local_ray, kmnist_root,
                                                                                             tmp_path):
    base = TINY + [f"--DATA_ROOT={kmnist_root}", "--REGULARIZERS=sliding", "--EPOCHS=8", "--CKPT_EVERY=2",
                   "--EVAL_EPOCHS=2"]
    assert experiment.main(constants(mnist_top), base + [f"--OUT_DIR={tmp_path / 'whole'}", "--THREADS=1"]) == 0
    run = tmp_path / "killed" / "runs" / "sliding_beta1.1_lr0.1_split00"
    killed, study_over = [], threading.Event()

    def kill_the_worker_after_its_first_checkpoint():  # until it has, or the study is over: no clock to miss
        while not study_over.is_set() and not killed:
            if (run / "ckpt.pt").exists() and (run / ".lock").exists():
                host, pid = (run / ".lock").read_text().split()
                if int(pid) != os.getpid():
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker_after_its_first_checkpoint)
    killer.start()
    try:
        assert experiment.main(constants(mnist_top), base + [f"--OUT_DIR={tmp_path / 'killed'}", "--EXECUTOR=ray"]) == 0
    finally:
        study_over.set()
        killer.join()
    assert killed                                                        # a worker did die mid-run
    assert int((run / ".lock").read_text().split()[1]) != killed[0]      # and another attempt finished it
    assert logs(tmp_path / "killed") == logs(tmp_path / "whole")


@pytest.mark.slow
def test_an_out_dir_that_a_task_cannot_see_stops_the_study_with_one_message(local_ray, kmnist_root, tmp_path,
                                                                             monkeypatch, capsys):
    from training import ray_executor
    monkeypatch.setattr(ray_executor, "write_marker", lambda out: "a token no file holds")  # as on another node
    argv = STUDY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}", "--EXECUTOR=ray"]
    assert experiment.main(constants(mnist_top), argv) == 2
    err = capsys.readouterr().err
    assert "is not visible from node" in err and "storage that every node" in err and "Traceback" not in err
    assert not list((tmp_path / "runs").glob("*/final.json"))


def test_without_ray_the_ray_executor_says_how_to_install_it(kmnist_root, tmp_path, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    argv = STUDY + [f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path / 'out'}", "--EXECUTOR=ray"]
    assert experiment.main(constants(mnist_top), argv) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("arg, msg", [("--EXECUTOR=dask", "EXECUTOR='dask' unknown; choose one of local, ray"),
                                      ("--GPUS_PER_RUN=2", "GPUS_PER_RUN=2.0 must be in [0, 1]"),
                                      ("--CPUS_PER_RUN=0", "CPUS_PER_RUN=0 must be >= 1")])
def test_bad_executor_settings_are_the_usual_settings_error(tmp_path, capsys, arg, msg):
    assert experiment.main(constants(mnist_top), [f"--OUT_DIR={tmp_path / 'out'}", arg]) == 2
    assert msg in capsys.readouterr().err


def test_the_resource_request_packs_runs_onto_a_gpu_only_where_ray_sees_one():
    from training.ray_executor import RETRIES, task_options
    cfg = dict(CPUS_PER_RUN=2, GPUS_PER_RUN=0.25, DEVICE="")
    assert task_options(cfg, {"CPU": 16, "GPU": 1}) == dict(num_cpus=2, num_gpus=0.25, max_retries=RETRIES)
    assert task_options(cfg, {"CPU": 16}) == dict(num_cpus=2, num_gpus=0, max_retries=RETRIES)
    assert task_options(dict(cfg, DEVICE="cpu"), {"CPU": 16, "GPU": 8})["num_gpus"] == 0
    assert RETRIES >= 1


def test_switching_executor_never_refuses_an_out_dir():
    from common.runs import NOT_RUN_DEFINING
    assert {"EXECUTOR", "RAY_ADDRESS", "CPUS_PER_RUN", "GPUS_PER_RUN"} <= NOT_RUN_DEFINING


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_stopping_the_driver_cancels_the_tasks_and_the_same_command_resumes(kmnist_root, tmp_path, sig):
    import subprocess
    import sys

    from tests.test_experiment import REPO
    run = tmp_path / "runs" / "sliding_beta1.1_lr0.1_split00"
    cmd = [sys.executable, "mnist_top.py", *TINY, f"--DATA_ROOT={kmnist_root}", f"--OUT_DIR={tmp_path}",
           "--REGULARIZERS=sliding", "--EPOCHS=12", "--EXECUTOR=ray"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_USAGE_STATS_ENABLED": "0"}
    output = open(tmp_path / "driver.txt", "w")
    # a shell starts background jobs (`pytest &`) with SIGINT ignored, and the driver would inherit that: restore it
    driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # the bounds only stop a hung test: each wait ends on its event, which a loaded machine only delays
    assert wait_for(lambda: (run / "ckpt.pt").exists(), 1800)
    driver.send_signal(sig)
    driver.wait(timeout=900)                                             # the driver stops, its tasks with it
    assert driver.returncode != 0 and not (run / "final.json").exists()
    worker = int((run / ".lock").read_text().split()[1])
    assert wait_for(lambda: not alive(worker), 900)                      # the task's worker is gone
    assert subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=3600).returncode == 0
    assert len(lines_of(run / "log.jsonl")) == 12 and (run / "final.json").exists()


def wait_for(event, bound: float) -> bool:
    """Poll `event` until it holds (True) or `bound` seconds pass (False)."""
    deadline = time.monotonic() + bound
    while not event():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def lines_of(path):
    return [json.loads(l) for l in path.read_text().splitlines()]
