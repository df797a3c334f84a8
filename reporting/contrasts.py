"""The comparisons a results folder named before its runs finished: OUT_DIR/contrasts.json, in one of two forms.

    {"note": ..., "contrasts": [{"name": ..., "a": "<side>", "b": "<side>", "metric": "test_acc"?}, ...]}
    {"note": ..., "families": [{"name": "accuracy", "note"?: ..., "exploratory"?: false,
                                "contrasts": [{"name", "a", "b", "metric"?, "scale"?: "log10"}, ...]}, ...]}

a side being a group of the folder ("sliding β0=1.1", or "sliding" standing for its one group) or of a folder paired
in ("mnist-250: vanilla"). The first form is one family. Each family is named in advance: its p-values are
Holm-corrected within it and its verdicts read its Bonferroni CI, wherever one of its contrasts appears (the folder's
table, a summary, a carry-over: `preregistered_pairs`); an exploratory family is shown with 95 % CIs and uncorrected
p-values, and claims nothing. A contrast scores final test accuracy unless it names a collapse metric, or the ratio
Tr Σ_W / Tr Σ_B (`scale_free_variation`), at the last epoch, optionally on a log10 scale (`contrast_metric`). Every
field is checked against `schema.CONTRASTS_SCHEMA` before anything is read.
"""
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.runs import ReportError
from common.schema import CONTRASTS_SCHEMA, check, metric_problem
from reporting.compare import Comparison, differs_in, dirty_mark, dirty_note, family, paired
from reporting.groups import Group, folder_groups, matches, own, parse_side, unresolved
from reporting.records import final_test_acc, metric_value, read_json
from reporting.stats import NO_DIFFERENCE, judge, level_text

CONTRASTS_FILE = "contrasts.json"  # comparisons named before the runs finish (the module's docstring)
EXPLORATORY_LEVEL = 0.95  # an exploratory family's CIs: each comparison alone, no correction


class Contrast(NamedTuple):
    """One contrast of a contrasts.json as the tables read it."""
    spec: dict  # its entry, with each side found replaced by its group's name
    metric: dict  # `contrast_metric`
    missing: dict  # {side as written: the names of the groups it matches} for each side without one group
    comparison: Comparison | None  # None where a side is missing


class Family(NamedTuple):
    """One family of a contrasts.json, read: its contrasts, the level its CIs are read at, and their t-test and
    Wilcoxon p-values, Holm-corrected within the family (as they are for an exploratory one)."""
    name: str  # "" for the one family of the first form
    note: str
    exploratory: bool
    rows: list[Contrast]
    level: float
    t_adj: list[float]
    w_adj: list[float]


def contrast_metric(name: str, scale: str | None = None) -> dict:
    """What a contrast scores: `test_acc` (final test accuracy, in % points, with the ±NO_DIFFERENCE margin), or
    `<train|test>:<metric>` (its value at the last epoch; lower is nearer collapse, no margin was set), with
    scale="log10" its base-10 logarithm (a difference of logs: the log of a ratio)."""
    if wrong := metric_problem(name):
        raise ValueError(f"{CONTRASTS_FILE}: {wrong}")
    if name == "test_acc":
        return dict(label="test accuracy (% points)", unit=100, margin=NO_DIFFERENCE, lower_is_better=False,
                    get=final_test_acc)
    where, _, key = name.partition(":")

    def get(r):
        v = metric_value(r["final"].get(where) or {}, key)
        if scale == "log10":
            return math.log10(v) if v > 0 else None
        return v if math.isfinite(v) else None
    # every collapse metric is 0 at neural collapse, but for Tr Σ_B, which grows with the separation of the classes
    return dict(label=f"{'log10 ' if scale else ''}{key} ({where}, last epoch)", unit=1, margin=None,
                lower_is_better=key != "between_class_variation", get=get)


def read_contrasts(path: Path) -> dict:
    """A contrasts.json in either form (`CONTRASTS_SCHEMA`), as {"note", "families": [{"name", "note", "exploratory",
    "contrasts"}], "one_family": whether it was the first form}; one ReportError naming the file, each field that is
    wrong, what was found and what is expected otherwise."""
    spec, wrong = read_json(path)
    recover = "fix it, or move it away to report the folder without its contrasts"
    if wrong or spec is None:
        raise ReportError(f"{path} cannot be read as contrasts ({f'it {wrong}' if wrong else 'no such file'}): "
                          f"expected {{\"note\": ..., \"families\": [...]}} or {{\"note\": ..., \"contrasts\": "
                          f"[...]}}; {recover}")
    form = "families" if isinstance(spec, dict) and "families" in spec else "one family"
    problems = check(spec, CONTRASTS_SCHEMA[form])
    if form == "families" and not problems:
        names = [c["name"] for fam in spec["families"] for c in fam["contrasts"]]
        problems = [f"contrast name {n!r} is used in more than one family: a name must say which contrast it is"
                    for n in sorted(set(names)) if names.count(n) > 1]
    if problems:
        raise ReportError(f"{path} cannot be read as contrasts: " + "; ".join(problems) + f"; {recover}")
    if form == "one family":
        families = [dict(name="", note="", exploratory=False, contrasts=spec["contrasts"])]
    else:
        families = [dict(dict(note="", exploratory=False), **fam) for fam in spec["families"]]
    return dict(note=spec.get("note", ""), families=families, one_family=form == "one family")


