"""The analyses behind the CodeGen paper's Table 2, Table 4 and Figure 2 (docs/design.md §5).

Pure functions over run records; nothing here loads a model (the perplexities themselves are
computed on the benchmark side: `mtpb.perplexity`, `humaneval.perplexity`, which write run-like
directories that `read_perplexity_run` reads).

- `mean_stderr`: the mean and its standard error over problems, ``std(ddof=1) / sqrt(n)``, the
  "±" of the paper's Tables 2 and 4.
- `prompt_ppl_split` (Table 2): per HumanEval problem, the perplexity of its prompt; problems split
  by whether any sample of a sampling run passed ("pass") or none did ("non-pass").
- `difficulty_breakdown` (Figure 2): MTPB problems bucketed by average pass rate (below 30% "hard",
  above 70% "easy", otherwise "medium"; CodeGen §4.3) and, per bucket, the mean over its problems
  of the multi-turn minus single-turn pass rate, in percentage points.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from results.jsonl import read_jsonl
from results.store import RunStore

PPL_FILE = "perplexity.jsonl"  # one line per scored unit (MTPB test case, HumanEval problem)
HARD_BELOW, EASY_ABOVE = 0.30, 0.70  # CodeGen §4.3: "hard" < 30% average pass rate, "easy" > 70%
BUCKETS = ("easy", "medium", "hard")


def mean_stderr(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """(mean, standard error of the mean) of the finite `values` (None and NaN are skipped):
    ``std(ddof=1) / sqrt(n)``.

    An undefined number is None, not NaN (it goes to metrics.json, and JSON has no NaN;
    docs/design.md §5): the mean of no values, the standard error of fewer than two."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if not len(array):
        return None, None
    se = float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), se


# ---------------------------------------------------------------- Table 2: HumanEval prompt perplexity

