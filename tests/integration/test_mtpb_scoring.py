"""The official MTPB scoring through the sandbox: reference and subtly wrong multi-turn solutions,
the official odd cases, and the type rules on live objects. One batch through `run_many`."""

from __future__ import annotations

import pytest

from mtpb.data import load_problems
from mtpb.errata import excluded_cases
from mtpb.execution import ScoringJob
from mtpb.prompts import assemble, truncate
from sandbox import Limits
from tests.scoring import score_many

from .mtpb_solutions import SOLUTIONS, VARIANTS, completions

pytestmark = pytest.mark.integration

LIMITS = Limits(wall_s=25.0, memory_mb=4096)  # the official 20 s limit, plus the sandbox's grace
HANG_TIMEOUT_S = 1.0  # the programs that hang get a short limit so they stay cheap
HANG_LIMITS = Limits(wall_s=HANG_TIMEOUT_S + 1.5, memory_mb=4096)
HANGING = {"right print then hang", "right print, hang, swallowing the timer", "right print, blocks the timer, killed",
           "many prints then the timer: the last one counts"}

# (name, program, gold, official, strict, status)
ODD_CASES = [
    ("right print then raise", "x = 5\nprint(x)\nraise ValueError('boom')", 5, True, False, "error"),
    ("wrong print then raise", "print(4)\nraise ValueError('boom')", 5, False, False, "error"),
    ("raise before any print", "raise KeyError('k')", 5, False, False, "error"),
    ("right print then hang", "print(3)\nwhile True:\n    pass", 3, True, False, "timeout"),
    # Programs that swallow or block the official timer never end officially (the official run
    # hangs): no verdict exists, and the sandbox's wall limit kills them before any judge ran.
    ("right print, hang, swallowing the timer",
     "print(3)\nwhile True:\n    try:\n        while True:\n            pass\n    except Exception:\n        pass", 3, False, False, "timeout"),
    ("right print, blocks the timer, killed",
     "print(3)\nimport signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\nwhile True:\n    pass",
     3, False, False, "timeout"),
    ("many prints then the timer: the last one counts",
     "for i in range(20000):\n    print(i)\nwhile True:\n    pass", 19999, True, False, "timeout"),
    ("sys.exit after the right print", "print(3)\nimport sys\nsys.exit(0)", 3, False, False, "error"),
    ("exit() is None officially", "print(3)\nexit()", 3, True, False, "error"),
    ("os._exit ends the process before the check", "print(3)\nimport os\nos._exit(0)", 3, False, False, "error"),
    ("last expression is printed", "x = 2\nx * 3", 6, True, True, "passed"),
    ("last assignment is printed", "x = [1]\ny = x + [2]", [1, 2], True, True, "passed"),
    ("mutation after the print: the rewrite prints None", "x = [1]\nprint(x)\nx.append(2)", [1], False, False, "failed"),
    ("a later print wins", "print(6)\nprint(7)", 6, False, False, "failed"),
    ("only the first argument", "print(6, 7)", 6, True, True, "passed"),
    ("print inside a function counts", "def f():\n    print(8)\nf()\nz = 1\nfor i in range(2):\n    pass", 8, True, True, "passed"),
    ("no print at all", "x = 1\nfor i in range(2):\n    pass", 1, False, False, "failed"),
    ("print() without arguments", "print(1)\nprint()", 1, False, False, "failed"),
    ("syntax error", "def f(:\n    pass", 1, False, False, "syntax_error"),
    ("many large prints, then the right one", "for i in range(300):\n    print(list(range(5000)))\nprint(1)", 1,
     True, True, "passed"),
    ("stdout is captured", "import sys\nsys.stdout.write('x' * 100000)\nprint(1)", 1, True, True, "passed"),
    ("memory error after the print", "print(1)\nx = [0] * (10 ** 10)", 1, True, False, "memory"),
    ("a None gold is never matched", "print(None)", None, False, False, "failed"),
    ("a dict gold is never matched", "print({'1': ['a']})", {"1": ["a"]}, False, False, "failed"),
    # types on live objects
    ("numpy int64", "np.int64(7)", 7, True, True, "passed"),
    ("numpy float32 within 1e-6", "np.float32(0.5)", 0.5, True, True, "passed"),
    ("numpy bool vs bool gold", "np.bool_(True)", True, True, True, "passed"),
    ("numpy array vs list", "np.arange(3)", [0, 1, 2], True, True, "passed"),
    ("pandas Series vs list (allclose)", "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 5]}).mean()",
     [1.5, 4.0000001], True, True, "passed"),
    ("pandas Series, wrong values", "import pandas as pd\npd.Series([1.5, 4.5])", [1.5, 4.0], False, False, "failed"),
    ("tuple vs list", "(17, 2)", [17, 2], True, True, "passed"),
    ("list of tuples vs list of lists", "list(zip('ab', 'cd'))", [["a", "c"], ["b", "d"]], True, True, "passed"),
    ("bool vs 'True' string", "3 > 2", "True", True, True, "passed"),
    ("'True' string vs bool gold", "'True'", True, True, True, "passed"),
    ("1 vs bool gold", "1", True, False, False, "failed"),
    ("float tolerance: inside", "0.1 + 0.2", 0.3, True, True, "passed"),
    ("float tolerance: outside", "39.5727", 39.57, False, False, "failed"),
    ("nested floats compare exactly", "[0.1 + 0.2]", [0.3], False, False, "failed"),
    ("string vs int gold: cast", "'321'", 321, True, True, "passed"),
]