def _contrasts(contrasts: list[dict], groups: dict[str, Group]) -> list[Contrast]:
    """Each contrast with its sides found among `groups` and, where both are, its `paired` comparison on its metric
    (a pair left out where either run has no value of it: undefined, or not recorded)."""
    rows = []
    for c in contrasts:
        found = {k: matches(groups, *parse_side(c[k])) for k in "ab"}
        name = {k: f[0] if len(f) == 1 else None for k, f in found.items()}
        missing = {c[k]: found[k] for k in "ab" if name[k] is None}
        metric = contrast_metric(c.get("metric", "test_acc"), c.get("scale"))
        comparison = None if missing else paired(groups[name["a"]].runs, groups[name["b"]].runs, metric["get"],
                                                 metric["unit"])
        rows.append(Contrast(dict(c, a=name["a"] or c["a"], b=name["b"] or c["b"]), metric, missing, comparison))
    return rows


def read_families(spec: dict, groups: dict[str, Group]) -> list[Family]:
    """The families of a read contrasts.json (`read_contrasts`) among `groups`: each a family named in advance, its
    size the contrasts it names, run or not (`compare.family`); an exploratory one at 95 % with uncorrected p."""
    out = []
    for fam in spec["families"]:
        rows = _contrasts(fam["contrasts"], groups)
        comparisons = [r.comparison for r in rows]
        if fam["exploratory"]:
            level = EXPLORATORY_LEVEL
            t_adj, w_adj = ([getattr(c, k) if c else np.nan for c in comparisons] for k in ("t_p", "w_p"))
        else:
            level, t_adj, w_adj = family(comparisons, m=len(rows))
        out.append(Family(fam["name"], fam["note"], fam["exploratory"], rows, level, t_adj, w_adj))
    return out


def contrast_families(out: Path, groups: dict[str, Group]) -> tuple[dict, list[Family]] | None:
    """OUT/contrasts.json read (`read_contrasts`) and its families found among `groups` (`read_families`); None where
    the folder names none."""
    path = Path(out) / CONTRASTS_FILE
    if not path.exists():
        return None
    spec = read_contrasts(path)
    return spec, read_families(spec, groups)


def preregistered_pairs(out: Path, groups: dict[str, Group]) -> dict:
    """{(a, b): (level, Holm-corrected t-test p)} of the test-accuracy contrasts that OUT/contrasts.json names in a
    family that is not exploratory and that have pairs among `groups` (a, b: the groups' names): the family other
    tables read such a comparison in."""
    read = contrast_families(out, groups)
    if read is None:
        return {}
    return {(r.spec["a"], r.spec["b"]): (fam.level, ta) for fam in read[1] if not fam.exploratory
            for r, ta in zip(fam.rows, fam.t_adj) if not r.missing and r.comparison.n and r.metric["unit"] == 100}


def family_of(preregistered: dict, a, b):
    """(level, Holm-corrected t-test p, ...) of the comparison a − b where `preregistered` (`preregistered_pairs`)
    holds it, either way round; else None."""
    return preregistered.get((a, b)) or preregistered.get((b, a))


def contrast_groups(folder: Path, cache: dict) -> dict[str, Group]:
    """The groups a folder's contrasts.json is read among outside its table (a summary, a carry-over): the folder's
    own finished groups, named as in its table, and those of the folders its contrasts name by prefix (its
    siblings); each folder loaded once into `cache` (`groups.folder_groups`)."""
    groups = own(folder_groups(folder, cache))
    contrasts = [c for fam in read_contrasts(Path(folder) / CONTRASTS_FILE)["families"] for c in fam["contrasts"]]
    for sibling in sorted({parse_side(c[k])[0] for c in contrasts for k in "ab"} - {""}):
        groups.update(folder_groups(Path(folder).parent / sibling, cache))
    return groups


