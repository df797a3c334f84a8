"""schedules.py: each regulariser's (λ, β) over training, its state, and the registry."""
import math

import pytest

from common.schedules import SCHEDULES, describe, make_schedule


def test_schedule_registry_and_factory():
    assert set(SCHEDULES) >= {"vanilla", "hofer", "sliding", "terminal_sliding", "sliding_fixed_beta", "ramp", "center",
                              "floor", "ceiling", "center_radius", "center_sliding"}
    with pytest.raises(ValueError, match="cosine") as err:
        make_schedule("cosine", 10)
    # every known regulariser, each with its one-line description
    assert all(f"  {name}: {SCHEDULES[name].__doc__.strip().splitlines()[0]}" in str(err.value) for name in SCHEDULES)
    assert describe().count("\n") == len(SCHEDULES) - 1
    for arg in ("lam", "beta", "beta0"):
        with pytest.raises(ValueError, match=arg):
            make_schedule("hofer", 10, **{arg: -0.1})
    for epochs in (0, 2.5):
        with pytest.raises(ValueError, match="epochs"):
            make_schedule("hofer", epochs)
    with pytest.raises(ValueError, match="epoch"):
        make_schedule("sliding", 10).values(11)
    with pytest.raises(ValueError, match="epoch"):
        make_schedule("sliding", 10).values(0)


@pytest.mark.parametrize("name,t0,half,one", [
    ("vanilla", (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)),
    ("hofer", (0.2, 0.5), (0.2, 0.5), (0.2, 0.5)),
    ("sliding", (0.0, 1.1), (0.1, 1.1 * math.sqrt(0.5)), (0.2, 0.0)),
    ("sliding_fixed_beta", (0.0, 1.1), (0.1, 1.1), (0.2, 1.1)),
    ("ramp", (0.0, 0.0), (0.1, 0.0), (0.2, 0.0)),
    ("center", (0.0, 0.0), (0.1, 0.0), (0.2, 0.0)),
    ("floor", (0.0, 1.1), (0.1, 1.1), (0.2, 1.1)),
    ("ceiling", (0.0, 1.1), (0.1, 1.1), (0.2, 1.1)),
    ("center_radius", (0.0, 1.1), (0.1, 1.1), (0.2, 1.1)),
    ("center_sliding", (0.0, 1.1), (0.1, 1.1 * math.sqrt(0.5)), (0.2, 0.0)),
])
def test_schedule_values_at_t_0_half_1(name, t0, half, one):
    s = make_schedule(name, 10, lam=0.2, beta=0.5, beta0=1.1)
    assert s.at(0.0) == pytest.approx(t0)
    assert s.values(5) == pytest.approx(half)  # t = 5/10
    assert s.values(10) == pytest.approx(one)  # the last epoch has t = 1
    assert s.values(1) == pytest.approx(s.at(0.1))  # the first epoch, t = 1/E
    s.end_epoch(3, 1.0)  # no-op for these
    assert s.values(5) == pytest.approx(half) and s.state_dict() == {}


@pytest.mark.parametrize("epochs", [1, 7, 310])
def test_center_sliding_is_sliding_s_schedule_written_out(epochs):
    """λ = λmax · e/E and r = r0 · √(1 − e/E) in epoch e, the formula of the issue, on every epoch; the same (λ, β) as
    sliding's, so that the two differ only in their penalty."""
    lam, r0 = 0.03, 1.7
    s, sliding = make_schedule("center_sliding", epochs, lam=lam, beta0=r0), make_schedule("sliding", epochs, lam=lam,
                                                                                          beta0=r0)
    for e in range(1, epochs + 1):
        assert s.values(e) == pytest.approx((lam * e / epochs, r0 * math.sqrt(1 - e / epochs)), rel=1e-15, abs=0)
        assert s.values(e) == sliding.values(e)
    assert s.values(epochs) == (lam, 0.0)  # the last epoch: center's contraction to the group mean at λmax
    assert s.loss == "center_radius" and sliding.loss == "topological"


def test_sliding_is_monotone():
    s = make_schedule("sliding", 7, lam=0.3, beta0=2.0)
    lams, betas = zip(*(s.values(e) for e in range(1, 8)))
    assert all(a < b for a, b in zip(lams, lams[1:])) and all(a > b for a, b in zip(betas, betas[1:]))


def test_terminal_sliding_switches_at_full_training_accuracy():
    s = make_schedule("terminal_sliding", 10, lam=0.2, beta0=1.1)
    assert s.values(1) == (0.0, 1.1)
    s.end_epoch(1, 0.9)
    s.end_epoch(2, 0.999)
    assert s.values(3) == (0.0, 1.1) and s.state_dict() == {"switch_epoch": None}
    s.end_epoch(4, 1.0)  # terminal phase starts after epoch 4: t = (e − 4) / 6
    assert s.state_dict() == {"switch_epoch": 4}
    assert s.values(4) == (0.0, 1.1)  # t = 0
    assert s.values(7) == pytest.approx((0.1, 1.1 * math.sqrt(0.5)))  # t = ½
    assert s.values(10) == pytest.approx((0.2, 0.0))  # t = 1
    s.end_epoch(5, 0.8)
    s.end_epoch(6, 1.0)  # the switch epoch never moves
    assert s.state_dict() == {"switch_epoch": 4}
    with pytest.raises(ValueError, match="train_acc"):
        s.end_epoch(7, 100.0)  # a percentage instead of a fraction


def test_terminal_sliding_state_round_trip():
    s = make_schedule("terminal_sliding", 10)
    s.end_epoch(3, 1.0)
    restored = make_schedule("terminal_sliding", 10)
    restored.load_state_dict(s.state_dict())
    assert [restored.values(e) for e in range(1, 11)] == [s.values(e) for e in range(1, 11)]
    assert all(isinstance(v, (int, float, type(None))) for v in s.state_dict().values())
    with pytest.raises(ValueError, match="switch_epoch"):
        restored.load_state_dict({"switch": 3})
