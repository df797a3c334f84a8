"""Does a finding carry over from one dataset to another? The `--SUMMARY` table of a spec that names, for each dataset,
the results folder whose `contrasts.json` pre-registered the comparisons:

    {"title": ..., "note": ...,
     "carry_over": {"MNIST-250": "mnist-250-tuned-hofer-l2", "Fashion-MNIST-250": "fashionmnist-250-tuned-hofer-l2"}}

One row per contrast that every dataset's folder names (matched by name): on each dataset the paired difference A − B,
its CI at the family's Bonferroni level, the Holm-corrected t-test p and the verdict, exactly as in that folder's
table.md (`contrasts.contrast_families`); and the carry-over, set by `carries_over`. Beside it, each dataset's collapse
geometry at the last epoch for the groups the contrasts name: Tr Σ_W / Tr Σ_B on the training subset and the test set
(Papyan, Han & Donoho, PNAS 2020: within-class variability → 0 relative to the between-class one) and the ETF distance
of the class means.
"""
from pathlib import Path

import numpy as np

from common.runs import ReportError, atomic_write
from reporting.contrasts import CONTRASTS_FILE, Contrast, contrast_families, contrast_groups
from reporting.labels import LABELS
from reporting.records import metric_value, read_summary_spec
from reporting.stats import judge, level_text, mean_std

KEY = "carry_over"  # a --SUMMARY spec with this key is a carry-over table
GEOMETRY = [(where, key, f"{where} {LABELS[key]['geometry']}") for key in ("scale_free_variation", "etf_distance_means")
            for where in ("train", "test")]  # (set, metric, column) of the collapse geometry beside the contrasts
RULE = ("A dataset's direction is + or − where the CI at its family's level lies above or below 0, and 0 where it "
        "contains 0. The same non-zero direction on every dataset: **carries over**; both + and −: **differs**; 0 on "
        "every dataset: **not detected on either**; otherwise (0 on some, one non-zero direction on the others): "
        "**unresolved**.")


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
    missing = [f for f in datasets.values() if not (Path(spec_path).parent / f / CONTRASTS_FILE).is_file()]
    if missing:
        raise ReportError(f"{spec_path}: no {CONTRASTS_FILE} in {', '.join(missing)} (relative to "
                          f"{Path(spec_path).parent}): each dataset's folder must hold its pre-registered contrasts")
    return spec


def dataset_family(folder: Path) -> tuple[dict, float, dict]:
    """A dataset's pre-registered family as its folder's table.md reads it: ({contrast name: (its `Contrast`, Holm
    t-test p)}, the family's level, {group name: runs} of the groups it names)."""
    groups = contrast_groups(folder, {})
    fam = next(f for f in contrast_families(folder, groups)[1] if not f.exploratory)
    rows, level, t_adj = fam.rows, fam.level, fam.t_adj
    family = {row.spec["name"]: (row, ta) for row, ta in zip(rows, t_adj)}
    named = {row.spec[k]: groups[row.spec[k]].runs for row, _ in family.values() for k in "ab" if row.spec[k] in groups}
    return family, level, named


def _cells(entry: tuple[Contrast, float], level: float) -> tuple[list[str], str | None]:
    """A dataset's cells of one contrast (A − B, CI at the family's level, Holm p, verdict) and its direction (None:
    not yet run)."""
    row, ta = entry
    c, metric = row.comparison, row.metric
    if row.missing or c is None or c.n < 2:
        return ["–", "–", "–", "not yet: " + (f"no finished group {' nor '.join(row.missing)}" if row.missing else
                                                "fewer than 2 pairs")], None
    digits = 2 if metric["unit"] == 100 else 3
    lo, hi, says = judge(c.n, c.mean, c.std, level, metric["margin"], metric["lower_is_better"], digits)
    ci = f"[{lo:+.{digits}f}, {hi:+.{digits}f}]" if np.isfinite(lo) else "–"
    return [f"{c.mean:+.{digits}f} ({c.n} pairs)", ci, f"{ta:.3g}", says], direction(lo, hi) if np.isfinite(lo) else (
        "+" if c.mean > 0 else "−" if c.mean < 0 else "0")


def write_carry_over(spec_path: Path) -> Path:
    """<spec>.md beside a carry-over spec (see the module's docstring): the contrasts row by row on every dataset with
    the carry-over set by `carries_over`, then the collapse geometry of each dataset's groups."""
    spec_path = Path(spec_path)
    spec = read_spec(spec_path)
    datasets = spec[KEY]
    families = {ds: dataset_family(spec_path.parent / folder) for ds, folder in datasets.items()}
    first = next(iter(families.values()))[0]
    names = [n for n in first if all(n in fam for fam, _, _ in families.values())]
    unmatched = sorted({n for fam, _, _ in families.values() for n in fam} - set(names))
    levels = {ds: level_text(level) for ds, (_, level, _) in families.items()}
    L = [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), "",
         f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of "
         + ", ".join(f"`{f}/`" for f in datasets.values()) + " and the folders their contrasts name. Each dataset's "
         "contrasts are one pre-registered family (its folder's `contrasts.json`): A − B is the mean paired "
         "difference in final test accuracy (% points, paired by split and seed), its CI is read at the family's "
         "Bonferroni level (" + "; ".join(f"{ds}: {lv}" for ds, lv in levels.items()) + "), p is the paired t-test's, "
         "Holm-corrected over the family, and the verdict is the one of the folder's table.md.", "", RULE, "",
         "| contrast | " + " | ".join(f"{ds}: A − B | {ds}: {levels[ds]} CI | {ds}: Holm p | {ds}: verdict"
                                      for ds in datasets) + " | carry-over |",
         "|---|" + "---|---|---|---|" * len(datasets) + "---|"]
    for name in names:
        cells, dirs = [], []
        for ds, (fam, level, _) in families.items():
            c, d = _cells(fam[name], level)
            cells += c
            dirs.append(d)
        verdict = "not yet" if None in dirs else f"**{carries_over(dirs)}** ({', '.join(dirs)})"
        L.append(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    if unmatched:
        L += ["", f"Contrasts not named on every dataset, left out: {', '.join(unmatched)}."]
    L += ["", "## Collapse geometry at the last epoch (mean ± std over splits)", "",
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
    path = spec_path.with_suffix(".md")
    atomic_write(path, "\n".join(L) + "\n")
    return path


def _geometry(rs: list[dict], where: str, key: str) -> str:
    """mean ± std (3 significant digits) of a collapse metric over the runs where it is defined, 'k of n' where not
    every run."""
    values = [v for r in rs if np.isfinite(v := metric_value(r["final"].get(where, {}), key))]
    return mean_std(values, ".3g", ".2g") + (f" ({len(values)} of {len(rs)})" if len(values) < len(rs) else "")
