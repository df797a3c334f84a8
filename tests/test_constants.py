"""The table of constants (constants.py) against the entry scripts, and what derives from it."""
import pytest

import mnist_top
import svhn_top
from common import constants, runs
from common.constants import CONSTANTS, DEFINING, NOT_DEFINING, NOTHING, PER_RUN, has_type, kind, type_errors
from training import config, experiment
from training.config import ConfigError

SCRIPTS = (mnist_top, svhn_top)


def script_constants(module) -> dict:
    return {k: v for k, v in vars(module).items() if k.isupper()}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda m: m.__name__)
def test_every_constant_of_a_script_is_in_the_table_with_its_type(script):
    found = script_constants(script)
    assert not set(found) - set(CONSTANTS), f"{script.__name__}.py has constants the table lacks"
    assert not set(CONSTANTS) - set(found), f"constants.CONSTANTS names what {script.__name__}.py does not define"
    assert not type_errors(found)
    # the script's own value is of the table's type as the parser would read it (a float written with a point)
    for name, value in found.items():
        element, is_list = kind(CONSTANTS[name].type)
        assert isinstance(value, list) == is_list, name
        assert all(type(v) is element for v in (value if is_list else [value])), name


def test_the_table_names_no_constant_that_neither_script_defines():
    assert set(CONSTANTS) <= set().union(*map(script_constants, SCRIPTS))


def test_each_row_is_well_formed():
    for name, c in CONSTANTS.items():
        element, is_list = kind(c.type)
        assert element in (bool, int, float, str), name
        assert c.role in constants.ROLES, name
        assert c.implied is NOTHING or c.role == DEFINING and has_type(c.implied, c.type), name
        assert c.role != PER_RUN or is_list, f"{name}: a per-run constant is a list the study plans over"


@pytest.mark.parametrize("value, declared, ok", [
    (3, int, True), (3.0, int, False), (True, int, False), (2, float, True), (2.5, float, True), (True, float, False),
    (False, bool, True), (0, bool, False), ("a", str, True), ([1, 2], list[int], True), ([1, 2.5], list[int], False),
    ([], list[str], True), ("a", list[str], False), ([1, 2.5], list[float], True), ([3], int, False)])
def test_has_type_is_the_parsers_notion_of_a_type(value, declared, ok):
    assert has_type(value, declared) is ok


def test_what_derives_from_the_table():
    assert runs.NOT_RUN_DEFINING == {k for k, c in CONSTANTS.items() if c.role in (PER_RUN, NOT_DEFINING)}
    assert runs.IMPLIED_WHEN_MISSING == {k: c.implied for k, c in CONSTANTS.items() if c.implied is not NOTHING}
    for script in SCRIPTS:  # a run's config.json holds the DEFINING constants, all of them
        assert set(runs.defining_settings(script_constants(script))) == set(constants.named(DEFINING))
    # the run-level lists each hold a run's value in its name, beside the split and the regulariser
    assert set(constants.named(PER_RUN)) == {"SPLITS", "REGULARIZERS", "LRS", "LAMBDAS", "HOFER_BETAS", "SLIDING_BETA0S"}


def test_an_empty_list_is_parsed_as_its_tables_element_type():
    cfg = {**script_constants(mnist_top), "SPLITS": [], "PAIR_WITH": []}
    assert config.apply_overrides(cfg, ["--SPLITS=0-2"])["SPLITS"] == [0, 1, 2]   # not ["0-2"]
    assert config.apply_overrides(cfg, ["--PAIR_WITH=a,b"])["PAIR_WITH"] == ["a", "b"]


@pytest.mark.parametrize("change, says", [
    (dict(EPOCHS=3.0), "EPOCHS=3.0: expected int"), (dict(AUGMENT=1), "AUGMENT=1: expected bool"),
    (dict(LRS=0.1), "LRS=0.1: expected list[float]"), (dict(SPLITS=[0, "1"]), "SPLITS=[0, '1']: expected list[int]"),
    (dict(NEW_CONSTANT=1), "NEW_CONSTANT: not in constants.CONSTANTS"), (dict(SEED=None), "SEED: missing")])
def test_validate_refuses_a_constant_of_the_wrong_type_or_missing_from_the_table(change, says):
    cfg = {k: v for k, v in {**script_constants(mnist_top), **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("]", r"\]")):
        experiment.validate(cfg)


def test_validate_takes_an_int_for_a_float_as_the_parser_does():
    experiment.validate({**script_constants(mnist_top), "WEIGHT_DECAY": 0, "LRS": [1]})
