"""Scoring MTPB programs in the sandbox: a batch function and a streaming pool (docs/design.md §3, §4).

`score_many` scores a batch through `sandbox.run_many` (parallel workers, identical jobs run
once) and yields `(index, Outcome, ExecResult)` as programs finish: what `python -m mtpb.evaluate`
and the tests use. `ExecutionPool` accepts programs one at a time while generation is still
running and calls back as each finishes, so execution overlaps generation in a run.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from sandbox import ExecResult, Job, Limits, hide, run, run_many

from .harness import DEFAULT_TIMEOUT_S, Outcome, read_outcome, scoring_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringJob:
    program: str  # the assembled program (prefix, turn comments, completions)
    gold: Any  # the gold output (a JSON value)
    files: dict[str, bytes] | None = None  # placed in the program's working directory


def sandbox_job(job: ScoringJob, limits: Limits, timeout_s: float, guard: bool = True) -> Job:
    return scoring_job(job.program, job.gold, timeout_s, files=job.files, limits=limits, guard=guard)


def score_many(jobs: Iterable[ScoringJob], limits: Limits, timeout_s: float = DEFAULT_TIMEOUT_S,
               workers: int | None = None, hidden: tuple[str, ...] = (),
               guard: bool = True) -> Iterator[tuple[int, Outcome, ExecResult]]:
    """Score programs in parallel; yields (index into jobs, outcome, raw result) as each finishes.
    `hidden`: files no program may read (the MTPB file in use); `guard`: the official
    reliability_guard in every program (the faithful default)."""
    if hidden:
        hide(hidden)
    stream = (sandbox_job(j, limits, timeout_s, guard) for j in jobs)
    for index, result in run_many(stream, limits, workers):
        yield index, read_outcome(result), result


class ExecutionPool:
    """Scores programs on `workers` threads as they are submitted; `on_result(tag, outcome, result)`.

    `on_result` runs on a worker thread (keep it short and thread-safe); an exception in it is
    re-raised by `close()` (so at the end of a `with` block). `guard`: as in `score_many`."""

    def __init__(self, limits: Limits, timeout_s: float,
                 on_result: Callable[[object, Outcome, ExecResult], None], workers: int | None = None,
                 hidden: tuple[str, ...] = (), guard: bool = True):
        if hidden:
            hide(hidden)
        self.guard = guard
        self.limits = limits
        self.timeout_s = timeout_s
        self.workers = workers or os.cpu_count() or 1
        self._on_result = on_result
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mtpb-sandbox")
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def submit(self, tag: object, job: ScoringJob) -> None:
        future = self._executor.submit(self._run_one, tag, job)
        future.add_done_callback(self._done)

    def _run_one(self, tag: object, job: ScoringJob) -> None:
        result = run(sandbox_job(job, self.limits, self.timeout_s, self.guard), self.limits)
        self._on_result(tag, read_outcome(result), result)

    def _done(self, future: Future) -> None:
        if (err := future.exception()) is not None:
            with self._lock:
                self._errors.append(err)

    def close(self, cancel: bool = False) -> None:
        """Wait for every submitted program (or drop those not started, with `cancel`)."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)
        if self._errors:
            raise self._errors[0]

    def __enter__(self) -> "ExecutionPool":
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(cancel=exc_type is not None)
