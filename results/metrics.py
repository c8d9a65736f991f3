"""pass@k, pass rates and bootstrap confidence intervals over problems (pure functions).

pass@k is the unbiased estimator of Chen et al. 2021 (the HumanEval paper, also used by the CodeGen
paper): with n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), computed in product form
for numerical stability. It is reported only for k <= n.

Units of averaging: a *problem* is the unit of the benchmark (HumanEval task, MTPB problem). For
MTPB each (problem, test case) is scored on its own samples and a problem's value is the mean over
its cases, so the mean over problems equals passes / (problems x cases x samples) when every
problem has the same cases and samples. Confidence intervals resample problems (a cluster
bootstrap), since samples of one problem are not independent.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from results.records import ExecutionRecord

DEFAULT_KS = (1, 10, 100)


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k), in product form (Chen et al. 2021)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c} passing of n={n} samples")
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n samples, got n={n}; sample more or lower k")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def executions_frame(executions: Iterable[ExecutionRecord] | pd.DataFrame) -> pd.DataFrame:
    """Executions as a DataFrame with columns problem_id, case_index (-1 when none), sample_index,
    status, passed, duration_s, category (MTPB `extra["category"]`, else ""), strict_passed
    (MTPB `extra["strict_passed"]`, else None)."""
    if isinstance(executions, pd.DataFrame):
        return executions
    rows = [
        (e.problem_id, -1 if e.case_index is None else e.case_index, e.sample_index, e.status,
         bool(e.passed), e.duration_s, str(e.extra.get("category", "")), e.extra.get("strict_passed"))
        for e in executions
    ]
    return pd.DataFrame(
        rows,
        columns=["problem_id", "case_index", "sample_index", "status", "passed", "duration_s", "category",
                 "strict_passed"],
    )


def pass_at_k_table(
    executions: Iterable[ExecutionRecord] | pd.DataFrame, ks: Sequence[int] = DEFAULT_KS
) -> pd.DataFrame:
    """One row per problem: n (samples per case), c (passes), pass_rate and `pass@k` for each k.

    Each (problem, case) is scored on its own samples; a problem's values are means over its
    cases. `pass@k` is NaN for a problem with fewer than k samples in some case.
    """
    frame = executions_frame(executions)
    if frame.empty:
        return pd.DataFrame(columns=["problem_id", "n", "c", "pass_rate", *[f"pass@{k}" for k in ks]])
    cases = frame.groupby(["problem_id", "case_index"], sort=False)["passed"].agg(n="size", c="sum").reset_index()
    for k in ks:
        cases[f"pass@{k}"] = [
            estimate_pass_at_k(int(n), int(c), k) if k <= n else np.nan for n, c in zip(cases["n"], cases["c"])
        ]
    cases["pass_rate"] = cases["c"] / cases["n"]
    agg = {"n": "min", "c": "sum", "pass_rate": "mean", **{f"pass@{k}": _mean_or_nan for k in ks}}
    table = cases.groupby("problem_id", sort=False).agg(agg).reset_index()
    return table[["problem_id", "n", "c", "pass_rate", *[f"pass@{k}" for k in ks]]]


def _mean_or_nan(values: pd.Series) -> float:
    return float(values.mean()) if values.notna().all() else np.nan


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of per-problem `values` (problems resampled).

    `scipy.stats.bootstrap` with `method="percentile"` and `n_resamples=n_boot`, seeded by `seed`
    (https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.bootstrap.html). Returns
    (low, high) as floats; (nan, nan) for no values, (v, v) for one value (every resample is v).
    Raises ValueError for a level outside (0, 1).
    """
    values = np.asarray(values, dtype=float)
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    if values.size == 0:
        return (np.nan, np.nan)
    if values.size == 1 or np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    result = stats.bootstrap(
        (values,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
        vectorized=True, batch=max(1, 2_000_000 // values.size),  # bound memory for large problem sets
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of b - a over paired problems and its percentile bootstrap interval: (diff, low, high)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.shape} and {b.shape}")
    diff = b - a
    low, high = bootstrap_ci(diff, n_boot=n_boot, level=level, seed=seed)
    return float(diff.mean()) if diff.size else np.nan, low, high


def summarize(
    executions: Iterable[ExecutionRecord] | pd.DataFrame,
    ks: Sequence[int] = DEFAULT_KS,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Run-level metrics for metrics.json: counts, statuses, pass rate and pass@k (k <= n only),
    each mean with a 95% bootstrap interval over problems (`<metric>_ci`)."""
    frame = executions_frame(executions)
    table = pass_at_k_table(frame, ks)
    n_min = int(table["n"].min()) if len(table) else 0
    out: dict = {
        "n_problems": int(len(table)),
        "n_executions": int(len(frame)),
        "n_passed": int(frame["passed"].sum()) if len(frame) else 0,
        "samples_per_case": n_min,
        "statuses": ({str(s): int(v) for s, v in frame["status"].value_counts().sort_index().items()}
                     if len(frame) else {}),
    }
    metrics = ["pass_rate"] + [f"pass@{k}" for k in ks if 0 < k <= n_min]
    for name in metrics:
        out[name] = float(table[name].mean()) if len(table) else np.nan
        out[f"{name}_ci"] = list(bootstrap_ci(table[name].to_numpy(), n_boot=n_boot, seed=seed))
    return out
