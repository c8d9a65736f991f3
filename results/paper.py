"""The CodeGen paper's numbers as data, and our results beside them (issue #7 item 2).

Source: Nijkamp et al., "CodeGen: An Open Large Language Model for Code with Multi-Turn Program
Synthesis", ICLR 2023 (arXiv:2203.13474): the HumanEval table (pass@1/10/100 in percent, n = 200,
top-p 0.95, best temperature of {0.2, 0.6, 0.8} per k; Codex rows quoted there from Chen et al.
2021), the MTPB table (pass rate in percent, multi-turn) and the single- vs multi-turn comparison.
The numbers live in `paper_numbers.csv`; `confirmed` is True only where a second source checked
by us agrees (named in `confirmed_by`); the others were transcribed from the paper but not
re-checked here, and reports mark them "unconfirmed".
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
SOURCE = "Nijkamp et al., CodeGen, ICLR 2023 (arXiv:2203.13474)"

# Checkpoint size names on the Hub -> parameters in billions as the paper counts them.
_SIZES_B = {"350m": 0.35, "2b": 2.7, "6b": 6.1, "16b": 16.1}


def paper_numbers() -> pd.DataFrame:
    """The paper's numbers: benchmark, model, paper_name, family, params_b, mode, metric, value (%),
    confirmed, confirmed_by."""
    frame = pd.read_csv(PAPER_CSV, dtype={"mode": str, "confirmed_by": str}, keep_default_na=False,
                        na_values={"params_b": [""], "value": [""]})
    frame["confirmed"] = frame["confirmed"].map({"True": True, "False": False, True: True, False: False})
    return frame


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
    paper = paper_numbers()
    paper = paper[paper["benchmark"] == "humaneval"]
    rows = []
    for _, r in ours.iterrows():
        match = paper[(paper["model"].str.lower() == model_key(r["model"])) & (paper["metric"] == f"pass@{r['k']}")]
        p = match.iloc[0] if len(match) else None
        rows.append(_pair(r["model"], f"pass@{r['k']}", r["n"], r["temperature"], r["tried"],
                          r["value"], r["low"], r["high"], p))
    return pd.DataFrame(rows)


def mtpb_vs_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """Per MTPB run (model x mode x temperature x n): our pass rate (%) beside the paper's."""
    paper = paper_numbers()
    paper = paper[paper["benchmark"] == "mtpb"]
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
        "paper_status": ("confirmed" if paper_row["confirmed"] else "unconfirmed") if paper_row is not None else "not in paper",
        "source": SOURCE if paper_row is not None else "",
    }
