"""Paired comparison of two runs on the same problems (docs/design.md §5).

For each metric (pass@k for k <= both runs' n, and the pass rate) the per-problem values of run A
and run B are paired by problem; the difference B - A is averaged and given a paired bootstrap
interval over problems, and the problems B won, lost and tied are counted. Problems only one run
has are left out and named in the notes.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from results.metrics import DEFAULT_KS, paired_bootstrap, pass_at_k_table
from results.runs import Run
from results.tables import reported_ks


def compare_runs(
    a: Run, b: Run, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(summary per metric, per-problem values side by side, notes)."""
    if a.benchmark != b.benchmark:
        raise ValueError(f"cannot compare a {a.benchmark} run ({a.path}) with a {b.benchmark} run ({b.path})")
    common_ks = [k for k in reported_ks(a, ks) if k in reported_ks(b, ks)]
    metrics = [f"pass@{k}" for k in common_ks] + ["pass_rate"]
    table_a = pass_at_k_table(a.executions, common_ks).set_index("problem_id")
    table_b = pass_at_k_table(b.executions, common_ks).set_index("problem_id")
    common = [p for p in table_a.index if p in table_b.index]
    notes = []
    only_a = [p for p in table_a.index if p not in table_b.index]
    only_b = [p for p in table_b.index if p not in table_a.index]
    if only_a:
        notes.append(f"{len(only_a)} problem(s) only in A, left out: {_names(only_a)}")
    if only_b:
        notes.append(f"{len(only_b)} problem(s) only in B, left out: {_names(only_b)}")
    if not common:
        raise ValueError(f"{a.path} and {b.path} share no problem; nothing to compare")
    for run, label in ((a, "A"), (b, "B")):
        if not run.complete:
            notes.append(f"{label} is incomplete: {'; '.join(run.incomplete)}")
    skipped = [k for k in ks if k not in common_ks]
    if skipped:
        notes.append(f"pass@k for k={skipped} not compared: needs k <= n in both runs (n: A={a.n}, B={b.n})")

    rows, per_problem = [], pd.DataFrame(index=pd.Index(common, name="problem_id"))
    for metric in metrics:
        va = table_a.loc[common, metric].to_numpy(dtype=float)
        vb = table_b.loc[common, metric].to_numpy(dtype=float)
        diff, low, high = paired_bootstrap(va, vb, n_boot=n_boot, seed=seed)
        rows.append({"metric": metric, "A": va.mean(), "B": vb.mean(), "B-A": diff, "low": low, "high": high,
                     "B won": int((vb > va).sum()), "B lost": int((vb < va).sum()), "tied": int((vb == va).sum()),
                     "problems": len(common), "significant": not (low <= 0.0 <= high)})
        per_problem[f"{metric} A"] = va
        per_problem[f"{metric} B"] = vb
    return pd.DataFrame(rows), per_problem.reset_index(), notes


def _names(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")
