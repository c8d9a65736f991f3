"""What runs inside the sandbox for one MTPB program: the official scoring, in a fresh process.

Same steps and outcomes as `eval_problem` in salesforce/CodeGen `codegen1/benchmark/mtpb_exec.py`:
- the program is rewritten so its last top-level statement prints its value, unless it already
  calls a function whose name starts with ``print`` (the official AST rewrite, see
  `rewrite_last_expression`);
- it runs with `exec` in a fresh globals dict holding ``__name__ == "__main__"``, `print_stack`, and
  a `print` that records each call's arguments before printing (stdout is captured, as officially);
- an exception in the program ends it but is not a failure by itself: the verdict is the official
  `check_equivalence` of the first argument of the last recorded print and the gold output; no
  print, a failing check or an unsupported gold type is a failure;
- the official 20 s limit is an in-process timer that raises into the program, so a program that
  printed the right value and then hangs is also judged by that print;
- as in the official environment, ``exit`` and ``quit`` are None (calling them raises TypeError);
  `SystemExit` (``sys.exit()``), which ended the whole official run, is a failure here.

Beyond the official script, each verdict is sent out through the sandbox's `__emit__` channel as
the program prints (the first 100 prints each, then at most every 0.1 s, and when the timer fires;
small records within a budget, so the final record always fits the channel),
so the last verdict survives a crash or a hang that the timer cannot interrupt; a final record
carries the official outcome and whether the program raised or timed out (for `scoring=strict`).

This file is embedded verbatim, after `mtpb/equivalence.py`, into every scoring program
(`mtpb.harness`), so it imports only the standard library and must not use ``__future__`` imports.
"""

import ast
import builtins
import contextlib
import json
import signal
import threading
import time

EMIT_FIRST_PRINTS = 100  # emit a verdict at each of the first N prints ...
EMIT_EVERY_S = 0.1  # ... then at most this often
EMIT_BUDGET_CHARS = 120_000  # per-print records stop here, so the final record always fits the channel
STDOUT_KEEP_CHARS = 4000


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


class _Observer:
    """Judges prints as they happen and emits the latest verdict (throttled)."""

    def __init__(self, gold, emit, judge, describe):
        self.gold, self.emit, self.judge, self.describe = gold, emit, judge, describe
        self.count = 0
        self.latest = None  # args of the latest print
        self.emitted = 0  # print count of the latest emission
        self.last_emit_t = 0.0
        self.spent = 0  # characters emitted so far
        self.lock = threading.RLock()
        self.flusher = None

    def on_print(self, args):
        self.count += 1
        self.latest = args
        now = time.monotonic()
        if self.count <= EMIT_FIRST_PRINTS or now - self.last_emit_t >= EMIT_EVERY_S:
            self.flush(now)
        elif self.flusher is None:
            self._start_flusher()

    def _start_flusher(self):
        """Past the first prints, a daemon thread emits the pending verdict every EMIT_EVERY_S, so
        the last print's verdict gets out even if the program then blocks the timer and is killed."""
        self.flusher = False  # tried
        def loop():
            while True:
                time.sleep(EMIT_EVERY_S)
                self.flush()
        try:
            thread = threading.Thread(target=loop, name="mtpb-flusher", daemon=True)
            thread.start()
            self.flusher = thread
        except RuntimeError:  # no threads allowed (process limit): emissions stay print-driven
            pass

    def flush(self, now=None):
        with self.lock:
            count, latest = self.count, self.latest
            if latest is None or self.emitted == count or self.spent > EMIT_BUDGET_CHARS:
                return
            self.emitted = count
            self.last_emit_t = time.monotonic() if now is None else now
            record = {"mtpb": "print", "n": count}
            if latest:
                verdict, message = self.judge(latest[0], self.gold)
                record["verdict"], record["message"] = verdict, message[:200]
                record["value"] = self.describe(latest[0], max_json_chars=300, max_repr_chars=120)
            else:
                record["verdict"], record["message"] = False, "IndexError: print() without arguments"
            self.spent += len(json.dumps(record, default=repr))
            self.emit(record)


_OVERLOAD_PRINT = """import builtins
def print(*args, **kwargs):
    global print_stack
    print_stack.append({'args': args, 'kwargs': kwargs})
    __mtpb_observe__(args)
    return builtins.print(*args, **kwargs)
"""


def run_scored(program, gold, timeout_s, emit, judge, describe):
    """Run `program` the official way, judge its last print against `gold`; emit and return the
    final record: passed (official), message, program_error, timed_out, system_exit, n_prints."""
    observer = _Observer(gold, emit, judge, describe)
    namespace = {"print_stack": [], "__name__": "__main__", "__mtpb_observe__": observer.on_print}
    exec(_OVERLOAD_PRINT, namespace)
    builtins.exit = None  # the official environment (reliability_guard) disables these two
    builtins.quit = None
    stdout = _CappedText(STDOUT_KEEP_CHARS)
    final = {"mtpb": "final", "passed": False, "message": "", "program_error": None,
             "timed_out": False, "system_exit": False}

    def on_alarm(signum, frame):
        observer.flush()
        raise MTPBTimeout("Timed out!")

    alarm = True
    try:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    except (ValueError, OSError, AttributeError):  # not the main thread / no SIGALRM: sandbox wall limit only
        alarm = False
    final["alarm"] = alarm
    try:
        code = rewrite_last_expression(program)
        with contextlib.redirect_stdout(stdout):
            try:
                exec(code, namespace)
            except SystemExit as err:
                final["system_exit"] = True
                final["program_error"] = f"SystemExit: {err}"
            except Exception as err:  # the official do_exec: the run goes on to the check
                final["program_error"] = f"{type(err).__name__}: {err}"
                final["timed_out"] = isinstance(err, MTPBTimeout)
        stack = namespace["print_stack"]
        if final["system_exit"]:
            final["message"] = "SystemExit ends the program: a failure"
        elif not stack:
            final["message"] = "IndexError: no print: nothing to compare with the gold output"
        elif not stack[-1]["args"]:
            final["message"] = "IndexError: the last print has no arguments"
        else:
            value = stack[-1]["args"][0]
            final["passed"], final["message"] = judge(value, gold)
            final["value"] = describe(value)
            if not final["passed"] and not final["message"]:
                final["message"] = "the last print " + final["value"]["repr"][:120] + " is not the gold output"
    except MTPBTimeout:
        final["message"] = "Timed out"
        final["timed_out"] = True
    except Exception as err:  # as officially: anything failing around the program is a failure
        final["passed"] = False
        final["message"] = f"{type(err).__name__}: {err}"
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    final["n_prints"] = observer.count
    final["stdout_head"] = stdout.getvalue()
    final["stdout_chars"] = stdout.size
    emit(final)
    return final
