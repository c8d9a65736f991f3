"""Scoring a batch of MTPB programs through the sandbox's push API, for the tests."""

from __future__ import annotations

from typing import Iterable, Iterator

from mtpb.execution import ScoringJob, sandbox_job
from mtpb.harness import Outcome, read_outcome
from sandbox import ExecResult, Limits, executor


def score_many(jobs: Iterable[ScoringJob], limits: Limits, official_timeout_s: float, workers: int | None = None,
               guard: bool = True) -> Iterator[tuple[int, Outcome, ExecResult]]:
    """(index into jobs, outcome, raw result) as each program finishes; `guard`: the official
    reliability_guard in every program (the faithful default)."""
    with executor(workers, limits) as pool:
        for index, job in enumerate(jobs):
            pool.submit(sandbox_job(job, limits, official_timeout_s, guard), tag=index)
        for index, result in pool.as_completed():
            yield index, read_outcome(result), result
