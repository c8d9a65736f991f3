"""`python -m mtpb.evaluate PATH...`: score existing MTPB generations with the official scoring.

Reads, per PATH:
- the official sample format (salesforce/CodeGen `mtpb_sample.py` output): JSONL lines with `id`,
  `input`, `gold_output` and `completions` (the assembled program); the gold comes from the line,
  as in the official `mtpb_exec.py`;
- our own run format: a run directory or its samples.jsonl (`results.records.SampleRecord` lines,
  `completion` being the program); the gold comes from the dataset: `--data`, else the run's own
  `data_path` (its config.yaml), else $CODEGEN_SHARED_DATA/mtpb/mtpb.jsonl, else the pinned download.

Writes `PATH_results.jsonl` beside each input file (for a run directory, beside its
samples.jsonl): one line per input line, in the same order, with `passed` (under `--scoring`),
`official_passed`, `strict_passed`, `status`, `detail`, `value` (the last print's first argument as
JSON where it can be, else null) and `value_repr`. Prints the pass rate and the per-problem table.
Files are read and written by `results.jsonl` (docs/design.md §5): lines split on "\\n" only (a
U+2028 inside a program never splits a line), any text written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from results.aliases import rename_flags
from results.jsonl import JSONLError, clip_text, dumps_json, read_objects, write_jsonl
from results.records import DETAIL_MAX_CHARS, ExecutionRecord
from sandbox import Limits, executor, hide

from .data import DataError, Problem, ProblemSet, load_problems
from .errata import load_dataset_files
from .execution import ScoringJob, sandbox_job
from .harness import OFFICIAL_TIMEOUT_S, WALL_GRACE_S, read_outcome
from .metrics import compute_metrics, format_problem_table, format_summary, problem_key

log = logging.getLogger("mtpb.evaluate")


class InputError(ValueError):
    """A samples file that is neither format (the message names the file, line and field)."""


@dataclass
class Entry:
    path: Path  # the file the line came from
    line: int  # 1-based
    raw: dict
    problem_id: int
    case: int | None  # None until resolved
    input: Any  # official format: the test case's inputs
    gold: Any
    program: str
    sample_index: int = 0


def _lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) of a samples file (`results.jsonl`: split on "\\n" only, so U+2028,
    U+2029 or U+0085 inside a string never split a line; a torn last line is skipped and logged)."""
    try:
        return read_objects(path)
    except JSONLError as err:
        raise InputError(str(err)) from None


def _pid(value: Any, where: str) -> int:
    try:
        return int(str(value).removeprefix("mtpb/"))
    except ValueError:
        raise InputError(f"{where}: problem id {value!r} is not an MTPB id (e.g. 3 or mtpb/3)") from None


def read_entries(path: Path, problems: ProblemSet | None) -> list[Entry]:
    """The lines of one samples file, either format (decided per line by its fields)."""
    entries = []
    for number, obj in _lines(path):
        where = f"{path}:{number}"
        if "completions" in obj and "gold_output" in obj:  # official
            if not isinstance(obj["completions"], str):
                raise InputError(f"{where}: 'completions' must be the program text (a string)")
            entries.append(Entry(path, number, obj, _pid(obj.get("id"), where), None, obj.get("input"),
                                 obj["gold_output"], obj["completions"]))
        elif "completion" in obj and "problem_id" in obj:  # our SampleRecord
            pid = _pid(obj["problem_id"], where)
            case = obj.get("case_index")
            if problems is None:
                raise InputError(f"{where}: run-format samples take their gold output from the dataset; pass --data")
            problem = problems.by_id().get(pid)
            if problem is None or not isinstance(case, int) or not 0 <= case < problem.n_cases:
                raise InputError(f"{where}: no test case {case!r} of problem {pid} in the dataset")
            entries.append(Entry(path, number, obj, pid, case, problem.inputs[case], problem.gold(case),
                                 obj["completion"], int(obj.get("sample_index", 0))))
        else:
            raise InputError(f"{where}: neither the official format (id, input, gold_output, completions) "
                             "nor a run's samples.jsonl line (key, problem_id, case_index, completion)")
    return entries


