"""`--NAME=value` overrides of an entry script's constants, type-checked against the constant.

    python mnist_top.py --EPOCHS=20 --SPLITS=0-2 --HOFER_BETAS=0.1,0.3,1.0 --DATA_ROOT=/data

A value is parsed as the type of the constant it replaces (its row in `constants.CONSTANTS`; for a name
not there, the type of its value): bool (true/false/1/0), int, float (an int is accepted), str, or a list
of one of those — given as `a,b,c`, as `[a, b, c]`, and for integers also as a range `10-19`. An unknown
name or a value of the wrong type is one `ConfigError` naming both.
"""
import ast
import math
import re

from common.constants import CONSTANTS, kind

MAX_INTEGER = 2 ** 53  # an integer setting beyond this is not a float exactly, nor a seed torch takes


class ConfigError(ValueError):
    """A bad override or an invalid constant; raised before any training starts."""


def _cut(text: str) -> str:
    """A value as a message quotes it: whole, or its first 20 characters where it is long."""
    return repr(text) if len(text) <= 40 else repr(text[:20] + "…")


def _parse_scalar(text: str, kind: type, name: str):
    text = text.strip()
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
    elif kind is str:
        return text
    else:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
            raise ConfigError(f"--{name}={_cut(text)}: a number of {len(str(abs(value)))} digits, too large for a "
                              f"setting (at most {MAX_INTEGER:.3g})")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is float and type(value) is float and not math.isfinite(value):
            raise ConfigError(f"--{name}={text!r}: not a finite number (a float's range ends near 1.8e308)")
        if type(value) is kind:
            return value
    raise ConfigError(f"--{name}={text!r}: expected {kind.__name__}")


def _parse_list(text: str, element: type, name: str) -> list:
    text = text.strip()
    if text.startswith("["):
        text = text[1:-1] if text.endswith("]") else text[1:]
    values = []
    for piece in filter(None, (p.strip().strip("'\"") for p in text.split(","))):
        if element is int and re.fullmatch(r"\d+-\d+", piece):
            lo, hi = map(int, piece.split("-"))
            if hi < lo:
                raise ConfigError(f"--{name}: empty range {piece!r}")
            values += list(range(lo, hi + 1))
        else:
            values.append(_parse_scalar(piece, element, name))
    return values


def apply_overrides(constants: dict, argv: list[str]) -> dict:
    """A copy of `constants` (NAME → default) with each `--NAME=value` of `argv` applied, type-checked."""
    cfg = dict(constants)
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise ConfigError(f"cannot read argument {arg!r}: write overrides as --NAME=value, "
                              f"for example --EPOCHS=20")
        name, text = arg[2:].split("=", 1)
        if name not in cfg:
            close = [k for k in cfg if k.lower() == name.lower()]
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(sorted(cfg))}"
            raise ConfigError(f"unknown setting --{name}{hint}")
        element, is_list = _kind(name, cfg[name])
        cfg[name] = _parse_list(text, element, name) if is_list else _parse_scalar(text, element, name)
    return cfg


def _kind(name: str, default) -> tuple[type, bool]:
    """(element type, whether a list) of a constant: its type in constants.CONSTANTS, else that of its default (a
    list's first element; str for an empty list)."""
    if name in CONSTANTS:
        return kind(CONSTANTS[name].type)
    if isinstance(default, list):
        return type(default[0]) if default else str, True
    return type(default), False
