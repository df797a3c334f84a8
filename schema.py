"""The form of a hand-written JSON file, declared once: each field's type and meaning, checked by its one reader.
No torch, so that the report needs none.

    CONTRAST = {"name": Field(str, "what the tables call the contrast"), ...}
    errors = check(spec, FILE)   # [] or ["families[1].contrasts[0].metric: found 5 (a number), expected test_acc
                                 #        or <train|test>:<metric>"]: the reader names the file before each

A field is required unless it says otherwise; a field the schema does not declare is an error too (a misspelt
optional field would otherwise be read as its default). Numbers too large for a float, and NaN or infinities, are
errors wherever a number is expected.
"""
import math
from typing import Callable, NamedTuple


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
        For a list of objects: the schema each item is checked against.
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
        if field.items is not None:
            for i, item in enumerate(value):
                errors += check(item, field.items, f"{path}[{i}]")
    return errors
