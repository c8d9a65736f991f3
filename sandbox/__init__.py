"""Run untrusted programs under OS-enforced limits, fast (docs/design.md §3; docs/sandbox.md).

    from sandbox import Limits, run, run_many
    result = run("assert 1 + 1 == 2", Limits(wall_s=3.0))
    for index, result in run_many(programs, Limits(wall_s=3.0)):   # as each one finishes
        ...
    with executor(workers=4, limits=Limits(wall_s=3.0)) as ex:        # the push API
        ex.submit(program, tag=key)                                   # -> Future[ExecResult]
        for key, result in ex.as_completed():
            ...

Standard library only: nothing of ours, no torch.
"""

from .limits import HUMAN_EVAL, HUMAN_EVAL_UNGUARDED, PYTHON, ExecProfile, ExecResult, Job, Limits, Status
from .pool import Executor, Sandbox, SandboxUnavailable, default_sandbox, executor, hide, run, run_many, shutdown

__all__ = [
    "ExecProfile", "ExecResult", "HUMAN_EVAL", "HUMAN_EVAL_UNGUARDED", "Job", "Limits", "PYTHON", "Status",
    "Executor", "Sandbox", "SandboxUnavailable", "default_sandbox", "executor", "hide", "run", "run_many", "shutdown",
]
