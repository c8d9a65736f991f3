"""From what the worker observed to a verdict: a pure function, so every rule is unit-tested.

The order of the rules matters and follows DESIGN §3: only the per-run sentinel makes a pass; a
message from the runner (syntax error, escaped exception) explains a failure better than how the
process ended; then our own wall deadline; then the signal or exit status.
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
    done: bool = False  # the sentinel with this run's token arrived
    syntax: str | None = None  # runner: the program does not compile
    exception: tuple[str, str] | None = None  # runner: (category, "Type: message")
    setup: str | None = None  # confinement failed before the program started
    timed_out: bool = False  # we killed it at the wall deadline
    returncode: int | None = None  # like subprocess: -N for signal N
    cpu_s: float = 0.0  # user + system CPU of the main process
    stderr_tail: str = ""


def decide(obs: Observation) -> tuple[Status, str]:
    """The status and its detail for one run."""
    if obs.setup is not None:
        return Status.SANDBOX_ERROR, f"sandbox setup failed before the program started: {obs.setup}"
    if obs.done:
        return Status.PASSED, ""
    if obs.syntax is not None:
        return Status.SYNTAX_ERROR, obs.syntax
    if obs.exception is not None:
        category, detail = obs.exception
        status = {"assertion": Status.FAILED, "memory": Status.MEMORY}.get(category, Status.ERROR)
        return status, detail
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
