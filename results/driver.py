"""The run driver: one loop for every sampling benchmark (docs/design.md §5).

A benchmark package holds only what is its own (problems, prompts and stop rules or the
conversation, program assembly, scoring, metrics) behind the small `Benchmark` protocol below. The
driver does the rest, the same way for HumanEval and MTPB:

1. the model: the engine through `codegen_model.registry`, or the benchmark's reference solutions
   (`load_generator`), described by one `codegen_model.registry.ModelInfo`;
2. the run directory (`results.store.RunStore`): a new run, or a resume of the same one (the
   manifest's identity and the benchmark's `resume_keys` must match);
3. this process's share of the units (`results.shard`: a contiguous block of the canonical order);
4. the units stored by an earlier, killed run but not yet executed go to the sandbox first;
5. the benchmark generates the missing units; each finished sample is appended to samples.jsonl
   and its program submitted to the sandbox's push API at once, and finished executions are
   appended between samples and at the end (generation and execution overlap);
6. progress on the terminal (tqdm) or as a periodic log line; Ctrl-C prints what is saved and the
   resume command (exit 130);
7. `finish`: canonical files (merging shards), metrics.json, the end-of-run summary block.

A killed run loses only unfinished samples, which rerunning the same command regenerates
identically (each sample's randomness depends only on seed, key, sample index and step).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from sandbox import ExecResult, Limits, executor, hide

from .config import known_models, to_dict
from .jsonl import Appender, dumps_json, read_objects
from .progress import make_progress
from .records import ExecutionRecord, Manifest, SampleRecord
from .report import UserError, check_sampling, interrupted_line, plural, print_block, summary_block
from .shard import owned_range
from .store import RunStore, RunStoreError

if TYPE_CHECKING:
    from codegen_model.generator import Generator
    from codegen_model.registry import LoadedModel, ModelInfo, ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """One unit of work: one sample of one problem (HumanEval) or of one test case (MTPB)."""

    key: str  # the record key (results.records.make_key), unique in the run
    problem: Any  # the benchmark's own description of what is sampled (a problem, a (problem, case))
    index: int  # the sample index, 0..n-1


Emit = Callable[[Unit, SampleRecord], None]

# metrics.json's record of how fast the call that generated was: present when that call generated,
# absent after a merge of shards or a rerun of a complete run; not part of the run's result.
THROUGHPUT_KEYS = ("tokens", "generate_s", "tokens_per_s")


def result_metrics(metrics: dict) -> dict:
    """`metrics` without the throughput of the call that generated: what any two runs of the same
    config and seed agree on (resumed, sharded or whole)."""
    return {k: v for k, v in metrics.items() if k not in THROUGHPUT_KEYS}


class Benchmark(Protocol):
    """What a benchmark gives the driver. `cfg` is its typed run config (results.config)."""

    name: str  # "humaneval" | "mtpb": records, logs, the resume command
    cfg: Any
    limits: Limits  # per-program sandbox limits
    resume_keys: tuple[str, ...]  # manifest `extra` entries that must match for a resume

    def units(self) -> list[Unit]:
        """Every unit of the run's selection, in the canonical order (shards split it)."""

    def describe(self) -> str:
        """The run's size for the opening log line, e.g. "3 problems x 2 samples"."""

    def manifest(self, model: ModelInfo) -> Manifest:
        """What the run is (results.provenance.build_manifest with the benchmark's parts)."""

    def reference(self) -> Generator | None:
        """The generator of `model=reference` (the canonical solutions), or None if there is none."""

    def generate(self, generator: Generator, missing: Sequence[Unit], emit: Emit,
                 count_tokens: Callable[[int], None]) -> None:
        """Generate `missing`: call `emit(unit, record)` once per finished sample, `count_tokens(n)`
        as tokens arrive. Raises RuntimeError for a sample that was not asked for."""

    def job(self, unit: Unit, completion: str) -> Any:
        """The sandbox job (a program or `sandbox.Job`) that executes the sample `completion`."""

    def execution_record(self, unit: Unit, result: ExecResult) -> ExecutionRecord:
        """The verdict of `unit` from the sandbox's result."""

    def metrics(self, executions: list[ExecutionRecord]) -> dict:
        """The benchmark's scores over every unit's execution; metrics.json holds them after the
        benchmark, the model and the sampling settings, and before this call's throughput."""

    def answer_files(self) -> tuple[str, ...]:
        """Files the programs must not read (the problem file in use: it holds the answers)."""


