"""pass@k against math.comb, per-problem tables, bootstrap coverage, progress reporting."""

from __future__ import annotations

import io
import logging
import math
import random

import numpy as np
import pytest

from results.metrics import (
    bootstrap_ci,
    estimate_pass_at_k,
    paired_bootstrap,
    pass_at_k_table,
    summarize,
)
from results.progress import Progress
from results.records import ExecutionRecord


def comb_pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_pass_at_k_matches_math_comb_on_random_cases():
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 250)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        assert estimate_pass_at_k(n, c, k) == pytest.approx(comb_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"pass@11 needs 1 <= k <= n samples, got n=10"):
        estimate_pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match="k <= n"):
        estimate_pass_at_k(10, 3, 0)
    with pytest.raises(ValueError, match="c=11"):
        estimate_pass_at_k(10, 11, 1)


def executions(counts: dict[tuple[str, int | None], tuple[int, int]]) -> list[ExecutionRecord]:
    """counts: (problem, case) -> (n, c)"""
    out = []
    for (problem, case), (n, c) in counts.items():
        for i in range(n):
            out.append(ExecutionRecord(f"{problem}/{case}/s{i}", problem, i, "passed" if i < c else "failed",
                                       i < c, case_index=case))
    return out


def test_table_by_hand():
    table = pass_at_k_table(executions({("A", None): (4, 1), ("B", None): (4, 2), ("C", None): (4, 0)}), ks=(1, 2, 5))
    # A: pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5; B: 1 - C(2,2)/C(4,2) = 5/6
    assert table.set_index("problem_id")["pass@2"].to_dict() == pytest.approx({"A": 0.5, "B": 5 / 6, "C": 0.0})
    assert table["pass@1"].tolist() == pytest.approx([0.25, 0.5, 0.0])
    assert table["pass@5"].isna().all()  # k > n: not defined
    s = summarize(executions({("A", None): (4, 1), ("B", None): (4, 2), ("C", None): (4, 0)}), ks=(1, 2, 5))
    assert s["pass@2"] == pytest.approx((0.5 + 5 / 6) / 3) and "pass@5" not in s
    assert s["n_problems"] == 3 and s["n_executions"] == 12 and s["statuses"] == {"failed": 9, "passed": 3}
    assert s["pass@1_ci"][0] <= s["pass@1"] <= s["pass@1_ci"][1]


def test_cases_are_scored_separately_then_averaged():
    # MTPB: problem P has two cases with 2 samples each: one case 2/2, the other 0/2
    table = pass_at_k_table(executions({("P", 0): (2, 2), ("P", 1): (2, 0)}), ks=(1, 2))
    row = table.iloc[0]
    assert row["pass_rate"] == 0.5 and row["pass@2"] == 0.5 and row["n"] == 2 and row["c"] == 2


def test_bootstrap_interval_covers_the_true_value():
    rng = np.random.default_rng(1)
    true_p, covered, trials = 0.3, 0, 200
    for t in range(trials):
        values = (rng.random(150) < true_p).astype(float)
        low, high = bootstrap_ci(values, n_boot=400, seed=t)
        covered += low <= true_p <= high
    # a 95% interval: coverage near 0.95 (binomial sd over 200 trials ~ 0.015)
    assert 0.89 <= covered / trials <= 0.99, covered
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    assert bootstrap_ci([0.1, 0.9, 0.5], seed=3) == bootstrap_ci([0.1, 0.9, 0.5], seed=3)


def test_paired_bootstrap_sign():
    a = np.array([0.0, 0.2, 0.5, 0.1, 0.3] * 10)
    diff, low, high = paired_bootstrap(a, a + 0.1)
    assert diff == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_progress_bar_and_log_lines(caplog):
    clock = iter([0.0, 1.0, 2.0, 2.0]).__next__
    stream = io.StringIO()
    bar = Progress(total=10, desc="he", stream=stream, bar=True, interval_s=0, clock=clock, initial=1)
    bar.update(samples=2, tokens=100)
    bar.update(samples=2, executions=4)
    bar.close()
    text = stream.getvalue()  # tqdm's bar, redrawn with \r, our rates in its postfix
    assert "\rhe:  10%" in text and "\rhe:  50%" in text and "5/10" in text
    assert "100.0 tok/s" in text and "2.00 exec/s" in text  # 4 executions in 2 s (our clock)
    assert text.endswith("\n")

    clock2 = iter([0.0, 10.0, 10.0]).__next__
    with caplog.at_level(logging.INFO, logger="results.progress"):
        with Progress(total=4, desc="mtpb", stream=io.StringIO(), bar=False, interval_s=0, clock=clock2,
                      initial=2) as plain:
            plain.update(samples=1, executions=5)
    assert "mtpb: 3/4 samples (75%), elapsed 00:10, ETA 00:10, 0.0 tok/s, 0.50 exec/s" in caplog.text


def test_bootstrap_interval_matches_the_normal_approximation_for_many_problems():
    # 200 problems, 60 solved: the percentile bootstrap of the mean approaches p +- 1.96 sqrt(p(1-p)/n)
    values = np.array([1.0] * 60 + [0.0] * 140)
    low, high = bootstrap_ci(values, n_boot=4000, seed=1)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 200)
    assert abs(low - (0.3 - half)) < 0.01 and abs(high - (0.3 + half)) < 0.01
    assert bootstrap_ci([0.25]) == (0.25, 0.25) and np.isnan(bootstrap_ci([])[0])
    with pytest.raises(ValueError, match=r"confidence level must be in \(0, 1\)"):
        bootstrap_ci(values, level=1.5)
