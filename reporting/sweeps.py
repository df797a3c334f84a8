"""Sweeps: which finished runs of a folder form a sweep of one parameter (β, β0 or λ) or a full grid of two, on the
splits where every value finished, and their tables: the accuracies value by value and split by split, and on
held-out splits (10–19) the held-out choice (`stats.choose`) against the entry script's default from study.json.
"""
from collections import defaultdict
from pathlib import Path

import numpy as np

from common.runs import ReportError, read_json_object, run_settings
from reporting.records import final_test_acc, final_val_acc
from reporting.stats import choose, mean_std, setting_text

HELD_OUT_SPLITS = range(10, 20)  # the scripts' convention: splits 10-19 are for choosing hyperparameters, 0-9 reported
SWEPT = {"beta": "β", "beta0": "β0", "lam": "λ"}  # run_settings keys that a study may sweep, and their symbols
DEFAULT_OF = {"beta": "HOFER_BETAS", "beta0": "SLIDING_BETA0S", "lam": "LAMBDAS"}  # the script's list of each
SCALE_FILE = "centroid_scale.json"  # beside a center_sliding grid's runs: its r0 on sliding's scale (`read_centroid_scale`)
SCALED = "center_sliding"  # the regulariser whose grid that file's default and ratio are for


def sweeps(finished: list[dict], defaults: dict | None = None, scale: dict | None = None) -> list[dict]:
    """Every sweep among the finished runs: one regulariser and learning rate, one parameter (β, β0 or λ) taking
    several values while the others stay fixed, on the splits where every value finished (so that means compare
    like with like), or a full grid of two (`_grid`). Each: dict(reg, lr, param, values, fixed, splits,
    test[value, split], val[value, split] or None, default: the value to beat from study.json's `defaults`). A grid of
    center_sliding with a `scale` (`read_centroid_scale`) holds that file's default pair and states its ratio."""
    out = []
    by_reg = defaultdict(list)
    for r in finished:
        by_reg[r["run"]["regularizer"], r["run"]["lr"]].append((run_settings(r["run"], r["config"]), r))
    for (reg, lr), items in sorted(by_reg.items()):
        grid = _grid(reg, lr, items)
        out += [grid] if grid else _one_parameter_sweeps(reg, lr, items)
    return [dict(sw, default=tuple(scale["default"]), scale=scale) if scale and sw["reg"] == SCALED
            and sw["param"] == ("beta0", "lam") else dict(sw, default=script_default(defaults or {}, sw["param"]))
            for sw in out]


def _one_parameter_sweeps(reg: str, lr: float, items: list[tuple[dict, dict]]) -> list[dict]:
    """The sweeps of one parameter among the runs (settings, run) of one regulariser and learning rate: for each
    parameter with several values, one sweep per setting of the others."""
    out = []
    for param in SWEPT:
        if len({s[param] for s, _ in items}) < 2:
            continue
        rest = [k for k in SWEPT if k != param]
        for fixed in sorted({tuple(s[k] for k in rest) for s, _ in items}, key=str):
            runs = {(s[param], r["run"]["split"]): r for s, r in items if tuple(s[k] for k in rest) == fixed}
            values = sorted({v for v, _ in runs})
            if len(values) >= 2 and (sw := _sweep(runs, values, reg=reg, lr=lr, param=param,
                                                  fixed={k: f for k, f in zip(rest, fixed) if f is not None})):
                out.append(sw)
    return out


def _grid(reg: str, lr: float, items: list[tuple[dict, dict]]) -> dict | None:
    """The runs of one regulariser and learning rate as one sweep over the settings of a full grid, where two
    parameters vary and every pair of their values was run (e.g. β0 ∈ {1.1, 2} × λ ∈ {0.03, 0.1}): `param` is the
    pair of names, `values` the settings as tuples (row-major), `axes` the values of each, on the splits every setting
    finished. None where the settings are not a full grid (one parameter at a time, or an L of one-parameter sweeps:
    `sweeps` reads those one parameter at a time)."""
    params = tuple(p for p in SWEPT if len({s[p] for s, _ in items}) > 1)
    if len(params) != 2:
        return None
    axes = [sorted({s[p] for s, _ in items}) for p in params]
    values = [(x, y) for x in axes[0] for y in axes[1]]
    runs = {(tuple(s[p] for p in params), r["run"]["split"]): r for s, r in items}
    if {v for v, _ in runs} != set(values):
        return None
    return _sweep(runs, values, reg=reg, lr=lr, param=params, axes=axes, fixed={})


