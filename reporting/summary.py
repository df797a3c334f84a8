"""The --SUMMARY table of rows: one paired comparison A − B per row, across results folders, from a spec

    {"title": ..., "note": ..., "rows": [{"setting": ..., "a": "<folder>: <group>", "b": "<folder>: <group>"}, ...]}

a folder relative to the spec's own folder, a group a label of that folder's table (or a regulariser's name standing
for its one group). Each row is read in one family (`compare.family`): a row that a folder's contrasts.json
pre-registered in that folder's family, as in its table.md; the other rows form the summary's own family.
"""
from pathlib import Path

import numpy as np

from common.runs import ReportError, atomic_write
from common.schedules import SCHEDULES
from reporting.compare import count, differs_in, dirty_mark, dirty_note, family, paired
from reporting.contrasts import CONTRASTS_FILE, contrast_groups, family_of, preregistered_pairs
from reporting.groups import Group, folder_groups, matches, pair_key, parse_side, unresolved
from reporting.records import read_summary_spec
from reporting.stats import NO_DIFFERENCE, judge, level_text, mean_std

SUMMARY_KEYS = ("setting", "a", "b")  # a summary row: {"setting": text, "a": "folder: group", "b": "folder: group"}


def write_summary(spec_path: Path) -> Path:
    """<spec>.md beside a JSON spec (see the module's docstring): per row both sides' test accuracy on the splits they
    share, the paired difference with its 95 % CI, the Holm-corrected p and the verdict in the row's family, and the
    settings in which the paired runs differ."""
    spec_path = Path(spec_path)
    spec = read_summary_spec(spec_path)
    rows = _summary_rows(spec_path, spec)
    folders = {}  # each folder's finished groups, loaded once (`groups.folder_groups`)
    sides = [[summary_side(spec_path, row[k], folders) for k in "ab"] for row in rows]
    compared = [paired(a.runs, b.runs) if a and b else None for (a, _), (b, _) in sides]
    pre = _preregistered(spec_path, rows, folders)
    fam = [family_of(pre, (a.folder, a.label), (b.folder, b.label)) if a and b else None for (a, _), (b, _) in sides]
    unregistered = [i for i, f in enumerate(fam) if f is None]
    level, t_adj, _ = family([compared[i] for i in unregistered])
    judged = {**{i: f[:2] for i, f in enumerate(fam) if f}, **dict(zip(unregistered, ((level, t) for t in t_adj)))}
    k = sum(bool(compared[i]) and compared[i].n >= 2 for i in unregistered)
    L = _summary_head(spec_path, spec, k, level)
    used, marked = [], {}
    for i, (row, ((a, why_a), (b, why_b))) in enumerate(zip(rows, sides)):
        mark = dirty_mark(a.runs, b.runs) if a and b else ""
        line, shared_runs = _summary_row(row, (a, b), compared[i], judged.get(i), mark, unresolved({**why_a, **why_b}))
        L.append(line)
        used += shared_runs
        marked.update({row["a"]: a.runs, row["b"]: b.runs} if mark else {})
    if any(fam):
        L += ["", "Rows read in a pre-registered family: "
              + "; ".join(f"{row['setting']} ({f[2]})" for row, f in zip(rows, fam) if f) + "."]
    L += dirty_note(marked) + _runs_used(used)
    path = spec_path.with_suffix(".md")
    atomic_write(path, "\n".join(L) + "\n")
    return path


def _summary_rows(spec_path: Path, spec: dict) -> list[dict]:
    """The rows of a summary spec; one ReportError naming the expected form where they are not of it."""
    rows = spec.get("rows")
    bad = [i for i, r in enumerate(rows or []) if not isinstance(r, dict) or set(SUMMARY_KEYS) - set(r)
           or any(not isinstance(r[k], str) or not parse_side(r[k])[0]
                  or parse_side(r[k])[1].split(" ")[0] not in SCHEDULES for k in "ab")]
    if not isinstance(rows, list) or not rows or bad:
        raise ReportError(f"{spec_path}: expected {{\"rows\": [{{\"setting\": ..., \"a\": \"<folder>: <group>\", "
                          f"\"b\": ...}}, ...]}}, each group led by a regulariser ({', '.join(SCHEDULES)})"
                          + (f"; rows {bad} are not of that form" if bad else ""))
    return rows


