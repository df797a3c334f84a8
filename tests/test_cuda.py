"""The CUDA path: the same numbers as the CPU where they must be, repeatable runs, no host sync in a step.

Every test here needs a GPU and is skipped without one (CI has none; `benchmarks/device_check.py` runs them
on the device machine). The CPU-only suite checks the same code paths on the CPU.
"""
import json

import pytest
import torch

import data
import mnist_top
from regularizers import METRICS, CeilingLoss, CenterLoss, CenterRadiusLoss, FloorLoss, TopologicalLoss
from tests.test_experiment import TINY, constants, interrupted
from training import experiment, train

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run benchmarks/device_check.py "
                                                                       "on a GPU machine)")]
CUDA_TINY = [a for a in TINY if not a.startswith("--DEVICE")] + ["--DEVICE=cuda", "--REGULARIZERS=sliding",
                                                                  "--DETERMINISTIC=true"]


def codes_with_duplicates(G=10, n=16, d=128, seed=0):
    """Group codes with exact duplicates (as the group batches have) and ties, float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(G, n, d, generator=g, dtype=torch.float64)
    x[:, 1] = x[:, 0]
    return x


@pytest.mark.parametrize("loss", [*(TopologicalLoss(0.5, m) for m in METRICS), *(CenterLoss(m) for m in METRICS),
                                  *(FloorLoss(0.5, m) for m in METRICS), *(CeilingLoss(0.5, m) for m in METRICS),
                                  *(CenterRadiusLoss(1.1, m) for m in METRICS)],
                         ids=lambda l: f"{type(l).__name__}-{l.metric}")
def test_loss_and_gradient_on_cuda_equal_the_cpu_in_float64(loss):
    x = codes_with_duplicates().requires_grad_()
    xc = x.detach().cuda().requires_grad_()
    value, value_cuda = loss(x), loss(xc)
    value.backward(), value_cuda.backward()
    torch.testing.assert_close(value_cuda.cpu(), value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xc.grad.cpu(), x.grad, rtol=1e-12, atol=1e-12)


def test_batches_and_crops_drawn_with_a_cuda_generator_are_reproducible():
    y = (torch.arange(250) % 10).cuda()
    sub = data.TrainSubset.build(torch.randint(0, 256, (250, 1, 28, 28), dtype=torch.uint8), y.cpu(), 10, "cuda")

    def draw():
        g = torch.Generator(device="cuda").manual_seed(3)
        b = data.group_batches(sub.y, sub.members, sub.counts, 8, 16, g)
        return b, data.random_crop(sub.x[b[0]], 2, g)

    (b1, c1), (b2, c2) = draw(), draw()
    assert b1.is_cuda and torch.equal(b1, b2) and torch.equal(c1, c2)
    assert (sub.y[b1].view(-1, 8, 16) == sub.y[b1].view(-1, 8, 16)[:, :, :1]).all()  # each group one class


def test_a_deterministic_cuda_run_twice_gives_identical_logs(kmnist_root, tmp_path):
    for out in ("a", "b"):
        assert experiment.main(constants(mnist_top), CUDA_TINY + [f"--DATA_ROOT={kmnist_root}",
                                                                  f"--OUT_DIR={tmp_path / out}"]) == 0
    run = "runs/sliding_beta1.1_lr0.1_split00"
    assert (tmp_path / "a" / run / "log.jsonl").read_text() == (tmp_path / "b" / run / "log.jsonl").read_text()
    final = json.loads((tmp_path / "a" / run / "final.json").read_text())
    assert final["device"].startswith("cuda") and final["deterministic"] and not final["tf32"]


def test_the_mechanism_penalties_with_a_fixed_etf_run_deterministically_on_cuda(kmnist_root, tmp_path):
    argv = [a for a in CUDA_TINY if not a.startswith("--REGULARIZERS")] + [
        "--REGULARIZERS=floor,ceiling,center_radius", "--ETF_CLASSIFIER=true", f"--DATA_ROOT={kmnist_root}"]
    for out in ("a", "b"):
        assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / out}"]) == 0
    logs = sorted((tmp_path / "a" / "runs").glob("*/log.jsonl"))
    assert len(logs) == 3 and all("_etf_" in log.parent.name for log in logs)
    for log in logs:
        assert log.read_text() == (tmp_path / "b" / log.relative_to(tmp_path / "a")).read_text()
        final = json.loads((log.parent / "final.json").read_text())
        assert final["device"].startswith("cuda") and final["deterministic"] and not final["tf32"]
        assert "etf_scale" in json.loads(log.read_text().splitlines()[-1])  # the fixed frame's learned scale


def test_kill_and_resume_on_cuda_ends_identical(kmnist_root, tmp_path, monkeypatch):
    argv = CUDA_TINY + [f"--DATA_ROOT={kmnist_root}"]
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'a'}"]) == 0
    interrupted(argv + [f"--OUT_DIR={tmp_path / 'b'}"], monkeypatch)
    assert experiment.main(constants(mnist_top), argv + [f"--OUT_DIR={tmp_path / 'b'}"]) == 0
    run = "runs/sliding_beta1.1_lr0.1_split00/log.jsonl"
    assert (tmp_path / "a" / run).read_text() == (tmp_path / "b" / run).read_text()


@pytest.mark.parametrize("model_name, shape", [("SimpleCNN_MNIST", (1, 28, 28)), ("CNN13", (3, 32, 32))])
def test_a_training_step_never_waits_for_the_host(model_name, shape):
    from models import make_model
    torch.manual_seed(0)
    G, n = 8, 16
    model = make_model(model_name, 10, shape[0]).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
    x, y = torch.randn(G * n, *shape, device="cuda"), (torch.arange(G * n, device="cuda") // n) % 10
    penalty = TopologicalLoss(0.5, "l1")
    train.train_step(model, opt, penalty, x, y, 0.1, 0.5, G, n)  # warm-up: caches, cuDNN plans
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ce, top = train.train_step(model, opt, penalty, x, y, 0.1, 0.5, G, n)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(ce) and torch.isfinite(top)


def test_deterministic_mode_accepts_every_op_of_a_cnn13_step():
    """CNN-13 with the topological loss under torch.use_deterministic_algorithms(True): no op refuses, and two steps
    from the same seed give bit-identical losses and weights."""
    from models import make_model

    def two_steps():
        torch.manual_seed(0)
        model = make_model("CNN13", 10, 3).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, y = torch.randn(32, 3, 32, 32, device="cuda"), torch.arange(32, device="cuda") % 10
        losses = [torch.stack(train.train_step(model, opt, TopologicalLoss(0.5, "l2"), x, y, 0.1, 0.5, 4, 8))
                  for _ in range(2)]
        return torch.stack(losses).cpu(), [p.detach().cpu() for p in model.parameters()]

    torch.use_deterministic_algorithms(True)
    try:
        (l1, w1), (l2, w2) = two_steps(), two_steps()
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.isfinite(l1).all() and torch.equal(l1, l2)
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))
