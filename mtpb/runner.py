"""One MTPB run: converse, execute as conversations finish, store, score (docs/design.md §4, §5).

`run(cfg)` is what `python -m mtpb` calls and what tests call directly:

1. load and select the problems (and, with `exclude_errata`, drop the cases errata cover);
2. build the generator (or take the one given) and the manifest; open the run directory
   (`results.store.RunStore`): a new run, or a resume of the same one (same model, data, sampling,
   mode, limits, scoring and dataset files);
3. score samples stored by an earlier, killed run but not yet executed;
4. drive every missing conversation (problem x case x sample) through the generator together
   (`mtpb.conversation`); each finished conversation is appended to samples.jsonl and its program
   goes to the sandbox pool, whose verdicts are appended to executions.jsonl as they finish;
5. rewrite the files in canonical order and write metrics.json (`mtpb.metrics`).

Keys are ``mtpb/<id>/c<case>/s<sample>``; a killed run loses only unfinished conversations, which
a rerun of the same command regenerates identically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from codegen_model.generator import Completion, Generator
from results.driver import check_sampling, interrupted_line, print_block, summary_block
from results.progress import make_progress
from results.provenance import git_commit, library_versions
from results.records import ExecutionRecord, Manifest, SampleRecord, make_key
from results.shard import owned_range
from results.store import RunStore, RunStoreError
from sandbox import ExecResult, Limits, executor, hide

from .config import ModelConfig, RunConfig, to_dict
from .conversation import ConversationSpec, Transcript, converse
from .data import MTPB_SHA256, MTPB_URL, Problem, ProblemSet, load_problems
from .errata import excluded_cases, load_dataset_files
from .execution import ScoringJob, sandbox_job
from .harness import Outcome, read_outcome
from .metrics import compute_metrics, format_summary, problem_key
from .prompts import single_turn_prompts
from .summary import REPO, VERSIONED, RunSummary  # noqa: F401 (RunSummary: part of this module's API)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class WorkItem:
    problem: Problem
    case: int


def load_generator(model: ModelConfig) -> tuple[Generator, dict]:
    """The sampling engine for a model config, via codegen_model's registry; and its model info."""
    if model.kind == "hub" and not model.path:
        raise ValueError(f"model {model.name!r} has no checkpoint path or Hub repo id; pick one of conf/model/ "
                         "(model=<name>) or set model.path")
    from codegen_model import registry

    spec = registry.ModelSpec(name=model.name, kind=model.kind, path=model.path, revision=model.revision,
                              dtype=model.dtype, device=model.device)
    generator = registry.build_generator(spec, **model.engine)
    info = getattr(generator, "model_info", None)
    info = info() if callable(info) else info
    return generator, dict(info or {})


def select_problems(cfg: RunConfig, problem_set: ProblemSet) -> ProblemSet:
    return problem_set.select(cfg.problems, cfg.limit)


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


def build_manifest(cfg: RunConfig, problem_set: ProblemSet, model_info: dict, limits: Limits,
                   dataset_files: dict[int, dict[str, bytes]]) -> Manifest:
    import hashlib

    files_digest = {rel: hashlib.sha256(data).hexdigest()
                    for files in dataset_files.values() for rel, data in files.items()}
    return Manifest(
        benchmark="mtpb",
        model=cfg.model.name,
        revision=model_info.get("revision", cfg.model.revision),
        weights_hash=str(model_info.get("weights_hash", "")),
        dataset_hash=problem_set.sha256,
        seed=cfg.sampling.seed,
        sampling=dataclasses.asdict(cfg.sampling),
        mode=cfg.mode.replace("_", "-"),
        device=str(model_info.get("device", cfg.model.device)),
        dtype=str(model_info.get("dtype", cfg.model.dtype)),
        sandbox_limits={**dataclasses.asdict(limits), "timeout_s": cfg.sandbox.timeout_s},
        versions=library_versions(VERSIONED),
        git_commit=git_commit(REPO),
        selection={"limit": cfg.limit, "problems": list(cfg.problems) if cfg.problems is not None else None},
        extra={"scoring": cfg.scoring, "dataset_files": files_digest, "dataset_source": problem_set.source,
               "official_dataset": problem_set.sha256 == MTPB_SHA256,
               "model": {k: v for k, v in model_info.items() if k not in ("load_s",)}},
    )


