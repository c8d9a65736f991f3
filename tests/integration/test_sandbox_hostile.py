"""The hostile-program suite (docs/design.md §3): every attack runs through `run_many` beside well-behaved
programs; we check the verdict, that the harness and its workers live on, that no process of
the program survives the call, and that nothing outside the program's directory changed."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import uuid
from pathlib import Path

import pytest

from sandbox import Limits, Sandbox, Status

pytestmark = pytest.mark.integration

LIMITS = Limits(wall_s=1.5, memory_mb=256, file_size_mb=8, output_bytes=65536, max_processes=32)
SECRET_NAME = "CODEGEN_SANDBOX_TEST_SECRET"
SECRET = "s3cr3t-" + uuid.uuid4().hex
GOOD = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('good')\n"


@pytest.fixture(scope="module")
def sandbox():
    os.environ[SECRET_NAME] = SECRET  # set before the fork server starts: it must not get through
    box = Sandbox()
    yield box
    box.close()
    os.environ.pop(SECRET_NAME, None)


@pytest.fixture(scope="module")
def sentinel_dir():
    """A directory outside the sandbox that a program can reach (mode 755) but must not change."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-sentinel-", dir="/tmp"))
    path.chmod(0o755)
    (path / "keep.txt").write_text("keep me")
    (path / "keep.txt").chmod(0o644)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def snapshot(path: Path) -> dict:
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p)] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_size, st.st_mtime_ns,
                       p.read_bytes() if p.is_file() else None)
    st = path.stat()
    out[str(path)] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime_ns)
    return out