@pytest.fixture(scope="module")
def problems(mtpb_path):
    return load_problems(mtpb_path).by_id()


@pytest.fixture(scope="module")
def batch(problems):
    """Score everything in one parallel batch: references and variants of VARIANTS' problems,
    the odd cases, and a file placed in the program's directory."""
    jobs, tags = [], []
    for pid in sorted(VARIANTS):
        p = problems[pid]
        for case in range(p.n_cases):
            for variant in (False, True):
                turns = completions(pid, p.inputs[case], variant=variant)
                assert [truncate(t) for t in turns] == turns, f"problem {pid}: truncation would change the solution"
                jobs.append(ScoringJob(assemble(p.filled_prompts(case), turns), p.gold(case)))
                tags.append(("variant" if variant else "reference", pid, case))
    hang_jobs, hang_tags = [], []
    for case in ODD_CASES:
        job = ScoringJob("import numpy as np\n" + case[1], case[2])
        (hang_jobs if case[0] in HANGING else jobs).append(job)
        (hang_tags if case[0] in HANGING else tags).append(("odd", case[0], None))
    jobs.append(ScoringJob("import pandas as pd\ndf = pd.read_csv('./datasets/t.csv')\ndf['a'].sum()", 6,
                           files={"datasets/t.csv": b"a,b\n1,2\n5,3\n"}))
    tags.append(("file", "csv", None))
    out = {}
    for index, outcome, result in score_many(hang_jobs, HANG_LIMITS, HANG_TIMEOUT_S, workers=2):
        out[hang_tags[index]] = (outcome, result)
    for index, outcome, result in score_many(jobs, LIMITS, 20.0, workers=2):
        out[tags[index]] = (outcome, result)
    assert len(out) == len(jobs) + len(hang_jobs)
    return out


def test_at_least_15_problems_in_every_category(problems):
    assert len(VARIANTS) >= 15
    assert {problems[pid].category for pid in VARIANTS} == {"math", "string", "array", "algorithm", "data science",
                                                           "dict", "class"}


def test_reference_solutions_pass_every_case_without_errata(batch, problems):
    for (kind, pid, case), (outcome, result) in batch.items():
        if kind != "reference":
            continue
        expected = case not in excluded_cases(pid, problems[pid].n_cases)
        assert outcome.official is expected, (pid, case, outcome, result.stderr[-500:])
        if expected:
            assert outcome.strict and outcome.status == "passed", (pid, case, outcome)


def test_variants_score_exactly_as_expected(batch):
    for pid, (_, _, _, verdicts) in VARIANTS.items():
        got = tuple(batch[("variant", pid, case)][0].official for case in range(len(verdicts)))
        assert got == verdicts, f"problem {pid}: {got} != {verdicts}"


@pytest.mark.parametrize("name, program, gold, official, strict, status", ODD_CASES, ids=[c[0] for c in ODD_CASES])
def test_odd_official_cases(batch, name, program, gold, official, strict, status):
    outcome, result = batch[("odd", name, None)]
    assert (outcome.official, outcome.strict, outcome.status) == (official, strict, status), (outcome, result)


def test_details_name_what_happened(batch):
    detail = lambda name: batch[("odd", name, None)][0].detail  # noqa: E731
    assert detail("right print then raise") == "ValueError: boom"
    assert detail("sys.exit after the right print") == "SystemExit: 0"
    assert detail("right print then hang").startswith("MTPBTimeout: Timed out!")
    assert "NoneType" in detail("a None gold is never matched")
    outcome = batch[("odd", "many prints then the timer: the last one counts", None)][0]
    assert outcome.value["json"] == 19999 and outcome.n_prints == 20000
    assert batch[("odd", "pandas Series vs list (allclose)", None)][0].value["json"] == [1.5, 4.0]


def test_files_are_placed_in_the_program_directory(batch):
    outcome, _ = batch[("file", "csv", None)]
    assert outcome.official and outcome.value["json"] == 6


@pytest.mark.slow
def test_every_reference_solution(problems):
    """All 575 cases: the reference passes exactly the cases no excludable erratum covers."""
    jobs, keys = [], []
    for pid in SOLUTIONS:
        p = problems[pid]
        for case in range(p.n_cases):
            jobs.append(ScoringJob(assemble(p.filled_prompts(case), completions(pid, p.inputs[case])), p.gold(case)))
            keys.append((pid, case))
    failures = []
    for index, outcome, _ in score_many(jobs, Limits(wall_s=30.0, memory_mb=4096), 20.0):
        pid, case = keys[index]
        expected = case not in excluded_cases(pid, problems[pid].n_cases)
        if outcome.official is not expected:
            failures.append((pid, case, outcome.status, outcome.detail))
    assert not failures
