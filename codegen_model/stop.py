"""Stop sequences: cut a completion at the first of a few strings (docs/design.md §4).

The one definition of the stop-sequence rule and of the HumanEval paper's sequences, used by the
HumanEval harness (humaneval/stop.py), the engine's benchmarks (bench.py, gpu_check.py) and the
tests. It lives here, in the lowest layer, because codegen_model may not import humaneval (the
GPU machine runs bench.py without hydra).

The Codex and CodeGen papers stop a HumanEval completion at the first of "\\nclass", "\\ndef",
"\\n#", "\\nif", "\\nprint" (top-level code after the function body) or at eos. `StopSequences`
is both the pure truncation rule and a `codegen_model.generator.StopRule`, so the engine can stop
a row as soon as the cut can no longer move.

Why `lookahead = longest sequence - 1` is safe: an occurrence that is not yet complete in `text`
must start after `len(text) - longest`, i.e. at or after `len(text) - lookahead`; so once the
earliest complete occurrence starts at or before that point, no continuation can produce an
earlier one, and generating further cannot change the truncated completion.
"""

from __future__ import annotations

from dataclasses import dataclass

HUMANEVAL_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


@dataclass(frozen=True)
class StopSequences:
    """Cut at the earliest occurrence of any of `sequences` (the sequence itself is dropped).

    Raises ValueError when a sequence is not a non-empty string (an empty one would cut at 0).
    """

    sequences: tuple[str, ...] = HUMANEVAL_STOP

    def __post_init__(self) -> None:
        seqs = tuple(self.sequences)
        if any(not isinstance(s, str) or not s for s in seqs):
            raise ValueError(f"stop sequences must be non-empty strings, got {list(seqs)!r}")
        object.__setattr__(self, "sequences", seqs)

    @property
    def lookahead(self) -> int:
        return max((len(s) for s in self.sequences), default=1) - 1

    def __call__(self, text: str) -> int | None:
        cut = None
        for s in self.sequences:
            i = text.find(s)
            if i != -1 and (cut is None or i < cut):
                cut = i
        return cut

    def truncate(self, text: str) -> str:
        cut = self(text)
        return text if cut is None else text[:cut]
