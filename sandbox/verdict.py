"""From what the worker observed to a verdict: a pure function, so every rule is unit-tested.

The order of the rules matters (docs/design.md §3): the kind the program's main process reported
through the audit-hook-gated channel decides (only `done` is a pass; docs/sandbox.md, "Verdict
integrity"); without one, our own wall deadline; then the signal or exit status.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from .limits import Limits, Status

# Signs on stderr that a C extension died of the address-space limit rather than of a bug.
_OUT_OF_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


@dataclass
class Observation:
    limits: Limits
    kind: str | None = None  # the main process's first record: done, assertion, memory, exit,
    # other, syntax, refused (the audit hook ended it), setup (confinement failed before the program)
    detail: str = ""  # the text records that followed it
    timed_out: bool = False  # we killed it at the wall deadline
    returncode: int | None = None  # like subprocess: -N for signal N
    cpu_s: float = 0.0  # user + system CPU of the main process
    stderr_tail: str = ""


def decide(obs: Observation) -> tuple[Status, str]:
    """The status and its detail for one run."""
    kind = obs.kind
    if kind == "setup":
        return Status.SANDBOX_ERROR, f"sandbox setup failed before the program started: {obs.detail}"
    if kind == "done":
        return Status.PASSED, ""
    if kind == "syntax":
        return Status.SYNTAX_ERROR, obs.detail or "SyntaxError"
    if kind is not None:
        status = {"assertion": Status.FAILED, "memory": Status.MEMORY}.get(kind, Status.ERROR)
        return status, obs.detail or {"assertion": "AssertionError", "memory": "MemoryError"}.get(kind, kind)
    if obs.timed_out:
        return Status.TIMEOUT, f"wall-clock limit of {obs.limits.wall_s:g} s exceeded"
    rc = obs.returncode
    if rc is None:
        return Status.SANDBOX_ERROR, "the program's exit status was lost"
    if rc < 0:
        sig = -rc
        cpu_limit = obs.limits.effective_cpu_s
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and obs.cpu_s >= cpu_limit - 0.05):
            return Status.TIMEOUT, f"CPU time limit of {cpu_limit} s exceeded"
        name = _signal_name(sig)
        if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) and any(
            sign in obs.stderr_tail for sign in _OUT_OF_MEMORY_SIGNS
        ):
            return Status.MEMORY, f"killed by {name} after running out of memory (limit {obs.limits.memory_mb} MB)"
        return Status.CRASHED, f"killed by {name}"
    how = "exit(0), sys.exit(0) or os._exit(0)" if rc == 0 else f"exit status {rc}"
    return Status.ERROR, f"the program ended before its last line ({how}), or closed the result channel"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