@dataclass
class RunSummary:
    """What one call of `run` did (its records and metrics are in `run_dir`)."""

    run_dir: Path
    metrics: dict  # what metrics.json holds ({} for a shard that is not the merging one)
    n_generated: int  # samples generated by this call (0 when everything was stored already)
    n_executed: int  # programs executed by this call
    elapsed_s: float
    generate_s: float  # seconds from the first request to the last sample (model loading excluded)
    tokens: int  # new tokens generated by this call


def model_spec(model: Any) -> ModelSpec:
    """The registry's `ModelSpec` of a `results.config.ModelConfig` (a checkpoint or tiny-random).
    Raises UserError for a Hub model with no checkpoint path or repo id."""
    from codegen_model.registry import ModelSpec

    if model.kind == "hub" and not model.path:
        raise UserError(f"unknown model {model.name!r}: no checkpoint path or Hub repo id; known models are "
                        f"{known_models()} (model=<name>), or set model.path")
    return ModelSpec(name=model.name, kind=model.kind, path=model.path, revision=model.revision,
                     dtype=model.dtype, device=model.device)


def load_model(model: Any) -> LoadedModel:
    """The model, tokenizer and `ModelInfo` of a ModelConfig, for the modes that score with the model
    itself (perplexity)."""
    from codegen_model.registry import load

    return load(model_spec(model))


def load_generator(model: Any, reference: Callable[[], Generator | None] | None = None) -> tuple[Generator, ModelInfo]:
    """The generator for a `results.config.ModelConfig` and its `ModelInfo`: the benchmark's
    reference solutions for `kind=reference`, else the engine on the checkpoint via the registry.

    Raises UserError for a model with no checkpoint or a reference the benchmark does not have."""
    from codegen_model.registry import ModelInfo, build_generator

    if model.kind == "reference":
        generator = reference() if reference is not None else None
        if generator is None:
            raise UserError("model=reference (the canonical solutions) exists for HumanEval only; pick "
                            "model=tiny-random or a checkpoint")
        return generator, ModelInfo(name=model.name, kind="reference", device="cpu")
    generator = build_generator(model_spec(model), **model.engine)
    return generator, model_info(generator, model)


def model_info(generator: Generator, model: Any) -> ModelInfo:
    """What the loader recorded on `generator` (`model_info`), else what the config says."""
    from codegen_model.registry import ModelInfo

    info = getattr(generator, "model_info", None)
    info = info() if callable(info) else info
    if isinstance(info, ModelInfo):
        return info
    if isinstance(info, dict):
        return ModelInfo.from_dict({"revision": model.revision, **info, "name": model.name})
    return ModelInfo(name=model.name, kind=model.kind, revision=model.revision, device=model.device,
                     dtype=model.dtype)


def run(bench: Benchmark, *, generator: Generator | None = None, shard: tuple[int, int] | None = None) -> RunSummary:
    """Run (or resume) `bench`'s evaluation; see the module docstring. `shard=(rank, world)`: this
    process's share only, merged by `finish` once every share is done."""
    t0 = time.perf_counter()
    if generator is None:
        generator, model = load_generator(bench.cfg.model, bench.reference)
    else:
        model = model_info(generator, bench.cfg.model)
    store = RunStore(bench.cfg.run_dir, shard=shard)
    resumed = open_run(store, to_dict(bench.cfg), bench.manifest(model), bench.resume_keys)
    units = bench.units()
    share = _Share(bench, store, [units[j] for j in owned_range(len(units), shard)])
    log.info("%s %s: %s%s, %s (%d samples and %d executions stored)", bench.name, bench.cfg.model.name,
             bench.describe(), f" (shard {shard[0]}/{shard[1]})" if shard else "",
             "resuming" if resumed else "new run", len(share.done), len(share.executed))
    share.run(generator)
    generate_s = share.generate_s
    metrics = {}
    if shard is None:
        metrics = finish(bench, store, generate_s=generate_s, tokens=share.tokens)
        print_block(summary_block(bench.name, bench.cfg.run_dir, metrics, store.executions(),
                                  per_problem=bench.cfg.per_problem))
    elapsed = time.perf_counter() - t0
    log.info("%s %s: generated %s (%d tokens, %.1f tok/s) and executed %s in %.1f s", bench.name,
             bench.cfg.model.name, plural(share.generated, "sample"), share.tokens,
             share.tokens / max(generate_s, 1e-9), plural(share.executed_now, "program"), elapsed)
    return RunSummary(Path(bench.cfg.run_dir), metrics, share.generated, share.executed_now, elapsed,
                      generate_s, share.tokens)


