"""The sandbox's push API (`Sandbox.executor`): submit jobs, get each result exactly once as it
finishes, also under load with submitters on several threads (docs/design.md §3)."""

from __future__ import annotations

import threading
import time

import pytest

from sandbox import Limits, Sandbox, Status

pytestmark = pytest.mark.integration

FAST = Limits(wall_s=5.0)


@pytest.fixture(scope="module")
def box():
    with Sandbox() as b:
        yield b


def test_every_job_is_delivered_exactly_once_under_load(box):
    n_threads, per_thread = 4, 60
    with box.executor(workers=4, limits=FAST, cache=False) as ex:
        def submitter(t: int) -> None:
            for i in range(per_thread):
                tag = (t, i)
                ex.submit(f"__emit__({list(tag)})\nassert {i} % 7 != 3\n", tag=tag)

        threads = [threading.Thread(target=submitter, args=(t,)) for t in range(n_threads)]
        for thread in threads:
            thread.start()
        got = list(ex.finished())  # whatever is done already, while submitters still run
        for thread in threads:
            thread.join()
        got += list(ex.as_completed())
        assert ex.pending == 0
    tags = [tag for tag, _ in got]
    assert len(tags) == n_threads * per_thread and len(set(tags)) == len(tags)  # none lost, none twice
    for (t, i), result in got:
        assert result.values == [[t, i]], (t, i, result)  # each result belongs to its own job
        assert result.status is (Status.FAILED if i % 7 == 3 else Status.PASSED)


def test_results_arrive_as_they_finish_and_tags_default_to_submission_order(box):
    with box.executor(workers=2, limits=FAST, cache=False) as ex:
        slow = ex.submit("import time\ntime.sleep(1.0)\n")
        for i in range(4):
            ex.submit(f"x = {i}\n")
        order = [tag for tag, _ in ex.as_completed()]
    assert sorted(order) == [0, 1, 2, 3, 4] and order[-1] == 0
    assert slow.done() and slow.result().status is Status.PASSED


def test_a_job_error_is_raised_by_the_delivering_call(box):
    with box.executor(workers=1, limits=Limits(memory_mb=100)) as ex:
        ex.submit("import numpy\n")
        with pytest.raises(ValueError, match="memory_mb=100 is below"):
            list(ex.as_completed())


def test_closing_with_cancel_starts_nothing_queued(box):
    ex = box.executor(workers=1, limits=FAST, cache=False)
    first = ex.submit("import time\ntime.sleep(0.5)\n")
    queued = [ex.submit(f"x = {i}\n") for i in range(5)]
    t0 = time.monotonic()
    ex.close(cancel=True)
    assert first.result().status is Status.PASSED and all(f.cancelled() for f in queued)
    assert time.monotonic() - t0 < 5.0


class CountingSandbox(Sandbox):
    """A Sandbox that counts the jobs it really executes (cache hits and waits are not counted)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.executed: list[str] = []

    def _execute(self, job, limits):
        self.executed.append(job.program)
        return super()._execute(job, limits)


def test_identical_jobs_submitted_together_run_once():
    """One path for every job: the in-flight wait of `Sandbox.run` serves the Executor too (at a
    low temperature many HumanEval samples are the same program)."""
    program = "import time\ntime.sleep(0.3)\n__emit__(time.time())\n"
    with CountingSandbox() as b, b.executor(workers=4, limits=FAST) as ex:
        for i in range(4):
            ex.submit(program, tag=i)
        results = dict(ex.as_completed())
        assert b.executed == [program]
        assert sorted(r.cached for r in results.values()) == [False, True, True, True]
        assert len({r.values[0] for r in results.values()}) == 1 and all(r.passed for r in results.values())


def test_an_error_of_the_running_job_reaches_the_identical_waiting_ones():
    class Failing(CountingSandbox):
        def _execute(self, job, limits):
            self.executed.append(job.program)
            time.sleep(0.3)  # long enough for the others to find it running
            raise ValueError("limits below the worker's floor")

    with Failing() as b, b.executor(workers=3, limits=FAST) as ex:
        for i in range(3):
            ex.submit("x = 1\n", tag=i)
        errors = 0
        while ex.pending:
            with pytest.raises(ValueError, match="floor"):
                ex.next_finished()
            errors += 1
        assert errors == 3 and b.executed == ["x = 1\n"]


def test_run_many_abandoned_midway_starts_nothing_more():
    with CountingSandbox() as b:
        stream = b.run_many([f"x = {i}\n" for i in range(10)], FAST, workers=1, cache=False)
        assert next(stream)[0] == 0
        stream.close()
        assert len(b.executed) == 1