def hostile_programs(sentinel: Path, port: int, token: str) -> dict[str, tuple[str, set[Status]]]:
    s = str(sentinel)
    return {
        "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                      {Status.TIMEOUT}),
        "posix_fork_bomb": ("import posix\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n"
                            "        pass\n", {Status.TIMEOUT}),
        "memory_bomb": ("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))\n", {Status.MEMORY}),
        "memory_one_shot": ("x = 'a' * (64 * 2**30)\n", {Status.MEMORY}),
        "alarm_swallowed": ("import signal, time\n"
                            "def on_alarm(*_):\n    raise TimeoutError('alarm')\n"
                            "signal.signal(signal.SIGALRM, on_alarm)\nsignal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)\n"
                            "while True:\n    try:\n        time.sleep(0.01)\n    except:\n        pass\n",
                            {Status.TIMEOUT}),
        "sigterm_ignored": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                            "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)\n",
                            {Status.TIMEOUT}),
        "long_c_call": ("import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')\n", {Status.TIMEOUT}),
        "timer_cancelled": ("import signal\nsignal.alarm(0)\nsignal.setitimer(signal.ITIMER_REAL, 0)\n"
                            "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
                            {Status.TIMEOUT}),
        "stdout_flood": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", {Status.TIMEOUT}),
        "stdout_flood_then_end": ("print('y' * (8 * 2**20))\nprint('end')\n", {Status.PASSED}),
        "write_outside": (
            "import os, posix, importlib\n"
            f"S = {s!r}\n"
            "attempts = {\n"
            "    'open_new': lambda: open(S + '/new.txt', 'w').write('x'),\n"
            "    'overwrite': lambda: open(S + '/keep.txt', 'w').write('gone'),\n"
            "    'os_remove': lambda: os.remove(S + '/keep.txt'),\n"
            "    'posix_unlink': lambda: posix.unlink(S + '/keep.txt'),\n"
            "    'reload_rename': lambda: importlib.reload(os).rename(S + '/keep.txt', S + '/moved.txt'),\n"
            "    'posix_open': lambda: posix.open(S + '/p.txt', posix.O_CREAT | posix.O_WRONLY),\n"
            "    'chmod': lambda: os.chmod(S, 0o777),\n"
            "    'system': lambda: os.system('touch ' + S + '/sh.txt') == 0 or 1 / 0,\n"
            "    'repo_write': lambda: open(" + repr(str(Path(__file__).resolve().parent / f"pwn-{token}")) + ", 'w'),\n"
            f"    'tmp_write': lambda: open('/tmp/leak-{token}', 'w').write('x'),\n"
            f"    'shm_write': lambda: open('/dev/shm/leak-{token}', 'w').write('x'),\n"
            "}\n"
            "for name, attempt in attempts.items():\n"
            "    try:\n        attempt()\n        __emit__(name)\n    except Exception:\n        pass\n",
            {Status.PASSED}),
        "delete_outside_uncaught": (f"import os\nos.remove({s + '/keep.txt'!r})\n", {Status.ERROR}),
        "network": (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                    "print('connected')\n", {Status.ERROR}),
        "env_secret": (
            f"import os\nprint(os.environ.get({SECRET_NAME!r}))\nprint(sorted(os.environ))\n"
            f"for path in ['/proc/self/environ', '/proc/{os.getpid()}/environ', '/proc/1/environ',\n"
            "             '/proc/%d/environ' % os.getppid()]:\n"
            "    try:\n        print(open(path, 'rb').read())\n    except OSError as e:\n        print(path, e)\n",
            {Status.PASSED}),
        "exit_builtin": ("exit(0)\nassert False\n", {Status.ERROR}),
        "sys_exit": ("import sys\nsys.exit(0)\nassert False\n", {Status.ERROR}),
        "os_exit": ("import os\nos._exit(0)\nassert False\n", {Status.ERROR}),
        "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", {Status.ERROR}),
        "kill_group": ("import os, signal\nos.killpg(0, signal.SIGKILL)\n", {Status.CRASHED}),
        "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('alive')\n",
                            {Status.PASSED}),
        # Recursion through a C slot (Python 3.11+ keeps plain Python calls off the C stack).
        "recursion_segfault": ("import sys\nsys.setrecursionlimit(10**8)\nclass A:\n"
                               "    def __getattr__(self, name):\n        return getattr(self, name)\nA().x\n",
                               {Status.CRASHED}),
        "huge_file": ("with open('big.bin', 'wb') as f:\n    for _ in range(64):\n"
                      "        f.write(b'0' * 2**20)\n", {Status.ERROR}),
        "thread_bomb": ("import threading, time\nwhile True:\n"
                        "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n",
                        {Status.ERROR, Status.MEMORY}),
        "stdin_block": ("x = input()\nprint('read', x)\n", {Status.ERROR}),
        "stdin_read_all": ("import sys\ndata = sys.stdin.read()\nassert data == ''\nwhile True:\n    pass\n",
                           {Status.TIMEOUT}),
        "close_stdout": ("import os\nos.close(1)\nos.close(2)\nprint('nowhere')\nassert 1 == 2, 'late'\n",
                         {Status.FAILED}),
        "setsid_grandchild": (
            "import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n"
            "    if os.fork() == 0:\n        os.write(w, str(os.getpid()).encode())\n"
            "        os.close(w)\n        time.sleep(120)\n        os._exit(0)\n    os._exit(0)\n"
            "os.close(w)\nos.wait()\n__emit__(int(os.read(r, 64)))\n",
            {Status.PASSED}),
        "normal_pass": (GOOD, {Status.PASSED}),
        "assertion_fails": ("assert sorted([3, 1, 2]) == [3, 2, 1], 'not sorted'\n", {Status.FAILED}),
        "syntax_error": ("def f(:\n    return 1\n", {Status.SYNTAX_ERROR}),
    }


