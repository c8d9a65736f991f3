"""Pure pieces of the HumanEval runner: work planning, verdict strings, model errors."""

from __future__ import annotations

import pytest

from humaneval.config import ModelConfig, known_models
from humaneval.execution import result_string
from humaneval.runner import contiguous_runs, load_generator


def test_contiguous_runs():
    assert contiguous_runs([]) == []
    assert contiguous_runs(range(5)) == [(0, 5)]
    assert contiguous_runs([7, 1, 2, 3, 5, 8]) == [(1, 3), (5, 1), (7, 2)]


@pytest.mark.parametrize("status, detail, expected", [
    ("passed", "", "passed"),
    ("timeout", "wall-clock limit of 3.0 s", "timed out"),
    ("failed", "AssertionError", "failed: "),
    ("failed", "AssertionError: wrong", "failed: wrong"),
    ("error", "ValueError: boom", "failed: boom"),
    ("error", "SystemExit: 0", "failed: 0"),
    ("error", "json.decoder.JSONDecodeError: bad: x", "failed: bad: x"),
    ("syntax_error", "SyntaxError: invalid syntax (line 3)", "failed: invalid syntax (line 3)"),
    ("crashed", "killed by SIGSEGV", "failed: killed by SIGSEGV"),
])
def test_result_string_is_human_evals(status, detail, expected):
    assert result_string(status, detail) == expected


def test_unknown_model_lists_the_known_ones():
    names = known_models()
    assert {"reference", "tiny-random", "codegen-350M-mono", "codegen-16B-mono"} <= set(names)
    with pytest.raises(ValueError, match=r"unknown model 'codegen-3B'.*known models are \[.*'codegen-350M-mono'"):
        load_generator(ModelConfig(name="codegen-3B"), [])
    with pytest.raises(ValueError, match=r"model.kind=gpt is not allowed: model.kind must be one of hub"):
        ModelConfig(name="x", kind="gpt")  # checked when the config is built, before any loading
