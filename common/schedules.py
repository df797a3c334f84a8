"""Schedules: training progress → (λ, β), the part of a regulariser that needs no torch.

The training loss is  L = L_CE + λ · penalty(β), the penalty being the loss module named by the
schedule's `loss` (built by `regularizers.make_loss`). A regulariser is a schedule plus its penalty;
`SCHEDULES` names them all. Hofer et al., ICML 2020 (arXiv 2002.04805) for `hofer`; the others are
this project's.
"""
import math


def check_nonneg(name, value):
    """A finite number >= 0 as a python float (NaN fails the comparison too)."""
    value = float(value)
    if not (0.0 <= value < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


class Schedule:
    """Base schedule: maps the epoch to the loss weight λ and the scale β.

    Progress is per epoch: in epoch e = 1 … E, t = e / E, constant within the epoch, so the last
    epoch has t = 1. A new schedule overrides `at(t)` (and, if it reacts to
    training, `end_epoch`, `state_dict` and `load_state_dict`), sets `loss` (the penalty λ weighs)
    and `params` (which of lam, beta, beta0 change what it computes), then is added to `SCHEDULES`.
    The first line of its docstring is its description in error messages.

    Parameters
    ----------
    epochs : int
        Number of epochs E ≥ 1.
    lam : float
        Loss weight λ (the maximum for sliding schedules), ≥ 0.
    beta : float
        Constant β of `hofer`, ≥ 0.
    beta0 : float
        Initial β of the sliding schedules, ≥ 0.
    """

    loss = "topological"  # the penalty λ weighs: a key of regularizers.LOSSES
    params = ("lam", "beta", "beta0")  # the arguments that change what the schedule computes

    def __init__(self, epochs, lam=0.1, beta=0.5, beta0=1.1):
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        self.epochs = int(epochs)
        self.lam = check_nonneg("lam", lam)
        self.beta = check_nonneg("beta", beta)
        self.beta0 = check_nonneg("beta0", beta0)

    def _check_epoch(self, epoch):
        if int(epoch) != epoch or not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be an integer in 1..{self.epochs}, got {epoch!r}")
        return int(epoch)

    def at(self, t):
        """(λ, β) at progress t ∈ [0, 1]."""
        raise NotImplementedError

    def values(self, epoch):
        """(λ, β) for epoch e ∈ 1..E, i.e. `at(e / E)`: the last epoch is at t = 1, the first already at 1/E."""
        return self.at(self._check_epoch(epoch) / self.epochs)

    def end_epoch(self, epoch, train_acc):
        """Called after each epoch with the training accuracy in [0, 1]; a no-op unless overridden."""
        self._check_epoch(epoch)
        if not 0.0 <= train_acc <= 1.0:
            raise ValueError(f"train_acc must be a fraction in [0, 1], got {train_acc!r}")

    def state_dict(self):
        """Mutable state as a plain dict (empty for schedules that do not react to training)."""
        return {}

    def load_state_dict(self, state):
        if dict(state) != {}:
            raise ValueError(f"{type(self).__name__} has no state, got {state!r}")

    def __repr__(self):
        return (f"{type(self).__name__}(epochs={self.epochs}, lam={self.lam}, beta={self.beta}, "
                f"beta0={self.beta0})")


class Vanilla(Schedule):
    """Cross-entropy only: λ = 0 (β reported as 0). Same batches as the others (paired runs)."""

    params = ()

    def at(self, t):
        return 0.0, 0.0


class Hofer(Schedule):
    """Hofer et al.'s topological densification: constant λ = lam and constant β = beta."""

    params = ("lam", "beta")

    def at(self, t):
        return self.lam, self.beta


class Sliding(Schedule):
    """This project's schedule: λ rises linearly while β decays to 0, λ = lam · t, β = beta0 · √(1 − t).

    Early in training the topological term has little weight. Late, with β near 0, the loss
    Σ_k |d_k − β| ≈ Σ_k d_k is the total length of each group's spanning tree, so it pulls every
    same-class code onto its tree neighbours: a contraction of the class. Meanwhile a death below
    the current β is pushed *up* toward β (the sign of d − β flips), i.e. points closer than β are
    spread apart. In the last epoch (t = 1) β = 0 and only the contraction remains.
    """

    params = ("lam", "beta0")

    def at(self, t):
        return self.lam * t, self.beta0 * math.sqrt(max(0.0, 1.0 - t))


class SlidingFixedBeta(Schedule):
    """Ablation of sliding without the β decay: λ = lam · t, β = beta0 throughout.

    Deaths above β0 are pulled down and deaths below it pushed up for the whole run, as in `Hofer`,
    but with sliding's ramp of λ: the contrast with `Sliding` isolates the decay of β.
    """

    params = ("lam", "beta0")

    def at(self, t):
        return self.lam * t, self.beta0


class Ramp(Schedule):
    """Ablation of sliding without repulsion: λ = lam · t, β = 0, so L_top is each group's spanning-tree length.

    A pure contraction of every group along its minimum spanning tree; no death is ever pushed up.
    """

    params = ("lam",)

    def at(self, t):
        return self.lam * t, 0.0


class Center(Ramp):
    """Non-topological control of ramp: λ = lam · t on the distance of each code to its group mean.

    The same ramp of λ as `Ramp`, with `CenterLoss` in place of the persistence: the contrast
    `Ramp` − `Center` asks whether contracting along the tree matters, or any contraction would do.
    """

    loss = "center"


class Floor(SlidingFixedBeta):
    """Only the push-up of β > 0: λ = lam · t on Σ max(0, β0 − d), deaths below β0 pushed up, none pulled down.

    `SlidingFixedBeta` − `Floor` is what the contraction toward β adds (`FloorLoss`).
    """

    loss = "floor"


class Ceiling(SlidingFixedBeta):
    """Only the contraction of β > 0: λ = lam · t on Σ max(0, d − β0), a tree contraction that stops at β0.

    `SlidingFixedBeta` − `Ceiling` is what pushing short edges up to β adds (`CeilingLoss`).
    """

    loss = "ceiling"


class CenterRadius(SlidingFixedBeta):
    """A centroid target scale: λ = lam · t on Σ |‖z − z̄‖ − r|, r = beta0, each code held at distance r from its mean.

    The non-topological counterpart of `SlidingFixedBeta` (`CenterRadiusLoss`): `SlidingFixedBeta` −
    `CenterRadius` asks whether a target scale needs the tree.
    """

    loss = "center_radius"


class CenterSliding(Sliding):
    """Sliding's centroid twin: sliding's schedule on Σ |‖z − z̄‖ − r|, λ = lam · t and r = beta0 · √(1 − t).

    `CenterRadiusLoss` in place of the persistence, with sliding's ramp of λ and decay of the target scale: each code
    is held at a radius r from its group's mean that shrinks to 0, so that in the last epoch (t = 1) it is `Center`'s
    contraction to the mean, as `Sliding` ends as `Ramp`'s contraction along the tree. `Sliding` − `CenterSliding`
    asks whether sliding needs the tree. r is a distance to a centroid, not a tree edge: its r0 = beta0 is put on
    sliding's scale by the ratio of the two (tools/centroid_scale.py).
    """

    loss = "center_radius"


class TerminalSliding(Sliding):
    """Sliding, started at the terminal phase of training.

    λ = 0 (β = beta0) until the end of the first epoch s whose training accuracy (on the training
    subset, as a fraction) reaches 1.0, the start of the terminal phase where neural collapse
    begins. For epochs e > s it is `Sliding` with t rescaled to the remaining stretch,
    t = (e − s) / (E − s). The switch epoch s is its state, saved in checkpoints.
    """

    def __init__(self, epochs, lam=0.1, beta=0.5, beta0=1.1):
        super().__init__(epochs, lam, beta, beta0)
        self.switch_epoch = None  # s; None until train_acc first reaches 1

    def values(self, epoch):
        e, s = self._check_epoch(epoch), self.switch_epoch
        if s is None or e <= s:
            return 0.0, self.beta0
        return self.at((e - s) / (self.epochs - s))

    def end_epoch(self, epoch, train_acc):
        super().end_epoch(epoch, train_acc)
        if self.switch_epoch is None and train_acc >= 1.0:
            self.switch_epoch = int(epoch)

    def state_dict(self):
        return {"switch_epoch": self.switch_epoch}

    def load_state_dict(self, state):
        if set(state) != {"switch_epoch"}:
            raise ValueError(f"expected the key 'switch_epoch', got {sorted(state)}")
        s = state["switch_epoch"]
        self.switch_epoch = None if s is None else self._check_epoch(s)


# in the order tables list them
SCHEDULES = {"vanilla": Vanilla, "hofer": Hofer, "sliding": Sliding, "center_sliding": CenterSliding,
             "sliding_fixed_beta": SlidingFixedBeta, "ramp": Ramp, "center": Center, "terminal_sliding": TerminalSliding,
             "floor": Floor, "ceiling": Ceiling, "center_radius": CenterRadius}


def describe(names=None) -> str:
    """One line per regulariser (all of `SCHEDULES` by default): its name and the first line of its docstring."""
    return "\n".join(f"  {name}: {SCHEDULES[name].__doc__.strip().splitlines()[0]}" for name in (names or SCHEDULES))


def make_schedule(name, epochs, lam=0.1, beta=0.5, beta0=1.1):
    """Build the schedule `name` (a key of `SCHEDULES`); see `Schedule` for the arguments."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of:\n{describe()}")
    return SCHEDULES[name](epochs, lam=lam, beta=beta, beta0=beta0)
