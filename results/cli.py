"""`python -m results`: tables, paper comparison, plots, paired comparison and the CI gate.

    python -m results RUN_DIR... [--paper] [--plots] [--k 1,10,100] [--out DIR | --no-files]
    python -m results --paper                     # the paper's tables alone (no run of ours)
    python -m results compare RUN_A RUN_B [--k ...] [--out DIR]
    python -m results check RUN_DIR --baseline FILE [--allow-incomplete]
    python -m results check RUN_DIR --write-baseline FILE [--tolerance 0.02|ci] [--metrics pass@1,...]

RUN_DIR may be a run or any folder above runs (e.g. a Hydra multirun folder); folders without a
run are named and skipped. Exit codes: 0 fine, 1 a check failed, 2 bad input (no run, bad file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from results.check import BaselineError, check_run, make_baseline, read_baseline, write_baseline
from results.compare import compare_runs
from results.paper import humaneval_vs_paper, mtpb_vs_paper
from results.paper_analysis import is_perplexity_run
from results.paper_tables import paper_tables
from results.plots import write_plots
from results.records import RecordError
from results.runs import load_runs
from results.tables import (
    best_temperature,
    display_best,
    display_perplexity,
    display_summary,
    perplexity_table,
    summary_table,
    to_markdown,
)

log = logging.getLogger("results")
COMMANDS = ("table", "compare", "check")


def _ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes comma-separated integers like 1,10,100, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k needs integers >= 1, got {text!r}")
    return ks


def _tolerance(text: str):
    if text == "ci":
        return "ci"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--tolerance takes a number (absolute, as a fraction) or 'ci', got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--k", type=_ks, default=[1, 10, 100],
                        help="pass@k values (default 1,10,100; k > n is not reported)")
    common.add_argument("--boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    common.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    common.add_argument("-q", "--quiet", action="store_true", help="warnings only")

    parser = argparse.ArgumentParser(prog="python -m results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("table", parents=[common], help="one table over runs (the default command)")
    table.add_argument("paths", nargs="*", help="run directories or folders above them (optional with --paper)")
    table.add_argument("--paper", action="store_true",
                       help="every table of the CodeGen paper (1-4, Figure 2) with ours beside it where runs exist")
    table.add_argument("--plots", action="store_true", help="write PNG plots to OUT/plots")
    table.add_argument("--out", type=Path, help="where results.md/csv go (default: the first path)")
    table.add_argument("--no-files", action="store_true", help="print only; write no files")

    compare = sub.add_parser("compare", parents=[common], help="paired comparison of two runs")
    compare.add_argument("a", help="run A (baseline)")
    compare.add_argument("b", help="run B (candidate)")
    compare.add_argument("--out", type=Path, help="also write compare.md/csv and per-problem values here")

    check = sub.add_parser("check", parents=[common], help="CI regression gate against a baseline file")
    check.add_argument("run", help="the run directory to check")
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--baseline", type=Path, help="baseline JSON to check against")
    what.add_argument("--write-baseline", type=Path, help="write a baseline JSON from this run")
    check.add_argument("--tolerance", type=_tolerance, default="ci",
                       help="for --write-baseline: absolute (e.g. 0.02) or 'ci' (default)")
    check.add_argument("--metrics", help="for --write-baseline: comma-separated metrics (default: all reported)")
    check.add_argument("--allow-incomplete", action="store_true", help="do not fail an incomplete run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "table")
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.boot < 1:
        print(f"error: --boot needs at least 1 resample, got {args.boot}", file=sys.stderr)
        return 2
    try:
        return {"table": _table, "compare": _compare, "check": _check}[args.command](args)
    except (BaselineError, RecordError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that cannot be read or written: one line, no traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 2


def _table(args) -> int:
    if not args.paths:
        if not args.paper:
            print("error: name a run directory (or a folder above runs), or use --paper for the paper's tables",
                  file=sys.stderr)
            return 2
        for table in paper_tables(summary_table([]), [], args.k):
            print(f"## {table.title}\n\n{to_markdown(table.shown)}")
        return 0
    runs, skipped = load_runs(args.paths)
    if not runs:
        print("error: no run found under " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    scored = [run for run in runs if not is_perplexity_run(run.manifest)]  # perplexity runs: their own table
    summary = summary_table(scored, args.k, args.boot, args.seed)
    perplexity = perplexity_table(runs)
    sections = []
    if scored:
        sections.append(("Runs (metrics in %, 95% bootstrap CI over problems)", display_summary(summary, args.k),
                         summary, "results"))
    if len(perplexity):
        sections.append(("Perplexity runs (mean ± standard error over problems)", display_perplexity(perplexity),
                         perplexity, "perplexity"))
    best = best_temperature(summary, args.k)
    swept = summary.groupby(["model", "benchmark", "mode", "scoring", "n"], dropna=False)["temperature"].nunique() \
        if scored else pd.Series(dtype=int)
    if len(best) and swept.max() > 1:
        sections.append(("Best temperature per k (%)", display_best(best), best, "best_temperature"))
    if args.paper:
        he, mt = humaneval_vs_paper(summary, args.k), mtpb_vs_paper(summary)
        if len(he):
            sections.append(("HumanEval vs the CodeGen paper (%; ours: best temperature per k)", he.round(2), he,
                             "paper_humaneval"))
        if len(mt):
            sections.append(("MTPB vs the CodeGen paper (pass rate %)", mt.round(2), mt, "paper_mtpb"))
        for table in paper_tables(summary, runs, args.k):
            sections.append((table.title, table.shown, table.data, table.name))
    elif not scored:
        print("note: only perplexity runs here; --paper also sets them beside the paper's Tables 2 and 4",
              file=sys.stderr)
    for title, frame, _, _ in sections:
        print(f"## {title}\n\n{to_markdown(frame)}")
    for run in runs:
        if not run.complete and not is_perplexity_run(run.manifest):
            print(f"note: {run.path} is incomplete: {'; '.join(run.incomplete)}")
        elif is_perplexity_run(run.manifest) and run.metrics is None:
            print(f"note: {run.path} is incomplete: no metrics.json (in progress or killed)")
    for message in skipped:
        print(f"skipped: {message}")
    if not args.no_files and sections:
        out = args.out or Path(args.paths[0])
        out.mkdir(parents=True, exist_ok=True)
        for title, frame, data, name in sections:
            data.to_csv(out / f"{name}.csv", index=False)
            (out / f"{name}.md").write_text(f"## {title}\n\n{to_markdown(frame)}", encoding="utf-8")
        print(f"wrote {', '.join(s[3] for s in sections)} (.md, .csv) to {out}")
        if args.plots:
            for path in write_plots(runs, summary, out / "plots", args.k):
                print(f"wrote {path}")
    return 0


def _one_run(path: str):
    runs, skipped = load_runs([path])
    if len(runs) != 1:
        found = "no run" if not runs else f"{len(runs)} runs"
        raise BaselineError(f"{path}: expected one run directory, found {found}"
                            + (f" ({'; '.join(skipped)})" if skipped else ""))
    return runs[0]


def _compare(args) -> int:
    a, b = _one_run(args.a), _one_run(args.b)
    try:
        table, per_problem, notes = compare_runs(a, b, args.k, args.boot, args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"A = {a.path}\nB = {b.path}\n")
    shown = table.copy()
    for col in ("A", "B", "B-A", "low", "high"):
        shown[col] = (100 * shown[col]).round(2)
    print("## B vs A (values in %, paired 95% bootstrap CI of B-A over problems)\n\n" + to_markdown(shown))
    for note in notes:
        print(f"note: {note}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "compare.csv", index=False)
        per_problem.to_csv(args.out / "compare_per_problem.csv", index=False)
        (args.out / "compare.md").write_text(to_markdown(shown), encoding="utf-8")
    return 0


def _check(args) -> int:
    run = _one_run(args.run)
    if args.write_baseline:
        metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
        baseline = make_baseline(run, args.tolerance, metrics, args.k, args.boot, args.seed)
        write_baseline(baseline, args.write_baseline)
        print(f"wrote baseline {args.write_baseline} from {run.path}: "
              + ", ".join(f"{m}={s['value']:.4f}" for m, s in baseline["metrics"].items()))
        return 0
    baseline = read_baseline(args.baseline)
    ok, lines = check_run(run, baseline, args.k, args.allow_incomplete, args.boot, args.seed)
    for line in lines:
        print(line)
    print(f"check {'passed' if ok else 'FAILED'}: {run.path} against {args.baseline}")
    return 0 if ok else 1
