"""MTPB metrics from execution records (CodeGen §4.3; the official `mtpb_exec.py` summary).

- pass rate = passes / (problems x cases x samples), overall (the paper's number), per problem
  and per category (mean of its problems' rates); under the configured scoring, with the
  official and the strict rate both reported;
- pass@k per test case over its samples (unbiased estimator), averaged over cases and then
  problems, for k <= n when n > 1;
- a 95% bootstrap interval over problems (results.metrics);
- errata: how the cases of each erratum scored, and the pass rate without the excludable ones,
  so a dataset problem is never silently a model failure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

from results.metrics import bootstrap_ci, pass_at_k_table
from results.records import ExecutionRecord

from .data import Problem
from .errata import ERRATA, Erratum, errata_for, excluded_cases


def problem_key(problem_id: int) -> str:
    return f"mtpb/{problem_id}"


def _rate(passed: Sequence[bool]) -> float:
    return float(np.mean(passed)) if len(passed) else float("nan")


def compute_metrics(executions: Iterable[ExecutionRecord], problems: Sequence[Problem], *,
                    ks: Sequence[int] = (1, 10, 100), n: int = 1, datasets_available: bool = False,
                    errata: Sequence[Erratum] = ERRATA, n_boot: int = 2000) -> dict:
    """metrics.json for the executions of `problems` (records of other problems are ignored)."""
    by_key = {problem_key(p.id): p for p in problems}
    records = [e for e in executions if e.problem_id in by_key]
    flagged = {(problem_key(p.id), c): [e.kind for e in errs]
               for p in problems for c, errs in excluded_cases(p.id, p.n_cases, datasets_available, errata).items()}

    def rates(rows: list[ExecutionRecord]) -> dict:
        return {"pass_rate": _rate([r.passed for r in rows]),
                "official_pass_rate": _rate([bool(r.extra.get("official_passed", r.passed)) for r in rows]),
                "strict_pass_rate": _rate([bool(r.extra.get("strict_passed", r.passed)) for r in rows]),
                "n_executions": len(rows), "n_passed": int(sum(r.passed for r in rows))}

    out: dict = {"n_problems": len({r.problem_id for r in records}),
                 "n_cases": len({(r.problem_id, r.case_index) for r in records}),
                 "samples_per_case": n, **rates(records)}
    out["statuses"] = dict(sorted(Counter(r.status for r in records).items()))

    table = pass_at_k_table(records, ks=[k for k in ks if k <= n] or [1])
    if len(table):
        low, high = bootstrap_ci(table["pass_rate"].to_numpy(dtype=float), n_boot=n_boot)
        out["pass_rate_ci"] = [low, high]
    if n > 1:
        for k in ks:
            if k <= n and f"pass@{k}" in table and len(table):
                values = table[f"pass@{k}"].to_numpy(dtype=float)
                out[f"pass@{k}"] = float(np.nanmean(values))
                out[f"pass@{k}_ci"] = list(bootstrap_ci(values[~np.isnan(values)], n_boot=n_boot))

    clean = [r for r in records if (r.problem_id, r.case_index) not in flagged]
    out["without_errata"] = {**rates(clean), "n_cases": len({(r.problem_id, r.case_index) for r in clean})}

    per_problem = defaultdict(list)
    for r in records:
        per_problem[r.problem_id].append(r)
    problems_out = []
    for key, rows in sorted(per_problem.items(), key=lambda kv: by_key[kv[0]].id):
        p = by_key[key]
        problems_out.append({"problem_id": key, "id": p.id, "name": p.name, "category": p.category,
                             "n_cases": len({r.case_index for r in rows}), **rates(rows),
                             "errata": sorted({k for (pk, _), kinds in flagged.items() if pk == key for k in kinds})})
    out["problems"] = problems_out

    categories = defaultdict(list)
    for row in problems_out:
        categories[row["category"]].append(row)
    out["categories"] = {
        cat: {"n_problems": len(rows), "pass_rate": _rate([x["pass_rate"] for x in rows]),
              "strict_pass_rate": _rate([x["strict_pass_rate"] for x in rows])}
        for cat, rows in sorted(categories.items())
    }

    errata_out = []
    for p in problems:
        for e in errata_for(p.id, errata):
            if e.kind == "needs_file" and datasets_available:
                continue
            rows = [r for r in per_problem.get(problem_key(p.id), []) if e.covers(r.case_index)]
            errata_out.append({**e.to_dict(), "problem_id": problem_key(p.id), "id": p.id,
                               "excludable": e.excludable, "n_executions": len(rows),
                               "n_passed": int(sum(r.passed for r in rows))})
    out["errata"] = errata_out
    return out


def format_summary(metrics: dict, title: str = "") -> str:
    """A short text summary: overall rates, per category, errata (for the CLI)."""
    lines = [title] if title else []
    lines.append(f"pass rate {100 * metrics['pass_rate']:.2f}% ({metrics['n_passed']}/{metrics['n_executions']}; "
                 f"official {100 * metrics['official_pass_rate']:.2f}%, "
                 f"strict {100 * metrics['strict_pass_rate']:.2f}%)")
    w = metrics.get("without_errata")
    if w and w["n_executions"] != metrics["n_executions"]:
        lines.append(f"without errata cases: {100 * w['pass_rate']:.2f}% ({w['n_passed']}/{w['n_executions']})")
    for key in sorted(k for k in metrics if k.startswith("pass@") and not k.endswith("_ci")):
        lines.append(f"{key} (per test case) {100 * metrics[key]:.2f}%")
    for cat, row in metrics.get("categories", {}).items():
        lines.append(f"  {cat:<13} {100 * row['pass_rate']:6.2f}%  ({row['n_problems']} problems)")
    flagged = [e for e in metrics.get("errata", []) if e["excludable"] and e["n_executions"]]
    if flagged:
        lines.append("errata (reported, see docs/mtpb_errata.md): " + ", ".join(
            f"{e['problem_id']}[{e['kind']}] {e['n_passed']}/{e['n_executions']}" for e in flagged))
    return "\n".join(lines)


def format_problem_table(metrics: dict) -> str:
    """One line per problem: id, category, passes / executions, rate, errata kinds."""
    lines = [f"{'problem':<8} {'category':<13} {'passed':>9} {'rate':>7}  name"]
    for row in metrics.get("problems", []):
        mark = f"  [{', '.join(row['errata'])}]" if row["errata"] else ""
        lines.append(f"{row['id']:<8} {row['category']:<13} {row['n_passed']:>4}/{row['n_executions']:<4} "
                     f"{100 * row['pass_rate']:6.1f}%  {row['name']}{mark}")
    return "\n".join(lines)
