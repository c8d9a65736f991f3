"""What every benchmark run reports at its edges (docs/design.md §5): the user-error type, the
warnings about the settings, the end-of-run summary block and the Ctrl-C line.

`UserError` is the one user-error convention: bad input raises it (or a subclass) with a message
naming the problem and the fix; an entry point prints that message as one line and exits 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterable, Mapping, TextIO

from .records import ExecutionRecord

log = logging.getLogger(__name__)


class UserError(ValueError):
    """Bad input from the user: one line that names the problem and the fix (exit status 2)."""


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 problem`, `2 problems` (`many`: an irregular plural)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


_warned: set[str] = set()


def warn_once(key: str, message: str) -> bool:
    """Log `message` as a warning the first time `key` is seen in this process; True if logged."""
    if key in _warned:
        return False
    _warned.add(key)
    log.warning(message)
    return True


def check_sampling(temperature: float, n: int) -> None:
    """Greedy decoding (temperature 0) gives n identical samples: warn once when n > 1."""
    if temperature == 0 and n > 1:
        warn_once("greedy-n", f"sampling.temperature=0 is greedy decoding: the {n} samples per problem "
                              f"will be identical; use sampling.n=1, or a temperature > 0 for pass@k with k > 1")


def resume_command(benchmark: str, argv: Iterable[str] | None = None) -> str:
    """The command that resumes this run: the same module and the same overrides."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", benchmark, *args])


def summary_block(benchmark: str, run_dir: str | Path, metrics: Mapping, executions: Iterable[ExecutionRecord],
                   *, slowest: int = 3, per_problem: bool = False) -> str:
    """The block printed at the end of a run.

    `metrics`: what metrics.json holds (`pass_rate`, `pass@k`, each with `<name>_ci`, the 95%
    bootstrap interval over problems, and `statuses`); `executions`: the run's execution records,
    for the slowest problems (summed `duration_s`, seconds) and the per-problem table."""
    lines = [f"== {benchmark}: {metrics.get('model', '')} ==".replace(":  ==", " ==")]
    names = ["pass_rate"] + sorted((k for k in metrics if k.startswith("pass@") and not k.endswith("_ci")),
                                   key=lambda k: int(k[5:]) if k[5:].isdigit() else 0)
    for name in names:
        if name in metrics and isinstance(metrics[name], (int, float)):
            ci = metrics.get(f"{name}_ci") or ()
            interval = f"  (95% CI {100 * ci[0]:.2f}-{100 * ci[1]:.2f})" if len(ci) == 2 else ""
            lines.append(f"  {name:<10} {100 * metrics[name]:6.2f}%{interval}")
    statuses = metrics.get("statuses") or {}
    if statuses:
        lines.append("  statuses   " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
    by_problem: dict[str, list[ExecutionRecord]] = {}
    for record in executions:
        by_problem.setdefault(record.problem_id, []).append(record)
    if by_problem:
        lines.append(f"  over {plural(len(by_problem), 'problem')}")
        times = sorted(((sum(r.duration_s or 0.0 for r in rs), pid) for pid, rs in by_problem.items()), reverse=True)
        lines.append("  slowest    " + ", ".join(f"{pid} {t:.1f} s" for t, pid in times[:slowest]))
    if per_problem:
        lines.append(f"  {'problem':<20} {'passed':>8}")
        for pid, rs in by_problem.items():
            lines.append(f"  {pid:<20} {sum(r.passed for r in rs):>3}/{len(rs):<4}")
    lines.append(f"  run dir    {run_dir}")
    lines.append(f"  tabulate   python -m results {run_dir}")
    return "\n".join(lines)


def interrupted_line(benchmark: str, run_dir: str | Path, n_samples: int, n_executions: int,
                     argv: Iterable[str] | None = None) -> str:
    """The one line printed on Ctrl-C: what is saved and how to resume."""
    return (f"interrupted: {plural(n_samples, 'sample')} and {plural(n_executions, 'execution')} are saved in "
            f"{run_dir}; resume with: {resume_command(benchmark, argv)}")


def print_block(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stderr, flush=True)