def check_resume(store: RunStore, manifest: Manifest) -> None:
    """Refuse to resume a run scored differently: `passed` of stored executions would be mixed."""
    existing = store.manifest()
    if existing is None:
        return
    for name in ("scoring", "dataset_files"):
        old, new = existing.extra.get(name), manifest.extra.get(name)
        if old != new:
            raise RunStoreError(f"{store.run_dir} holds a run with {name}={old!r}, this one has {name}={new!r}; "
                                "use another run_dir, or delete this one to start over")


def run(cfg: RunConfig, *, generator: Generator | None = None, model_info: dict | None = None,
        problem_set: ProblemSet | None = None, shard: tuple[int, int] | None = None) -> RunSummary:
    """Run (or resume) the MTPB evaluation `cfg` describes; see the module docstring.

    With `shard=(rank, world)` this process takes a contiguous block of the conversations (in
    problem, case, sample order; `results.shard`), writes its own shard files and computes no metrics:
    once every rank is done, rank 0 calls `finish` to merge them (samples do not depend on the split)."""
    if cfg.mode == "perplexity":
        from .perplexity import run_perplexity

        return run_perplexity(cfg, problem_set=problem_set)
    t0 = time.perf_counter()
    if problem_set is None:
        problem_set = load_problems(cfg.data_path, url=cfg.benchmark.url or MTPB_URL,
                                    sha256=cfg.benchmark.sha256 or MTPB_SHA256, cache_dir=cfg.benchmark.cache_dir)
    problems = list(select_problems(cfg, problem_set))
    dataset_files = load_dataset_files(cfg.datasets_dir, [p.id for p in problems]) if cfg.datasets_dir else {}
    if generator is None:
        generator, model_info = load_generator(cfg.model)
    model_info = model_info or {}
    limits = Limits(**cfg.sandbox.limit_fields())
    manifest = build_manifest(cfg, problem_set, model_info, limits, dataset_files)

    store = RunStore(cfg.run_dir, shard=shard)
    check_resume(store, manifest)
    resumed = store.start(to_dict(cfg), manifest)
    items = work_items(cfg, problems)
    n = cfg.sampling.n
    units = [(it, i) for it in items for i in range(n)]
    wanted = {make_key(problem_key(it.problem.id), i, it.case): (it, i)
              for it, i in (units[j] for j in owned_range(len(units), shard))}
    stored = {r.key: r for r in store.samples() if r.key in wanted}
    executed = store.execution_keys() & set(wanted)
    log.info("mtpb %s (%s): %d problems, %d test cases x %d samples, %s (%d samples, %d executions stored)",
             cfg.model.name, cfg.mode, len(problems), len(items), n, "resuming" if resumed else "new run",
             len(stored), len(executed))

    progress = make_progress(cfg.progress, total=len(wanted), initial=len(stored), log_every_s=cfg.log_every_s,
                             desc=f"mtpb {cfg.model.name} {cfg.mode} t{cfg.sampling.temperature}")
    counts = {"generated": 0, "executed": 0, "tokens": 0}

    def job(item: WorkItem, program: str) -> ScoringJob:
        return ScoringJob(program, item.problem.gold(item.case), dataset_files.get(item.problem.id))

    def store_results(results) -> None:  # (tag, ExecResult) pairs from the sandbox, on this thread
        for (key, item, index), result in results:
            store.append_execution(execution_record(key, item, index, read_outcome(result), result, cfg.scoring,
                                                    datasets_available=cfg.datasets_dir is not None))
            counts["executed"] += 1
            progress.update(executions=1)

    def submit(item: WorkItem, key: str, index: int, program: str) -> None:
        pool.submit(sandbox_job(job(item, program), limits, cfg.sandbox.timeout_s, cfg.sandbox.guard),
                    tag=(key, item, index))

    def on_finished(transcript: Transcript) -> None:
        item = by_unit[(transcript.spec.problem_id, transcript.spec.case)]
        key = make_key(problem_key(item.problem.id), transcript.sample_index, item.case)
        store.append_sample(sample_record(key, item, transcript))
        stored[key] = None
        counts["generated"] += 1
        progress.update(samples=1)
        submit(item, key, transcript.sample_index, transcript.program)
        store_results(pool.finished())

    def on_turn(completion: Completion) -> None:
        counts["tokens"] += completion.n_new_tokens
        progress.update(tokens=completion.n_new_tokens)

    by_unit = {(it.problem.id, it.case): it for it in items}
    hide(_answer_files(problem_set))
    check_sampling(cfg.sampling.temperature, cfg.sampling.n)
    try:
        with progress, executor(cfg.sandbox.workers, limits) as pool:
            for key, record in stored.items():
                if key not in executed:
                    item, index = wanted[key]
                    submit(item, key, index, record.completion)
            specs = []
            for it in items:
                missing = tuple(i for i in range(n)
                                if (key := make_key(problem_key(it.problem.id), i, it.case)) in wanted
                                and key not in stored)
                if missing:
                    specs.append(ConversationSpec(
                        problem_id=it.problem.id, case=it.case, prompts=turn_prompts(cfg, it.problem, it.case),
                        params=tuple(cfg.sampling.params(b) for b in turn_budgets(cfg, it.problem)), samples=missing))
            converse(generator, specs, on_finished, on_turn)
            generate_s = time.perf_counter() - t0
            store_results(pool.as_completed())
    except KeyboardInterrupt:
        store.close()
        print_block(interrupted_line("mtpb", cfg.run_dir, len(stored), len(executed) + counts["executed"]))
        raise SystemExit(130) from None
    store.close()

    missing_keys = set(wanted) - set(stored)
    if missing_keys:
        raise RuntimeError(f"the generator finished without {len(missing_keys)} conversations, "
                           f"e.g. {sorted(missing_keys)[:3]}")
    metrics = finish(cfg, problems, store, generate_s=generate_s, tokens=counts["tokens"]) if shard is None else {}
    if shard is None:
        per_problem = cfg.per_problem
        print_block(summary_block("mtpb", cfg.run_dir, metrics, store.executions(), per_problem=per_problem))
    elapsed = time.perf_counter() - t0
    log.info("mtpb %s: generated %d conversations (%d tokens), executed %d programs in %.1f s",
             cfg.model.name, counts["generated"], counts["tokens"], counts["executed"], elapsed)
    return RunSummary(Path(cfg.run_dir), metrics, counts["generated"], counts["executed"], elapsed,
                      generate_s, counts["tokens"])


