"""Run untrusted programs under OS-enforced limits, fast (DESIGN §3; docs/sandbox.md).

    from sandbox import Limits, run, run_many
    result = run("assert 1 + 1 == 2", Limits(wall_s=3.0))
    for index, result in run_many(programs, Limits(wall_s=3.0)):   # as each one finishes
        ...

Standard library only: nothing of ours, no torch.
"""

from .limits import ExecResult, Job, Limits, Status
from .pool import Sandbox, SandboxUnavailable, default_sandbox, run, run_many, shutdown

__all__ = [
    "ExecResult", "Job", "Limits", "Status", "Sandbox", "SandboxUnavailable",
    "default_sandbox", "run", "run_many", "shutdown",
]
