"""Does a finding carry over from one dataset to another? The `--SUMMARY` table of a spec that names, for each dataset,
the results folder whose `contrasts.json` pre-registered the comparisons:

    {"title": ..., "note": ...,
     "carry_over": {"MNIST-250": "mnist-250-tuned-hofer-l2", "Fashion-MNIST-250": "fashionmnist-250-tuned-hofer-l2"}}

One row per contrast that every dataset's folder names (matched by name), in every family that is not exploratory:
on each dataset the paired difference A − B, its CI at its family's Bonferroni level, the Holm-corrected t-test p and
the verdict, exactly as in that folder's table.md (`contrasts.contrast_families`); and the carry-over, set by
`carries_over`. With "replicates": {"contrasts": [names], "folders": {"<dataset>": "<earlier folder>"}} (another seed),
each contrast it names, named alike in the earlier folders, is also read for its replication (`replicated`). Beside it, each dataset's collapse
geometry at the last epoch for the groups the contrasts name: Tr Σ_W / Tr Σ_B on the training subset and the test set
(Papyan, Han & Donoho, PNAS 2020: within-class variability → 0 relative to the between-class one) and the ETF distance
of the class means.
"""
from pathlib import Path

import numpy as np

from common.runs import ReportError, atomic_write
from reporting.answer import Reading, answer_section
from reporting.contrasts import CONTRASTS_FILE, Contrast, contrast_families, contrast_groups
from reporting.labels import LABELS
from reporting.records import metric_value, read_summary_spec
from reporting.stats import judge, level_text, mean_std

KEY = "carry_over"  # a --SUMMARY spec with this key is a carry-over table
ANSWER = "answer"  # optional: the questions the table answers, and what each direction of a CI says (`answer`)
REPLICATION = "replicates"  # optional: {"contrasts": [names], "folders": {dataset: an earlier folder (another seed)}}
GEOMETRY = [(where, key, f"{where} {LABELS[key]['geometry']}") for key in ("scale_free_variation", "etf_distance_means")
            for where in ("train", "test")]  # (set, metric, column) of the collapse geometry beside the contrasts
RULE = ("A dataset's direction is + or − where the CI at its family's level lies above or below 0, and 0 where it "
        "contains 0. The same non-zero direction on every dataset: **carries over**; both + and −: **differs**; 0 on "
        "every dataset: **not detected on either**; otherwise (0 on some, one non-zero direction on the others): "
        "**unresolved**.")
REPLICATION_RULE = ("Replication: a contrast named alike in an earlier folder of the same dataset (another seed) "
                    "**replicates** where both directions are the same and non-zero, is **opposite** where they are + "
                    "and −, **not detected under either seed** where both are 0, and **unresolved** otherwise (0 "
                    "under one seed).")


def direction(lo: float, hi: float) -> str:
    """'+', '−' or '0' as the interval [lo, hi] lies above 0, below 0, or contains it."""
    return "+" if lo > 0 else "−" if hi < 0 else "0"


def carries_over(directions: list[str]) -> str:
    """The rule of `RULE`, for the directions of one contrast on every dataset ('+', '−' or '0')."""
    signs = set(directions) - {"0"}
    if len(signs) > 1:
        return "differs"
    if not signs:
        return "not detected on either"
    return "carries over" if "0" not in directions else "unresolved"


def read_spec(spec_path: Path) -> dict:
    """{dataset: results folder} of a carry-over spec, each folder holding a contrasts.json; one ReportError naming the
    expected form otherwise."""
    spec = read_summary_spec(spec_path)
    datasets = spec.get(KEY)
    if not isinstance(datasets, dict) or len(datasets) < 2 or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in datasets.items()):
        raise ReportError(f"{spec_path}: expected {{\"{KEY}\": {{\"<dataset>\": \"<results folder>\", ...}}}} naming "
                          "at least two datasets, each a folder (relative to the spec) whose contrasts.json "
                          "pre-registered the comparisons")
    earlier = (spec.get(REPLICATION) or {}).get("folders", {})
    if set(earlier) - set(datasets):
        raise ReportError(f"{spec_path}: \"{REPLICATION}\" names {sorted(set(earlier) - set(datasets))}, which "
                          f"\"{KEY}\" does not: name each dataset as it does")
    missing = [f for f in [*datasets.values(), *earlier.values()]
               if not (Path(spec_path).parent / f / CONTRASTS_FILE).is_file()]
    if missing:
        raise ReportError(f"{spec_path}: no {CONTRASTS_FILE} in {', '.join(missing)} (relative to "
                          f"{Path(spec_path).parent}): each dataset's folder must hold its pre-registered contrasts")
    return spec


def dataset_family(folder: Path) -> tuple[dict, dict, dict]:
    """A dataset's pre-registered families as its folder's table.md reads them (the exploratory one left out):
    ({contrast name: (its `Contrast`, Holm t-test p)}, {contrast name: (its family's name, its family's level)},
    {group name: runs} of the groups they name)."""
    groups = contrast_groups(folder, {})
    families = [f for f in contrast_families(folder, groups)[1] if not f.exploratory]
    family = {row.spec["name"]: (row, ta) for f in families for row, ta in zip(f.rows, f.t_adj)}
    where = {row.spec["name"]: (f.name, f.level) for f in families for row in f.rows}
    named = {row.spec[k]: groups[row.spec[k]].runs for row, _ in family.values() for k in "ab" if row.spec[k] in groups}
    return family, where, named


