"""`python -m results` over synthetic run directories with known counts (docs/design.md §5)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from results.cli import main
from results.paper import humaneval_vs_paper, paper_numbers, params_b
from results.records import ExecutionRecord, Manifest, SampleRecord, make_key
from results.runs import find_runs, hydra_run_dir, load_run, load_runs
from results.store import RunStore
from results.tables import best_temperature, summary_table


def make_run(run_dir: Path, counts: dict, *, benchmark="humaneval", model="tiny-random", temperature=0.2,
             n=4, mode="", categories: dict | None = None, finish=True, statuses: dict | None = None) -> Path:
    """A run whose problem `p` (or (p, case)) has `counts[p]` passing samples out of n."""
    store = RunStore(run_dir)
    store.start({"model": model, "t": temperature},
                Manifest(benchmark=benchmark, model=model, sampling={"temperature": temperature, "top_p": 0.95, "n": n},
                         mode=mode, created_at="2024-01-01T00:00:00+00:00"))
    for unit, c in counts.items():
        problem, case = unit if isinstance(unit, tuple) else (unit, None)
        for i in range(n):
            key = make_key(problem, i, case)
            store.append_sample(SampleRecord(key, problem, i, "pass", "prompt", case_index=case,
                                             n_new_tokens=10, time_s=0.5))
            status = (statuses or {}).get((problem, i), "passed" if i < c else "failed")
            store.append_execution(ExecutionRecord(
                key, problem, i, status, i < c, case_index=case,
                extra={"category": categories[problem]} if categories else {}))
    if finish:
        store.finalize()
        store.write_metrics({"done": True})
    store.close()
    return run_dir


def test_table_pass_at_k_by_hand(tmp_path):
    make_run(tmp_path / "a", {"P/0": 1, "P/1": 2, "P/2": 0, "P/3": 4}, n=4, statuses={("P/2", 0): "timeout"})
    run = load_run(tmp_path / "a")
    assert run.complete and run.n == 4
    row = summary_table([run], ks=(1, 2, 10), n_boot=200).iloc[0]
    # pass@1 = mean(c/n) = (1 + 2 + 0 + 4) / 16; pass@2 per problem: 1 - C(n-c,2)/C(4,2):
    # P0: 1 - 3/6 = 0.5, P1: 1 - 1/6, P2: 0, P3: 1
    assert row["pass@1"] == pytest.approx(7 / 16)
    assert row["pass@2"] == pytest.approx((0.5 + 5 / 6 + 0 + 1) / 4)
    assert math.isnan(row["pass@10"])  # k > n is not reported
    assert row["pass@2_lo"] <= row["pass@2"] <= row["pass@2_hi"]
    assert (row["problems"], row["samples"], row["executions"], row["timeouts"]) == (4, 16, 16, 1)
    assert row["tokens_per_s"] == pytest.approx(20.0)  # 10 tokens per 0.5 s
    assert row["model"] == "tiny-random" and row["temperature"] == 0.2


def test_mtpb_pass_rate_and_cases(tmp_path):
    counts = {("m/1", 0): 1, ("m/1", 1): 0, ("m/2", 0): 2, ("m/2", 1): 2}
    make_run(tmp_path / "m", counts, benchmark="mtpb", n=2, mode="multi-turn",
             categories={"m/1": "math", "m/2": "string"})
    row = summary_table([load_run(tmp_path / "m")], ks=(1, 2)).iloc[0]
    assert row["pass_rate"] == pytest.approx(5 / 8)  # passes / (problems x cases x samples)
    # pass@2 per (problem, case): m/1: (1 + 0) / 2 = 0.5, m/2: 1
    assert row["pass@2"] == pytest.approx(0.75)
    assert "strict_pass_rate" not in row or math.isnan(row["strict_pass_rate"])
    make_run(tmp_path / "m1", {("m/1", 0): 1, ("m/2", 0): 0}, benchmark="mtpb", n=1)
    row1 = summary_table([load_run(tmp_path / "m1")]).iloc[0]
    assert row1["pass_rate"] == 0.5 and math.isnan(row1["pass@1"])  # n = 1: the pass rate says it all


def test_best_temperature_per_k(tmp_path):
    # T=0.2 is best at pass@1 (precise), T=0.8 best at pass@4 (diverse): as in the paper
    make_run(tmp_path / "t0.2", {"A": 3, "B": 3, "C": 0}, temperature=0.2)
    make_run(tmp_path / "t0.8", {"A": 1, "B": 1, "C": 1}, temperature=0.8)
    summary = summary_table(load_runs([tmp_path])[0], ks=(1, 4))
    best = best_temperature(summary, ks=(1, 4)).set_index("k")
    assert best.loc[1, "temperature"] == 0.2 and best.loc[1, "value"] == pytest.approx(0.5)
    assert best.loc[4, "temperature"] == 0.8 and best.loc[4, "value"] == pytest.approx(1.0)
    assert best.loc[4, "tried"] == "0.2, 0.8"


def test_paper_side_by_side(tmp_path):
    make_run(tmp_path / "r", {"A": 1, "B": 0}, model="Salesforce/codegen-350M-mono", n=4)
    summary = summary_table(load_runs([tmp_path])[0], ks=(1,))
    side = humaneval_vs_paper(summary, ks=(1,)).iloc[0]
    assert side["paper"] == 12.76 and side["ours"] == pytest.approx(12.5)
    assert side["diff"] == pytest.approx(12.5 - 12.76) and side["source"].endswith("arXiv:2203.13474v5 Table 1")
    paper = paper_numbers("humaneval")
    assert len(paper[paper["model"].str.startswith("codegen") & paper["metric"].str.startswith("pass@")]) == 36
    assert params_b("codegen-16B-mono") == 16.1 and math.isnan(params_b("tiny-random"))


def test_incomplete_and_non_runs_are_reported(tmp_path, capsys):
    make_run(tmp_path / "sweep" / "0", {"A": 1}, temperature=0.2)
    killed = make_run(tmp_path / "sweep" / "1", {"A": 2, "B": 1}, temperature=0.8, finish=False)
    with open(killed / "executions.jsonl", "a") as f:
        f.write('{"key": "B/s9", "problem_id"')  # a kill in the middle of a line
    (tmp_path / "sweep" / ".hydra").mkdir()
    (tmp_path / "empty").mkdir()
    runs, skipped = load_runs([tmp_path / "sweep", tmp_path / "empty"])
    assert len(runs) == 2
    assert skipped == [f"{tmp_path / 'empty'}: not a run (no manifest.json) and no run below it; skipped"]
    incomplete = [r for r in runs if not r.complete][0]
    assert any("cut last line" in why for why in incomplete.incomplete)
    assert any("no metrics.json" in why for why in incomplete.incomplete)
    assert len(incomplete.executions) == 8  # read up to its last complete line

    assert main([str(tmp_path / "sweep"), str(tmp_path / "empty"), "--k", "1,2", "--boot", "100"]) == 0
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "is incomplete" in out and "skipped:" in out
    assert "Best temperature per k" in out
    table = pd.read_csv(tmp_path / "sweep" / "results.csv")
    assert sorted(table["temperature"]) == [0.2, 0.8]
    assert (tmp_path / "sweep" / "results.md").read_text().startswith("## Runs")
    assert main([str(tmp_path / "empty")]) == 2


def test_find_runs_dedups(tmp_path):
    make_run(tmp_path / "x", {"A": 1})
    found, skipped = find_runs([tmp_path, tmp_path / "x", tmp_path / "missing"])
    assert found == [(tmp_path / "x").resolve()] and skipped == [f"{tmp_path / 'missing'}: does not exist"]


def test_paper_flag_writes_files(tmp_path, capsys):
    make_run(tmp_path / "r", {"A": 1, "B": 0}, model="codegen-350M-mono")
    assert main([str(tmp_path), "--paper", "--k", "1", "--boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "HumanEval vs the CodeGen paper" in out and "12.76" in out
    assert (tmp_path / "paper_humaneval.csv").exists()


def test_hydra_sweep_folder_points_at_its_runs(tmp_path):
    # the benchmarks' run_dir is deterministic (outputs/...), the sweep folder holds Hydra's job folders
    make_run(tmp_path / "work" / "outputs" / "t0.2", {"A": 1}, temperature=0.2)
    make_run(tmp_path / "work" / "outputs" / "t0.8", {"A": 2}, temperature=0.8)
    for num, t in ((0, "0.2"), (1, "0.8")):
        hydra = tmp_path / "multirun" / "2024-01-01" / str(num) / ".hydra"
        hydra.mkdir(parents=True)
        # as Hydra saves it: unresolved interpolations, lists, quoted strings
        (hydra / "config.yaml").write_text(
            "benchmark:\n  name: humaneval\n  stop:\n  - \"\\nclass\"\n  - '\\ndef'\nmodel:\n  name: tiny-random\n"
            f"sampling:\n  temperature: {t}\n  top_k: null\n  label: 'x: y'\n"
            "run_dir: outputs/t${sampling.temperature}\nlimit: 2\n")
        (hydra / "hydra.yaml").write_text(
            f"hydra:\n  run:\n    dir: x\n  runtime:\n    version: 1.3.2\n    cwd: {tmp_path / 'work'}\n")
    found, skipped = find_runs([tmp_path / "multirun"])
    assert [p.name for p in found] == ["t0.2", "t0.8"] and not skipped
    assert hydra_run_dir(hydra) == tmp_path / "work" / "outputs" / "t0.8"


def test_hydra_job_whose_run_dir_needs_hydra_resolvers_is_skipped(tmp_path):
    hydra = tmp_path / "job" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("run_dir: outputs/${hydra:job.name}\n")
    assert hydra_run_dir(hydra) is None
    (hydra / "config.yaml").write_text("run_dir: outputs/${missing.key}\n")
    assert hydra_run_dir(hydra) is None
    (hydra / "config.yaml").write_text("run_dir: [unclosed\n")
    assert hydra_run_dir(hydra) is None


def test_mtpb_strict_pass_rate(tmp_path):
    store = RunStore(tmp_path / "s")
    store.start({}, Manifest(benchmark="mtpb", model="m", sampling={"temperature": 0.2, "n": 2}, mode="multi_turn",
                             extra={"scoring": "official"}))
    # official passes 3 of 4; strict (also ran to its end) 1 of 4
    for i, (passed, strict) in enumerate([(True, True), (True, False), (True, False), (False, False)]):
        problem = f"p/{i // 2}"
        key = make_key(problem, i % 2, 0)
        store.append_sample(SampleRecord(key, problem, i % 2, "x", "y", case_index=0))
        store.append_execution(ExecutionRecord(key, problem, i % 2, "passed" if strict else "error", passed,
                                               case_index=0, extra={"strict_passed": strict}))
    store.finalize()
    store.write_metrics({})
    row = summary_table([load_run(tmp_path / "s")], ks=(1,)).iloc[0]
    assert row["pass_rate"] == 0.75 and row["strict_pass_rate"] == 0.25 and row["scoring"] == "official"
