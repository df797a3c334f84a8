"""The form of a hand-written JSON file, declared once: each field's type and meaning, checked by its one reader.
No torch, so that the report needs none.

    CONTRAST = {"name": Field(str, "what the tables call the contrast"), ...}
    errors = check(spec, FILE)   # [] or ["families[1].contrasts[0].metric: found 5 (a number), expected test_acc
                                 #        or <train|test>:<metric>"]: the reader names the file before each

The hand-written files, one schema each: a results folder's `contrasts.json` (`CONTRASTS_SCHEMA`, two forms),
`settings.json` (`SETTINGS_SCHEMA`), `study.json` (`STUDY_SCHEMA`) and a `--SUMMARY` spec (`SUMMARY_SCHEMA`, three
forms). A field is required unless it says otherwise; a field the schema does not declare is an error too (a misspelt
optional field would otherwise be read as its default). Numbers too large for a float, and NaN or infinities, are
errors wherever a number is expected.
"""
import math
from typing import Callable, NamedTuple

from common.collapse_names import METRIC_NAMES
from common.constants import CONSTANTS, DEFINING, kind


class Field(NamedTuple):
    """One field of a JSON object.

    Attributes
    ----------
    type : type or tuple of types
        What the JSON value must be: str, bool, int, float (an int is accepted), list or dict.
    meaning : str
        What it holds, as an error message says it ("expected <meaning>").
    required : bool
        Whether the object must have it.
    items : dict or None
        For a list of objects: the schema each item is checked against; for an object: its own schema.
    valid : callable or None
        valid(value) → None, or what is wrong with a value of the right type.
    """
    type: type | tuple
    meaning: str
    required: bool = True
    items: dict | None = None
    valid: Callable | None = None


def describe(value) -> str:
    """A found value in an error message: its text, cut, and its JSON kind."""
    kind = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{text[:60] + '…' if len(text) > 60 else text} ({kind})"


