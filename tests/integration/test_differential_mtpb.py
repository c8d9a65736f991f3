"""Differential test: `python -m mtpb.evaluate` gives the official verdict on every MTPB program.

The corpus (tests/corpus/make_mtpb_corpus.py: reference solutions, their variants and mutants, and a
catalogue of odd behaviours, over 70 problems, in the official sample format) is generated into a
temporary folder and scored at the same time by the in-test reference executor
(tests/integration/mtpb_reference.py, the steps of `mtpb_exec.py`) and by our CLI, both with a 3 s
limit instead of the official 20 s (the same for both; it only shortens the slow cases). Every
program the official script would finish must get the same verdict; those it would not finish
(``sys.exit``, ``os._exit``, ``KeyboardInterrupt``) are counted, not compared (docs/design.md §3, §4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.corpus.make_mtpb_corpus import write as write_corpus
from tests.integration.mtpb_reference import official_verdict, rewrite

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = "3"


def results_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def test_verdicts_equal_the_official_executor_on_the_corpus(tmp_path, mtpb_path):
    samples, n = write_corpus(tmp_path, mtpb_path)
    assert n >= 150
    ours_dir = tmp_path / "ours"
    ours_dir.mkdir()
    (ours_dir / "samples.jsonl").write_bytes(samples.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference_out = tmp_path / "reference.jsonl"
    scorers = [
        subprocess.Popen([sys.executable, "-m", "tests.integration.mtpb_reference", str(samples), str(reference_out),
                          "--timeout-s", TIMEOUT_S, "--workers", "2"],
                         cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, "-m", "mtpb.evaluate", str(ours_dir / "samples.jsonl"), "--data", str(mtpb_path),
                          "--official-timeout-s", TIMEOUT_S, "--workers", "2", "--quiet"],
                         cwd=ours_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]
    outputs = [p.communicate(timeout=300) for p in scorers]
    for p, (_, err) in zip(scorers, outputs):
        assert p.returncode == 0, err[-3000:]

    official = results_of(reference_out)
    ours = results_of(Path(str(ours_dir / "samples.jsonl") + "_results.jsonl"))
    assert len(official) == len(ours) == n
    assert [o["kind"] for o in official] == [o["kind"] for o in ours]
    assert len({o["id"] for o in ours}) >= 40
    unfinished = Counter(o["kind"] for o in official if not o["finished"])
    assert unfinished == {"sys-exit-after": 2, "os-exit-after": 2, "exc-keyboard-after": 2}, unfinished
    verdicts = Counter(o["passed"] for o in official if o["finished"])
    assert verdicts[True] >= 60 and verdicts[False] >= 60, verdicts  # the corpus decides both ways
    mismatches = [
        f"line {o['line']} mtpb/{x['id']} {o['kind']}: official {o['passed']} ({o['message'][:60]!r}), "
        f"ours {x['official_passed']} ({x['status']}: {x['detail'][:80]!r})"
        for o, x in zip(official, ours) if o["finished"] and o["passed"] != x["official_passed"]
    ]
    assert not mismatches, (f"{len(mismatches)} of {n - sum(unfinished.values())} official verdicts differ:\n"
                            + "\n".join(mismatches))


@pytest.mark.parametrize("code, rewritten", [  # the official script's own self-test cases
    ("def f(a):\n    return a ** 2\nf(2)", "def f(a):\n    return a ** 2\nprint(f(2))"),
    ("def f(a):\n    return a ** 2\nprint(f(2))", "def f(a):\n    return a ** 2\nprint(f(2))"),
    ("df.groupby('gender')['alco'].value_counts()", "print(df.groupby('gender')['alco'].value_counts())"),
    ("x = 1 +", "x = 1 +"),  # a syntax error: unchanged
    ("x = 3", "x = print(3)"),  # the value of an assignment is wrapped too
])
def test_reference_rewrite(code, rewritten):
    assert rewrite(code) == rewritten


def test_reference_verdicts():
    assert official_verdict("print(3)\nraise ValueError('late')", 3, 5.0) == (True, "")
    assert official_verdict("x = [1, 2]\nx", [1, 2], 5.0) == (True, "")
    assert official_verdict("import time\nprint(3)\ntime.sleep(10)", 3, 0.5) == (True, "")
    assert official_verdict("import time\ntime.sleep(10)\nprint(3)", 3, 0.5) == (False, "list index out of range")
    assert official_verdict("print({'a': 1})", {"a": 1}, 5.0) == (False, "Unsupported type <class 'dict'>")
    with pytest.raises(SystemExit):  # ends the whole official run
        official_verdict("import sys\nprint(3)\nsys.exit(0)", 3, 5.0)
