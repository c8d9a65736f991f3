"""A reference MTPB executor that follows salesforce/CodeGen `codegen1/benchmark/mtpb_exec.py` step by step.

    python -m tests.integration.mtpb_reference SAMPLES.jsonl OUT.jsonl [--timeout-s 20] [--workers 2]

For the differential test (tests/integration/test_differential_mtpb.py) only; never used by the
harness. The official script runs every program with `exec` in its own process, after
`reliability_guard(total RAM)`; per program (`eval_problem`):

1. a fresh globals dict ``{"print_stack": [], "__name__": "__main__"}``, into which a `print` is
   exec'd that appends ``{'args': args, 'kwargs': kwargs}`` to ``print_stack`` and then prints;
2. under a `time_limit(20)` (ITIMER_REAL, a handler raising `TimeoutException`): the AST rewrite
   (the last top-level statement's value wrapped in ``print(...)`` unless it already calls a name
   starting with ``print``; on any failure the code unchanged), then `do_exec` (stdout redirected to
   a StringIO; an `Exception` ends the program, not the evaluation), then the first argument of the
   last recorded print compared with the gold output by `check_equivalence` (our
   `mtpb.equivalence.check_equivalence` is the official function);
3. `TimeoutException` or any other `Exception` on the way: a failure.

A `BaseException` that is not an `Exception` (``sys.exit()``, ``KeyboardInterrupt``), `os._exit`, a
crash or a hang the timer cannot interrupt ends (or stalls) the official run itself: that program
has no official verdict and is reported with ``"finished": false``.

Here each program runs in a child forked from a warm parent (numpy and pandas imported, as the
official process has them after the first program that imports them), with the guard applied in
the child, so programs cannot leak state into each other (the official script would let them; our
harness never does). Output: one line per input line, ``{"line", "kind", "finished", "passed",
"message"}``.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import faulthandler
import io
import json
import os
import select
import signal
import sys
import time

from mtpb.equivalence import check_equivalence

# What the official reliability_guard sets to None (os functions, shutil functions) or blocks.
GUARDED_OS = ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
              "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
              "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir")
GUARDED_SHUTIL = ("rmtree", "move", "chown")
BLOCKED_MODULES = ("ipdb", "joblib", "resource", "tkinter")
RECORDING_PRINT = """import builtins
def print(*args, **kwargs):
    global print_stack
    print_stack.append({'args': args, 'kwargs': kwargs})
    return builtins.print(*args, **kwargs)
"""


class TimeoutException(Exception):
    pass


def guard() -> None:
    """The official process-wide guard, with the memory limit as an int (total RAM)."""
    import resource
    import shutil
    import subprocess

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA, resource.RLIMIT_STACK):
        resource.setrlimit(limit, (total, total))
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in GUARDED_OS:
        setattr(os, name, None)
    for name in GUARDED_SHUTIL:
        setattr(shutil, name, None)
    subprocess.Popen = None
    for name in BLOCKED_MODULES:
        sys.modules[name] = None


def rewrite(code: str) -> str:
    """The official AST rewrite (an exception leaves the code as it is)."""
    try:
        tree = ast.parse(code)
        try:
            if tree.body[-1].value.func.id.startswith("print"):
                return code
        except Exception:
            pass
        last = tree.body[-1]
        last.value = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[last.value], keywords=[])
        ast.fix_missing_locations(last)
        return ast.unparse(tree)
    except Exception:
        return code


def official_verdict(program: str, gold, timeout_s: float) -> tuple[bool, str]:
    """`eval_problem` for one program: (passed, message). A BaseException escapes, as officially."""
    namespace = {"print_stack": [], "__name__": "__main__"}
    exec(RECORDING_PRINT, namespace)

    def on_alarm(signum, frame):
        raise TimeoutException("Timed out!")

    try:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        signal.signal(signal.SIGALRM, on_alarm)
        try:
            code = rewrite(program)
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(code, namespace)
                except Exception:
                    pass
            value = namespace["print_stack"][-1]["args"][0]
            return bool(check_equivalence(value, gold)), ""
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except TimeoutException:
        return False, "Timed out"
    except Exception as err:
        return False, str(err)[:300]


def _child(program: str, gold, timeout_s: float, fd: int) -> None:
    try:
        guard()
        passed, message = official_verdict(program, gold, timeout_s)
        out = {"finished": True, "passed": passed, "message": message}
    except BaseException as err:  # the official run itself would end here
        out = {"finished": False, "passed": False, "message": f"{type(err).__name__} ends the official run"}
    os.write(fd, (json.dumps(out) + "\n").encode())
    os._exit(0)


def run_all(lines: list[dict], timeout_s: float, workers: int) -> list[dict]:
    results: list[dict | None] = [None] * len(lines)
    pending = list(range(len(lines)))
    running: dict[int, tuple[int, int, float, list[bytes]]] = {}  # fd -> (index, pid, deadline, chunks)
    while pending or running:
        while pending and len(running) < workers:
            index = pending.pop(0)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _child(lines[index]["completions"], lines[index]["gold_output"], timeout_s, w)
            os.close(w)
            running[r] = (index, pid, time.monotonic() + timeout_s + 5.0, [])
        ready, _, _ = select.select(list(running), [], [], 0.05)
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if data:
                running[fd][3].append(data)
                continue
            index, pid, _, chunks = running.pop(fd)
            os.close(fd)
            os.waitpid(pid, 0)
            try:
                results[index] = json.loads(b"".join(chunks))
            except ValueError:  # os._exit, a crash: the official run would have died
                results[index] = {"finished": False, "passed": False, "message": "the process ended without a verdict"}
        now = time.monotonic()
        for fd, (index, pid, deadline, _) in list(running.items()):
            if now > deadline:  # a hang the official timer cannot interrupt
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(fd)
                del running[fd]
                results[index] = {"finished": False, "passed": False, "message": "hangs past the official limit"}
    return [{"line": i + 1, "kind": lines[i].get("kind", ""), **r} for i, r in enumerate(results)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples")
    parser.add_argument("out")
    parser.add_argument("--timeout-s", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    import numpy  # noqa: F401 - the official process imports numpy; pandas comes with the first program using it
    import pandas  # noqa: F401

    with open(args.samples, "rb") as f:  # the official reader: binary lines, json.loads
        lines = [json.loads(line) for line in f]
    results = run_all(lines, args.timeout_s, args.workers)
    with open(args.out, "w", encoding="ascii") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
