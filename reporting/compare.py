"""How two groups are compared: their runs paired by split and seed (same split and seed ⇒ same images,
initialisation and batches), the one paired comparison of every table and figure (`paired`, a `Comparison`), the one
verdict rule (`family`), the mark of a comparison that pairs a run trained from a dirty tree (DIRTY_MARK), and the
settings and provenance in which paired runs differ (`differs_in`). The statistics are `stats.py`'s.
"""
import json
from dataclasses import dataclass

import numpy as np

from common.runs import PROVENANCE_COMPARED, run_differences
from reporting.groups import pair_key
from reporting.records import DIRTY, final_test_acc, is_dirty, recorded
from reporting.stats import ci95, family_level, holm, paired_tests

DIRTY_MARK = " †"  # after a comparison that pairs a run trained from a dirty tree


@dataclass(frozen=True)
class Comparison:
    """A − B of two groups' runs paired by (split, seed): each side's values by pair key (runs without a value left
    out), the keys both sides have (sorted), and `stats.paired_tests` of the differences in the comparison's unit."""
    a: dict  # {pair key: A's value}
    b: dict  # {pair key: B's value}
    shared: list  # the pair keys of both sides, sorted: the pairs compared
    n: int  # len(shared)
    mean: float  # of the differences a − b over the pairs, times the unit
    std: float  # (ddof 1) NaN for fewer than 2 pairs
    t_p: float  # paired t-test p (NaN where undefined)
    w_p: float  # Wilcoxon signed-rank p (NaN where undefined)
    left_out: int  # pairs of runs whose value is missing on either side (no value of the metric)

    @property
    def ci(self) -> tuple[float, float]:
        """The 95 % CI of the mean difference (`stats.ci95`; NaN for fewer than 2 pairs or no spread)."""
        return ci95(self.n, self.mean, self.std)

    @property
    def wins(self) -> int:
        """On how many pairs A is better (higher)."""
        return sum(self.a[k] > self.b[k] for k in self.shared)


def paired(ra, rb, value=final_test_acc, unit: float = 100) -> Comparison:
    """The paired comparison A − B of the runs `ra` and `rb`: `value(run)` (a number, else the run has none; final
    test accuracy by default) paired by `pair_key`, the differences times `unit` (100: a fraction in % points)."""
    a, b = ({pair_key(r): v for r in rs if isinstance(v := value(r), (int, float))} for rs in (ra, rb))
    n, mean, std, t_p, w_p = paired_tests(a, b, unit=unit)
    runs_paired = {pair_key(r) for r in ra} & {pair_key(r) for r in rb}
    return Comparison(a, b, sorted(set(a) & set(b)), n, mean, std, t_p, w_p, len(runs_paired) - n)


def run_pairs(ra, rb) -> list[tuple[dict, dict]]:
    """The runs of `ra` each with its run of `rb` of the same split and seed (in `ra`'s order; unpaired ones left out)."""
    by_key = {pair_key(r): r for r in rb}
    return [(r, by_key[pair_key(r)]) for r in ra if pair_key(r) in by_key]


# The one verdict rule of every table: a comparison belongs to a family, its p-values are Holm-corrected over that
# family and its verdict reads the family's Bonferroni CI (`stats.judge`). A pre-registered contrast's family is its
# contrasts.json, wherever the comparison appears; any other comparison's family is the other comparisons of its table.
def family(comparisons: list, m: int | None = None) -> tuple[float, list[float], list[float]]:
    """The Bonferroni level at which each comparison of a family is read, and its t-test and Wilcoxon p-values
    Holm-corrected, for `comparisons` (`Comparison`s, or None for a comparison not made yet); the family counts the
    comparisons with at least 2 pairs, or is the `m` comparisons named in advance (a pre-registered family keeps its
    size while some of its comparisons wait for their runs)."""
    tested = sum(1 for c in comparisons if c and c.n >= 2) if m is None else m
    t_adj = holm([c.t_p if c else np.nan for c in comparisons], m=tested)
    w_adj = holm([c.w_p if c else np.nan for c in comparisons], m=tested)
    return family_level(tested), t_adj, w_adj


def count(k: int, noun: str) -> str:
    """`1 comparison`, `3 comparisons`."""
    return f"{k} {noun}" + ("" if k == 1 else "s")


def differs_in(ra, rb) -> str:
    """The settings (other than the regulariser) in which the paired runs of two groups differ, and where they
    trained: the commit, torch, the device and the CPU capability, determinism and TF32 (`PROVENANCE_COMPARED`: runs
    are bit-exact only on the same code, library, device and kernels)."""
    found = {}
    for r, other in run_pairs(ra, rb):
        diff = run_differences(r, other)
        for k in PROVENANCE_COMPARED:
            x, y = (recorded(q, k) for q in (r, other))
            if x != y:
                diff[k] = (x, y)
        for k, (x, y) in diff.items():
            found.setdefault(k, set()).add((json.dumps(x), json.dumps(y)))
    return ", ".join(f"{k} " + " / ".join(f"{x}→{y}" for x, y in sorted(v)) for k, v in sorted(found.items())) or "–"


# ------------------------------------------------------------------------------------------------ dirty trees
def dirty_counts(groups: dict) -> list[str]:
    """`name: k of n runs` for each group ({name as printed: its runs}) with runs trained from a dirty tree."""
    return [f"{name}: {k} of {len(rs)} runs" for name, rs in groups.items() if (k := sum(map(is_dirty, rs)))]


def dirty_mark(ra, rb) -> str:
    """DIRTY_MARK where a pair of the two groups' runs holds a run trained from a dirty tree."""
    return DIRTY_MARK if any(is_dirty(r) or is_dirty(other) for r, other in run_pairs(ra, rb)) else ""


def dirty_note(groups: dict) -> list[str]:
    """The note below a table whose rows carry DIRTY_MARK: how many runs of each group ({name: its runs}) it marks."""
    counts = dirty_counts(groups)
    return ["", f"{DIRTY_MARK.strip()} pairs that hold a run trained from a dirty tree (uncommitted code: a `{DIRTY}` "
                "commit in final.json): " + "; ".join(counts) + "."] if counts else []
