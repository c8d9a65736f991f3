"""The scoring program run in the sandbox for one MTPB execution, and the reading of its result.

`build_scoring_program` embeds the program text and its gold output into a small script: the
source of `mtpb/equivalence.py` (the official check) and `mtpb/child.py` (the official run and
judgement), then one call. Comparing inside the sandboxed child is necessary because the check
needs the live printed object (a numpy scalar, a pandas Series, a tuple...), which cannot be
rebuilt from text. The child sends its verdicts through the sandbox's `__emit__` channel.

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

Officially a program that prints the right value and then raises or hangs passes; `strict` fails
it. A program whose process ends without the harness's final record (os._exit, a fatal signal) is a
failure; when the sandbox reports a timeout or out-of-memory kill instead, the verdict of the last
print the child reported stands, as the official in-process timer would have judged it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 20.0  # the official per-program limit
WALL_GRACE_S = 10.0  # sandbox deadline = timeout + this (interpreter start-up, the final check)

_COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")


@lru_cache(maxsize=1)
def _runtime_source() -> str:
    here = Path(__file__).resolve().parent
    return (here / "equivalence.py").read_text(encoding="utf-8") + "\n\n" + (here / "child.py").read_text(encoding="utf-8")


def build_scoring_program(program: str, gold: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """The script that runs `program` the official way and judges its last print against `gold`."""
    gold_json = json.dumps(gold)
    return (
        _runtime_source()
        + "\n\n# ---- one MTPB execution ----\n"
        + "import builtins as _mtpb_builtins\n"
        + "import json as _mtpb_json\n"
        + "import sys as _mtpb_sys\n"
        + "def _mtpb_emit_fallback(obj):\n"
        + "    _mtpb_sys.__stderr__.write('MTPB-EMIT ' + _mtpb_json.dumps(obj, default=repr) + '\\n')\n"
        + "_mtpb_emit = getattr(_mtpb_builtins, '__emit__', None) or _mtpb_emit_fallback\n"
        + f"run_scored({program!r}, _mtpb_json.loads({gold_json!r}), {float(timeout_s)!r}, "
        + "_mtpb_emit, judge, describe)\n"
    )


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


def _status_of(final: dict) -> str:
    error = final.get("program_error")
    if final.get("timed_out"):
        return "timeout"
    if error:
        name = error.split(":", 1)[0]
        if name in _COMPILE_ERRORS:
            return "syntax_error"
        if name == "MemoryError":
            return "memory"
        return "error"
    return "passed" if final.get("passed") else "failed"


def read_outcome(result: Any) -> Outcome:
    """The `Outcome` of a sandbox `ExecResult` (status, detail, values) of a scoring program."""
    values = list(getattr(result, "values", None) or [])
    records = [v for v in values if isinstance(v, dict) and v.get("mtpb") in ("print", "final")]
    final = next((v for v in reversed(records) if v.get("mtpb") == "final"), None)
    prints = [v for v in records if v.get("mtpb") == "print"]
    sandbox_status = str(getattr(getattr(result, "status", ""), "value", getattr(result, "status", "")))
    sandbox_detail = str(getattr(result, "detail", "") or "")
    if final is not None:
        status = _status_of(final)
        detail = final.get("program_error") or final.get("message") or ""
        official = bool(final.get("passed"))
        return Outcome(
            official=official,
            strict=official and status == "passed",
            status=status,
            detail=detail,
            value=final.get("value"),
            n_prints=int(final.get("n_prints", 0)),
            extra={"timed_out": bool(final.get("timed_out")), "system_exit": bool(final.get("system_exit")),
                   "check_message": final.get("message", "")},
        )
    last = prints[-1] if prints else None
    if sandbox_status in ("timeout", "memory"):
        # the process was killed from outside: the official in-process timer (or MemoryError)
        # would have ended the program and judged its last print
        official = bool(last and last.get("verdict"))
        status = sandbox_status
        detail = sandbox_detail or sandbox_status
    elif sandbox_status in ("passed", "failed", "error"):
        official, status = False, "error"
        detail = sandbox_detail or "the process ended before the check (os._exit?): a failure"
        if "values" in (getattr(result, "truncated", None) or []):
            detail = "the value channel overflowed (the program called __emit__?) before the final verdict"
    else:  # crashed, syntax_error of the harness itself (impossible), sandbox_error
        official = False
        status = sandbox_status if sandbox_status in ("crashed", "sandbox_error") else "sandbox_error"
        detail = sandbox_detail or status
    return Outcome(
        official=official,
        strict=False,
        status=status,
        detail=detail,
        value=(last or {}).get("value"),
        n_prints=int((last or {}).get("n", 0)),
        extra={"killed": True, "sandbox_status": sandbox_status},
    )
