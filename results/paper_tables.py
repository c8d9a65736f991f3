"""The CodeGen paper's tables with our numbers beside them: `python -m results --paper`
(docs/design.md §5; docs/results.md).

One function per table of arXiv:2203.13474v5 (Tables 1-4, Figure 2). Each returns a `PaperTable`:
a long DataFrame (`data`, one row per model x column: the paper's value and standard error, ours
with its interval or standard error, which run(s) it came from, the source) and a wide one for
reading (`shown`: per column the paper's cell and ours). Every model the paper reports is listed,
with "-" where no run of ours exists; models we ran that the paper does not report are added.

Which of our runs fill a cell, when several could:

- pass@k (Table 1): the best temperature per k among the model's HumanEval runs with the most
  samples per problem, as the paper reports (best of T 0.2, 0.6, 0.8);
- MTPB pass rates (Tables 3, 4): per model and mode, a finished run, official scoring first, then
  the most samples, then the temperature closest to the paper's 0.2;
- prompt perplexity (Table 4): the model's MTPB `mode=perplexity` run, the paper's definition
  (history = the model's own completions) before the prompts-only variant, which is labelled;
- Table 2: the model's HumanEval prompt-perplexity run, split by the sampling run
  `results.paper_analysis.pick_pass_run` picks;
- Figure 2: the model's single- and multi-turn MTPB runs chosen as for Table 3; a problem's
  difficulty is its pass rate averaged over every such run in the report (all models, both modes),
  so that one set of runs buckets every model the same way (`difficulty_breakdown`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from results.metrics import DEFAULT_KS
from results.paper import model_key, normalize_mode, paper_numbers, short_source
from results.paper_analysis import (
    BUCKETS,
    difficulty_breakdown,
    is_perplexity_run,
    passed_problems,
    pick_pass_run,
    problem_pass_rates,
    prompt_ppl_split,
    read_perplexity_run,
)
from results.runs import Run
from results.tables import best_temperature

MONO = "codegen-mono"


@dataclass
class PaperTable:
    name: str  # file stem: paper_table1, ...
    title: str
    data: pd.DataFrame
    shown: pd.DataFrame


# ---------------------------------------------------------------- cells

def fmt(value: float | None, se: float | None = None, low: float | None = None, high: float | None = None,
        digits: int = 2) -> str:
    """``3.78 ± 0.23``, ``12.50 [10.10, 14.20]``, ``3.78``, or "-" for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{digits}f}"
    if se is not None and not (isinstance(se, float) and math.isnan(se)):
        return f"{text} ± {se:.{digits}f}"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _models(paper: pd.DataFrame, ours: Sequence[str]) -> list[tuple[str, str]]:
    """(key, display name): the paper's models in its order, then ours that it does not report."""
    out, seen = [], set()
    for _, r in paper.iterrows():
        key = model_key(r["model"])
        if key not in seen:
            seen.add(key)
            out.append((key, r["paper_name"]))
    for name in ours:
        key = model_key(name)
        if key not in seen:
            seen.add(key)
            out.append((key, name))
    return out


