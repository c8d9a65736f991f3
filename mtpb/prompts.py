"""The MTPB conversation text: the history prefix, turn comments, the official truncation and
program assembly (docs/design.md §4; salesforce/CodeGen `codegen1/benchmark/mtpb_sample.py`).

Per test case, the history starts with `PREFIX`; each turn appends ``"# {prompt}\\n"``, the model
continues it, and the history grows by the *truncated* completion plus ``"\\n\\n"``. After the last
turn the history is the program that is executed.

Truncation (the official rule, in order): cut at the second line starting with ``print``; in what
is left, cut at the second line starting with ``def``; then cut at the first of: a line starting
with ``#``, the text ``<|endoftext|>``, a line starting with ``'''`` or ``\"\"\"``, or three newlines.
`MTPBTruncation` is that rule as a `StopRule`, so the engine can stop a row once the cut is fixed.

Why `lookahead = 13` is safe: every rule above only ever *adds* cut candidates as text grows, and a
candidate that is not yet complete in `text` must start after ``len(text) - 13`` (13 characters is
the longest pattern, ``<|endoftext|>``). Once the cut `c` satisfies ``c <= len(text) - 13``, new
candidates all lie after `c`, and the cut of every continuation is still `c`.

Single-turn mode (the paper's single- vs multi-turn comparison, CodeGen §4, Table 4): the filled
turn prompts of a case joined by one space into a single turn comment; the released scripts have no
single-turn mode, so the joiner and the token budget (the sum of the per-turn budgets) are our
documented choice (docs/mtpb_errata.md, "Protocol notes").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"
EOS_TEXT = "<|endoftext|>"
TURN_SEPARATOR = "\n\n"  # appended after each truncated completion

_PRINT = re.compile(r"^print", re.MULTILINE)
_DEF = re.compile(r"^def", re.MULTILINE)
_TERMINALS = tuple(
    re.compile(p, re.MULTILINE) for p in (r"^#", re.escape(EOS_TEXT), r"^'''", r'^"""', r"\n\n\n")
)


def turn_comment(prompt: str) -> str:
    """The text a turn adds before the model speaks: the instruction as a comment line."""
    return f"# {prompt}\n"


def truncation_point(text: str) -> int:
    """Where the official rule cuts `text` (``len(text)`` when it cuts nothing)."""
    end = len(text)
    prints = _PRINT.finditer(text)
    if next(prints, None) is not None and (second := next(prints, None)) is not None:
        end = second.start()
    defs = _DEF.finditer(text, 0, end)
    if next(defs, None) is not None and (second := next(defs, None)) is not None:
        end = second.start()
    hits = [m.start() for m in (t.search(text, 0, end) for t in _TERMINALS) if m is not None]
    return min(hits, default=end)


def truncate(text: str) -> str:
    """The official truncation of one turn's completion."""
    return text[: truncation_point(text)]


@dataclass(frozen=True)
class MTPBTruncation:
    """The official truncation as a `codegen_model.generator.StopRule`."""

    lookahead: int = len(EOS_TEXT)

    def __call__(self, text: str) -> int | None:
        cut = truncation_point(text)
        return None if cut == len(text) else cut


STOP_RULE = MTPBTruncation()


def single_turn_prompts(prompts: Sequence[str]) -> list[str]:
    """Single-turn mode: every turn instruction of a case in one turn."""
    return [" ".join(p.strip() for p in prompts)]


def append_turn(history: str, prompt: str, completion: str) -> str:
    """`history` grown by one turn: the turn's comment, the official truncation of the model's
    `completion` (raw or already truncated: `truncate` is idempotent) and `TURN_SEPARATOR`.

    The one place of the turn rule (docs/design.md §4), used by `assemble`, the conversation
    driver and perplexity's history."""
    return history + turn_comment(prompt) + truncate(completion) + TURN_SEPARATOR


def assemble(prompts: Sequence[str], completions: Sequence[str]) -> str:
    """The program of one conversation: prefix, then per turn its comment and truncated completion.
    Raises ValueError when the two lists differ in length."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} turn prompts but {len(completions)} completions")
    history = PREFIX
    for prompt, completion in zip(prompts, completions):
        history = append_turn(history, prompt, completion)
    return history