def _program_uid_processes(uids: set[int]) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    with open(f"/proc/{entry.name}/stat") as f:
                        if f.read().split(")")[-1].split()[0] != "Z":
                            found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_hostile_programs_beside_good_ones(sandbox, sentinel_dir, listener):
    token = uuid.uuid4().hex
    cases = hostile_programs(sentinel_dir, listener.getsockname()[1], token)
    names, jobs = [], []
    for name, (program, _) in cases.items():
        names += [name, "good"]
        jobs += [program, GOOD + f"# {name}\n"]
    before = snapshot(sentinel_dir)

    results = {}
    for index, result in sandbox.run_many(jobs, LIMITS, workers=2, cache=False):
        results[index] = result
    assert sorted(results) == list(range(len(jobs)))

    by_name = {names[i]: r for i, r in results.items() if names[i] != "good"}
    for name, (_, expected) in cases.items():
        r = by_name[name]
        assert r.status in expected, f"{name}: {r.status} ({r.detail}) not in {expected}; stderr {r.stderr[-500:]}"
    goods = [r for i, r in results.items() if names[i] == "good"]
    assert all(r.status is Status.PASSED and r.stdout == "good\n" for r in goods), [r.detail for r in goods]

    # Nothing outside the program's directory changed.
    assert snapshot(sentinel_dir) == before
    assert by_name["write_outside"].values == ["tmp_write", "shm_write"]  # private tmpfs, not the machine's
    assert not os.path.exists(f"/tmp/leak-{token}") and not os.path.exists(f"/dev/shm/leak-{token}")
    assert not (Path(__file__).resolve().parent / f"pwn-{token}").exists()

    # No process of any program survives; the harness's workers are alive and still answer.
    uids = {r.isolation["uid"] for r in results.values()}
    assert None not in uids, "running as root, every worker must have its own uid"
    assert _program_uid_processes(uids) == []
    grandchild = by_name["setsid_grandchild"].values[0]
    assert not os.path.exists(f"/proc/{grandchild}") or "Z" in open(f"/proc/{grandchild}/stat").read().split(")")[-1][:3]
    assert sandbox.run(GOOD, LIMITS, cache=False).status is Status.PASSED

    # Details name what happened.
    assert by_name["fork_bomb"].detail.startswith("wall-clock limit of 1.5 s")
    assert by_name["exit_builtin"].detail == "SystemExit: 0"
    assert by_name["sys_exit"].detail == "SystemExit: 0"
    assert "before its last line" in by_name["os_exit"].detail
    assert by_name["kill_parent"].detail.startswith("PermissionError")
    assert by_name["kill_group"].detail == "killed by SIGKILL"
    assert by_name["recursion_segfault"].detail == "killed by SIGSEGV"
    assert "File too large" in by_name["huge_file"].detail
    assert by_name["stdin_block"].detail.startswith("EOFError")
    assert by_name["close_stdout"].detail == "AssertionError: late"
    assert by_name["syntax_error"].detail.startswith("SyntaxError")
    assert by_name["assertion_fails"].detail == "AssertionError: not sorted"
    network = by_name["network"]
    assert "connected" not in network.stdout
    assert network.isolation["network"] == "netns" and "Network is unreachable" in network.detail
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever reached the listener

    flood = by_name["stdout_flood"]
    assert len(flood.stdout) == LIMITS.output_bytes and "stdout" in flood.truncated
    ended = by_name["stdout_flood_then_end"]
    assert "stdout" in ended.truncated and len(ended.stdout) == LIMITS.output_bytes

    env_out = by_name["env_secret"].stdout + by_name["env_secret"].stderr
    assert SECRET not in env_out and SECRET_NAME not in env_out
    assert env_out.startswith("None\n")


def test_state_left_behind_does_not_reach_the_next_program(sandbox):
    token = uuid.uuid4().hex
    polluter = (
        "import builtins, sys, os\n"
        "builtins.len = lambda obj: 42\nbuiltins.print = None\nsys.modules['json'] = None\n"
        "os.environ['POLLUTED'] = '1'\nos.chdir('/')\n"
        f"open('/tmp/state-{token}', 'w').write('x')\nopen('/dev/shm/state-{token}', 'w').write('x')\n"
        "open(os.path.expanduser('~/in-home'), 'w').write('x')\n"
    )
    checker = (
        "import os, json\n"
        "assert len([1, 2]) == 2 and json.dumps([1]) == '[1]'\n"
        "assert 'POLLUTED' not in os.environ\n"
        f"assert not os.path.exists('/tmp/state-{token}')\nassert not os.path.exists('/dev/shm/state-{token}')\n"
        "assert os.listdir('.') == [] and os.getcwd() == os.environ['HOME']\n"
        "print('clean')\n"
    )
    # One worker, so the checker runs in the very place the polluter just left.
    results = dict(sandbox.run_many([polluter, checker, checker + "# again\n"], LIMITS, workers=1, cache=False))
    assert results[0].status is Status.PASSED, results[0].detail
    assert [results[i].status for i in (1, 2)] == [Status.PASSED] * 2, (results[1].detail, results[1].stderr)
    assert results[1].stdout == "clean\n"
    assert results[0].isolation["uid"] == results[1].isolation["uid"]  # really the same worker
    assert not os.path.exists(f"/tmp/state-{token}") and not os.path.exists(f"/dev/shm/state-{token}")
