"""The official output check and last-expression rewrite, in process (their sandboxed use is in
tests/integration/test_mtpb_scoring.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtpb.child import rewrite_last_expression
from mtpb.equivalence import UnsupportedType, check_equivalence, describe, judge


@pytest.mark.parametrize("value, gold, expected", [
    # numpy scalars are normalised to Python numbers (only the official list of types)
    (np.int64(7), 7, True),
    (np.int32(7), 7, True),
    (np.uint8(7), 7, True),
    (np.int8(7), 7, True),  # not normalised, but then cast: int(np.int8(7)) == 7
    (np.float32(0.5), 0.5, True),
    (np.float64(1 / 3), 0.3333333, True),
    (np.bool_(True), True, True),
    (np.bool_(False), "False", True),  # bool then str(False) == "False"
    (np.array([1, 2, 3]), [1, 2, 3], True),
    (np.array([[1, 0], [0, 1]]), [[1, 0], [0, 1]], True),
    (np.array([0.1 + 0.2]), [0.3], False),  # tolist: nested floats compare exactly
    # pandas Series: to_numpy() against np.array(gold), np.allclose
    (pd.Series([35.5, 66.5], index=["Yes", "No"]), [35.5, 66.5], True),
    (pd.Series([35.5000000001, 66.5]), [35.5, 66.5], True),
    (pd.Series([35.6, 66.5]), [35.5, 66.5], False),
    # tuples vs lists
    ((17, 2), [17, 2], True),
    ([(1, 2), (3, 4)], [[1, 2], [3, 4]], True),
    ([[1, 2], (3, 4)], [[1, 2], [3, 4]], False),  # only a first tuple triggers the conversion
    ([1, 2], (1, 2), True),  # cast to the gold's type
    # bools vs strings: compared as strings when the gold is a bool
    (True, True, True),
    ("True", True, True),
    ("true", True, False),
    (1, True, False),
    (True, "True", True),  # gold str: str(True)
    (False, "False", True),
    # float tolerance: absolute 1e-6
    (0.1 + 0.2, 0.3, True),
    (0.3 + 5e-7, 0.3, True),
    (0.3 + 2e-6, 0.3, False),
    (39.57271787481876, 39.57, False),
    (16, 16.0, True),  # int cast to the gold float
    # casts to the gold's type, quirks included
    (16.0, 16, True),
    (15.9999999, 16, False),  # int() truncates
    ("321", 321, True),
    ([1], 1, None),  # int([1]) raises: a failure
    ([" ", "e"], " e", False),
    ({"a"}, ["a"], True),
    # gold types the official check cannot handle: never a pass
    (None, None, None),
    ({"1": ["a"]}, {"1": ["a"]}, None),
    ("None", None, None),
])
def test_check_equivalence(value, gold, expected):
    if expected is None:
        with pytest.raises((UnsupportedType, TypeError, ValueError)):
            check_equivalence(value, gold)
        assert judge(value, gold)[0] is False
    else:
        assert check_equivalence(value, gold) is expected
        assert judge(value, gold) == (expected, "")


def test_judge_names_the_failure():
    assert judge(None, None) == (False, "UnsupportedType: Unsupported type <class 'NoneType'>")
    ok, message = judge([1], 1)
    assert not ok and message.startswith("TypeError:")


def test_describe_gives_json_where_it_can():
    assert describe(np.int64(3))["json"] == 3 and describe(np.int64(3))["type"] == "int64"
    assert describe(pd.Series([1.5, 2.0]))["json"] == [1.5, 2.0]
    assert describe((1, "a"))["json"] == [1, "a"]
    assert describe({1: 2})["json"] is None and describe({1: 2})["repr"] == "{1: 2}"
    assert describe(float("nan"))["json"] is None
    assert len(describe("x" * 5000)["repr"]) == 1000


@pytest.mark.parametrize("code, expected", [
    # the official script's own self-tests
    ("def f(a):\n    return a ** 2\nf(2)", "def f(a):\n    return a ** 2\nprint(f(2))"),
    ("def f(a):\n    return a ** 2\nprint(f(2))", "def f(a):\n    return a ** 2\nprint(f(2))"),
    ("df.groupby('gender')['alco'].value_counts()", "print(df.groupby('gender')['alco'].value_counts())"),
    # any statement with a value: an assignment prints its value
    ("x = 5", "x = print(5)"),
    ("x += 1", "x += print(1)"),
    ("printf(3)", "printf(3)"),  # a name starting with 'print' counts as printing
    ("y = print(3)", "y = print(3)"),
    # statements without a value, and code that does not parse, run unchanged
    ("for i in range(3):\n    print(i)", "for i in range(3):\n    print(i)"),
    ("def f():\n    return 1", "def f():\n    return 1"),
    ("import os", "import os"),
    ("x: int", "x: int"),
    ("def f(:", "def f(:"),
    ("", ""),
    ("# only a comment\n", "# only a comment\n"),
])
def test_rewrite_last_expression(code, expected):
    assert rewrite_last_expression(code) == expected
