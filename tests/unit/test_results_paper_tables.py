"""Figure 2's difficulty buckets and `python -m results --paper` over small hand-made runs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from results.cli import main
from results.paper_analysis import PPL_FILE, difficulty, difficulty_breakdown
from results.records import Manifest
from results.store import RunStore

from .test_results_tables import make_run

TITLES = ("Table 1: HumanEval pass@k", "Table 2: HumanEval prompt perplexity", "Table 3: MTPB pass rate",
          "Table 4: MTPB prompt perplexity", "Figure 2: multi-turn minus single-turn")


def test_difficulty_thresholds():
    assert difficulty(0.2999) == "hard" and difficulty(0.30) == "medium" and difficulty(0.70) == "medium"
    assert difficulty(0.7001) == "easy" and difficulty(0.0) == "hard" and difficulty(1.0) == "easy"


def test_breakdown_by_hand():
    single = pd.Series({"p1": 1.0, "p2": 0.25, "p3": 0.0, "p4": 0.5})
    multi = pd.Series({"p1": 1.0, "p2": 0.75, "p3": 0.25, "p4": 0.5})
    # averages over the model's own two runs: p1 1.0 easy, p2 0.5 medium, p3 0.125 hard, p4 0.5 medium
    b = difficulty_breakdown(single, multi).set_index("bucket")
    assert list(b.index) == ["easy", "medium", "hard"]
    assert b.loc["easy", "n_problems"] == 1 and b.loc["easy", "gain"] == 0.0
    assert b.loc["medium", "n_problems"] == 2 and b.loc["medium", "gain"] == pytest.approx(25.0)  # (+50 + 0) / 2
    assert b.loc["medium", "gain_se"] == pytest.approx(25.0)  # std(50, 0) = 35.36, / sqrt(2)
    assert b.loc["hard", "gain"] == pytest.approx(25.0) and b.loc["medium", "single"] == pytest.approx(37.5)
    # averaged over more runs (another model solves p3): p3 (0 + 0.25 + 1) / 3 = 0.42 becomes medium
    other = pd.Series({"p1": 1.0, "p2": 1.0, "p3": 1.0, "p4": 0.5})
    b = difficulty_breakdown(single, multi, reference=[single, multi, other]).set_index("bucket")
    assert b.loc["medium", "n_problems"] == 3 and b.loc["medium", "gain"] == pytest.approx(25.0)  # 50, 25, 0
    assert b.loc["hard", "n_problems"] == 0 and math.isnan(b.loc["hard", "gain"])


def _perplexity_run(path, benchmark, model, metrics, rows):
    store = RunStore(path)
    store.start({"model": model}, Manifest(benchmark=benchmark, model=model,
                                           mode="perplexity" if benchmark == "mtpb" else "prompt-perplexity"))
    (path / PPL_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    store.write_metrics(metrics)


def test_paper_flag_lists_every_table_without_runs(capsys):
    assert main(["--paper"]) == 0
    out = capsys.readouterr().out
    for title in TITLES:
        assert f"## {title}" in out
    assert "| CodeGen-Multi 16.1B | 26.27" in out and "10.58 ± 1.20" in out and "| 8.5 " in out
    assert main(["table"]) == 2  # neither a run nor --paper


def test_paper_tables_with_our_runs(tmp_path, capsys):
    model = "codegen-350M-mono"
    # MTPB: 4 problems x 1 case x 4 samples; the same counts as test_breakdown_by_hand
    make_run(tmp_path / "single", {("mtpb/1", 0): 4, ("mtpb/2", 0): 1, ("mtpb/3", 0): 0, ("mtpb/4", 0): 2},
             benchmark="mtpb", model=model, mode="single-turn")
    make_run(tmp_path / "multi", {("mtpb/1", 0): 4, ("mtpb/2", 0): 3, ("mtpb/3", 0): 1, ("mtpb/4", 0): 2},
             benchmark="mtpb", model=model, mode="multi-turn")
    _perplexity_run(tmp_path / "mppl", "mtpb", model,
                    {"history": "run", "n_problems": 4, "multi_turn_ppl": 9.5, "multi_turn_ppl_se": 0.75,
                     "single_turn_ppl": 12.25, "single_turn_ppl_se": 1.5}, [])
    # HumanEval: A and B have a passing sample, C none
    make_run(tmp_path / "he", {"A": 1, "B": 2, "C": 0}, model=model)
    _perplexity_run(tmp_path / "hppl", "humaneval", model, {},
                    [{"key": p, "problem_id": p, "prompt_ppl": v} for p, v in (("A", 3.0), ("B", 5.0), ("C", 6.0))])
    assert main([str(tmp_path), "--paper", "--k", "1", "--boot", "50"]) == 0
    out = capsys.readouterr().out
    for title in TITLES:
        assert f"## {title}" in out
    lines = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| CodeGen-Mono 350M")}
    table = {}
    for section in out.split("## ")[1:]:
        row = [line for line in section.splitlines() if line.startswith("| CodeGen-Mono 350M")]
        table[section.split(":")[0]] = [c.strip() for c in row[0].split("|")[1:-1]] if row else None
    assert lines
    # Table 1: pass@1 = (1 + 2 + 0) / 12 = 25%
    assert table["Table 1"][1:3] == ["12.76", table["Table 1"][2]] and table["Table 1"][2].startswith("25.00 [")
    # Table 2: pass = mean(3, 5) = 4 ± 1; non-pass = 6 (one problem: no standard error)
    assert table["Table 2"][1] == "3.78 ± 0.23" and table["Table 2"][2].startswith("4.00 ± 1.00 (2 problems")
    assert table["Table 2"][4].startswith("6.00 (1 problems")
    # Table 3: multi-turn pass rate 10 / 16 = 62.5%
    assert table["Table 3"][1] == "16.98" and table["Table 3"][2].startswith("62.50 [")
    # Table 4: perplexities from the perplexity run, pass rates from the runs (single 7 / 16 = 43.75%)
    assert table["Table 4"][1:5] == ["13.92 ± 1.89", "12.25 ± 1.50 (4 problems)", "10.09 ± 0.62",
                                     "9.50 ± 0.75 (4 problems)"]
    assert table["Table 4"][6].startswith("43.75 [")
    # Figure 2: easy 0 (1 problem), medium +25 ± 25 (2), hard +25 (1)
    assert table["Figure 2"][1:7] == ["14.19", "0.00 (1 problems)", "22.06", "25.00 ± 25.00 (2 problems)", "2.99",
                                      "25.00 (1 problems)"]
    for name in ("paper_table1", "paper_table2", "paper_table3", "paper_table4", "paper_figure2"):
        assert (tmp_path / f"{name}.csv").exists()
    data = pd.read_csv(tmp_path / "paper_figure2.csv")
    assert set(data.columns) >= {"paper", "paper_se", "ours", "ours_se", "runs", "source"}
