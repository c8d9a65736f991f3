"""Scoring MTPB programs in the sandbox (docs/design.md §3, §4).

`sandbox_job` turns a `ScoringJob` (program, gold output, dataset files) into the sandbox job
that scores it the official way; the run and `python -m mtpb.evaluate` hand those jobs to the
sandbox's push API (`sandbox.executor`) and read each result with `harness.read_outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox import Job, Limits

from .harness import scoring_job


@dataclass(frozen=True)
class ScoringJob:
    program: str  # the assembled program (prefix, turn comments, completions)
    gold: Any  # the gold output (a JSON value)
    files: dict[str, bytes] | None = None  # placed in the program's working directory


def sandbox_job(job: ScoringJob, limits: Limits, official_timeout_s: float, guard: bool = True) -> Job:
    """The sandbox job scoring `job` against its gold output; `official_timeout_s`: the official per-program
    timeout; `guard`: the official reliability_guard in the program (the faithful default)."""
    return scoring_job(job.program, job.gold, official_timeout_s, files=job.files, limits=limits, guard=guard)