def _resolve_cases(entries: list[Entry], problems: ProblemSet | None) -> None:
    """Official lines: the test case is the dataset case with the same input, else the order of
    first appearance of each distinct input (as the official script groups them); sample indices
    count the lines of each (problem, case)."""
    by_id = problems.by_id() if problems is not None else {}
    seen: dict[int, list[str]] = {}
    counter: dict[tuple[int, int], int] = {}
    for e in entries:
        if e.case is None:
            problem = by_id.get(e.problem_id)
            if problem is not None and e.input in problem.inputs:
                e.case = problem.inputs.index(e.input)
            else:
                keys = seen.setdefault(e.problem_id, [])
                text = json.dumps(e.input, sort_keys=True)
                if text not in keys:
                    keys.append(text)
                e.case = keys.index(text)
            e.sample_index = counter.get((e.problem_id, e.case), 0)
        counter[(e.problem_id, e.case)] = max(counter.get((e.problem_id, e.case), 0), e.sample_index) + 1


def evaluate(paths: Sequence[str | Path], *, problems: ProblemSet | None = None, scoring: str = "official",
             official_timeout_s: float = OFFICIAL_TIMEOUT_S, limits: Limits | None = None, workers: int | None = None,
             datasets_dir: str | None = None, guard: bool = True) -> tuple[dict, dict[Path, list[dict]]]:
    """Score every line of `paths`; returns (metrics, {results file: result lines}). `guard`: the
    official script's reliability_guard in every program (the faithful default); `official_timeout_s`:
    the official in-process limit; `limits`: the sandbox's (default: wall_s = official_timeout_s +
    WALL_GRACE_S, 4096 MB)."""
    if scoring not in ("official", "strict"):
        raise ValueError(f"scoring must be 'official' or 'strict', got {scoring!r}")
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            path = path / "samples.jsonl"
        if not path.is_file():
            raise InputError(f"{given}: no such samples file (or run directory with samples.jsonl)")
        files.append(path)
    entries = [e for path in files for e in read_entries(path, problems)]
    _resolve_cases(entries, problems)
    dataset_files = load_dataset_files(datasets_dir, {e.problem_id for e in entries}) if datasets_dir else {}
    limits = limits or Limits(wall_s=official_timeout_s + WALL_GRACE_S, memory_mb=4096)
    jobs = [ScoringJob(e.program, e.gold, dataset_files.get(e.problem_id)) for e in entries]
    results: list[dict | None] = [None] * len(entries)
    records: list[ExecutionRecord | None] = [None] * len(entries)
    by_id = problems.by_id() if problems is not None else {}
    hidden = (problems.source,) if problems is not None and "://" not in problems.source else ()
    hide(hidden)
    with executor(workers, limits) as pool:
        for index, j in enumerate(jobs):
            pool.submit(sandbox_job(j, limits, official_timeout_s, guard), tag=index)
        finished = [(index, read_outcome(result), result) for index, result in pool.as_completed()]
    for index, outcome, result in finished:
        e = entries[index]
        value = outcome.value or {}
        results[index] = {**e.raw, "passed": outcome.passed(scoring), "official_passed": outcome.official,
                          "strict_passed": outcome.strict, "status": outcome.status,
                          "detail": clip_text(outcome.detail, DETAIL_MAX_CHARS),
                          "value": value.get("json"), "value_repr": value.get("repr")}
        category = by_id[e.problem_id].category if e.problem_id in by_id else ""
        records[index] = ExecutionRecord(
            key=f"{problem_key(e.problem_id)}/c{e.case}/line{index}", problem_id=problem_key(e.problem_id),
            sample_index=e.sample_index, status=outcome.status, passed=outcome.passed(scoring),
            detail=outcome.detail, duration_s=result.duration_s, case_index=e.case,
            extra={"category": category, "official_passed": outcome.official, "strict_passed": outcome.strict})
    out: dict[Path, list[dict]] = {}
    for e, r in zip(entries, results):
        out.setdefault(Path(str(e.path) + "_results.jsonl"), []).append(r)
    for path in files:
        out.setdefault(Path(str(path) + "_results.jsonl"), [])
    problem_list = _problems_for(entries, by_id)
    n = min((sum(1 for x in entries if (x.problem_id, x.case) == key)
             for key in {(x.problem_id, x.case) for x in entries}), default=1)
    metrics = compute_metrics([r for r in records if r is not None], problem_list, n=n,
                              datasets_available=datasets_dir is not None)
    metrics["scoring"] = scoring
    return metrics, out