def finish_run(cfg: RunConfig, problem_set: ProblemSet | None = None) -> dict:
    """Merge a sharded run's files and write its metrics (every shard must be complete)."""
    if problem_set is None:
        problem_set = load_problems(cfg.data_path, url=cfg.benchmark.url or MTPB_URL,
                                    sha256=cfg.benchmark.sha256 or MTPB_SHA256, cache_dir=cfg.benchmark.cache_dir)
    return finish(cfg, list(select_problems(cfg, problem_set)), RunStore(cfg.run_dir))


def finish(cfg: RunConfig, problems: Sequence[Problem], store: RunStore, *, generate_s: float = 0.0,
           tokens: int = 0) -> dict:
    """Canonical files and metrics.json over the selected problems and cases."""
    store.finalize()
    items = work_items(cfg, problems)
    units = {(problem_key(it.problem.id), it.case) for it in items}
    executions = [e for e in store.executions()
                  if (e.problem_id, e.case_index) in units and e.sample_index < cfg.sampling.n]
    expected = len(items) * cfg.sampling.n
    if len(executions) != expected:
        raise RuntimeError(f"{cfg.run_dir}: {len(executions)} of {expected} executions stored; "
                           "rerun the same command to complete the run")
    metrics = {
        "benchmark": "mtpb", "model": cfg.model.name, "mode": cfg.mode.replace("_", "-"), "scoring": cfg.scoring,
        **{k: getattr(cfg.sampling, k) for k in ("temperature", "top_p", "top_k", "n", "max_new_tokens", "seed")},
        "exclude_errata": cfg.exclude_errata, "datasets_dir": cfg.datasets_dir,
        **compute_metrics(executions, problems, ks=cfg.benchmark.ks, n=cfg.sampling.n,
                          datasets_available=cfg.datasets_dir is not None),
    }
    if tokens and generate_s > 0:
        metrics["tokens"], metrics["generate_s"] = tokens, round(generate_s, 3)
        metrics["tokens_per_s"] = tokens / generate_s
    store.write_metrics(metrics)
    log.info("mtpb %s:\n%s", cfg.model.name, format_summary(metrics))
    return metrics


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


def _answer_files(problem_set) -> tuple[str, ...]:
    """The MTPB file in use, unreadable to the programs (docs/sandbox.md)."""
    source = getattr(problem_set, "source", "")
    return (source,) if source and "://" not in source else ()
