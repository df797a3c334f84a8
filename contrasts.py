"""The comparisons a results folder named before its runs finished: OUT_DIR/contrasts.json

    {"note": ..., "contrasts": [{"name": ..., "a": "<side>", "b": "<side>", "metric": "test_acc"?}, ...]}

a side being a group of the folder ("sliding β0=1.1", or "sliding" standing for its one group) or of a folder paired
in ("mnist-250: vanilla"). The contrasts are one family, named in advance (`contrast_family`): wherever one of them
appears (the folder's table, a summary, a carry-over) it is read in that family (`preregistered_pairs`). A contrast
scores final test accuracy unless it names a collapse metric (`contrast_metric`).
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np

from compare import Comparison, differs_in, dirty_mark, dirty_note, family, paired
from groups import Group, folder_groups, matches, own, parse_side, unresolved
from records import final_test_acc, read_json
from runs import ReportError
from stats import NO_DIFFERENCE, judge, level_text

CONTRASTS_FILE = "contrasts.json"  # comparisons named before the runs finish: {"contrasts": [{"name", "a", "b"}, ...]}


class Contrast(NamedTuple):
    """One contrast of a contrasts.json as the tables read it."""
    spec: dict  # its entry, with each side found replaced by its group's name
    metric: dict  # `contrast_metric`
    missing: dict  # {side as written: the names of the groups it matches} for each side without one group
    comparison: Comparison | None  # None where a side is missing


def contrast_metric(name: str) -> dict:
    """What a contrast scores: `test_acc` (final test accuracy, in % points, with the ±NO_DIFFERENCE margin), or
    `<train|test>:<collapse metric>` (its value at the last epoch; lower is nearer collapse, no margin was set)."""
    if name == "test_acc":
        return dict(label="test accuracy (% points)", unit=100, margin=NO_DIFFERENCE, lower_is_better=False,
                    get=final_test_acc)
    where, _, key = name.partition(":")
    if where not in ("train", "test") or not key:
        raise ValueError(f"{CONTRASTS_FILE}: unknown metric {name!r}; use test_acc or train:<collapse metric> "
                         "(e.g. train:etf_distance_means)")
    # every collapse metric is 0 at neural collapse, but for Tr Σ_B, which grows with the separation of the classes
    return dict(label=f"{key} ({where}, last epoch)", unit=1, margin=None,
                lower_is_better=key != "between_class_variation",
                get=lambda r: r["final"][where].get(key))


def read_contrasts(path: Path) -> dict:
    """A contrasts.json: {"note", "contrasts": [{"name", "a", "b", "metric"?}, ...]}, every field a string; one
    ReportError naming the expected form otherwise."""
    spec, wrong = read_json(path)
    if wrong or not (isinstance(spec, dict) and isinstance(spec.get("contrasts"), list) and all(
            isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("name", "a", "b"))
            and isinstance(c.get("metric", ""), str) for c in spec["contrasts"])):
        why = f"it {wrong}" if wrong else "no such file" if spec is None else ("each contrast needs a name, a and b, "
                                                                               "as strings")
        raise ReportError(f"{path} cannot be read as contrasts ({why}): expected "
                          '{"note": ..., "contrasts": [{"name", "a", "b", "metric"?}, ...]}; fix it, or move it away '
                          "to report the folder without its contrasts")
    return spec


def _contrasts(spec: dict, groups: dict[str, Group]) -> list[Contrast]:
    """Each contrast of a contrasts.json with its sides found among `groups` and, where both are, its `paired`
    comparison on its metric (a pair left out where either run has no value of it: undefined, or not recorded)."""
    rows = []
    for c in spec["contrasts"]:
        found = {k: matches(groups, *parse_side(c[k])) for k in "ab"}
        name = {k: f[0] if len(f) == 1 else None for k, f in found.items()}
        missing = {c[k]: found[k] for k in "ab" if name[k] is None}
        metric = contrast_metric(c.get("metric", "test_acc"))
        comparison = None if missing else paired(groups[name["a"]].runs, groups[name["b"]].runs, metric["get"],
                                                 metric["unit"])
        rows.append(Contrast(dict(c, a=name["a"] or c["a"], b=name["b"] or c["b"]), metric, missing, comparison))
    return rows


def contrast_family(out: Path, groups: dict[str, Group]):
    """OUT/contrasts.json's contrasts found among `groups`, as (spec, `Contrast`s, level, Holm t, Holm Wilcoxon)
    (`family`); None where the folder names none."""
    path = Path(out) / CONTRASTS_FILE
    if not path.exists():
        return None
    spec = read_contrasts(path)
    try:
        rows = _contrasts(spec, groups)
    except ValueError as e:  # an unknown metric
        raise ReportError(f"{path}: {e}") from None
    return (spec, rows, *family([r.comparison for r in rows], m=len(rows)))  # the family named in advance, run or not


def preregistered_pairs(out: Path, groups: dict[str, Group]) -> dict:
    """{(a, b): (level, Holm-corrected t-test p)} of the test-accuracy contrasts that OUT/contrasts.json names and
    that have pairs among `groups` (a, b: the groups' names): the family other tables read such a comparison in."""
    fam = contrast_family(out, groups)
    if fam is None:
        return {}
    _, rows, level, t_adj, _ = fam
    return {(r.spec["a"], r.spec["b"]): (level, ta) for r, ta in zip(rows, t_adj)
            if not r.missing and r.comparison.n and r.metric["unit"] == 100}


def family_of(preregistered: dict, a, b):
    """(level, Holm-corrected t-test p, ...) of the comparison a − b where `preregistered` (`preregistered_pairs`)
    holds it, either way round; else None."""
    return preregistered.get((a, b)) or preregistered.get((b, a))


def contrast_groups(folder: Path, cache: dict) -> dict[str, Group]:
    """The groups a folder's contrasts.json is read among outside its table (a summary, a carry-over): the folder's
    own finished groups, named as in its table, and those of the folders its contrasts name by prefix (its
    siblings); each folder loaded once into `cache` (`groups.folder_groups`)."""
    groups = own(folder_groups(folder, cache))
    contrasts = read_contrasts(Path(folder) / CONTRASTS_FILE)["contrasts"]
    for sibling in sorted({parse_side(c[k])[0] for c in contrasts for k in "ab"} - {""}):
        groups.update(folder_groups(Path(folder).parent / sibling, cache))
    return groups


def contrasts_section(out: Path, groups: dict[str, Group]) -> list[str]:
    """The contrasts named in OUT/contrasts.json before the runs finished, each a paired difference A − B with its
    95 % CI, t-test and Wilcoxon p, both Holm-corrected over the contrasts, and what the CI lets one say. A side may
    be a group of a folder paired in; a contrast scores test accuracy unless it names another `metric`."""
    fam = contrast_family(out, groups)
    if fam is None:
        return []
    spec, rows, level, t_adj, w_adj = fam
    tested = len(rows)  # the family named in advance (`contrast_family`)
    scored = any("metric" in c and c["metric"] != "test_acc" for c in spec["contrasts"])
    L = ["", f"## Pre-registered contrasts ({CONTRASTS_FILE}, named before the runs finished)", "",
         spec.get("note", ""), "",
         f"p-values corrected by Holm over the {tested} pre-registered contrasts; each verdict reads the Bonferroni "
         f"{level_text(level)} CI (95 % for the family): 'no difference' only when it lies within "
         f"±{NO_DIFFERENCE:g} points" + (" (accuracy only; a collapse metric has no such margin, and lower is "
                                        "better)" if scored else "") + ", else 'not detected' with the effects it "
         "still allows.", "",
         "| contrast | A − B | " + ("metric | " if scored else "") + "pairs | mean difference" +
         ("" if scored else " (% points)") + " | 95 % CI | t-test p (Holm) | Wilcoxon p (Holm) | "
         f"{level_text(level)} CI | verdict | runs also differ in |",
         "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scored else "")]
    marked = {}
    for row, ta, wa in zip(rows, t_adj, w_adj):
        c = row.spec
        sides = [] if row.missing else [groups[c["a"]], groups[c["b"]]]
        mark = dirty_mark(*(g.runs for g in sides)) if sides else ""
        marked.update({g.name: g.runs for g in sides} if mark else {})
        head = f"| {c['name']} | {c['a']} − {c['b']}{mark} | " + (f"{row.metric['label']} | " if scored else "")
        differs = differs_in(*(g.runs for g in sides)) if sides else "–"
        L.append(head + _contrast_cells(row, level, ta, wa) + f" | {differs} |")
    return L + dirty_note(marked)


def _contrast_cells(row: Contrast, level: float, ta: float, wa: float) -> str:
    """A contrast's cells from its pairs to its verdict: the paired difference, its 95 % CI, the t-test and Wilcoxon
    p with their Holm-corrected values (`ta`, `wa`), its CI at the family's `level` and the verdict; or why not yet."""
    c, metric = row.comparison, row.metric
    if row.missing or not c.n:
        why = unresolved(row.missing) if row.missing else (
            f"no pair with a value of {metric['label']}" if c.left_out else "not yet: no shared split")
        return f"0 | – | – | – | – | – | {why}"
    digits = 2 if metric["unit"] == 100 else 3
    blo, bhi, says = judge(c.n, c.mean, c.std, level, metric["margin"], metric["lower_is_better"], digits)
    ci, bci = [f"[{x:+.{digits}f}, {y:+.{digits}f}]" if np.isfinite(x) else "–" for x, y in (c.ci, (blo, bhi))]
    pairs = f"{c.n} ({c.left_out} left out: no value)" if c.left_out else f"{c.n}"
    return f"{pairs} | {c.mean:+.{digits}f} | {ci} | {c.t_p:.3g} ({ta:.3g}) | {c.w_p:.3g} ({wa:.3g}) | {bci} | {says}"
