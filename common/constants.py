"""The one table of the entry scripts' constants: for each, its type, its role in a run, and what a config.json
written before it existed implies. No torch, so that the report needs none.

The values (and their one-line comments) stay at the top of `mnist_top.py` and `svhn_top.py`, where a user reads and
overrides them; this table says what the code needs to know of each, and everything else derives from it:

* `config.apply_overrides` parses `--NAME=value` as the constant's `type`;
* `experiment.validate` refuses a constant missing from the table or from the script, or a value not of its type;
* `runs.NOT_RUN_DEFINING` (what a run's config.json and a folder's settings.json leave out) is every constant whose
  role is not DEFINING, and `runs.IMPLIED_WHEN_MISSING` holds each `implied` value;
* `experiment.validate` refuses a PER_RUN list that names a value twice.

A new constant: its line in both scripts, and its row here (with `implied` where it is run-defining and older runs
computed as one value of it); `tests/test_constants.py` fails until both agree.
"""
import typing
from typing import NamedTuple

DEFINING = "defining"  # changes what a run computes; the same for every run of an OUT_DIR (config.json, settings.json)
PER_RUN = "per run"  # a list the study plans over: each run takes one value, which its folder's name holds
NOT_DEFINING = "not defining"  # where and how a run is trained, logged or saved, not what it computes
ROLES = (DEFINING, PER_RUN, NOT_DEFINING)
NOTHING = object()  # `implied` of a constant without such a value: a config.json lacking it differs


class Constant(NamedTuple):
    """What the code needs to know of one constant.

    Attributes
    ----------
    type : type
        bool, int, float or str, or ``list[<one of those>]``: what `config.apply_overrides` parses a value as (a
        float constant also takes an int, as a number without a point).
    role : str
        DEFINING, PER_RUN or NOT_DEFINING.
    implied : object
        For a DEFINING constant added after runs were written: the value that a config.json without the key means
        (what every earlier run computed with); NOTHING otherwise.
    """
    type: type
    role: str
    implied: object = NOTHING


CONSTANTS = {  # in the scripts' order
    # name                   type         role
    # data
    "DATASET":               Constant(str,         DEFINING),
    "DATA_ROOT":             Constant(str,         NOT_DEFINING),
    "DOWNLOAD":              Constant(bool,        NOT_DEFINING),
    "VERIFY_DATA":           Constant(bool,        NOT_DEFINING),
    "TRAIN_SIZE":            Constant(int,         DEFINING),
    "SPLITS":                Constant(list[int],   PER_RUN),
    "AUGMENT":               Constant(bool,        DEFINING),
    "CROP_PADDING":          Constant(int,         DEFINING),
    # model and optimiser
    "MODEL":                 Constant(str,         DEFINING),
    "EPOCHS":                Constant(int,         DEFINING),
    "LRS":                   Constant(list[float], PER_RUN),
    "MOMENTUM":              Constant(float,       DEFINING),
    # implied: plain momentum was the only choice
    "NESTEROV":              Constant(bool,        DEFINING, implied=False),
    # implied: every earlier run learned its linear classifier
    "ETF_CLASSIFIER":        Constant(bool,        DEFINING, implied=False),
    "WEIGHT_DECAY":          Constant(float,       DEFINING),
    "GROUPS_PER_BATCH":      Constant(int,         DEFINING),
    "SAMPLES_PER_GROUP":     Constant(int,         DEFINING),
    # regularisers
    "REGULARIZERS":          Constant(list[str],   PER_RUN),
    "METRIC":                Constant(str,         DEFINING),
    "LAMBDAS":               Constant(list[float], PER_RUN),
    "HOFER_BETAS":           Constant(list[float], PER_RUN),
    "SLIDING_BETA0S":        Constant(list[float], PER_RUN),
    # runs, logs, output
    "SEED":                  Constant(int,         DEFINING),
    "EVAL_EPOCHS":           Constant(int,         DEFINING),
    "EVAL_TEST_EVERY_EPOCH": Constant(bool,        DEFINING),
    "EVAL_BATCH":            Constant(int,         NOT_DEFINING),
    # implied: every earlier run used shipped splits, which no validation set changes
    "VAL_SIZE":              Constant(int,         DEFINING, implied=10_000),
    "CKPT_EVERY":            Constant(int,         NOT_DEFINING),
    "OUT_DIR":               Constant(str,         NOT_DEFINING),
    "DEVICE":                Constant(str,         NOT_DEFINING),
    # implied: every earlier run was on a CPU, whose kernels are deterministic
    "DETERMINISTIC":         Constant(bool,        DEFINING, implied=True),
    "EXECUTOR":              Constant(str,         NOT_DEFINING),
    "RAY_ADDRESS":           Constant(str,         NOT_DEFINING),
    "CPUS_PER_RUN":          Constant(int,         NOT_DEFINING),
    "GPUS_PER_RUN":          Constant(float,       NOT_DEFINING),
    "THREADS":               Constant(int,         NOT_DEFINING),
    "PROGRESS":              Constant(bool,        NOT_DEFINING),
    "REPORT_ONLY":           Constant(bool,        NOT_DEFINING),
    "PAIR_WITH":             Constant(list[str],   NOT_DEFINING),
}


def kind(declared) -> tuple[type, bool]:
    """(element type, whether a list) of a `Constant.type`: ``list[int]`` → (int, True); ``float`` → (float,
    False)."""
    if typing.get_origin(declared) is list:
        return typing.get_args(declared)[0], True
    return declared, False


def type_name(declared) -> str:
    """``int``, ``list[float]``: a `Constant.type` as a message names it."""
    element, is_list = kind(declared)
    return f"list[{element.__name__}]" if is_list else element.__name__


def has_type(value, declared) -> bool:
    """Whether `value` is of a `Constant.type`: exactly the scalar type (a bool is no int), an int also for a float;
    for a list, a list of such values."""
    element, is_list = kind(declared)

    def scalar(v):
        return type(v) is element or element is float and type(v) is int
    return all(map(scalar, value)) if is_list and isinstance(value, list) else not is_list and scalar(value)


def type_errors(constants: dict) -> list[str]:
    """What keeps a script's constants (NAME → value) from agreeing with the table: `NAME=value: expected <type>` for
    each not of its table type, `NAME: not in constants.CONSTANTS ...` for each the table lacks, and `NAME: missing
    ...` for each of the table the script lacks; [] where they agree."""
    wrong = [f"{k}: not in constants.CONSTANTS (a new constant needs its row there)" if k not in CONSTANTS else
             f"{k}={v!r}: expected {type_name(CONSTANTS[k].type)}" for k, v in constants.items()
             if k not in CONSTANTS or not has_type(v, CONSTANTS[k].type)]
    return wrong + [f"{k}: missing (a constant of constants.CONSTANTS: give it a value in the script)"
                    for k in CONSTANTS if k not in constants]


def named(role: str) -> tuple[str, ...]:
    """The names of the constants of one role (DEFINING, PER_RUN or NOT_DEFINING), in the table's order."""
    return tuple(k for k, c in CONSTANTS.items() if c.role == role)