def _sweep(runs: dict, values: list, **fields) -> dict | None:
    """A sweep (`fields` and its `values`) from its runs {(value, split): run}: on the splits where every value
    finished, the test accuracy test[value, split], the validation accuracy val[value, split] (None unless every
    run logged one; `logged_val`: the same as lists, None where a run logged none), and `without_val`, the names of the runs that logged none where others did (then the sweep has
    no held-out choice: `held_out_choice`); None where no split has every value."""
    splits = sorted(sp for sp in {sp for _, sp in runs} if all((v, sp) in runs for v in values))
    if not splits:
        return None
    test = np.array([[final_test_acc(runs[v, sp]) for sp in splits] for v in values])
    val = [[final_val_acc(runs[v, sp]) for sp in splits] for v in values]
    lacking = [runs[v, sp]["name"] for v in values for sp in splits if final_val_acc(runs[v, sp]) is None]
    return dict(fields, values=values, splits=splits, test=test, val=None if lacking else np.array(val),
                logged_val=val, without_val=lacking if len(lacking) < len(values) * len(splits) else [])


def held_out_choice(sw: dict, default=None) -> tuple[object, str, str] | None:
    """The held-out choice of a sweep (`stats.choose` against `default`) as (choice, why, by: the accuracy it reads);
    None where it has none: on reported splits, or where some of its runs logged a validation accuracy and others
    did not (`without_val`: a choice by test accuracy would then read the test images of the runs that have a
    validation accuracy too). A sweep whose runs all lack one is chosen by test accuracy, and its table says so."""
    if not is_held_out(sw["splits"]) or sw.get("without_val"):
        return None
    by = "validation" if sw["val"] is not None else "test"
    return (*choose(sw["values"], sw["val"] if sw["val"] is not None else sw["test"], default), by)


def is_held_out(splits) -> bool:
    """Whether a comparison uses only held-out splits, where picking the best value is legitimate."""
    return all(sp in HELD_OUT_SPLITS for sp in splits)


def script_default(defaults: dict, param: str | tuple):
    """The entry script's default for a swept parameter (the value a sweep has to beat), from study.json's
    script_defaults, or for a grid's pair of parameters the pair of their defaults; None where not recorded (then the
    best mean is the choice)."""
    if isinstance(param, tuple):
        pair = tuple(script_default(defaults, p) for p in param)
        return None if None in pair else pair
    values = defaults.get(DEFAULT_OF[param]) or [None]
    return values[0]


def sweep_table(sw: dict, default=None) -> list[str]:
    """A sweep's accuracies value by value and split by split; on held-out splits, also the held-out choice
    (`stats.choose` against `default`), else why there is none. A grid (`_grid`) is `grid_table`."""
    if isinstance(sw["param"], tuple):
        return grid_table(sw, default)
    sym, held_out = SWEPT[sw["param"]], is_held_out(sw["splits"])
    fixed = ", ".join(f"{SWEPT[k]}={v:g}" for k, v in sw["fixed"].items())
    L = ["", f"## {sw['reg']}'s {sym} {'sweep' if held_out else 'values'}"
             f"{f' ({fixed})' if fixed else ''}: final accuracy (%) on the {len(sw['splits'])} splits every "
             f"{sym} finished", "",
         f"| {sym} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"]) + " | test mean ± std | "
         "validation mean ± std |", "|---|" + "---|" * (len(sw["splits"]) + 2)]
    chosen = held_out_choice(sw, default)
    return L + _value_rows(sw, chosen and chosen[0]) + _choice_note(
        sw, chosen and f"{sym} = {chosen[0]:g} ({chosen[1]})", f"{sym} is chosen", "row")


def _value_rows(sw: dict, choice) -> list[str]:
    """One row per value (or setting) of a sweep: its test accuracy split by split, test and validation mean ± std
    ('–' where a run of the row logged no validation accuracy), the held-out `choice` marked (None: none)."""
    def val_text(i: int) -> str:
        row = sw["logged_val"][i]
        return "–" if None in row else mean_std(100 * np.array(row))
    return [f"| {setting_text(v)}{' (held-out choice)' if choice is not None and v == choice else ''} | "
            + " | ".join(f"{100 * a:.2f}" for a in row) + f" | {mean_std(100 * row)} | {val_text(i)} |"
            for i, (v, row) in enumerate(zip(sw["values"], sw["test"]))]


def _choice_note(sw: dict, chosen: str | None, what: str, unit: str) -> list[str]:
    """The sentence below a sweep: its held-out choice (`chosen`: what, and why; None: `held_out_choice` has none),
    the runs without a validation accuracy that prevent one, or why a sweep on reported splits has none."""
    if not is_held_out(sw["splits"]):
        return ["", f"These include reported splits (0–9): {what} on the held-out splits 10–19, not here "
                    f"(picking the best {unit} would select on the very splits being reported)."]
    if sw.get("without_val"):
        lacking = sw["without_val"]
        return ["", f"No held-out choice: {len(lacking)} of {len(sw['values']) * len(sw['splits'])} runs log no "
                    f"validation accuracy ({', '.join(lacking)}), so the {unit}s cannot all be compared on it, and "
                    "comparing them on test accuracy would select on the test images. Retrain those runs with the "
                    "current code (it logs val_acc) to have a choice."]
    by = "validation" if sw["val"] is not None else "test"
    return ["", f"Held-out choice by {by} accuracy: {chosen}."
            + ("" if by == "validation" else " These runs log no validation accuracy, so the choice uses the "
                                             "test images: kept for the record, not for new choices.")]