def _problems_for(entries: Sequence[Entry], by_id: dict[int, Problem]) -> list[Problem]:
    """Dataset problems of the entries; a stand-in (name/category unknown) for ids it lacks."""
    out = []
    for pid in sorted({e.problem_id for e in entries}):
        if pid in by_id:
            out.append(by_id[pid])
        else:
            cases = max(e.case for e in entries if e.problem_id == pid) + 1
            out.append(Problem(pid, "", "", "?", ("",), tuple({} for _ in range(cases)),
                               tuple(None for _ in range(cases))))
    return out


def write_results(path: Path, lines: Sequence[dict]) -> None:
    """One results file (`results.jsonl`: ASCII JSON lines, any text encodable; non-JSON values as repr)."""
    write_jsonl(path, lines, default=repr)


def run_data_path(paths: Sequence[str]) -> str | None:
    """The `data_path` recorded in the config.yaml of the first run among `paths` (a run directory
    or its samples.jsonl) that names an existing file; None if none does."""
    import yaml

    for path in map(Path, paths):
        config = (path if path.is_dir() else path.parent) / "config.yaml"
        try:
            data_path = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data_path")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if data_path and Path(data_path).is_file():
            log.info("dataset: %s (from %s)", data_path, config)
            return str(data_path)
    return None


def _limits(args: argparse.Namespace) -> Limits:
    """The sandbox's limits of the command line; InputError when the wall clock would cut the
    official in-process limit short."""
    wall_s = args.wall_s if args.wall_s is not None else args.official_timeout_s + WALL_GRACE_S
    if not wall_s > args.official_timeout_s > 0:
        raise InputError(f"--wall-s={wall_s:g} must be > --official-timeout-s={args.official_timeout_s:g} > 0 "
                         "(the sandbox kills at the wall clock; the official timer must fire first)")
    return Limits(wall_s=wall_s, memory_mb=4096)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtpb.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="official-format JSONL files, run directories or samples.jsonl files")
    parser.add_argument("--data", default=None, help="mtpb.jsonl (default: the run's own data_path, else "
                        "$CODEGEN_SHARED_DATA/mtpb/mtpb.jsonl, else the pinned download)")
    parser.add_argument("--scoring", choices=("official", "strict"), default="official")
    parser.add_argument("--official-timeout-s", type=float, default=OFFICIAL_TIMEOUT_S,
                        help="the official in-process limit per program, seconds (default 20, as mtpb_exec.py)")
    parser.add_argument("--wall-s", type=float, default=None, help="the sandbox's wall-clock limit per program, "
                        f"seconds (default: --official-timeout-s + {WALL_GRACE_S:g})")
    parser.add_argument("--workers", type=int, default=None, help="programs in parallel (default: one per core)")
    parser.add_argument("--datasets-dir", default=None, help="folder with the CSV files problems 38 and 46 read")
    parser.add_argument("--quiet", action="store_true", help="no per-problem table")
    parser.add_argument("--no-guard", action="store_true",
                        help="run without the official reliability_guard (default: with it, as mtpb_exec.py)")
    try:
        argv = rename_flags(sys.argv[1:] if argv is None else argv, {"--timeout-s": "--official-timeout-s"})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        problems = load_problems(args.data or run_data_path(args.paths))
    except DataError as err:
        log.warning("no dataset (%s); official-format lines are still scored with their own gold outputs", err)
        problems = None
    try:
        metrics, outputs = evaluate(args.paths, problems=problems, scoring=args.scoring,
                                    official_timeout_s=args.official_timeout_s, limits=_limits(args),
                                    workers=args.workers, datasets_dir=args.datasets_dir, guard=not args.no_guard)
    except (InputError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    unwritten = []
    for path, lines in outputs.items():
        try:
            write_results(path, lines)
            log.info("wrote %s (%d lines)", path, len(lines))
        except OSError as err:  # the scores are computed: still print them below
            unwritten.append(f"could not write {path} ({err})")
    if not args.quiet:
        print(format_problem_table(metrics))
    print(format_summary(metrics))
    print(dumps_json({"pass_rate": metrics["pass_rate"], "official_pass_rate": metrics["official_pass_rate"],
                      "strict_pass_rate": metrics["strict_pass_rate"], "n_executions": metrics["n_executions"]}))
    for problem in unwritten:
        print(f"error: {problem}; make the folder of the samples file writable", file=sys.stderr)
    return 2 if unwritten else 0


if __name__ == "__main__":
    sys.exit(main())
