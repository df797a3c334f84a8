import pytest

from training.config import ConfigError, apply_overrides

DEFAULTS = dict(EPOCHS=310, LAMBDA=0.1, METRIC="l1", AUGMENT=False, SPLITS=[0, 1], HOFER_BETAS=[0.5])


def test_overrides_are_parsed_as_the_constants_type():
    cfg = apply_overrides(DEFAULTS, ["--EPOCHS=20", "--LAMBDA=1", "--METRIC=l2", "--AUGMENT=true",
                                     "--SPLITS=10-12,15", "--HOFER_BETAS=[0.1, 0.3]"])
    assert cfg == dict(EPOCHS=20, LAMBDA=1.0, METRIC="l2", AUGMENT=True, SPLITS=[10, 11, 12, 15],
                       HOFER_BETAS=[0.1, 0.3])
    assert type(cfg["LAMBDA"]) is float
    assert DEFAULTS["EPOCHS"] == 310  # the defaults are not touched


@pytest.mark.parametrize("arg, msg", [("--EPOCHS=2.5", "EPOCHS.*int"), ("--EPOCHS=abc", "EPOCHS.*int"),
                                      ("--AUGMENT=maybe", "AUGMENT.*bool"), ("--SPLITS=a,b", "SPLITS.*int"),
                                      ("--LAMBDA=x", "LAMBDA.*float"), ("--EPOCH=3", "did you mean|EPOCHS"),
                                      ("--lambda=3", "did you mean LAMBDA"), ("EPOCHS=3", "--NAME=value"),
                                      ("--SPLITS=5-2", "empty range")])
def test_bad_overrides_are_rejected_with_the_name(arg, msg):
    with pytest.raises(ConfigError, match=msg):
        apply_overrides(DEFAULTS, [arg])
