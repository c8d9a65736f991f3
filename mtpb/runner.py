"""MTPB as a `results.driver.Benchmark`: what is MTPB's own (docs/design.md §4, §5).

The driver (`results.driver`) loads the model, opens or resumes the run directory, takes this
process's shard, streams samples to the sandbox and writes metrics. This module says what MTPB adds:
the units (problem x test case x sample, keys ``mtpb/<id>/c<case>/s<sample>``; with
`exclude_errata` without the cases errata cover), the conversations that generate them
(`mtpb.conversation`: every missing conversation driven through the generator together; a
conversation's program is its sample), the scoring job (the official way, judged afterwards by a
trusted judge), the verdict, and the metrics (`mtpb.metrics`). A resume must also keep the scoring
and the dataset files.

`run(cfg)` is what `python -m mtpb` calls for sampling modes (`mode=perplexity` is dispatched by
the app to `mtpb.perplexity`); `finish_run(cfg)` merges a sharded run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from codegen_model.generator import Generator
from results import driver
from results.driver import RunSummary, Unit
from results.provenance import build_manifest
from results.records import ExecutionRecord, Manifest, SampleRecord, make_key
from results.report import plural
from sandbox import ExecResult, Job, Limits

from .config import RunConfig
from .conversation import ConversationSpec, Transcript, converse
from .data import MTPB_SHA256, MTPB_URL, Problem, ProblemSet, load_problems
from .errata import excluded_cases, load_dataset_files
from .execution import ScoringJob, sandbox_job
from .harness import Outcome, read_outcome
from .metrics import compute_metrics, problem_key
from .prompts import single_turn_prompts

if TYPE_CHECKING:  # the type only: importing the registry loads torch
    from codegen_model.registry import ModelInfo

log = logging.getLogger(__name__)

__all__ = ["MTPB", "RunSummary", "WorkItem", "finish_run", "load_problem_set", "run", "turn_budgets",
           "turn_prompts", "work_items"]


@dataclass(frozen=True)
class WorkItem:
    problem: Problem
    case: int


def load_problem_set(cfg: RunConfig) -> ProblemSet:
    """The MTPB file of `cfg`: `data_path`, else the pinned download (checked against its sha256)."""
    return load_problems(cfg.data_path, url=cfg.benchmark.url or MTPB_URL,
                         sha256=cfg.benchmark.sha256 or MTPB_SHA256, cache_dir=cfg.benchmark.cache_dir)


def work_items(cfg: RunConfig, problems: Sequence[Problem]) -> list[WorkItem]:
    """(problem, case) units of the run; with `exclude_errata`, without the cases errata cover."""
    items = []
    for p in problems:
        skip = excluded_cases(p.id, p.n_cases, cfg.datasets_dir is not None) if cfg.exclude_errata else {}
        items += [WorkItem(p, c) for c in range(p.n_cases) if c not in skip]
    return items


def turn_prompts(cfg: RunConfig, problem: Problem, case: int) -> tuple[str, ...]:
    prompts = problem.filled_prompts(case)
    return tuple(single_turn_prompts(prompts) if cfg.mode == "single_turn" else prompts)


def turn_budgets(cfg: RunConfig, problem: Problem) -> tuple[int, ...]:
    """max_new_tokens per turn: the configured value, else the problem's max_gen_length; in
    single-turn mode the one turn gets the sum of the per-turn budgets."""
    per_turn = cfg.sampling.max_new_tokens or problem.max_new_tokens
    if cfg.mode == "single_turn":
        return (per_turn * len(problem.prompts),)
    return (per_turn,) * len(problem.prompts)


class MTPB:
    """The MTPB benchmark of one run config in a sampling mode (`results.driver.Benchmark`)."""

    name = "mtpb"
    resume_keys = ("scoring", "dataset_files")  # verdicts scored another way must not be mixed

    def __init__(self, cfg: RunConfig, problem_set: ProblemSet | None = None):
        if cfg.mode == "perplexity":
            raise ValueError("mode=perplexity samples nothing: run it with mtpb.perplexity.run_perplexity")
        self.cfg = cfg
        self.problem_set = problem_set or load_problem_set(cfg)
        self.problems = list(self.problem_set.select(cfg.problems, cfg.limit))
        self.items = work_items(cfg, self.problems)
        self.dataset_files = load_dataset_files(cfg.datasets_dir, [p.id for p in self.problems]) \
            if cfg.datasets_dir else {}
        self.limits = Limits(**cfg.sandbox.limit_fields())

    def units(self) -> list[Unit]:
        return [Unit(make_key(problem_key(it.problem.id), i, it.case), it, i)
                for it in self.items for i in range(self.cfg.sampling.n)]

    def describe(self) -> str:
        return (f"{self.cfg.mode}, {plural(len(self.problems), 'problem')}, {plural(len(self.items), 'test case')} "
                f"x {plural(self.cfg.sampling.n, 'sample')}")

    def manifest(self, model: ModelInfo) -> Manifest:
        cfg = self.cfg
        files_digest = {rel: hashlib.sha256(data).hexdigest()
                        for files in self.dataset_files.values() for rel, data in files.items()}
        return build_manifest(
            "mtpb", model, dataset_hash=self.problem_set.sha256, mode=cfg.mode.replace("_", "-"),
            seed=cfg.sampling.seed, sampling=dataclasses.asdict(cfg.sampling),
            sandbox_limits={**dataclasses.asdict(self.limits), "timeout_s": cfg.sandbox.official_timeout_s},
            selection={"limit": cfg.limit, "problems": list(cfg.problems) if cfg.problems is not None else None},
            extra={"scoring": cfg.scoring, "dataset_files": files_digest, "dataset_source": self.problem_set.source,
                   "official_dataset": self.problem_set.sha256 == MTPB_SHA256})

    def reference(self) -> None:
        return None  # MTPB ships no reference programs a run could sample

    def generate(self, generator: Generator, missing: Sequence[Unit], emit: driver.Emit,
                 count_tokens: Callable[[int], None]) -> None:
        """Every missing conversation through the generator together (`mtpb.conversation`)."""
        units = {(u.problem.problem.id, u.problem.case, u.index): u for u in missing}
        samples: dict[tuple[int, int], tuple[WorkItem, list[int]]] = {}
        for unit in missing:
            samples.setdefault((unit.problem.problem.id, unit.problem.case), (unit.problem, []))[1].append(unit.index)
        specs = [ConversationSpec(problem_id=it.problem.id, case=it.case,
                                  prompts=turn_prompts(self.cfg, it.problem, it.case),
                                  params=tuple(self.cfg.sampling.params(b) for b in turn_budgets(self.cfg, it.problem)),
                                  samples=tuple(indices)) for it, indices in samples.values()]

        def on_finished(transcript: Transcript) -> None:
            unit = units[(transcript.spec.problem_id, transcript.spec.case, transcript.sample_index)]
            emit(unit, sample_record(unit.key, unit.problem, transcript))

        converse(generator, specs, on_finished, lambda completion: count_tokens(completion.n_new_tokens))

    def job(self, unit: Unit, completion: str) -> Job:
        item = unit.problem
        scoring = ScoringJob(completion, item.problem.gold(item.case), self.dataset_files.get(item.problem.id))
        return sandbox_job(scoring, self.limits, self.cfg.sandbox.official_timeout_s, self.cfg.sandbox.guard)

    def execution_record(self, unit: Unit, result: ExecResult) -> ExecutionRecord:
        return execution_record(unit.key, unit.problem, unit.index, read_outcome(result), result, self.cfg.scoring,
                                datasets_available=self.cfg.datasets_dir is not None)

    def metrics(self, executions: list[ExecutionRecord]) -> dict:
        """Pass rates (official and strict), pass@k, per category and difficulty (`mtpb.metrics`)."""
        cfg = self.cfg
        metrics = {
            "mode": cfg.mode.replace("_", "-"), "scoring": cfg.scoring, "exclude_errata": cfg.exclude_errata,
            "datasets_dir": cfg.datasets_dir,
            **compute_metrics(executions, self.problems, ks=cfg.benchmark.ks, n=cfg.sampling.n,
                              datasets_available=cfg.datasets_dir is not None),
        }
        return metrics

    def answer_files(self) -> tuple[str, ...]:
        """The MTPB file in use, unreadable to the programs (docs/sandbox.md)."""
        source = getattr(self.problem_set, "source", "")
        return (source,) if source and "://" not in source else ()


def run(cfg: RunConfig, *, generator: Generator | None = None, problem_set: ProblemSet | None = None,
        shard: tuple[int, int] | None = None) -> RunSummary:
    """Run (or resume) the MTPB evaluation `cfg` describes (results.driver.run). With
    `shard=(rank, world)` this process takes a contiguous block of the conversations (in problem,
    case, sample order) and computes no metrics: `finish_run` merges the shards."""
    return driver.run(MTPB(cfg, problem_set), generator=generator, shard=shard)


def finish_run(cfg: RunConfig, problem_set: ProblemSet | None = None) -> dict:
    """Merge a sharded run's files and write its metrics (every shard must be complete)."""
    return driver.finish(MTPB(cfg, problem_set))


