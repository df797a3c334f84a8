"""The noise floor: where a folder paired in holds the same regularisers on the same splits under another seed (other
initialisation and batches, same images), how far a paired difference and one regulariser's accuracy move from the
seed alone (`stats.seed_floor`, `stats.seed_shift`): a section of a folder's table.md.
"""
from collections import defaultdict

import numpy as np

from reporting.groups import Group
from reporting.records import final_test_acc
from reporting.stats import seed_floor, seed_shift


def _by_split(g: Group) -> dict[int, tuple[int, float]]:
    return {r["run"]["split"]: (r["seed"], final_test_acc(r)) for r in g.runs}


def _replicated(mine: dict, other: dict, *labels) -> list[int]:
    """The splits that every group of `labels` has in both folders, under another seed in the other one."""
    return sorted(s for s in set.intersection(*(set(mine[l]) & set(other[l]) for l in labels))
                  if mine[labels[0]][s][0] != other[labels[0]][s][0])


def replicate_section(groups: dict[str, Group], others: dict[str, Group]) -> list[str]:
    """The noise floor: where a folder paired in holds the same regularisers on the same splits with another seed
    (other initialisation and batches, same images), each paired difference A − B of this folder against the same
    difference there, split by split: how much of the spread across splits is the seed's."""
    mine = {g.label: _by_split(g) for g in groups.values()}
    theirs = defaultdict(dict)
    for g in others.values():
        theirs[g.folder][g.label] = _by_split(g)
    L = []
    for prefix, other in theirs.items():
        L += _replicated_differences(prefix, mine, other, header=not L)
        L += _replicated_accuracies(prefix, mine, other)
    return L


def _replicated_differences(prefix: str, mine: dict, other: dict, header: bool) -> list[str]:
    """Rows of each paired difference A − B under both seeds (`stats.seed_floor`), below the section's title and
    explanation where `header`."""
    labels = [k for k in mine if k in other]
    L = []
    for i, a in enumerate(labels):
        for b in labels[:i]:
            splits = _replicated(mine, other, a, b)
            if len(splits) < 2:
                continue
            d0 = np.array([100 * (other[a][s][1] - other[b][s][1]) for s in splits])
            d1 = np.array([100 * (mine[a][s][1] - mine[b][s][1]) for s in splits])
            f = seed_floor(d0, d1)
            if header and not L:
                L += ["", "## Replicate with another seed: the noise floor", "",
                      "Each row: a paired difference A − B (test accuracy, % points) in this folder and in the "
                      "folder paired in, whose runs have the same images but another seed (initialisation and "
                      "batches). Seed spread = std over splits of (d_this − d_other)/√2, the spread one "
                      "difference has from the seed alone; std of the means' difference = std over splits of "
                      "(d_this − d_other)/√n, how far an n-split mean difference moves under another seed; "
                      "split spread = std over splits of the two seeds' mean; smallest detectable = the mean "
                      "difference that a paired t-test on n splits finds with 80 % power at p < 0.05, from the "
                      "std of single-seed differences.", "",
                      "| A − B | other folder | splits | mean (this seed) | mean (other seed) | mean of both, "
                      "95 % CI | seed spread | std of the means' difference | split spread | std of single-seed "
                      "differences | smallest detectable on n splits |", "|" + "---|" * 11]
            L.append(f"| {a} − {b} | {prefix} | {len(splits)} | {d1.mean():+.2f} | {d0.mean():+.2f} | "
                     f"{f['mean']:+.2f} [{f['lo']:+.2f}, {f['hi']:+.2f}] | {f['seed_sd']:.2f} | {f['se']:.2f} | "
                     f"{f['split_sd']:.2f} | {f['sd']:.2f} | {f['mde']:.2f} |")
    return L


def _replicated_accuracies(prefix: str, mine: dict, other: dict) -> list[str]:
    """One regulariser's accuracy under both seeds (`stats.seed_shift`): what a retrained run (other seed or CPU)
    should expect."""
    rows = []
    for a in [k for k in mine if k in other]:
        splits = _replicated(mine, other, a)
        if len(splits) < 2:
            continue
        a0 = np.array([100 * other[a][s][1] for s in splits])
        a1 = np.array([100 * mine[a][s][1] for s in splits])
        f = seed_shift(a0, a1)
        rows.append(f"| {a} | {prefix} | {len(splits)} | {a1.mean():.2f} | {a0.mean():.2f} | {f['mean']:+.2f} "
                    f"[{f['lo']:+.2f}, {f['hi']:+.2f}] | {f['seed_sd']:.2f} | {f['se']:.2f} |")
    if not rows:
        return []
    return ["", "One regulariser's test accuracy (%) under the two seeds, split by split: seed spread of one "
            "run = std over splits of (this − other)/√2, how far a single run moves from the seed alone; "
            "the last column is the std of the difference of two n-split means with different seeds.", "",
            "| regulariser | other folder | splits | mean (this seed) | mean (other seed) | this − other, "
            "95 % CI | seed spread of one run | std of the difference of the means |",
            "|---|---|---|---|---|---|---|---|", *rows]