def passed_problems(executions: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(problems with at least one passing sample, all problems) of a run's executions frame
    (`results.metrics.executions_frame`: columns problem_id, passed)."""
    if executions.empty:
        return set(), set()
    anyone = executions.groupby("problem_id")["passed"].any()
    return set(anyone[anyone].index), set(anyone.index)


def prompt_ppl_split(ppl: Mapping[str, float], passed: set[str], problems: set[str] | None = None) -> dict:
    """Table 2's split: mean prompt perplexity ± standard error over "pass" and "non-pass" problems.

    `ppl`: problem id -> perplexity of its prompt; `passed`: the problems with a passing sample;
    `problems`: the problems the sampling run covers (default: all of `ppl`). Problems missing from
    either side are left out and counted in `n_unmatched`."""
    problems = set(ppl) if problems is None else set(problems)
    both = sorted(problems & set(ppl))
    pass_values = [ppl[p] for p in both if p in passed]
    fail_values = [ppl[p] for p in both if p not in passed]
    (p_mean, p_se), (f_mean, f_se) = mean_stderr(pass_values), mean_stderr(fail_values)
    return {"pass_ppl": p_mean, "pass_ppl_se": p_se, "n_pass": len(pass_values),
            "non_pass_ppl": f_mean, "non_pass_ppl_se": f_se, "n_non_pass": len(fail_values),
            "n_unmatched": len(problems ^ set(ppl))}


# ---------------------------------------------------------------- Figure 2: difficulty breakdown

def problem_pass_rates(executions: pd.DataFrame) -> pd.Series:
    """Per problem: passes / executions (MTPB: over its test cases x samples), a fraction."""
    if executions.empty:
        return pd.Series(dtype=float)
    return executions.groupby("problem_id")["passed"].mean().astype(float)


def difficulty(rate: float) -> str:
    """The paper's bucket of an average pass rate (a fraction): hard < 0.30 < medium < 0.70 < easy."""
    if rate < HARD_BELOW:
        return "hard"
    if rate > EASY_ABOVE:
        return "easy"
    return "medium"


def difficulty_breakdown(single: pd.Series, multi: pd.Series,
                         reference: Sequence[pd.Series] | None = None) -> pd.DataFrame:
    """Figure 2 for one model: per bucket, the multi- minus single-turn pass rate (percentage points).

    `single`, `multi`: per-problem pass rates (fractions) of the model's single- and multi-turn
    runs. A problem's difficulty is its pass rate averaged over `reference` (a list of such
    per-problem series, each weighing the same; default: `[single, multi]`, i.e. this model's own
    two runs); only problems present in both runs and every reference are counted. Returns one row
    per bucket (easy, medium, hard, in that order): bucket, n_problems, single, multi (mean pass
    rates in %), gain (multi - single, percentage points), gain_se (its standard error over the
    bucket's problems)."""
    reference = [single, multi] if reference is None else list(reference)
    common = set(single.index) & set(multi.index)
    for series in reference:
        common &= set(series.index)
    problems = sorted(common)
    average = (pd.concat([s.reindex(problems) for s in reference], axis=1).mean(axis=1) if problems
               else pd.Series(dtype=float))
    rows = []
    for bucket in BUCKETS:
        members = [p for p in problems if difficulty(float(average[p])) == bucket]
        gain, gain_se = mean_stderr(100 * (multi[p] - single[p]) for p in members)
        rows.append({"bucket": bucket, "n_problems": len(members),
                     "single": 100 * float(single.reindex(members).mean()) if members else float("nan"),
                     "multi": 100 * float(multi.reindex(members).mean()) if members else float("nan"),
                     "gain": np.nan if gain is None else gain,  # a float frame: NaN is pandas' missing
                     "gain_se": np.nan if gain_se is None else gain_se})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- perplexity runs

def is_perplexity_run(manifest) -> bool:
    """A run directory written by `mode=perplexity` (MTPB) or `humaneval.perplexity`."""
    return str(getattr(manifest, "mode", "")).endswith("perplexity")


def read_perplexity_run(run_dir: str | Path) -> tuple[object, dict | None, list[dict]]:
    """(manifest, metrics.json or None, the rows of perplexity.jsonl) of a perplexity run; a line
    cut by a kill is skipped. Raises ValueError when `run_dir` is not a perplexity run."""
    store = RunStore(run_dir)
    manifest = store.manifest()
    if manifest is None or not is_perplexity_run(manifest):
        raise ValueError(f"{run_dir} is not a perplexity run (no manifest.json with a perplexity mode)")
    rows = []
    path = Path(run_dir) / PPL_FILE
    if path.exists():
        rows = [row for _, row in read_jsonl(path)]  # a line cut by a kill is skipped
    return manifest, store.metrics(), rows


def sampling_runs(runs: Sequence, model: str) -> list:
    """The finished HumanEval sampling runs of `model` among `runs` (perplexity runs excluded)."""
    return [run for run in runs
            if run.manifest.benchmark == "humaneval" and not is_perplexity_run(run.manifest)
            and run.manifest.model == model and run.complete]


def missing_problems(run, problems: Iterable[str]) -> list[str]:
    """The problems of `problems` that `run` (a `results.runs.Run`) has no execution of, sorted."""
    _, covered = passed_problems(run.executions)
    return sorted(set(problems) - covered)


def pick_pass_run(runs: Sequence, model: str, problems: Iterable[str] | None = None):
    """The HumanEval sampling run whose passes split `model`'s problems for Table 2, or None.

    Among the finished HumanEval runs of `model` (perplexity runs excluded) that sampled every one
    of `problems` (default: no requirement): a run that did not sample a problem would count it as
    "non-pass" or leave it out, so the split would be wrong. Then the one with the most samples per
    problem (the paper: 200), then the most problems with a passing sample (the paper's pass@100
    is its best temperature, T 0.8), then the path. `runs`: `results.runs.Run` objects."""
    wanted = None if problems is None else set(problems)
    candidates = []
    for run in sampling_runs(runs, model):
        passed, covered = passed_problems(run.executions)
        if wanted is not None and not wanted <= covered:
            continue
        candidates.append((-run.n, -len(passed), str(run.path), run))
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None