def sample_record(key: str, item: WorkItem, transcript: Transcript) -> SampleRecord:
    prompts = list(transcript.spec.prompts)
    return SampleRecord(
        key=key, problem_id=problem_key(item.problem.id), sample_index=transcript.sample_index,
        completion=transcript.program, prompt="\n".join(prompts), case_index=item.case,
        turns=list(transcript.turns), finish_reason=transcript.finish_reasons[-1] if transcript.finish_reasons else "",
        n_prompt_tokens=transcript.n_prompt_tokens, n_new_tokens=transcript.n_new_tokens, time_s=transcript.time_s,
        extra={"prompts": prompts, "finish_reasons": transcript.finish_reasons, "category": item.problem.category,
               **({"clipped_turns": transcript.clipped_turns} if transcript.clipped_turns else {})},
    )


def execution_record(key: str, item: WorkItem, index: int, outcome: Outcome, result: ExecResult,
                     scoring: str, datasets_available: bool = False) -> ExecutionRecord:
    errata = excluded_cases(item.problem.id, item.problem.n_cases, datasets_available).get(item.case, [])
    return ExecutionRecord(
        key=key, problem_id=problem_key(item.problem.id), sample_index=index, status=outcome.status,
        passed=outcome.passed(scoring), detail=outcome.detail, duration_s=result.duration_s,  # cut by the record
        case_index=item.case, cached=bool(result.cached),
        extra={"category": item.problem.category, "official_passed": outcome.official,
               "strict_passed": outcome.strict, "n_prints": outcome.n_prints, "value": compact_value(outcome.value),
               "sandbox_status": str(getattr(result.status, "value", result.status)),
               "errata": sorted({e.kind for e in errata}), **outcome.extra},
    )


def compact_value(value: dict | None, max_json_chars: int = 2000, max_repr_chars: int = 300) -> dict | None:
    """The last printed value, small enough for one line per execution (JSON dropped when long)."""
    if not value:
        return None
    out = {"type": value.get("type"), "repr": str(value.get("repr", ""))[:max_repr_chars], "json": value.get("json")}
    if out["json"] is not None and len(json.dumps(out["json"])) > max_json_chars:
        out["json"] = None
    return out
