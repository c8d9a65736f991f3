"""`python -m mtpb.evaluate`: the official sample format and our run format, results beside the input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpb.data import load_problems
from mtpb.evaluate import main
from mtpb.prompts import assemble
from mtpb.runner import run
from results.store import RunStore

from .mtpb_scripted import ScriptedGenerator, reference_answer
from .mtpb_solutions import completions
from .test_mtpb_run import config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def problem_set(mtpb_path):
    return load_problems(mtpb_path)


def official_line(problem, case, program):
    """A line as mtpb_sample.py writes it."""
    return {"id": str(problem.id), "input": problem.inputs[case], "gold_output": problem.gold(case),
            "completions": program, "prompts_completions": ["..."]}


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON (a bare NaN / Infinity)")


def test_official_format(tmp_path, problem_set, mtpb_path, capsys):
    p3, p12, p41 = (problem_set.by_id()[i] for i in (3, 12, 41))
    lines = []
    for case in (4, 0, 2):  # any order: each line keeps its place in the results
        lines.append(official_line(p3, case, assemble(p3.filled_prompts(case), completions(3, p3.inputs[case]))))
    lines.append(official_line(p12, 3, assemble(p12.filled_prompts(3), completions(12, p12.inputs[3], variant=True))))
    lines.append(official_line(p41, 1, assemble(p41.filled_prompts(1), completions(41, p41.inputs[1]))))
    lines.append(official_line(p3, 0, "print(7980)\nraise ValueError('late')"))
    samples = tmp_path / "mtpb_sample.py_codegen_0.2.jsonl"
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))

    assert main([str(samples), "--data", str(mtpb_path), "--workers", "2"]) == 0
    results = [json.loads(x, parse_constant=_refuse) for x in Path(str(samples) + "_results.jsonl").read_text().splitlines()]
    assert [r["completions"] for r in results] == [x["completions"] for x in lines]  # same order, input kept
    assert [r["passed"] for r in results] == [True, True, True, False, False, True]
    assert [r["status"] for r in results] == ["passed", "passed", "passed", "failed", "failed", "error"]
    assert results[0]["value"] == 3660 and results[3]["value"] == "Herr Schmidth Gold is 210cm"
    assert results[5]["official_passed"] and not results[5]["strict_passed"] and results[5]["detail"] == "ValueError: late"
    assert "Unsupported type" in results[4]["detail"] and results[4]["value"] is None and results[4]["value_repr"] == "None"
    out = capsys.readouterr().out
    assert "pass rate 66.67% (4/6" in out and "Class definition" in out and "41[gold_unscorable] 0/1" in out

    assert main([str(samples), "--data", str(mtpb_path), "--scoring", "strict", "--quiet"]) == 0
    results = [json.loads(x, parse_constant=_refuse) for x in Path(str(samples) + "_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, True, True, False, False, False]


def test_run_format(tmp_path, problem_set, mtpb_path, capsys):
    cfg = config(tmp_path, "problems=[3,12]")
    run_summary = run(cfg, generator=ScriptedGenerator(reference_answer(problem_set.problems, frozenset({12}))), problem_set=problem_set)
    assert main([cfg.run_dir, "--data", str(mtpb_path), "--quiet"]) == 0
    results = [json.loads(x, parse_constant=_refuse) for x in (Path(cfg.run_dir) / "samples.jsonl_results.jsonl").read_text().splitlines()]
    stored = {e.key: e for e in RunStore(cfg.run_dir).executions()}
    assert [r["key"] for r in results] == [s.key for s in RunStore(cfg.run_dir).samples()]
    assert [r["passed"] for r in results] == [stored[r["key"]].passed for r in results]
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_refuse)  # strict JSON
    assert printed["pass_rate"] == run_summary.metrics["pass_rate"]


def test_bad_input_names_the_line(tmp_path, mtpb_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "3", "input": {}, "gold_output": 1, "completions": "print(1)"}\n{"task_id": 1}\n')
    assert main([str(bad), "--data", str(mtpb_path)]) == 2
    assert f"{bad}:2: neither the official format" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jsonl"), "--data", str(mtpb_path)]) == 2


def test_no_guard_flag(tmp_path, problem_set, mtpb_path):
    """`--no-guard` runs without the official reliability_guard; by default a guarded call before
    the last print fails the program, as in mtpb_exec.py."""
    p3 = problem_set.by_id()[3]
    program = "import os\n_cwd = os.getcwd()\nprint(7980)"
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(official_line(p3, 0, program)) + "\n")
    verdicts = []
    for flags in ([], ["--no-guard"]):
        assert main([str(samples), "--data", str(mtpb_path), "--workers", "1", "--quiet", *flags]) == 0
        verdicts.append(json.loads(Path(str(samples) + "_results.jsonl").read_text())["passed"])
    assert verdicts == [False, True]


def test_limit_flags_use_the_sandbox_names(tmp_path, problem_set, mtpb_path, capsys):
    """`--official-timeout-s` (the in-process timer, judged by the last print) and `--wall-s` (the
    sandbox kills); the old `--timeout-s` is the official one, with a warning; a wall clock that
    would cut the official timer short is one line, exit 2."""
    p3 = problem_set.by_id()[3]
    slow = "import time\nprint(7980)\ntime.sleep(5)\n"  # prints the answer, then runs past the official timer
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(official_line(p3, 0, slow)) + "\n")
    results = Path(str(samples) + "_results.jsonl")
    for flags in (["--official-timeout-s", "1", "--wall-s", "4"], ["--timeout-s", "1"]):
        assert main([str(samples), "--data", str(mtpb_path), "--workers", "1", "--quiet", *flags]) == 0
        row = json.loads(results.read_text())
        assert row["passed"] and row["status"] == "timeout"  # official: judged by the last print
    assert capsys.readouterr().err.count("warning: --timeout-s is now --official-timeout-s") == 1
    assert main([str(samples), "--data", str(mtpb_path), "--official-timeout-s", "5", "--wall-s", "5"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: --wall-s=5 must be > --official-timeout-s=5 > 0")
