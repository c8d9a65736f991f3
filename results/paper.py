"""The CodeGen paper's numbers as data, and our results beside them (docs/design.md §5).

Source: Nijkamp et al., "CodeGen: An Open Large Language Model for Code with Multi-Turn Program
Synthesis", ICLR 2023, camera-ready arXiv:2203.13474v5. `paper_numbers.csv` holds, one number a
row, each with the table or figure it is printed in (`source`):

- Table 1: HumanEval pass@1/10/100 (%; n = 200, top-p 0.95, best T of {0.2, 0.6, 0.8} per k) of
  CodeGen-NL/Multi/Mono, GPT-Neo 350M/2.7B, GPT-J 6B, Codex 300M/2.5B/12B, and code-cushman-001,
  code-davinci-001/-002 (quoted there from the CodeT paper). Codex 12M/25M/42M/85M/679M are not in
  CodeGen: they come from the Codex paper's Table 1 (Chen et al. 2021, arXiv:2107.03374v2);
- Table 2: HumanEval prompt perplexity (`prompt_ppl`, with its standard error `stderr`) of
  CodeGen-Mono on the problems with at least one passing sample of 200 (`subset` "pass") and with
  none ("non-pass");
- Table 3: MTPB pass rate (%, multi-turn, n = 40 per test case, T 0.2, top-p 0.95);
- Table 4: MTPB prompt perplexity (`prompt_ppl` ± `stderr`) and pass rate (%), single- vs
  multi-turn, CodeGen-Mono;
- Figure 2: MTPB multi-turn minus single-turn pass rate (`pass_rate_gain`, percentage points) per
  difficulty `subset` (easy, medium, hard), CodeGen-Mono.

The NL and Multi rows of Tables 9 and 10 (appendix) are not included: they could not be checked
against a stored copy of the paper's text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from results.metrics import DEFAULT_KS
from results.tables import best_temperature

PAPER_CSV = Path(__file__).with_name("paper_numbers.csv")

# Checkpoint size names on the Hub -> parameters in billions as the paper counts them.
_SIZES_B = {"350m": 0.35, "2b": 2.7, "6b": 6.1, "16b": 16.1}


COLUMNS = ("benchmark", "model", "paper_name", "family", "params_b", "mode", "subset", "metric", "value",
           "stderr", "source")


def paper_numbers(benchmark: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """The paper's numbers, one a row: benchmark, model (Hub checkpoint name, or the paper's model
    name for others), paper_name, family, params_b (float, NaN when not stated), mode ("" for
    HumanEval; "multi-turn" | "single-turn" for MTPB), subset ("" or "pass" | "non-pass" | "easy" |
    "medium" | "hard"), metric ("pass@k", "pass_rate" in %, "pass_rate_gain" in percentage points,
    "prompt_ppl"), value (float), stderr (float, NaN when the paper prints none), source (paper,
    arXiv version, table or figure), value_text and stderr_text (the digits as printed, "" for none).
    Optionally only one benchmark and/or metric."""
    frame = pd.read_csv(PAPER_CSV, dtype={c: str for c in ("mode", "subset", "source", "value", "stderr")},
                        keep_default_na=False, na_values={"params_b": [""]})
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{PAPER_CSV} lacks column(s) {sorted(missing)}; it must have {list(COLUMNS)}")
    frame["value_text"], frame["stderr_text"] = frame["value"], frame["stderr"]  # as printed, trailing zeros kept
    for column in ("value", "stderr"):
        frame[column] = pd.to_numeric(frame[column].replace("", float("nan")), errors="raise")
    if benchmark is not None:
        frame = frame[frame["benchmark"] == benchmark]
    if metric is not None:
        frame = frame[frame["metric"] == metric]
    return frame.reset_index(drop=True)


def short_source(source: str) -> str:
    """``CodeGen v5 Table 1`` for ``CodeGen (Nijkamp et al., ICLR 2023), arXiv:2203.13474v5 Table 1``."""
    return (source.replace("CodeGen (Nijkamp et al., ICLR 2023), arXiv:2203.13474v5", "CodeGen v5")
            .replace("Codex (Chen et al., 2021), arXiv:2107.03374v2", "Codex v2"))


def model_key(name: str) -> str:
    """Match a run's model name to the paper's rows: ``Salesforce/codegen-350M-mono`` -> ``codegen-350m-mono``."""
    return name.rsplit("/", 1)[-1].strip().lower()


def params_b(name: str) -> float:
    """Parameters in billions from a checkpoint name (``codegen-6B-mono`` -> 6.1); NaN when unknown."""
    match = re.search(r"(\d+(?:\.\d+)?)([mb])\b", model_key(name).replace("-", " "))
    if not match:
        return float("nan")
    token = match.group(1) + match.group(2)
    if token in _SIZES_B:
        return _SIZES_B[token]
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "m" else value


def normalize_mode(benchmark: str, mode: str | None) -> str:
    """MTPB modes as the paper names them: "multi-turn" (the default), "single-turn"; "" for HumanEval."""
    if benchmark != "mtpb":
        return ""
    text = (mode or "").lower().replace("_", "-")
    if text.startswith("single"):
        return "single-turn"
    if not text or text.startswith("multi"):
        return "multi-turn"
    return text  # e.g. "perplexity": nothing in the paper's pass-rate tables


def humaneval_vs_paper(summary: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """Per model and k: our best-temperature pass@k (%) with its interval, the paper's, the difference."""
    ours = best_temperature(summary[summary["benchmark"] == "humaneval"], ks) if len(summary) else pd.DataFrame()
    paper = paper_numbers("humaneval")
    rows = []
    for _, r in ours.iterrows():
        match = paper[(paper["model"].str.lower() == model_key(r["model"])) & (paper["metric"] == f"pass@{r['k']}")]
        p = match.iloc[0] if len(match) else None
        rows.append(_pair(r["model"], f"pass@{r['k']}", r["n"], r["temperature"], r["tried"],
                          r["value"], r["low"], r["high"], p))
    return pd.DataFrame(rows)


def mtpb_vs_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """Per MTPB run (model x mode x temperature x n): our pass rate (%) beside the paper's."""
    paper = paper_numbers("mtpb", "pass_rate")
    rows = []
    for _, r in summary[summary["benchmark"] == "mtpb"].iterrows() if len(summary) else []:
        mode = normalize_mode("mtpb", r["mode"])
        match = paper[(paper["model"].str.lower() == model_key(r["model"])) & (paper["mode"] == mode)]
        p = match.iloc[0] if len(match) else None
        row = _pair(r["model"], "pass_rate", r["n"], r["temperature"], "",
                    r["pass_rate"], r["pass_rate_lo"], r["pass_rate_hi"], p)
        del row["temperatures"]  # MTPB: one temperature per run, no selection
        rows.append({"mode": mode, **row})
    return pd.DataFrame(rows)


def _pair(model, metric, n, temperature, tried, value, low, high, paper_row) -> dict:
    ours = 100 * value
    paper_value = float(paper_row["value"]) if paper_row is not None else np.nan
    return {
        "model": model,
        "metric": metric,
        "n": n,
        "temperature": temperature,
        "temperatures": tried,
        "ours": ours,
        "ours_low": 100 * low,
        "ours_high": 100 * high,
        "paper": paper_value,
        "diff": ours - paper_value,
        "paper_in_ci": bool(100 * low <= paper_value <= 100 * high) if paper_row is not None else None,
        "source": paper_row["source"] if paper_row is not None else "not in the paper",
    }