def open_run(store: RunStore, config: dict, manifest: Manifest, resume_keys: Iterable[str] = ()) -> bool:
    """Create the run directory (its config.yaml and manifest.json), or check that it holds this run;
    True for a resume. Raises RunStoreError naming what differs: an identity field, or one of the
    manifest's `extra` entries named in `resume_keys` (e.g. stored verdicts scored another way, or
    perplexities over another history, must not be mixed with new ones)."""
    existing = store.manifest()
    for name in resume_keys if existing is not None else ():
        old, new = existing.extra.get(name), manifest.extra.get(name)
        if old != new:
            raise RunStoreError(f"{store.run_dir} holds a run with {name}={old!r}, this one has {name}={new!r}; "
                                "use another run_dir, or delete this one to start over")
    return store.start(config, manifest)


def scored_rows(path: Path, keys: Sequence[str], compute: Callable[[list[str]], Iterable[dict]], *,
                chunk: int = 1) -> tuple[dict[str, dict], int]:
    """The rows of a scoring run (a perplexity mode: no sampling, no sandbox), one JSON object with a
    "key" per line of `path`, appended as computed so that a killed run resumes (a torn last line is
    skipped): the stored rows plus `compute(keys)` for the missing `keys`, `chunk` at a time, each
    chunk flushed. Returns (rows by key, how many this call computed)."""
    done = {row["key"]: row for _, row in read_objects(path)} if path.exists() else {}
    todo = [k for k in keys if k not in done]
    with Appender(path) as f:
        for start in range(0, len(todo), chunk):
            for row in compute(todo[start:start + chunk]):
                f.write(row)
                done[row["key"]] = row
    return done, len(todo)


