"""The HumanEval stop rule of a run's `benchmark.stop` setting (docs/design.md §4).

The sequences and the cut itself (with the proof that stopping early changes nothing) are
`codegen_model.stop`'s `HUMANEVAL_STOP` and `StopSequences`, the one definition shared with the
engine's benchmarks; this module only maps the configured list to a rule.
"""

from __future__ import annotations

from typing import Sequence

from codegen_model.stop import StopSequences


def stop_rule(sequences: Sequence[str] | None = None) -> StopSequences | None:
    """The rule for a configured list: None -> the paper's five; [] -> no stop rule (eos only)."""
    if sequences is None:
        return StopSequences()
    if len(sequences) == 0:
        return None
    return StopSequences(tuple(sequences))
