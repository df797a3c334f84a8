"""Which runs belong together. A `Group` is the runs of one regulariser and its parameters in one results folder (made
by `grouped` only); runs of two groups pair where they share the split and the seed (`pair_key`); and a side that a
user names in a contrasts.json or a --SUMMARY spec ("<folder>: <group>", or a regulariser's name standing for its one
group) is read by `parse_side` and found among the groups by `matches`.
"""
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from common.runs import LEGACY_LAMBDA, run_settings
from common.schedules import SCHEDULES
from reporting.records import load_runs

ORDER = {name: i for i, name in enumerate(SCHEDULES)}  # the order in which groups are listed


@dataclass(frozen=True)
class Group:
    """The runs of one regulariser and its parameters in one results folder, in the table's order."""
    folder: str  # the name of the results folder a group was paired in from; "" for a table's own groups
    label: str  # `group_label`: "hofer β=4", "sliding β0=1.1", "ramp λ=0.03", "vanilla ETF"
    runs: tuple  # its runs, as `records.load_runs` reads them

    @property
    def name(self) -> str:
        """The group as the tables print it: "<folder>: <label>" for a group paired in, else its label."""
        return f"{self.folder}: {self.label}" if self.folder else self.label

    @property
    def regularizer(self) -> str:
        return self.runs[0]["run"]["regularizer"]


def group_label(r: dict, many_lrs: bool) -> str:
    """`hofer β=4`, `sliding β0=1.1`, `ramp λ=0.03`, `vanilla ETF`: the regulariser and the parameters it uses (λ
    only where it is not LEGACY_LAMBDA or the regulariser has no β), the learning rate where `many_lrs`, and ETF with a
    fixed simplex-ETF classifier."""
    s = run_settings(r["run"], r["config"])
    label = r["run"]["regularizer"]
    label += f" β={s['beta']:g}" if s["beta"] is not None else f" β0={s['beta0']:g}" if s["beta0"] is not None else ""
    if s["lam"] is not None and (s["lam"] != LEGACY_LAMBDA or s["beta"] is None and s["beta0"] is None):
        label += f" λ={s['lam']:g}"
    label += f" lr={s['lr']:g}" if many_lrs else ""
    label += " ETF" if r["config"].get("ETF_CLASSIFIER") else ""
    return label


def _sort_key(r: dict) -> tuple:
    s = run_settings(r["run"], r["config"])
    return (r.get("prefix", ""), ORDER.get(r["run"]["regularizer"], len(ORDER)), r["run"]["regularizer"],
            *(-1 if s[k] is None else s[k] for k in ("beta", "beta0", "lam", "lr")))


def grouped(runs: list[dict]) -> dict[str, Group]:
    """The runs by folder (their `prefix`) and `group_label`, in the table's order (folder, regulariser, then its
    parameters), each group under its printed `Group.name`."""
    many_lrs = len({r["run"]["lr"] for r in runs}) > 1
    found = defaultdict(list)
    for r in sorted(runs, key=_sort_key):
        found[r.get("prefix") or "", group_label(r, many_lrs)].append(r)
    groups = [Group(folder, label, tuple(rs)) for (folder, label), rs in found.items()]
    return {g.name: g for g in groups}


def own(groups: dict[str, Group]) -> dict[str, Group]:
    """The groups of one folder as its own table names them: without the folder's name."""
    return {g.label: replace(g, folder="") for g in groups.values()}


def folder_groups(path: Path, cache: dict) -> dict[str, Group]:
    """The finished groups of a results folder, named with the folder's name (loaded once into `cache`)."""
    path = Path(path).resolve()
    if path not in cache:
        runs = load_runs(path, prefix=path.name) if (path / "runs").is_dir() else []
        cache[path] = grouped([r for r in runs if r["final"]])
    return cache[path]


def pair_key(r: dict) -> tuple[int, int]:
    """Runs pair when they share the split and the seed: the same training images, initialisation and batches."""
    return r["run"]["split"], r["seed"]


# ------------------------------------------------------------------------------------------------ sides a user names
def parse_side(text: str) -> tuple[str, str]:
    """(folder, label) of a side as a contrasts.json or a --SUMMARY spec names it: "<folder>: <label>", or a bare
    label (folder ""). The label is a group's label or a regulariser's name (standing for its one group)."""
    folder, sep, label = text.partition(": ")
    return (folder, label) if sep else ("", text)


def matches(groups: dict[str, Group], folder: str, label: str) -> list[str]:
    """The names of the groups of `folder` (its name as the groups carry it, "" for a table's own) that `label`
    names: the group so labelled, else every group of the regulariser `label` names (so that a side can be named
    before its held-out λ is known)."""
    mine = {name: g for name, g in groups.items() if g.folder == folder}
    return [name for name, g in mine.items() if g.label == label] or [
        name for name, g in mine.items() if g.regularizer == label]


def resolve(groups: dict[str, Group], folder: str, label: str) -> str | None:
    """The name of the one group that `matches` finds; None where no group (or several)."""
    found = matches(groups, folder, label)
    return found[0] if len(found) == 1 else None


def unresolved(found: dict[str, list[str]]) -> str:
    """Why sides ({side as printed: the names `matches` found for it}) that `resolve` left without a group have none:
    not run yet, or named ambiguously."""
    many = {side: f for side, f in found.items() if len(f) > 1}
    if many:
        return "; ".join(f"{side} names {len(f)} groups ({', '.join(f)}): name one by its label"
                         for side, f in many.items())
    return f"not yet: no finished group {' nor '.join(found)}"