def _wide(data: pd.DataFrame, columns: Sequence[str], key_order: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per model: per column the paper's cell and ours, then the source."""
    rows = []
    for key, name in key_order:
        part = data[data["key"] == key]
        row = {"model": name}
        for col in columns:
            cell = part[part["column"] == col]
            c = cell.iloc[0] if len(cell) else None
            row[f"{col} paper"] = c["paper_cell"] if c is not None else "-"
            row[f"{col} ours"] = c["ours_cell"] if c is not None else "-"
        sources = sorted({short_source(s) for s in part["source"] if s})
        row["source"] = "; ".join(sources) if sources else "-"
        rows.append(row)
    return pd.DataFrame(rows)


class PaperValue(float):
    """A paper number that remembers its printed digits (``8.5``, ``1.20``) for display."""

    text: str = ""

    def __new__(cls, value: float, text: str = ""):
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


def _paper_cell(paper: pd.DataFrame, key: str, **match) -> tuple[float, float, str]:
    rows = paper[paper["model"].str.lower() == key]
    for name, value in match.items():
        rows = rows[rows[name] == value]
    if not len(rows):
        return float("nan"), float("nan"), ""
    r = rows.iloc[0]
    se = PaperValue(r["stderr"], r["stderr_text"]) if r["stderr_text"] else float("nan")
    return PaperValue(r["value"], r["value_text"]), se, str(r["source"])


def _printed(value, se) -> str:
    if not isinstance(value, PaperValue):
        return "-"
    return f"{value.text} ± {se.text}" if isinstance(se, PaperValue) else value.text


def _row(key, column, paper, paper_se, source, ours=float("nan"), ours_se=float("nan"), low=float("nan"),
         high=float("nan"), runs="", note="") -> dict:
    ours_cell = fmt(ours, ours_se if ours_se == ours_se else None, low, high)
    if note and ours_cell != "-":
        ours_cell += f" ({note})"
    return {"key": key, "column": column, "paper": float(paper), "paper_se": float(paper_se),
            "paper_cell": _printed(paper, paper_se), "ours": ours, "ours_se": ours_se,
            "ours_low": low, "ours_high": high, "ours_cell": ours_cell, "runs": runs, "source": source}


# ---------------------------------------------------------------- run choice

def _choose(summary: pd.DataFrame) -> pd.Series | None:
    """Among summary rows of one model and mode: complete, official scoring, most samples, T nearest 0.2."""
    if summary.empty:
        return None
    ranked = summary.assign(
        _incomplete=~summary["complete"].astype(bool) if "complete" in summary else False,
        _scoring=(summary["scoring"] != "official") if "scoring" in summary else False,
        _n=-summary["n"].astype(float),
        _t=(summary["temperature"].astype(float) - 0.2).abs(),
    ).sort_values(["_incomplete", "_scoring", "_n", "_t", "run_dir"], kind="stable")
    return ranked.iloc[0]


def _mtpb_choice(summary: pd.DataFrame, key: str, mode: str) -> pd.Series | None:
    if summary.empty:
        return None
    rows = summary[(summary["benchmark"] == "mtpb")
                   & (summary["model"].map(model_key) == key)
                   & (summary["mode"].map(lambda m: normalize_mode("mtpb", m)) == mode)]
    return _choose(rows)


# ---------------------------------------------------------------- the tables

def table1(summary: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> PaperTable:
    """Table 1: HumanEval pass@k (%), best temperature per k."""
    paper = paper_numbers("humaneval")
    paper = paper[paper["metric"].str.startswith("pass@")]
    he = summary[summary["benchmark"] == "humaneval"] if len(summary) else summary
    best = best_temperature(he, ks) if len(he) else pd.DataFrame()
    if len(best):  # per model, only its runs with the most samples per problem
        best = best[best["n"] == best.groupby("model")["n"].transform("max")]
    ours_models = list(best["model"].unique()) if len(best) else []
    order = _models(paper, ours_models)
    rows = []
    for key, _ in order:
        for k in ks:
            p, p_se, source = _paper_cell(paper, key, metric=f"pass@{k}")
            mine = best[(best["model"].map(model_key) == key) & (best["k"] == k)] if len(best) else best
            if len(mine):
                b = mine.iloc[0]
                rows.append(_row(key, f"pass@{k}", p, p_se, source, 100 * b["value"], low=100 * b["low"],
                                 high=100 * b["high"], runs=f"T={b['temperature']:g} of {b['tried']}, n={b['n']}",
                                 note=f"T {b['temperature']:g}"))
            elif p == p:
                rows.append(_row(key, f"pass@{k}", p, p_se, source))
    data = pd.DataFrame(rows)
    return PaperTable("paper_table1", "Table 1: HumanEval pass@k (%; ours: best temperature per k, 95% CI)",
                      data, _wide(data, [f"pass@{k}" for k in ks], order) if len(data) else data)


def table2(runs: Sequence[Run]) -> PaperTable:
    """Table 2: HumanEval prompt perplexity of problems with a passing sample vs none (± standard error)."""
    paper = paper_numbers("humaneval", "prompt_ppl")
    ppl_runs = {}
    for run in runs:
        if run.benchmark == "humaneval" and is_perplexity_run(run.manifest):
            ppl_runs.setdefault(model_key(run.manifest.model), run)
    order = _models(paper, [r.manifest.model for r in ppl_runs.values()])
    rows = []
    for key, _ in order:
        run = ppl_runs.get(key)
        split, note, used = None, "", ""
        if run is not None:
            _, _, lines = read_perplexity_run(run.path)
            ppl = {r["problem_id"]: float(r["prompt_ppl"]) for r in lines
                   if isinstance(r.get("prompt_ppl"), (int, float))}  # null: undefined (a one-token prompt)
            sampler = pick_pass_run(runs, run.manifest.model, problems=ppl)  # one that sampled them all
            if sampler is not None:
                passed, covered = passed_problems(sampler.executions)
                split = prompt_ppl_split(ppl, passed, covered)
                note, used = f"n={sampler.n}", f"{run.path} split by {sampler.path}"
        for subset, prefix in (("pass", "pass"), ("non-pass", "non_pass")):
            p, p_se, source = _paper_cell(paper, key, subset=subset)
            if split is not None:
                rows.append(_row(key, subset, p, p_se, source, split[f"{prefix}_ppl"], split[f"{prefix}_ppl_se"],
                                 runs=used, note=f"{split[f'n_{prefix}']} problems, {note}"))
            elif p == p:
                rows.append(_row(key, subset, p, p_se, source))
    data = pd.DataFrame(rows)
    return PaperTable("paper_table2", "Table 2: HumanEval prompt perplexity, problems with a passing sample "
                      "(pass) vs none (non-pass), mean ± standard error", data,
                      _wide(data, ["pass", "non-pass"], order) if len(data) else data)


def table3(summary: pd.DataFrame) -> PaperTable:
    """Table 3: MTPB pass rate (%, multi-turn)."""
    paper = paper_numbers("mtpb", "pass_rate")
    paper = paper[paper["mode"] == "multi-turn"]
    mt = summary[summary["benchmark"] == "mtpb"] if len(summary) else summary
    order = _models(paper, list(mt["model"].unique()) if len(mt) else [])
    rows = []
    for key, _ in order:
        p, p_se, source = _paper_cell(paper, key, mode="multi-turn")
        r = _mtpb_choice(summary, key, "multi-turn")
        if r is not None:
            rows.append(_row(key, "pass rate", p, p_se, source, 100 * r["pass_rate"], low=100 * r["pass_rate_lo"],
                             high=100 * r["pass_rate_hi"], runs=r["run_dir"],
                             note=f"T {r['temperature']:g}, n={r['n']}"))
        elif p == p:
            rows.append(_row(key, "pass rate", p, p_se, source))
    data = pd.DataFrame(rows)
    return PaperTable("paper_table3", "Table 3: MTPB pass rate (%, multi-turn; ours with 95% CI)", data,
                      _wide(data, ["pass rate"], order) if len(data) else data)


def _mtpb_ppl_runs(runs: Sequence[Run]) -> dict[str, tuple[Run, dict]]:
    """Per model key: its MTPB perplexity run and metrics, the paper's history ("run") first."""
    found: dict[str, tuple[int, str, Run, dict]] = {}
    for run in runs:
        if run.benchmark != "mtpb" or not is_perplexity_run(run.manifest) or not run.metrics:
            continue
        rank = 0 if run.metrics.get("history") == "run" else 1
        key = model_key(run.manifest.model)
        if key not in found or (rank, str(run.path)) < found[key][:2]:
            found[key] = (rank, str(run.path), run, run.metrics)
    return {k: (v[2], v[3]) for k, v in found.items()}


def table4(summary: pd.DataFrame, runs: Sequence[Run]) -> PaperTable:
    """Table 4: MTPB prompt perplexity (± standard error) and pass rate (%), single- vs multi-turn."""
    paper = paper_numbers("mtpb")
    paper = paper[(paper["family"] == MONO) & paper["metric"].isin(["prompt_ppl", "pass_rate"])]
    ppl = _mtpb_ppl_runs(runs)
    mt = summary[summary["benchmark"] == "mtpb"] if len(summary) else summary
    single = mt[mt["mode"].map(lambda m: normalize_mode("mtpb", m)) == "single-turn"] if len(mt) else mt
    ours_models = [r.manifest.model for r, _ in ppl.values()] + (list(single["model"].unique()) if len(single) else [])
    order = _models(paper, ours_models)
    rows = []
    for key, _ in order:
        for mode in ("single-turn", "multi-turn"):
            p, p_se, source = _paper_cell(paper, key, metric="prompt_ppl", mode=mode)
            column = f"PPL {mode}"
            if key in ppl:
                run, m = ppl[key]
                field = "single_turn_ppl" if mode == "single-turn" else "multi_turn_ppl"
                note = f"{m.get('n_problems')} problems"
                if mode == "multi-turn" and m.get("history") != "run":
                    note += ", prompts-only history: not the paper's definition"
                rows.append(_row(key, column, p, p_se, source, _nan(m.get(field)), _nan(m.get(f"{field}_se")),
                                 runs=str(run.path), note=note))
            elif p == p:
                rows.append(_row(key, column, p, p_se, source))
        for mode in ("single-turn", "multi-turn"):
            p, p_se, source = _paper_cell(paper, key, metric="pass_rate", mode=mode)
            r = _mtpb_choice(summary, key, mode)
            if r is not None:
                rows.append(_row(key, f"pass rate {mode}", p, p_se, source, 100 * r["pass_rate"],
                                 low=100 * r["pass_rate_lo"], high=100 * r["pass_rate_hi"], runs=r["run_dir"],
                                 note=f"T {r['temperature']:g}, n={r['n']}"))
            elif p == p:
                rows.append(_row(key, f"pass rate {mode}", p, p_se, source))
    data = pd.DataFrame(rows)
    columns = ["PPL single-turn", "PPL multi-turn", "pass rate single-turn", "pass rate multi-turn"]
    return PaperTable("paper_table4", "Table 4: MTPB prompt perplexity (mean ± standard error over problems) and "
                      "pass rate (%), single- vs multi-turn", data, _wide(data, columns, order) if len(data) else data)


def figure2(summary: pd.DataFrame, runs: Sequence[Run]) -> PaperTable:
    """Figure 2: multi- minus single-turn MTPB pass rate (percentage points) by problem difficulty."""
    paper = paper_numbers("mtpb", "pass_rate_gain")
    by_path = {str(r.path): r for r in runs}
    pairs: dict[str, tuple[Run, Run]] = {}
    mt = summary[summary["benchmark"] == "mtpb"] if len(summary) else summary
    for name in (mt["model"].unique() if len(mt) else []):
        key = model_key(name)
        single, multi = _mtpb_choice(summary, key, "single-turn"), _mtpb_choice(summary, key, "multi-turn")
        if single is not None and multi is not None and single["run_dir"] in by_path and multi["run_dir"] in by_path:
            pairs[key] = (by_path[single["run_dir"]], by_path[multi["run_dir"]])
    rates = {key: (problem_pass_rates(s.executions), problem_pass_rates(m.executions)) for key, (s, m) in pairs.items()}
    reference = [series for pair in rates.values() for series in pair]
    order = _models(paper, [pairs[k][1].manifest.model for k in pairs])
    rows = []
    for key, _ in order:
        breakdown = difficulty_breakdown(*rates[key], reference=reference) if key in rates else None
        for bucket in BUCKETS:
            p, p_se, source = _paper_cell(paper, key, subset=bucket)
            if breakdown is not None:
                b = breakdown[breakdown["bucket"] == bucket].iloc[0]
                rows.append(_row(key, bucket, p, p_se, source, b["gain"], b["gain_se"],
                                 runs=f"{pairs[key][0].path} vs {pairs[key][1].path}",
                                 note=f"{b['n_problems']} problems"))
            elif p == p:
                rows.append(_row(key, bucket, p, p_se, source))
    data = pd.DataFrame(rows)
    return PaperTable("paper_figure2", "Figure 2: multi-turn minus single-turn MTPB pass rate (percentage points) by "
                      "difficulty (average pass rate < 30% hard, > 70% easy; ours ± standard error over problems)",
                      data, _wide(data, list(BUCKETS), order) if len(data) else data)


def paper_tables(summary: pd.DataFrame, runs: Sequence[Run], ks: Sequence[int] = DEFAULT_KS) -> list[PaperTable]:
    """Every table of the paper, in its order, with ours beside it where runs exist."""
    return [table1(summary, ks), table2(runs), table3(summary), table4(summary, runs), figure2(summary, runs)]