class _Share:
    """This process's units of one run: what is stored, and the loop that completes the rest."""

    def __init__(self, bench: Benchmark, store: RunStore, units: Iterable[Unit]):
        self.bench, self.store = bench, store
        self.wanted = {u.key: u for u in units}
        self.stored = {r.key: r for r in store.samples() if r.key in self.wanted}
        self.done = set(self.stored)  # keys whose sample is on disk
        self.executed = store.execution_keys() & set(self.wanted)
        self.generated = self.executed_now = self.tokens = 0
        self.generate_s = 0.0  # seconds from the first request to the last sample (model loading excluded)
        cfg = bench.cfg
        self.progress = make_progress(cfg.progress, total=len(self.wanted), initial=len(self.stored),
                                      log_every_s=cfg.log_every_s, desc=self._label())
        self.pool = None

    def _label(self) -> str:
        cfg = self.bench.cfg
        mode = getattr(cfg, "mode", None)
        return " ".join(str(x) for x in (self.bench.name, cfg.model.name, mode, f"t{cfg.sampling.temperature}") if x)

    def run(self, generator: Generator) -> None:
        """Execute the stored samples not yet executed, generate the missing ones, wait for every
        verdict. Ctrl-C: one line (what is saved, how to resume) and exit 130."""
        cfg = self.bench.cfg
        hide(self.bench.answer_files())
        check_sampling(cfg.sampling.temperature, cfg.sampling.n)
        try:
            with self.progress, executor(cfg.sandbox.workers, self.bench.limits) as self.pool:
                for key, record in self.stored.items():
                    if key not in self.executed:
                        self._submit(self.wanted[key], record.completion)
                missing = [u for u in self.wanted.values() if u.key not in self.done]
                start = time.perf_counter()
                self.bench.generate(generator, missing, self._emit, self._count_tokens)
                self.generate_s = time.perf_counter() - start
                self._store_results(self.pool.as_completed())
        except KeyboardInterrupt:
            self.store.close()
            print_block(interrupted_line(self.bench.name, cfg.run_dir, len(self.done),
                                         len(self.executed) + self.executed_now))
            raise SystemExit(130) from None
        self.store.close()
        missing_keys = set(self.wanted) - self.done
        if missing_keys:
            raise RuntimeError(f"the generator finished without {len(missing_keys)} requested samples, "
                               f"e.g. {sorted(missing_keys)[:3]}")

    def _emit(self, unit: Unit, record: SampleRecord) -> None:
        if unit.key not in self.wanted or unit.key in self.done:
            raise RuntimeError(f"the generator returned sample {unit.key!r}, which was not requested (or twice)")
        self.store.append_sample(record)
        self.done.add(unit.key)
        self.generated += 1
        self.progress.update(samples=1)
        self._submit(unit, record.completion)
        self._store_results(self.pool.finished())

    def _count_tokens(self, n: int) -> None:
        self.tokens += n
        self.progress.update(tokens=n)

    def _submit(self, unit: Unit, completion: str) -> None:
        self.pool.submit(self.bench.job(unit, completion), tag=unit)

    def _store_results(self, results: Iterable[tuple[Unit, ExecResult]]) -> None:
        for unit, result in results:  # (tag, result) pairs from the sandbox, on this thread
            self.store.append_execution(self.bench.execution_record(unit, result))
            self.executed_now += 1
            self.progress.update(executions=1)


def finish(bench: Benchmark, store: RunStore | None = None, *, generate_s: float = 0.0, tokens: int = 0) -> dict:
    """Canonical files (merging any shards) and metrics.json over every unit of the selection.
    Raises RuntimeError when executions are missing (rerunning the same command completes them)."""
    store = store or RunStore(bench.cfg.run_dir)
    store.finalize()
    keys = {u.key for u in bench.units()}
    executions = [e for e in store.executions() if e.key in keys]
    if len(executions) != len(keys):
        raise RuntimeError(f"{bench.cfg.run_dir}: {len(executions)} of {len(keys)} executions stored; "
                           "rerun the same command to complete the run")
    sampling = bench.cfg.sampling
    metrics = {"benchmark": bench.name, "model": bench.cfg.model.name,
               **{k: getattr(sampling, k) for k in ("temperature", "top_p", "top_k", "n", "max_new_tokens", "seed")},
               **bench.metrics(executions)}
    if tokens and generate_s > 0:  # this call's throughput (a merge of shards, or a run that was complete: none)
        metrics.update(zip(THROUGHPUT_KEYS, (tokens, round(generate_s, 3), tokens / generate_s)))
    store.write_metrics(metrics)
    return metrics


def run_app(bench_run: Callable[[tuple[int, int] | None], RunSummary], finish_run: Callable[[], dict],
            cfg: Any, shown: Callable[[dict], dict]) -> dict | None:
    """An app's whole run (`python -m humaneval` / `python -m mtpb`): this process's shard (config,
    torchrun or SLURM; results.shard.run_app), the merge by whoever finishes last, then one JSON line
    on stdout: the run directory and `shown(metrics)`, or, for a shard whose peers are still running,
    its shard and `"merged": false` (returns None then)."""
    from codegen_model import distributed

    from .shard import run_app as run_sharded

    metrics, shard = run_sharded(cfg.run_dir, {"rank": cfg.shard.rank, "world": cfg.shard.world}, bench_run,
                                 finish=finish_run, dist=distributed)
    if metrics is None:
        print(dumps_json({"run_dir": str(cfg.run_dir), "shard": list(shard.as_tuple()), "merged": False}))
        return None
    print(dumps_json({"run_dir": str(cfg.run_dir), **shown(metrics)}))
    return metrics