def _of_type(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds and int not in kinds:
        return math.isfinite(float(value)) if abs(value) < 2 ** 1024 else False
    if isinstance(value, float):
        return float in kinds and math.isfinite(value)
    return isinstance(value, kinds)


def check(obj, schema: dict, where: str = "") -> list[str]:
    """What is wrong with `obj` (parsed JSON) against `schema` ({field: Field}), one line per problem, each naming
    the field's path below `where` (`families[1].contrasts[0].metric`), what was found and what is expected; [] where
    nothing is."""
    if not isinstance(obj, dict):
        return [f"{where or 'the file'}: found {describe(obj)}, expected an object with the fields "
                + ", ".join(schema)]
    errors = [f"{where + '.' if where else ''}{k}: unknown field (found {describe(obj[k])}); expected only "
              + ", ".join(schema) for k in obj if k not in schema]
    for name, field in schema.items():
        path = f"{where}.{name}" if where else name
        if name not in obj:
            if field.required:
                errors.append(f"{path}: missing, expected {field.meaning}")
            continue
        value = obj[name]
        if not _of_type(value, field.type):
            errors.append(f"{path}: found {describe(value)}, expected {field.meaning}")
            continue
        if field.valid and (wrong := field.valid(value)):
            errors.append(f"{path}: found {describe(value)}: {wrong}; expected {field.meaning}")
        if field.items is not None and isinstance(value, dict):
            errors += check(value, field.items, path)
        elif field.items is not None:
            for i, item in enumerate(value):
                errors += check(item, field.items, f"{path}[{i}]")
    return errors


def _numbers(v) -> str | None:
    return None if all(_of_type(x, float) for x in v) else "a list of numbers (finite, as a float holds them)"


def _strings(v) -> str | None:
    return None if all(isinstance(x, str) for x in v) else "every entry a string"


def _text_values(v) -> str | None:
    return None if all(isinstance(x, str) and x for x in v.values()) else "every value a non-empty string"


# ------------------------------------------------------------------------------------------------ contrasts.json
RATIO = "scale_free_variation"  # Tr Σ_W / Tr Σ_B, computed from two logged metrics (`records.metric_value`)
SCORED = (*METRIC_NAMES, RATIO)  # what a contrast may score besides test accuracy, on the training or the test set
SCALES = ("log10",)  # what a contrast may score a metric on besides its own scale


def metric_problem(name: str) -> str | None:
    """What is wrong with a contrast's metric name (None: nothing): test_acc or <train|test>:<one of SCORED>."""
    where, _, key = name.partition(":")
    if name == "test_acc" or where in ("train", "test") and key in SCORED:
        return None
    return (f"unknown metric {name!r}; use test_acc or train:<metric> or test:<metric>, the metric one of "
            + ", ".join(SCORED))


def _distinct_names(items: list) -> str | None:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    twice = sorted({n for n in names if names.count(n) > 1}, key=str)
    return f"the name(s) {', '.join(map(repr, twice))} appear more than once" if twice else None


def _some(items: list) -> str | None:
    return None if items else "an empty list"


CONTRAST = {
    "name": Field(str, "the contrast's name, as every table prints it (unique in the file)"),
    "a": Field(str, "side A: a group of the folder (\"sliding\", \"hofer β=2\") or of a folder beside it "
                    "(\"mnist-250-tuned: vanilla\")"),
    "b": Field(str, "side B, named as side A"),
    "metric": Field(str, "test_acc (final test accuracy, the default) or <train|test>:<metric> at the last epoch, e.g. "
                         f"train:{RATIO} (Tr Σ_W / Tr Σ_B) or train:etf_distance_means", required=False,
                    valid=metric_problem),
    "scale": Field(str, "log10, to score the base-10 logarithm of the metric (a run whose value is not > 0 has none); "
                        "leave it out to score the metric as it is", required=False,
                   valid=lambda v: None if v in SCALES else "unknown scale"),
}
FAMILY = {
    "name": Field(str, "the family's name (e.g. accuracy, collapse)"),
    "note": Field(str, "what the family asks", required=False),
    "exploratory": Field(bool, "true for a family shown with 95 % CIs and uncorrected p-values, claiming nothing "
                               "(false, the default: Holm within the family)", required=False),
    "contrasts": Field(list, "a non-empty list of contrasts {name, a, b, metric?, scale?}", items=CONTRAST,
                       valid=lambda v: _some(v) or _distinct_names(v)),
}
CONTRASTS_SCHEMA = {  # the two forms of a contrasts.json (contrasts.py)
    "one family": {"note": Field(str, "what the contrasts ask, and when they were named", required=False),
                   "contrasts": Field(list, "a list of contrasts {name, a, b, metric?}", items=CONTRAST,
                                      valid=_distinct_names)},
    "families": {"note": Field(str, "what the families ask, and when they were named", required=False),
                 "families": Field(list, "a non-empty list of families {name, note?, exploratory?, contrasts}",
                                   items=FAMILY, valid=lambda v: _some(v) or _distinct_names(v))},
}




# ------------------------------------------------------------------------------------------------ settings.json
SETTINGS_SCHEMA = {  # every run-defining constant, of its type: what a folder's runs share (runs.read_settings)
    name: Field(kind(c.type)[0], f"{kind(c.type)[0].__name__}: the folder's {name}", required=False)
    for name, c in CONSTANTS.items() if c.role == DEFINING}

# ------------------------------------------------------------------------------------------------ study.json
STUDY_SCHEMA = {
    "script_defaults": Field(dict, "{\"HOFER_BETAS\": [...], \"SLIDING_BETA0S\": [...], \"LAMBDAS\": [...]}: the entry "
                                   "script's lists before overrides", required=False, items=None,
                             valid=lambda v: next((f"{k}: {w}" for k, x in v.items() if (w := (
                                 "not one of HOFER_BETAS, SLIDING_BETA0S, LAMBDAS" if k not in
                                 ("HOFER_BETAS", "SLIDING_BETA0S", "LAMBDAS") else "not a list" if not
                                 isinstance(x, list) else _numbers(x)))), None)),
    "pair_with": Field(list, "a list of the folders the study was paired with (repository-relative)", required=False,
                       valid=_strings),
}

# ------------------------------------------------------------------------------------------------ --SUMMARY specs
ROW = {"setting": Field(str, "what the row compares, as the table prints it"),
       "a": Field(str, "side A: \"<folder>: <group>\", the folder relative to the spec"),
       "b": Field(str, "side B, as side A")}
_TITLED = {"title": Field(str, "the summary's title", required=False),
           "note": Field(str, "what the summary asks, and when it was written", required=False)}


def _curves(v) -> str | None:
    for curve, sides in v.items():
        if not isinstance(sides, dict) or not sides:
            return f"curve {curve!r}: not an object of sizes"
        bad = [k for k, x in sides.items() if not (k.isdigit() and int(k) > 0 and isinstance(x, str) and x)]
        if bad:
            return f"curve {curve!r}: sizes {bad} are not a positive integer naming a \"<folder>: <group>\""
    return None


REPLICATES = {"contrasts": Field(list, "the names of the contrasts that the earlier folders name alike, each the same "
                                       "comparison (the same arms and settings)", valid=lambda v: _strings(v) or (
                                           None if v else "an empty list")),
              "folders": Field(dict, "{\"<dataset>\": \"<earlier results folder>\", ...}", valid=_text_values)}
CLAUSE = {"contrast": Field(str, "the name of a contrast of the table"),
          "subject": Field(str, "what the clause is about, e.g. \"sliding's test accuracy\""),
          **{d: Field(str, f"what a CI lying {where} says, e.g. \"is {says} vanilla's\"") for d, where, says in (
              ("+", "above 0", "higher than"), ("−", "below 0", "lower than"), ("0", "around 0",
                                                                               "not detectably different from"))},
          "meaning": Field(dict, "{\"+\" | \"−\" | \"0\": what that direction on every dataset means}",
                           required=False, valid=lambda v: _text_values(v) or (
                               None if set(v) <= {"+", "−", "0"} else "keys other than +, −, 0"))}
QUESTION = {"question": Field(str, "the question, e.g. \"Is the tree needed?\""),
            "clauses": Field(list, "a non-empty list of clauses {contrast, subject, +, −, 0}", items=CLAUSE,
                             valid=lambda v: None if v else "an empty list")}
SUMMARY_SCHEMA = {  # the three forms of a --SUMMARY spec, by the key that names the form
    "rows": {**_TITLED, "rows": Field(list, "a non-empty list of rows {setting, a, b}", items=ROW,
                                      valid=lambda v: None if v else "an empty list")},
    "size_curve": {**_TITLED, "size_curve": Field(dict, "{\"<curve>\": {\"<size>\": \"<folder>: <group>\", ...}, ...}",
                                                  valid=_curves),
                   "gaps": Field(list, "a list of [\"<curve A>\", \"<curve B>\"] pairs", required=False,
                                 valid=lambda v: None if all(isinstance(g, list) and len(g) == 2 and all(
                                     isinstance(x, str) for x in g) for g in v) else "not pairs of curve names")},
    "carry_over": {**_TITLED, "carry_over": Field(dict, "{\"<dataset>\": \"<results folder>\", ...}: at least two "
                                                        "datasets", valid=lambda v: _text_values(v) or (
                                                            None if len(v) >= 2 else "fewer than two datasets")),
                   "replicates": Field(dict, "{\"contrasts\": [the names of the contrasts replicated], \"folders\": "
                                             "{\"<dataset>\": \"<earlier results folder>\", ...}}: the earlier folders "
                                             "(another seed) that name those contrasts alike", required=False,
                                       items=REPLICATES),
                   "answer": Field(list, "a non-empty list of questions {question, clauses}: what each direction of "
                                         "a contrast's CI says, written before the runs", required=False,
                                   items=QUESTION, valid=lambda v: None if v else "an empty list")},
}