def summary_side(spec_path: Path, text: str, cache: dict) -> tuple[Group | None, dict]:
    """A summary's side "<folder>: <group>" (the folder relative to the spec's): (its finished group, {}), or where
    the folder has no such group or several, (None, {the side as printed: the names of the groups it matches}) for
    `groups.unresolved`. The folder's groups are loaded once into `cache`."""
    folder, label = parse_side(text)
    path = (Path(spec_path).parent / folder).resolve()
    groups = folder_groups(path, cache)
    found = matches(groups, path.name, label)
    return (groups[found[0]], {}) if len(found) == 1 else (None, {f"{path.name}: {label}": found})


def _preregistered(spec_path: Path, rows: list[dict], cache: dict) -> dict:
    """{((folder, label), (folder, label)): (level, Holm-corrected p, its contrasts file)} of the comparisons that the
    contrasts.json of a folder the rows name pre-registered (`contrasts.preregistered_pairs`), each group keyed by
    its folder's name and its label."""
    pre = {}
    for folder in sorted({parse_side(row[k])[0] for row in rows for k in "ab"}):
        path = spec_path.parent / folder
        if not (path / CONTRASTS_FILE).exists():
            continue
        groups, name = contrast_groups(path, cache), path.resolve().name
        key = {n: (g.folder or name, g.label) for n, g in groups.items()}
        pre.update({(key[a], key[b]): (*v, f"{path.name}/{CONTRASTS_FILE}")
                    for (a, b), v in preregistered_pairs(path, groups).items()})
    return pre


def _summary_head(spec_path: Path, spec: dict, tested: int, level: float) -> list[str]:
    """A summary's title, note, how it reads its rows (`tested` of them in its own family, read at `level`), and
    the head of its table."""
    return [f"# {spec.get('title', spec_path.stem)}", "", spec.get("note", ""), "",
            f"Generated by `report.py --SUMMARY={spec_path.as_posix()}` from the run logs of the folders named below "
            "(each folder's `table.md` has its runs' configuration and provenance). Test accuracy in %, final epoch, "
            "mean ± std (ddof 1) over the splits both sides share; A − B paired by split and seed, with its 95 % CI "
            f"(Student's t). The paired t-test p is Holm-corrected over the {count(tested, 'row')} that no folder "
            f"pre-registered, and each of their verdicts reads the Bonferroni {level_text(level)} CI of that family; "
            "a pre-registered row is read in its own family, as in its folder's table.md. 'No difference' only when "
            f"that CI lies within ±{NO_DIFFERENCE:g} points, else 'not detected' with the effects it still allows.",
            "", "| setting | A | B | splits | A: test accuracy | B: test accuracy | A − B (% points) | 95 % CI | "
            "t-test p (Holm) | verdict | runs also differ in |", "|---|---|---|---|---|---|---|---|---|---|---|"]


def _summary_row(row: dict, sides: tuple, c, judged, mark: str, why: str) -> tuple[str, list[dict]]:
    """A summary's line for a row whose sides are `sides` (groups, or None: no finished group), their `paired`
    comparison `c` (None: a side is missing, `why`), (level, Holm-corrected p) of its family and its DIRTY_MARK;
    and the runs it used."""
    if c is None:
        return f"| {row['setting']} | {row['a']} | {row['b']} | 0 | – | – | – | – | – | {why} | – |", []
    ra, rb = sides[0].runs, sides[1].runs
    level, ta = judged
    lo, hi = c.ci
    p = f"{c.t_p:.3g} ({ta:.3g})" if np.isfinite(c.t_p) else "–"
    return (f"| {row['setting']}{mark} | {row['a']} | {row['b']} | {c.n} "
            f"({', '.join(str(k[0]) for k in c.shared)}) | {mean_std([100 * c.a[k] for k in c.shared])} | "
            f"{mean_std([100 * c.b[k] for k in c.shared])} | " + (f"{c.mean:+.2f} | " if c.n else "– | ")
            + (f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "–")
            + f" | {p} | {judge(c.n, c.mean, c.std, level)[2] if c.n else 'not yet: no shared split'} | "
              f"{differs_in(ra, rb)} |", [r for r in ra + rb if pair_key(r) in c.shared])


def _runs_used(used: list[dict]) -> list[str]:
    """The line naming the commits, CPUs, devices and dates of the runs a summary used."""
    if not used:
        return []
    seen = {key: sorted({str(r["final"].get(key, "not recorded"))[:10 if key == "date" else None] for r in used})
            for key in ("commit", "cpu", "device", "date")}
    return ["", "Runs used: " + "; ".join(f"{key} {', '.join(v)}" for key, v in seen.items()) + "."]
