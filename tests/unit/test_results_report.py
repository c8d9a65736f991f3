"""The run layer's shared edges (results/report.py): plurals, the greedy warning, the summary
block, the Ctrl-C line, and the merge lock a sharded run leaves behind (docs/design.md §5)."""

from __future__ import annotations

import logging

from results import report as driver
from results.records import ExecutionRecord
from results.shard import Shard, mark_done, run_sharded


def test_plural_says_one_problem_and_two_problems():
    assert (driver.plural(1, "problem"), driver.plural(2, "problem"), driver.plural(0, "sample")) == \
        ("1 problem", "2 problems", "0 samples")


def test_greedy_with_several_samples_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(driver, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="results.report"):
        driver.check_sampling(0.0, 5)
        driver.check_sampling(0.0, 5)
        driver.check_sampling(0.0, 1)
        driver.check_sampling(0.8, 5)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "sampling.temperature=0" in warnings[0] and "identical" in warnings[0]


def record(pid: str, index: int, passed: bool, status: str, duration_s: float) -> ExecutionRecord:
    return ExecutionRecord(key=f"{pid}/{index}", problem_id=pid, sample_index=index, status=status,
                           passed=passed, detail="", duration_s=duration_s)


def test_summary_block_has_interval_statuses_slowest_run_dir_and_command():
    metrics = {"model": "m", "pass_rate": 0.5, "pass_rate_ci": [0.25, 0.75], "pass@1": 0.5,
               "pass@1_ci": [0.2, 0.8], "statuses": {"passed": 2, "timeout": 1, "failed": 1}}
    executions = [record("A", 0, True, "passed", 0.1), record("A", 1, False, "timeout", 3.0),
                  record("B", 0, True, "passed", 0.2), record("B", 1, False, "failed", 0.1)]
    text = driver.summary_block("humaneval", "runs/x", metrics, executions, per_problem=True)
    assert "pass@1      50.00%  (95% CI 20.00-80.00)" in text
    assert "statuses   failed 1, passed 2, timeout 1" in text
    assert "slowest    A 3.1 s, B 0.3 s" in text and "over 2 problems" in text
    assert "run dir    runs/x" in text and "python -m results runs/x" in text
    assert "A                      1/2" in text


def test_interrupted_line_names_what_is_saved_and_the_resume_command():
    line = driver.interrupted_line("mtpb", "runs/y", 1, 3, argv=["model=codegen-350M-mono", "limit=2"])
    assert line == ("interrupted: 1 sample and 3 executions are saved in runs/y; resume with: "
                    "python -m mtpb model=codegen-350M-mono limit=2")
    assert "\n" not in line


def test_a_merged_sharded_run_leaves_no_lock_file(tmp_path):
    mark_done(tmp_path, Shard(0, 2))
    merged = run_sharded(tmp_path, Shard(1, 2), run_share=lambda: None, finish=lambda: {"ok": 1})
    assert merged == {"ok": 1} and not (tmp_path / "shard.merge.lock").exists()


def test_execution_records_carry_the_sandbox_status_type():
    import json

    import pytest

    from results.records import RecordError
    from sandbox import Status

    r = ExecutionRecord(key="k", problem_id="p", sample_index=0, status="timeout", passed=False)
    assert r.status is Status.TIMEOUT and json.loads(json.dumps(r.to_dict()))["status"] == "timeout"
    assert ExecutionRecord.from_dict(json.loads(json.dumps(r.to_dict()))).status is Status.TIMEOUT
    with pytest.raises(RecordError, match="status 'weird' is not one of"):
        ExecutionRecord(key="k", problem_id="p", sample_index=0, status="weird", passed=False)
