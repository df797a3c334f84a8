"""schema.py: a hand-written JSON object checked field by field, each problem one line naming the field."""
import pytest

from common.schema import Field, check

ITEM = {"x": Field(float, "a number"), "tag": Field(str, "a tag", required=False, valid=lambda v: None if v else "empty")}
FILE = {"flag": Field(bool, "true or false"), "items": Field(list, "a list of items", items=ITEM)}


def test_a_file_of_the_right_form_has_no_problem():
    assert check({"flag": True, "items": [{"x": 1}, {"x": 2.5, "tag": "a"}]}, FILE) == []


@pytest.mark.parametrize("obj, problem", [
    ({"items": []}, "flag: missing, expected true or false"),
    ({"flag": 1, "items": []}, "flag: found 1 (a number), expected true or false"),
    ({"flag": True, "items": [{"x": True}]}, "items[0].x: found True (true/false), expected a number"),
    ({"flag": True, "items": [{"x": 10 ** 400}]}, "items[0].x: found 1000000000"),   # too large for a float
    ({"flag": True, "items": [{"x": float("nan")}]}, "items[0].x: found nan (a number), expected a number"),
    ({"flag": True, "items": [{"x": 1, "tag": ""}]}, "items[0].tag: found '' (a string): empty; expected a tag"),
    ({"flag": True, "items": [{"x": 1, "tga": "a"}]}, "items[0].tga: unknown field (found 'a' (a string)); expected "
                                                      "only x, tag"),
    ({"flag": True, "items": ["x"]}, "items[0]: found 'x' (a string), expected an object with the fields x, tag"),
    ([], "the file: found [] (a list), expected an object with the fields flag, items"),
])
def test_each_problem_is_one_line_naming_the_field_what_was_found_and_what_is_expected(obj, problem):
    [line] = check(obj, FILE)
    assert line.startswith(problem) and "\n" not in line
