"""A generated corpus of MTPB programs for the differential test against the official scoring.

    python tests/corpus/make_mtpb_corpus.py OUT_DIR [--data mtpb.jsonl]

writes OUT_DIR/samples.jsonl in the official sample format (salesforce/CodeGen `mtpb_sample.py`:
`id`, `input`, `gold_output`, `completions` = the assembled program), plus `kind`. The programs,
over the problems of mtpb.jsonl (every second problem, test case 0; a few with case 1):

- `reference`: the hand-written multi-turn reference solution (tests/integration/mtpb_solutions.py)
  assembled like a conversation (`mtpb.prompts.assemble`);
- `variant`: its subtly wrong edit, where there is one (`VARIANTS`);
- `mutant:<rule>`: the reference with one textual mutation of its last turn's code;
- a catalogue of odd behaviours (`CATALOGUE`) applied to reference programs: code inserted before
  the last top-level statement (so the final print still decides) or appended after it (so the
  behaviour happens after the last print), or the last print replaced: main blocks, threads, exits,
  the calls the official reliability guard disables, odd prints, odd exceptions, huge output,
  recursion, slow code, printed iterators.

Deterministic; nothing is cached. Used by tests/integration/test_differential_mtpb.py.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from mtpb.data import Problem, load_problems  # noqa: E402
from mtpb.errata import errata_for  # noqa: E402
from mtpb.prompts import assemble  # noqa: E402
from results.jsonl import write_jsonl  # noqa: E402
from tests.integration.mtpb_solutions import VARIANTS, completions  # noqa: E402

PROBLEM_STEP = 2
SECOND_CASE_STEP = 10  # every 10th problem also contributes its test case 1
REPEATS = 2  # problems each catalogue entry is applied to


def split_last(program: str) -> tuple[str, str]:
    """(everything before the last top-level statement, that statement to the end)."""
    last = ast.parse(program).body[-1]
    start = sum(len(line) + 1 for line in program.split("\n")[: last.lineno - 1])
    return program[:start], program[start:]


def before(code: str) -> Callable[[str], str]:
    """`code` inserted before the last top-level statement."""
    def make(program: str) -> str:
        head, last = split_last(program)
        return head + code + last
    return make


def after(code: str) -> Callable[[str], str]:
    """`code` appended after the program (runs after its last print)."""
    return lambda program: program.rstrip("\n") + "\n" + code


def last_print(template: str) -> Callable[[str], str]:
    """The last statement ``print(X)`` replaced by `template` formatted with X."""
    def make(program: str) -> str:
        head, last = split_last(program)
        node = ast.parse(last).body[0]
        call = getattr(node, "value", None)
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "print" and len(call.args) == 1):
            raise ValueError("the last statement is not print(X)")
        return head + template.format(x=ast.unparse(call.args[0])) + "\n"
    return make


CATALOGUE: dict[str, Callable[[str], str]] = {
    # main blocks: the official run executes the program with __name__ == "__main__"
    "main-block": before('if __name__ == "__main__":\n    _in_main = True\n'),
    "main-other-name": before('if __name__ != "__main__":\n    raise RuntimeError("not main")\n'),
    "main-print-after": after('if __name__ == "__main__":\n    print("main block")\n'),
    # threads
    "thread-daemon": before("import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"),
    "thread-timer": before('import threading\nthreading.Timer(30.0, print, args=("late",)).start()\n'),
    "thread-raises": before("import threading\nthreading.Thread(target=lambda: 1 / 0).start()\n"),
    # exits (sys.exit and os._exit end the whole official run: no official verdict)
    "exit-call-after": after("exit()\n"),
    "quit-call-after": after("quit()\n"),
    "exit-call-before": before("exit()\n"),
    "exit-caught": before("import sys\ntry:\n    sys.exit(3)\nexcept SystemExit:\n    pass\n"),
    "sys-exit-after": after("import sys\nsys.exit(0)\n"),
    "os-exit-after": after("import os\nos._exit(0)\n"),
    # what the official reliability guard disables
    "guard-getcwd-before": before("import os\n_cwd = os.getcwd()\n"),
    "guard-getcwd-after": after("import os\nos.getcwd()\n"),
    "guard-subprocess": before('import subprocess\nsubprocess.check_output(["echo", "x"])\n'),
    "guard-remove": before('import os\nopen("corpus.txt", "w").close()\nos.remove("corpus.txt")\n'),
    "guard-putenv": before('import os\nos.putenv("CORPUS", "1")\n'),
    "guard-resource": before("import resource\n"),
    "guard-system": before('import os\nos.system("true")\n'),
    "guard-caught": before("import os\ntry:\n    os.getcwd()\nexcept TypeError:\n    pass\n"),
    # odd prints
    "print-surrogate": before('print("debug", chr(0xDC80))\n'),
    "print-line-breaks": before('print("a\\u2028b\\u2029c\\x85d")\n'),
    "print-stderr-after": after('import sys\nprint("to stderr", file=sys.stderr)\n'),
    "print-extra-after": after('print("extra")\n'),
    "print-no-args-after": after("print()\n"),
    "print-two-args": last_print('print({x}, "extra")'),
    "print-end-kw": last_print('print({x}, end="")'),
    "print-iter": last_print("print(iter({x}))"),
    "print-iter-then-list": last_print("_it = iter({x})\nprint(_it)\nprint(list(_it))"),
    "print-stack-shadow": after("print_stack = []\n"),
    "stdout-buffer-before": before('import sys\nsys.stdout.buffer.write(b"x")\n'),
    "dunder-file-before": before("_here = __file__\n"),
    # odd exceptions
    "exc-after": after('raise ValueError("late")\n'),
    "exc-surrogate-after": after("raise ValueError(b'\\xff'.decode('utf-8', 'surrogateescape'))\n"),
    "exc-huge-after": after("raise ValueError('x' * 300000)\n"),
    "exc-before": before('raise ValueError("early")\n'),
    "exc-keyboard-after": after("raise KeyboardInterrupt\n"),
    # huge output
    "huge-print-before": before('print("x" * 10_000_000)\n'),
    "many-prints-before": before("for _i in range(20_000):\n    print(_i)\n"),
    # recursion
    "recursion-after": after("def _r(n):\n    return _r(n + 1)\n_r(0)\n"),
    "recursion-before": before("def _r(n):\n    return _r(n + 1)\n_r(0)\n"),
    # slow code (the limit is short in the test)
    "slow-sleep-after": after("import time\ntime.sleep(60)\n"),
    "slow-busy-after": after("while True:\n    pass\n"),
    "slow-sleep-before": before("import time\ntime.sleep(60)\n"),
    # other
    "syntax-error-after": after("print(\n"),
}
ONCE = {"thread-timer", "slow-busy-after", "slow-sleep-before", "slow-sleep-after"}  # slow: one problem each

# (name, pattern, replacement) applied to the code of the last turn
MUTATIONS: list[tuple[str, str, str]] = [
    ("int-plus-one", r"\b(\d+)\b", "int+1"),
    ("plus-minus", r" \+ ", " - "),
    ("sorted-reversed", r"\bsorted\(", "list(reversed("),
    ("max-min", r"\bmax\(", "min("),
    ("print-in-list", r"\bprint\((.+)\)", r"print([\1])"),
]


def mutant(program: str) -> tuple[str, str] | None:
    """The first mutation that applies to the code of the last turn (after its comment line)."""
    turn = program.rindex("\n# ")
    cut = program.index("\n", turn + 1) + 1
    head, last = program[:cut], program[cut:]
    for name, pattern, new in MUTATIONS:
        match = re.search(pattern, last)
        if match is None:
            continue
        replacement = str(int(match.group(1)) + 1) if new == "int+1" else match.expand(new)
        text = last[: match.start()] + replacement + last[match.end():]
        return name, head + text
    return None


def line(problem: Problem, case: int, program: str, kind: str) -> dict:
    return {"id": str(problem.id), "input": problem.inputs[case], "gold_output": problem.gold(case),
            "completions": program, "kind": kind}


def build(problems: list[Problem]) -> list[dict]:
    out = []
    chosen = problems[::PROBLEM_STEP]
    references = {}
    for p in chosen:
        for case in (0, 1) if p.id % SECOND_CASE_STEP == 0 else (0,):
            program = assemble(p.filled_prompts(case), completions(p.id, p.inputs[case]))
            references[(p.id, case)] = program
            out.append(line(p, case, program, "reference"))
            if (m := mutant(program)) is not None:
                out.append(line(p, case, m[1], f"mutant:{m[0]}"))
    for pid in sorted(VARIANTS):
        p = next(q for q in problems if q.id == pid)
        out.append(line(p, 0, assemble(p.filled_prompts(0), completions(pid, p.inputs[0], variant=True)), "variant"))
    # catalogue entries go to case-0 references whose last statement is print(X), without errata
    hosts = [p for p in chosen if _ends_with_single_print(references[(p.id, 0)])
             and not errata_for(p.id)]  # hosts whose reference can pass: the behaviour decides
    list_hosts = [p for p in hosts if isinstance(p.gold(0), list)]  # for the printed iterators
    slot = 0
    for name, make in CATALOGUE.items():
        for _ in range(1 if name in ONCE else REPEATS):
            pool = list_hosts if name.startswith("print-iter") else hosts
            p = pool[slot % len(pool)]
            slot += 1
            out.append(line(p, 0, make(references[(p.id, 0)]), name))
    return out


def _ends_with_single_print(program: str) -> bool:
    node = ast.parse(program).body[-1]
    call = getattr(node, "value", None)
    return isinstance(call, ast.Call) and getattr(call.func, "id", None) == "print" and len(call.args) == 1


def write(out_dir: str | Path, data: str | Path) -> tuple[Path, int]:
    """Write samples.jsonl into `out_dir`; returns its path and the number of programs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = build(list(load_problems(data).problems))
    write_jsonl(out / "samples.jsonl", rows)
    return out / "samples.jsonl", len(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    shared = os.environ.get("CODEGEN_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", default=str(Path(shared) / "mtpb" / "mtpb.jsonl"))
    args = parser.parse_args()
    path, n = write(args.out_dir, args.data)
    print(f"{n} programs: {path}")
