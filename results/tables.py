"""Tables over runs (docs/design.md §5): one row per run, best temperature per k, Markdown.

Metric values are fractions in [0, 1] in the DataFrames and CSV files; Markdown shows percentages
(as the paper does) with the 95% bootstrap interval over problems in brackets.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from results.metrics import DEFAULT_KS, bootstrap_ci, pass_at_k_table
from results.runs import Run

ID_COLUMNS = ["model", "benchmark", "mode", "temperature", "n"]  # one run per row; also "scoring" for MTPB
TIMEOUT_STATUSES = ("timeout",)


def reported_ks(run: Run, ks: Sequence[int]) -> list[int]:
    """The k for which pass@k is reported: k <= n, and for MTPB only when n > 1 (else it is the pass rate)."""
    n = run.n
    if run.benchmark == "mtpb" and n <= 1:
        return []
    return [k for k in ks if 0 < k <= n]


def run_row(run: Run, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 2000, seed: int = 0) -> dict:
    """The summary of one run: identity, counts, metrics with confidence bounds, throughput."""
    m = run.manifest
    frame = run.executions
    table = pass_at_k_table(frame, ks)
    row: dict = {
        "model": m.model,
        "benchmark": m.benchmark,
        "mode": m.mode,
        "temperature": run.temperature,
        "scoring": str(m.extra.get("scoring", "")),  # MTPB: official | strict
        "top_p": m.sampling.get("top_p"),
        "n": run.n,
        "problems": len(table),
        "samples": run.n_samples,
        "executions": len(frame),
        "timeouts": int(frame["status"].isin(TIMEOUT_STATUSES).sum()) if len(frame) else 0,
        "tokens_per_s": run.tokens_per_s,
        "complete": run.complete,
    }
    metrics = ["pass_rate"] + [f"pass@{k}" for k in ks]
    allowed = {"pass_rate", *(f"pass@{k}" for k in reported_ks(run, ks))}
    for name in metrics:
        values = table[name].to_numpy(dtype=float) if name in table else np.array([])
        if name in allowed and len(values) and not np.isnan(values).any():
            low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = float(values.mean()), low, high
        else:
            row[name] = row[f"{name}_lo"] = row[f"{name}_hi"] = np.nan
    strict = frame["strict_passed"] if "strict_passed" in frame else pd.Series(dtype=object)
    if strict.notna().any():  # MTPB: official verdict and the program also ran to its end
        per_problem = frame.assign(strict=strict.fillna(False).astype(bool)).groupby("problem_id")["strict"].mean()
        row["strict_pass_rate"] = float(per_problem.mean())
    row["run_dir"] = str(run.path)
    return row


def summary_table(runs: Sequence[Run], ks: Sequence[int] = DEFAULT_KS, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """One row per run, sorted by model x benchmark x mode x temperature x n."""
    rows = [run_row(run, ks, n_boot, seed) for run in runs]
    if not rows:
        return pd.DataFrame(columns=ID_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame.sort_values(ID_COLUMNS + ["run_dir"], na_position="first", kind="stable").reset_index(drop=True)


def best_temperature(summary: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """Per model x benchmark x mode x n and k: the temperature with the highest pass@k (the paper
    reports the best of T in {0.2, 0.6, 0.8} per k), its value and interval, and the temperatures tried."""
    out = []
    if summary.empty:
        return pd.DataFrame(columns=["model", "benchmark", "mode", "n", "k", "temperature", "value", "low", "high",
                                     "tried"])
    keys = [c for c in ("model", "benchmark", "mode", "scoring", "n") if c in summary]
    for ident, group in summary.groupby(keys, sort=True, dropna=False):
        ident = dict(zip(keys, ident))
        for k in ks:
            col = f"pass@{k}"
            if col not in group or group[col].isna().all():
                continue
            best = group.loc[group[col].idxmax()]
            tried = sorted(t for t in group.loc[group[col].notna(), "temperature"].tolist() if t is not None)
            out.append({**ident, "k": k,
                        "temperature": best["temperature"], "value": best[col], "low": best[f"{col}_lo"],
                        "high": best[f"{col}_hi"], "tried": ", ".join(f"{t:g}" for t in tried)})
    return pd.DataFrame(out)


def display_summary(summary: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """The summary for reading: percentages with intervals, empty metric columns left out."""
    shown = summary[[c for c in ID_COLUMNS if c in summary]].copy()
    if "scoring" in summary and (summary["scoring"] != "").any():
        shown.insert(3, "scoring", summary["scoring"].replace("", "-"))
    for name in [f"pass@{k}" for k in ks] + ["pass_rate"]:
        if name not in summary:
            continue
        values = summary[name].where(summary["benchmark"] != "humaneval") if name == "pass_rate" else summary[name]
        if values.notna().any():  # HumanEval's pass rate is its pass@1: shown once
            shown[name] = [format_ci(v, lo, hi)
                           for v, lo, hi in zip(values, summary[f"{name}_lo"], summary[f"{name}_hi"])]
    if "strict_pass_rate" in summary and summary["strict_pass_rate"].notna().any():
        shown["strict"] = [f"{100 * v:.2f}" if v == v else "-" for v in summary["strict_pass_rate"]]
    for col in ("problems", "samples", "timeouts"):
        if col in summary:
            shown[col] = summary[col]
    if "tokens_per_s" in summary:
        shown["tok/s"] = [f"{v:.1f}" if isinstance(v, float) and not math.isnan(v) else "-"
                          for v in summary["tokens_per_s"]]
    if "complete" in summary:
        shown["status"] = ["complete" if c else "INCOMPLETE" for c in summary["complete"]]
    return shown


def display_best(best: pd.DataFrame) -> pd.DataFrame:
    """`best_temperature` for reading: the value as a percentage with its interval."""
    if best.empty:
        return best
    shown = best[[c for c in ("model", "benchmark", "mode", "scoring", "n", "k", "temperature")
                  if c in best and (c != "scoring" or (best[c] != "").any())]].copy()
    shown["pass@k"] = [format_ci(v, lo, hi) for v, lo, hi in zip(best["value"], best["low"], best["high"])]
    shown["temperatures tried"] = best["tried"]
    return shown


def format_ci(value: float, low: float, high: float) -> str:
    """``12.76 [11.20, 14.40]`` in percent, "-" when not reported."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency); floats shown with up to 4 significant digits."""
    if frame.empty:
        return "(no rows)\n"
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in record] for record in frame.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]) + "\n"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|") or "-"