def reading(entry: tuple[Contrast, float], level: float) -> Reading | None:
    """A dataset's `answer.Reading` of one contrast read at its family's `level` (None: a group not yet run); where
    no CI exists (every pair the same), the direction is the mean's sign."""
    row, _ = entry
    c, metric = row.comparison, row.metric
    if row.missing or c is None:
        return None
    if c.n < 2:
        return Reading(c.n, c.mean, np.nan, np.nan, level, None, metric["unit"] == 100, False)
    points = metric["unit"] == 100
    lo, hi, says = judge(c.n, c.mean, c.std, level, metric["margin"], metric["lower_is_better"], 2 if points else 3)
    d = direction(lo, hi) if np.isfinite(lo) else "+" if c.mean > 0 else "−" if c.mean < 0 else "0"
    return Reading(c.n, c.mean, lo, hi, level, d, points, row.spec.get("scale") == "log10", says)


def _cells(entry: tuple[Contrast, float], level: float, name_level: bool = False) -> tuple[list[str], str | None]:
    """A dataset's cells of one contrast (A − B, CI at the family's level, Holm p, verdict) and its direction (None:
    not yet run); with `name_level`, the CI says its level."""
    row, ta = entry
    r = reading(entry, level)
    if r is None or r.direction is None:
        return ["–", "–", "–", "not yet: " + (f"no finished group {' nor '.join(row.missing)}" if row.missing else
                                                "fewer than 2 pairs")], None
    digits = 2 if r.points else 3
    c = row.comparison
    ci = (f"[{r.lo:+.{digits}f}, {r.hi:+.{digits}f}]" + (f" ({level_text(level)})" if name_level else "")
          if np.isfinite(r.lo) else "–")
    return [f"{c.mean:+.{digits}f} ({c.n} pairs)", ci, f"{ta:.3g}", r.says], r.direction


def replication(then: str | None, now: str | None) -> str:
    """`REPLICATION_RULE` for one contrast on one dataset, from its earlier and its present direction (`direction`;
    None: not run)."""
    if then is None or now is None:
        return "not yet"
    return ("replicates" if then == now != "0" else "opposite" if {then, now} == {"+", "−"} else
            "not detected under either seed" if then == now == "0" else "unresolved")


def replicated(pairs: dict[str, tuple[str | None, str | None]]) -> str:
    """The replication of one contrast, dataset by dataset, from its (earlier, this) directions: `replication`."""
    return "; ".join(f"{ds}: not yet" if (v := replication(*dirs)) == "not yet" else f"{ds}: **{v}** ({', '.join(dirs)})"
                     for ds, dirs in pairs.items())


def write_carry_over(spec_path: Path) -> Path:
    """<spec>.md beside a carry-over spec (see the module's docstring): the contrasts row by row on every dataset with
    the carry-over set by `carries_over` (and, where the spec names earlier folders to replicate, the replication of
    the contrasts they share by name, `replicated`), then the collapse geometry of each dataset's groups."""
    spec_path = Path(spec_path)
    spec = read_spec(spec_path)
    datasets, replication = spec[KEY], (spec.get(REPLICATION) or {}).get("folders")
    replicated_names = (spec.get(REPLICATION) or {}).get("contrasts", [])
    families = {ds: dataset_family(spec_path.parent / folder) for ds, folder in datasets.items()}
    earlier = {ds: dataset_family(spec_path.parent / folder) for ds, folder in (replication or {}).items()}
    first = next(iter(families.values()))[0]
    names = [n for n in first if all(n in fam for fam, _, _ in families.values())]
    unmatched = sorted({n for fam, _, _ in families.values() for n in fam} - set(names))
    several = any(len({f for f, _ in where.values()}) > 1 for _, where, _ in families.values())  # families by row
    L = [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), ""]
    if ANSWER in spec:
        L += _answer(spec, spec_path, families, earlier, names) + ["", "## The contrasts", ""]
    L += _reading(spec_path, datasets, families, replication, replicated_names, several)
    for name in names:
        cells, dirs = [], []
        for ds, (fam, where, _) in families.items():
            c, d = _cells(fam[name], where[name][1], several)
            cells += c
            dirs.append(d)
        verdict = "not yet" if None in dirs else f"**{carries_over(dirs)}** ({', '.join(dirs)})"
        row = f"| {name} | " + (f"{families[next(iter(families))][1][name][0]} | " if several else "")
        row += " | ".join(cells) + f" | {verdict} |"
        if replication:
            shared = name in replicated_names and all(name in earlier.get(ds, ({},))[0] for ds in datasets)
            row += (" " + replicated({ds: (_cells(earlier[ds][0][name], earlier[ds][1][name][1])[1], d)
                                      for ds, d in zip(datasets, dirs)}) if shared else " –") + " |"
        L.append(row)
    if unmatched:
        L += ["", f"Contrasts not named on every dataset, left out: {', '.join(unmatched)}."]
    L += _geometry_section(families)
    path = spec_path.with_suffix(".md")
    atomic_write(path, "\n".join(L) + "\n")
    return path


