"""The official MTPB output check: is the printed value equivalent to the gold output?

Same semantics as `check_equivalence` in salesforce/CodeGen `codegen1/benchmark/mtpb_exec.py`,
quirks included, because the paper's numbers were computed with it:

1. Normalise the printed value by its *exact* type (one rule at most): a pandas Series (the class
   itself, whatever module pandas reports it from) becomes a numpy array and the gold becomes
   `np.array(gold)`; a list whose first element is a tuple becomes
   a list of lists; the numpy scalars uint8/int16/int32/int64 become int, float16/32/64 become
   float, `np.bool_` becomes bool; a numpy array becomes `.tolist()`.
2. If the types still differ: when the gold is a bool both sides are compared as strings
   (``"True" == "True"``); otherwise the value is cast to the gold's type (``int(3.9) == 3``,
   ``list((1, 2)) == [1, 2]``, ``str([1]) == "[1]"``); a failing cast is a failure.
3. Compare: str/int/set/list/bool/tuple with ``==`` (so nested floats must be exact), float within
   an absolute 1e-6, numpy arrays with `np.allclose`; any other type (None, dict, ...) is
   unsupported, i.e. a failure. (So a gold of ``null`` or a dict can never be matched: see errata.)

This file is also embedded verbatim into every scoring program run in the sandbox (see
`mtpb.harness`), so it imports nothing at module level and nothing of ours.
"""

import sys

FLOAT_TOLERANCE = 1e-6


class UnsupportedType(ValueError):
    """The official check has no rule for this type (it raises, and the test case fails)."""


def _is_pandas_series(value):
    # The official test is `str(type(o1)) == "<class 'pandas.core.series.Series'>"`, true for a
    # Series (not a subclass) in the pandas of its day; pandas 3 reports the class as
    # "pandas.Series", which would silently skip the rule, so test the class itself.
    pandas = sys.modules.get("pandas")
    return pandas is not None and type(value) is getattr(pandas, "Series", None)


def _normalise(value, gold):
    """Rule 1: the printed value (and, for a Series, the gold) in comparable form."""
    np = sys.modules.get("numpy")  # a numpy value implies numpy is imported
    cls = type(value)
    if _is_pandas_series(value):
        return value.to_numpy(), np.array(gold)
    if cls is list:
        if value and type(value[0]) is tuple:
            value = [list(item) for item in value]
        return value, gold
    if np is not None:
        if cls in (np.uint8, np.int16, np.int32, np.int64):
            return int(value), gold
        if cls in (np.float16, np.float32, np.float64):
            return float(value), gold
        if cls is np.bool_:
            return bool(value), gold
        if cls is np.ndarray:
            return value.tolist(), gold
    return value, gold


def check_equivalence(value, gold):
    """True when `value` is equivalent to `gold` under the official rules; raises where they do."""
    value, gold = _normalise(value, gold)
    if type(value) is not type(gold):
        if type(gold) is bool:
            value, gold = str(value), str(gold)
        else:
            value = type(gold)(value)
    kind = type(value)
    if kind in (str, int, set, list, bool, tuple):
        return bool(value == gold)
    if kind is float:
        return bool(abs(value - gold) < FLOAT_TOLERANCE)
    np = sys.modules.get("numpy")
    if np is not None and kind is np.ndarray:
        return bool(np.allclose(value, gold))
    raise UnsupportedType(f"Unsupported type {kind}")


def judge(value, gold):
    """(passed, message): `check_equivalence` with its exceptions turned into failures."""
    try:
        return check_equivalence(value, gold), ""
    except Exception as err:  # the official harness counts any exception here as a failure
        return False, f"{type(err).__name__}: {err}"


def describe(value, max_json_chars=20000, max_repr_chars=1000):
    """A JSON-able account of a printed value: {"type", "json" (or None), "repr"}."""
    try:
        text = repr(value)
    except Exception as err:
        text = f"<repr failed: {type(err).__name__}: {err}>"
    out = {"type": type(value).__qualname__, "json": None, "repr": text[:max_repr_chars]}
    try:
        import json

        plain = _jsonable(value, 0)
        encoded = json.dumps(plain, allow_nan=False)
        if len(encoded) <= max_json_chars:
            out["json"] = plain
            out["json_ok"] = True
    except Exception:
        out["json_ok"] = False
    return out


def _jsonable(value, depth):
    if depth > 20:
        raise ValueError("too deeply nested")
    if value is None or isinstance(value, (bool, int, str)):
        return value if type(value) in (bool, int, str, type(None)) else _plain_scalar(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("dict with non-string keys")
        return {k: _jsonable(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays/scalars, pandas Series
        return _jsonable(value.tolist(), depth + 1)
    raise ValueError(f"{type(value).__qualname__} is not JSON")


def _plain_scalar(value):
    # subclasses of bool/int/str (e.g. IntEnum): their plain value
    for kind in (bool, int, str):
        if isinstance(value, kind):
            return kind(value)
    return value
