"""MTPB metrics on hand-made execution records: pass rates, categories, pass@k per case, errata."""

from __future__ import annotations

import math

import pytest

from mtpb.data import Problem
from mtpb.metrics import compute_metrics, format_problem_table, format_summary
from results.metrics import estimate_pass_at_k
from results.records import ExecutionRecord


def problem(pid: int, category: str, cases: int = 2) -> Problem:
    return Problem(pid, f"p{pid}", "", category, ("Do {a}.",), tuple({"a": i} for i in range(cases)),
                   tuple(range(cases)))


def record(pid: int, case: int, sample: int, official: bool, strict: bool | None = None, status: str = "passed"):
    strict = official if strict is None else strict
    return ExecutionRecord(key=f"mtpb/{pid}/c{case}/s{sample}", problem_id=f"mtpb/{pid}", sample_index=sample,
                           status=status, passed=official, case_index=case,
                           extra={"official_passed": official, "strict_passed": strict})


def test_rates_categories_and_pass_at_k():
    problems = [problem(3, "math"), problem(5, "array"), problem(7, "math")]
    verdicts = {  # (problem, case) -> verdicts of 4 samples
        (3, 0): [1, 1, 1, 1], (3, 1): [1, 0, 0, 0],
        (5, 0): [0, 0, 0, 0], (5, 1): [0, 0, 1, 0],
        (7, 0): [1, 1, 0, 0], (7, 1): [1, 1, 1, 0],
    }
    records = [record(p, c, i, bool(v), strict=bool(v) and not (p == 7 and i == 0))
               for (p, c), vs in verdicts.items() for i, v in enumerate(vs)]
    m = compute_metrics(records, problems, ks=(1, 2, 10), n=4, n_boot=200)
    passes = sum(sum(v) for v in verdicts.values())
    assert m["pass_rate"] == pytest.approx(passes / (3 * 2 * 4)) == m["official_pass_rate"]
    assert m["strict_pass_rate"] == pytest.approx((passes - 2) / 24)
    assert m["n_problems"] == 3 and m["n_cases"] == 6 and m["n_executions"] == 24 and m["n_passed"] == passes
    for k in (1, 2):
        per_case = [estimate_pass_at_k(4, sum(v), k) for v in verdicts.values()]
        assert m[f"pass@{k}"] == pytest.approx(sum(per_case) / 6)  # equal cases per problem
    assert "pass@10" not in m  # k > n
    assert m["categories"]["math"]["pass_rate"] == pytest.approx((5 / 8 + 5 / 8) / 2)
    assert m["categories"]["array"] == {"n_problems": 1, "pass_rate": 1 / 8, "strict_pass_rate": 1 / 8}
    rows = {r["id"]: r for r in m["problems"]}
    assert rows[3]["n_passed"] == 5 and rows[3]["category"] == "math" and rows[3]["errata"] == []
    low, high = m["pass_rate_ci"]
    assert 0 <= low <= m["pass_rate"] <= high <= 1


def test_single_sample_reports_no_pass_at_k():
    m = compute_metrics([record(3, 0, 0, True), record(3, 1, 0, False)], [problem(3, "math")], n=1, n_boot=50)
    assert m["pass_rate"] == 0.5 and not any(k.startswith("pass@") for k in m)


def test_errata_are_reported_and_left_out_of_the_clean_rate():
    problems = [problem(41, "array", cases=5), problem(38, "data science", cases=5), problem(3, "math", cases=1)]
    records = [record(41, c, 0, c not in (1, 4)) for c in range(5)]
    records += [record(38, c, 0, False, status="error") for c in range(5)]
    records += [record(3, 0, 0, True)]
    m = compute_metrics(records, problems, n=1, n_boot=50)
    assert m["pass_rate"] == pytest.approx(4 / 11)
    assert m["without_errata"]["n_executions"] == 4 and m["without_errata"]["pass_rate"] == 1.0
    by_problem = {e["id"]: e for e in m["errata"] if e["excludable"]}
    assert by_problem[41]["kind"] == "gold_unscorable" and by_problem[41]["n_executions"] == 2
    assert by_problem[38]["kind"] == "needs_file" and by_problem[38]["n_passed"] == 0
    rows = {r["id"]: r for r in m["problems"]}
    assert rows[41]["errata"] == ["gold_unscorable"] and rows[38]["errata"] == ["needs_file"]
    # with the files given, problem 38 is an ordinary problem
    m2 = compute_metrics(records, problems, n=1, n_boot=50, datasets_available=True)
    assert 38 not in {e["id"] for e in m2["errata"]} and m2["without_errata"]["n_executions"] == 9
    text = format_summary(m)
    assert "without errata cases: 100.00%" in text and "41[gold_unscorable] 0/2" in text
    assert "[needs_file]" in format_problem_table(m)


def test_empty():
    m = compute_metrics([], [problem(3, "math")], n=1)
    assert m["n_executions"] == 0 and math.isnan(m["pass_rate"])