def _reading(spec_path: Path, datasets: dict, families: dict, replication: dict | None, replicated_names: list,
             several: bool) -> list[str]:
    """How the table is read (its source, levels and rules) and its head; `several`: the datasets hold several
    families, so each row names its own."""
    levels = {ds: level_text(next(iter(where.values()))[1]) for ds, (_, where, _) in families.items()}
    return [f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of "
         + ", ".join(f"`{f}/`" for f in datasets.values()) + " and the folders their contrasts name. "
         + ("Each dataset's contrasts are pre-registered families (its folder's `contrasts.json`): A − B is the mean "
            "paired difference (paired by split and seed) in what the contrast scores, its CI is read at its family's "
            "Bonferroni level (named beside it), p is the paired t-test's, Holm-corrected within the family, and the "
            "verdict is the one of the folder's table.md." if several else
            "Each dataset's contrasts are one pre-registered family (its folder's `contrasts.json`): A − B is the mean "
            "paired difference in final test accuracy (% points, paired by split and seed), its CI is read at the "
            "family's Bonferroni level (" + "; ".join(f"{ds}: {lv}" for ds, lv in levels.items()) + "), p is the "
            "paired t-test's, Holm-corrected over the family, and the verdict is the one of the folder's table.md."),
         "", RULE] + (["", REPLICATION_RULE + " Replicated: " + ", ".join(replicated_names) + ", from "
                       + ", ".join(f"{ds} `{f}/`" for ds, f in replication.items()) + "."] if replication else []) + ["",
         "| contrast | " + ("family | " if several else "")
         + " | ".join(f"{ds}: A − B | {ds}: {'CI' if several else levels[ds] + ' CI'} | {ds}: Holm p | {ds}: verdict"
                      for ds in datasets) + " | carry-over |" + (" replication |" if replication else ""),
         "|---|" + ("---|" if several else "") + "---|---|---|---|" * len(datasets) + "---|"
         + ("---|" if replication else "")]


def _answer(spec: dict, spec_path: Path, families: dict, earlier: dict, names: list[str]) -> list[str]:
    """The spec's answer (`answer.answer_section`), from each dataset's reading of the contrasts its clauses name and,
    for a replicated contrast, its replication on each dataset; one ReportError where a clause names no contrast of
    the table."""
    replicated_names = (spec.get(REPLICATION) or {}).get("contrasts", [])
    readings = {n: {ds: reading(fam[n], where[n][1]) for ds, (fam, where, _) in families.items()} for n in names}
    replications = {}
    for n in set(replicated_names) & set(names):
        if all(n in earlier.get(ds, ({},))[0] for ds in families):
            then = {ds: reading(earlier[ds][0][n], earlier[ds][1][n][1]) for ds in families}
            replications[n] = {ds: replication(then[ds] and then[ds].direction, now and now.direction)
                               for ds, now in readings[n].items()}
    try:
        return answer_section(spec[ANSWER], readings, replications, spec_path.as_posix())
    except ValueError as e:
        raise ReportError(f"{spec_path}: {e}") from None


def _geometry_section(families: dict) -> list[str]:
    """Each dataset's collapse geometry at the last epoch for the groups its contrasts name (`dataset_family`), and
    the commits, CPUs and dates of the runs used."""
    L = ["", "## Collapse geometry at the last epoch (mean ± std over splits)", "",
         "Tr Σ_W / Tr Σ_B: within- over between-class variation of the penultimate features (0 at neural collapse); "
         "ETF distance of the means: how far the centred, normalised class means are from a simplex equiangular "
         "tight frame (0 at one).", "",
         "| dataset | group | runs | " + " | ".join(h for _, _, h in GEOMETRY) + " |",
         "|---|---|---|" + "---|" * len(GEOMETRY)]
    for ds, (_, _, named) in families.items():
        for label, rs in named.items():
            L.append(f"| {ds} | {label} | {len(rs)} | " + " | ".join(
                _geometry(rs, where, key) for where, key, _ in GEOMETRY) + " |")
    used = [r for _, _, named in families.values() for rs in named.values() for r in rs]
    if used:
        seen = {key: sorted({str(r["final"][key])[:10 if key == "date" else None] if r["final"].get(key) else
                             "not recorded" for r in used}) for key in ("commit", "cpu", "cpu_capability", "date")}
        L += ["", "Runs used: " + "; ".join(f"{key} {', '.join(v)}" for key, v in seen.items()) + "."]
    return L


def _geometry(rs: list[dict], where: str, key: str) -> str:
    """mean ± std (3 significant digits) of a collapse metric over the runs where it is defined, 'k of n' where not
    every run."""
    values = [v for r in rs if np.isfinite(v := metric_value(r["final"].get(where, {}), key))]
    return mean_std(values, ".3g", ".2g") + (f" ({len(values)} of {len(rs)})" if len(values) < len(rs) else "")
