"""Sweeps: which finished runs of a folder form a sweep of one parameter (β, β0 or λ) or a full grid of two, on the
splits where every value finished, and their tables: the accuracies value by value and split by split, and on
held-out splits (10–19) the held-out choice (`stats.choose`) against the entry script's default from study.json.
"""
from collections import defaultdict

import numpy as np

from records import final_test_acc, final_val_acc
from runs import run_settings
from stats import choose, mean_std, setting_text

HELD_OUT_SPLITS = range(10, 20)  # the scripts' convention: splits 10-19 are for choosing hyperparameters, 0-9 reported
SWEPT = {"beta": "β", "beta0": "β0", "lam": "λ"}  # run_settings keys that a study may sweep, and their symbols
DEFAULT_OF = {"beta": "HOFER_BETAS", "beta0": "SLIDING_BETA0S", "lam": "LAMBDAS"}  # the script's list of each


def sweeps(finished: list[dict], defaults: dict | None = None) -> list[dict]:
    """Every sweep among the finished runs: one regulariser and learning rate, one parameter (β, β0 or λ) taking
    several values while the others stay fixed, on the splits where every value finished (so that means compare
    like with like), or a full grid of two (`_grid`). Each: dict(reg, lr, param, values, fixed, splits,
    test[value, split], val[value, split] or None, default: the value to beat from study.json's `defaults`)."""
    out = []
    by_reg = defaultdict(list)
    for r in finished:
        by_reg[r["run"]["regularizer"], r["run"]["lr"]].append((run_settings(r["run"], r["config"]), r))
    for (reg, lr), items in sorted(by_reg.items()):
        grid = _grid(reg, lr, items)
        out += [grid] if grid else _one_parameter_sweeps(reg, lr, items)
    return [dict(sw, default=script_default(defaults or {}, sw["param"])) for sw in out]


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
    finished, the test accuracy test[value, split] and the validation accuracy val[value, split] (None where a run
    logged none); None where no split has every value."""
    splits = sorted(sp for sp in {sp for _, sp in runs} if all((v, sp) in runs for v in values))
    if not splits:
        return None
    test = np.array([[final_test_acc(runs[v, sp]) for sp in splits] for v in values])
    val = [[final_val_acc(runs[v, sp]) for sp in splits] for v in values]
    return dict(fields, values=values, splits=splits, test=test,
                val=None if any(a is None for row in val for a in row) else np.array(val))


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
    by = "validation" if sw["val"] is not None else "test"
    L = ["", f"## {sw['reg']}'s {sym} {'sweep' if held_out else 'values'}"
             f"{f' ({fixed})' if fixed else ''}: final accuracy (%) on the {len(sw['splits'])} splits every "
             f"{sym} finished", "",
         f"| {sym} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"]) + " | test mean ± std | "
         "validation mean ± std |", "|---|" + "---|" * (len(sw["splits"]) + 2)]
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    choice, why = choose(sw["values"], acc, default)
    return L + _value_rows(sw, choice if held_out else None) + _choice_note(
        held_out, by, f"{sym} = {choice:g} ({why})", f"{sym} is chosen", "row")


def _value_rows(sw: dict, choice) -> list[str]:
    """One row per value (or setting) of a sweep: its test accuracy split by split, test and validation mean ± std,
    the held-out `choice` marked (None: none)."""
    val = sw["val"] if sw["val"] is not None else [None] * len(sw["values"])
    return [f"| {setting_text(v)}{' (held-out choice)' if v == choice else ''} | "
            + " | ".join(f"{100 * a:.2f}" for a in row) + f" | {mean_std(100 * row)} | "
            f"{mean_std(100 * vrow) if vrow is not None else '–'} |" for v, row, vrow in zip(sw["values"], sw["test"], val)]


def _choice_note(held_out: bool, by: str, chosen: str, what: str, unit: str) -> list[str]:
    """The sentence below a sweep: its held-out choice (`chosen`: what, and why), or why a sweep on reported splits
    has none."""
    if held_out:
        return ["", f"Held-out choice by {by} accuracy: {chosen}."
                + ("" if by == "validation" else " These runs log no validation accuracy, so the choice uses the "
                                                 "test images: kept for the record, not for new choices.")]
    return ["", f"These include reported splits (0–9): {what} on the held-out splits 10–19, not here "
                f"(picking the best {unit} would select on the very splits being reported)."]


def grid_table(sw: dict, default=None) -> list[str]:
    """A grid of two parameters read as one sweep over its settings: the validation mean of each setting (rows: the
    first parameter, columns: the second) with its paired difference from the default setting and that difference's
    SE, then each setting's accuracies split by split; on held-out splits, one held-out choice for the whole grid
    (`stats.choose` over the settings against the default pair), else why there is none."""
    (p, q), (rows, cols) = sw["param"], sw["axes"]
    syms, held_out = (SWEPT[p], SWEPT[q]), is_held_out(sw["splits"])
    by = "validation" if sw["val"] is not None else "test"
    acc = sw["val"] if sw["val"] is not None else sw["test"]
    choice, why = choose(sw["values"], acc, default)
    n = len(sw["splits"])
    pair = f"({syms[0]}, {syms[1]})"
    base = sw["values"].index(default) if default in sw["values"] else None

    def cell(v) -> str:
        i = sw["values"].index(v)
        text = mean_std(100 * acc[i])
        if base is not None and i != base and n > 1:
            d = 100 * (acc[i] - acc[base])
            text += f" ({d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(n):.2f})"
        text += " (default)" if i == base else ""
        return text + (" **(held-out choice)**" if held_out and v == choice else "")

    L = ["", f"## {sw['reg']}'s {pair} {'grid' if held_out else 'values'}: {len(sw['values'])} settings on the "
             f"{n} splits every setting finished", "",
         f"{by.capitalize()} accuracy (%), mean ± std over splits {', '.join(map(str, sw['splits']))}"
         + (f"; in brackets, the paired difference from the default ({setting_text(default)}) ± its paired standard "
            "error (points)" if base is not None and n > 1 else "") + ".", "",
         f"| {syms[0]} \\ {syms[1]} | " + " | ".join(f"{c:g}" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    L += [f"| {r:g} | " + " | ".join(cell((r, c)) for c in cols) + " |" for r in rows]
    L += ["", f"| {syms[0]}, {syms[1]} | " + " | ".join(f"test, split {sp}" for sp in sw["splits"])
          + " | test mean ± std | validation mean ± std |", "|---|" + "---|" * (n + 2)]
    return L + _value_rows(sw, choice if held_out else None) + _choice_note(
        held_out, by, f"one for the grid, {pair} = ({setting_text(choice)}) ({why})", f"{pair} is chosen", "setting")