def grid_table(sw: dict, default=None) -> list[str]:
    """A grid of two parameters read as one sweep over its settings: the validation mean of each setting (rows: the
    first parameter, columns: the second) with its paired difference from the default setting (where the default lies
    outside the grid: from the held-out choice) and that difference's
    SE, then each setting's accuracies split by split; on held-out splits, one held-out choice for the whole grid
    (`stats.choose` over the settings against the default pair), else why there is none."""
    (p, q), (rows, cols) = sw["param"], sw["axes"]
    syms, held_out = (SWEPT[p], SWEPT[q]), is_held_out(sw["splits"])
    by = "validation" if sw["val"] is not None else "test"
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    chosen = held_out_choice(sw, default)
    choice = chosen and chosen[0]
    n = len(sw["splits"])
    pair = f"({syms[0]}, {syms[1]})"
    reference = default if default in sw["values"] else choice  # what the brackets are differences from
    base = sw["values"].index(reference) if reference in sw["values"] else None

    def cell(v) -> str:
        i = sw["values"].index(v)
        text = mean_std(100 * acc[i])
        if base is not None and i != base and n > 1:
            d = 100 * (acc[i] - acc[base])
            text += f" ({d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(n):.2f})"
        text += " (default)" if i == base and reference == default else ""
        return text + (" **(held-out choice)**" if choice is not None and v == choice else "")

    L = ["", f"## {sw['reg']}'s {pair} {'grid' if held_out else 'values'}: {len(sw['values'])} settings on the "
             f"{n} splits every setting finished", ""] + _scale_lines(sw) + [
         f"{by.capitalize()} accuracy (%), mean ± std over splits {', '.join(map(str, sw['splits']))}"
         + (f"; in brackets, the paired difference from the {'default' if reference == default else 'held-out choice'} "
            f"({setting_text(reference)}) ± its paired standard "
            "error (points)" if base is not None and n > 1 else "") + ".", "",
         f"| {syms[0]} \\ {syms[1]} | " + " | ".join(f"{c:g}" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    L += [f"| {r:g} | " + " | ".join(cell((r, c)) for c in cols) + " |" for r in rows]
    L += ["", f"| {syms[0]}, {syms[1]} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"])
          + " | test mean ± std | validation mean ± std |", "|---|" + "---|" * (n + 2)]
    L += _value_rows(sw, choice) + _choice_note(
        sw, chosen and f"one for the grid, {pair} = ({setting_text(choice)}) ({chosen[1]})", f"{pair} is chosen",
        "setting")
    if held_out and len(rows) == len(cols) == 2:
        L += ["", "Each parameter took two values, so every setting is a corner of the grid: the choice says which "
                  "corner the rule prefers (the paired differences and SEs above say by how much), not where an "
                  "optimum lies; a value outside the grid was not tried."]
    return L


def read_centroid_scale(out: Path) -> dict | None:
    """OUT/centroid_scale.json, written by tools/centroid_scale.py before a center_sliding grid: {"ratio", "beta0s",
    "r0s", "default": [r0, λmax], "measured": {...}}; None where there is none. One ReportError where it is not
    such an object."""
    path = Path(out) / SCALE_FILE
    found = read_json_object(path, "a centroid scale", '{"ratio": ..., "beta0s": [...], "r0s": [...], "default": '
                             '[r0, λmax], ...} as tools/centroid_scale.py writes it; run the tool again to rewrite it')
    if not found:
        return None
    numbers = lambda v, k: isinstance(v, list) and len(v) == k and all(  # noqa: E731
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    if not (numbers([found.get("ratio")], 1) and numbers(found.get("beta0s"), len(found.get("r0s") or []))
            and numbers(found.get("r0s"), len(found.get("beta0s") or [])) and numbers(found.get("default"), 2)):
        raise ReportError(f"{path}: expected a number 'ratio', lists 'beta0s' and 'r0s' of numbers of one length and "
                          "'default' = [r0, λmax], as tools/centroid_scale.py writes them; run the tool again to "
                          "rewrite it")
    return found


def _scale_lines(sw: dict) -> list[str]:
    """For a grid of r0 on sliding's scale (`centroid_scale`): the ratio and the β0 each r0 stands for."""
    scale = sw.get("scale")
    if not scale:
        return []
    m = scale.get("measured", {})
    return [f"r0 (shown as {SWEPT['beta0']}) is a distance to the group mean, put on sliding's scale of tree edges: "
            f"r0 = β0 × {scale['ratio']:.4g} ("
            + ", ".join(f"β0 {b:g} → r0 {r:g}" for b, r in zip(scale["beta0s"], scale["r0s"]))
            + f"), the ratio of the median code-to-group-mean distance to the median spanning-tree edge over the "
            f"group batches of epochs {m.get('epochs', '?')} of sliding runs on splits "
            f"{', '.join(str(x.get('split')) for x in m.get('splits', []))} ({SCALE_FILE}, tools/centroid_scale.py); "
            f"the default pair ({setting_text(tuple(scale['default']))}) is the image of sliding's default (1.1, 0.1).",
            ""]