PERPLEXITY_METRICS = ("single_turn_ppl", "multi_turn_ppl", "prompt_ppl", "pass_ppl", "non_pass_ppl")


def perplexity_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per perplexity run (`mode` ending in "perplexity", MTPB or HumanEval) from its
    metrics.json: model, benchmark, mode, problems, and each perplexity it reports (`<name>` the mean
    over problems, `<name>_se` its standard error; NaN where the run does not report it). Runs
    without metrics.json (in progress or killed) are left out; empty when there is none."""
    rows = []
    for run in runs:
        if not str(run.manifest.mode).endswith("perplexity") or not run.metrics:
            continue
        row = {"model": run.manifest.model, "benchmark": run.manifest.benchmark, "mode": run.manifest.mode,
               "problems": run.metrics.get("n_problems")}
        for name in PERPLEXITY_METRICS:
            value = run.metrics.get(name)
            row[name] = float(value) if isinstance(value, (int, float)) else np.nan
            se = run.metrics.get(f"{name}_se")
            row[f"{name}_se"] = float(se) if isinstance(se, (int, float)) else np.nan
        row["run_dir"] = str(run.path)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    unreported = [c for name in PERPLEXITY_METRICS if frame[name].isna().all() for c in (name, f"{name}_se")]
    frame = frame.drop(columns=unreported)
    return frame.sort_values(["model", "benchmark", "run_dir"], kind="stable").reset_index(drop=True)


def display_perplexity(table: pd.DataFrame) -> pd.DataFrame:
    """`perplexity_table` for reading: ``mean ± standard error`` per reported perplexity."""
    if table.empty:
        return table
    shown = table[["model", "benchmark", "mode", "problems"]].copy()
    for name in PERPLEXITY_METRICS:
        if name in table:
            shown[name] = ["-" if v != v else f"{v:.2f} ± {se:.2f}" if se == se else f"{v:.2f}"
                           for v, se in zip(table[name], table[f"{name}_se"])]
    return shown