def contrasts_section(out: Path, groups: dict[str, Group]) -> list[str]:
    """The contrasts named in OUT/contrasts.json before the runs finished, family by family, each a paired difference
    A − B with its 95 % CI, t-test and Wilcoxon p, both Holm-corrected within its family, its CI at the family's
    Bonferroni level and what that CI lets one say (an exploratory family: 95 %, uncorrected). A side may be a group of
    a folder paired in; a contrast scores test accuracy unless it names another `metric`."""
    read = contrast_families(out, groups)
    if read is None:
        return []
    spec, families = read
    L = ["", f"## Pre-registered contrasts ({CONTRASTS_FILE}, named before the runs finished)", "", spec["note"], ""]
    if spec["one_family"]:
        return L + _family_table(families[0], groups, name_level=False)
    for fam in families:
        k = len(fam.rows)
        L += [f"### {fam.name}: " + (f"exploratory, {k} comparison{'s' if k > 1 else ''}" if fam.exploratory else
                                     f"a family of {k} contrast{'s' if k > 1 else ''}"), ""]
        L += [fam.note, ""] if fam.note else []
        L += _family_table(fam, groups, name_level=True) + [""]
    return L[:-1]


def _family_table(fam: Family, groups: dict[str, Group], name_level: bool) -> list[str]:
    """One family's sentence on how it is read, and its table: a row per contrast (`_contrast_cells`); with
    `name_level`, each verdict names the level of the CI it reads."""
    tested, level = len(fam.rows), fam.level
    scored = name_level or any(r.metric["unit"] != 100 for r in fam.rows)
    adjusted = "" if fam.exploratory else " (Holm)"
    if fam.exploratory:
        how = ("Exploratory: named in advance to be shown, not to be claimed; each CI is 95 % for that comparison "
               "alone and the p-values are not corrected.")
    else:
        how = (f"p-values corrected by Holm over the {tested} pre-registered contrasts"
               + (" of this family" if name_level else "") + f"; each verdict reads the Bonferroni {level_text(level)} "
               f"CI (95 % for the family): 'no difference' only when it lies within ±{NO_DIFFERENCE:g} points"
               + (" (accuracy only; a collapse metric has no such margin, and lower is better)" if scored else "")
               + ", else 'not detected' with the effects it still allows.")
    L = [how, "",
         "| contrast | A − B | " + ("metric | " if scored else "") + "pairs | mean difference" +
         ("" if scored else " (% points)") + f" | 95 % CI | t-test p{adjusted} | Wilcoxon p{adjusted} | "
         f"{level_text(level)} CI | verdict | runs also differ in |",
         "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scored else "")]
    marked = {}
    for row, ta, wa in zip(fam.rows, fam.t_adj, fam.w_adj):
        c = row.spec
        sides = [] if row.missing else [groups[c["a"]], groups[c["b"]]]
        mark = dirty_mark(*(g.runs for g in sides)) if sides else ""
        marked.update({g.name: g.runs for g in sides} if mark else {})
        head = f"| {c['name']} | {c['a']} − {c['b']}{mark} | " + (f"{row.metric['label']} | " if scored else "")
        differs = differs_in(*(g.runs for g in sides)) if sides else "–"
        L.append(head + _contrast_cells(row, fam, ta, wa, name_level) + f" | {differs} |")
    return L + dirty_note(marked)


def verdict_at(says: str, level: float, exploratory: bool = False) -> str:
    """A verdict that names the level of the CI it reads, where it reads one (and, for an exploratory comparison, says
    so)."""
    named = says if level_text(level) in says or "no CI" in says or "too few" in says else (
        f"{says} ({level_text(level)} CI)")
    return f"exploratory: {named}" if exploratory else named


def _contrast_cells(row: Contrast, fam: Family, ta: float, wa: float, name_level: bool = False) -> str:
    """A contrast's cells from its pairs to its verdict: the paired difference, its 95 % CI, the t-test and Wilcoxon
    p with their family's values (`ta`, `wa`), its CI at the family's level and the verdict; or why not yet."""
    c, metric, level = row.comparison, row.metric, fam.level
    if row.missing or not c.n:
        why = unresolved(row.missing) if row.missing else (
            f"no pair with a value of {metric['label']}" if c.left_out else "not yet: no shared split")
        return f"0 | – | – | – | – | – | {why}"
    digits = 2 if metric["unit"] == 100 else 3
    blo, bhi, says = judge(c.n, c.mean, c.std, level, metric["margin"], metric["lower_is_better"], digits)
    says = verdict_at(says, level, fam.exploratory) if name_level else says
    ci, bci = [f"[{x:+.{digits}f}, {y:+.{digits}f}]" if np.isfinite(x) else "–" for x, y in (c.ci, (blo, bhi))]
    pairs = f"{c.n} ({c.left_out} left out: no value)" if c.left_out else f"{c.n}"
    return f"{pairs} | {c.mean:+.{digits}f} | {ci} | {c.t_p:.3g} ({ta:.3g}) | {c.w_p:.3g} ({wa:.3g}) | {bci} | {says}"
