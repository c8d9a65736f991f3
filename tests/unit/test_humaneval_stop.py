"""The HumanEval stop rule: early stopping with it gives exactly the truncated full generation."""

from __future__ import annotations

import random

import pytest

from codegen_model.generator import StopRule
from codegen_model.stop import HUMANEVAL_STOP, StopSequences
from humaneval.stop import stop_rule

FRAGMENTS = ["\n", "\n\n", "    ", "return x", "cl", "ass", "de", "f", "#", "i", "f ", "pr", "int",
             "print(", "class", "def", "if", "x = 1", " ", "\t", "\n    if y:", "\n#", "\ndef", "é"]


def stream_until_fixed(full: str, rule: StopSequences, rng: random.Random) -> str:
    """What an engine that decodes in random-sized chunks and stops as soon as the cut can no
    longer move returns (the StopRule contract)."""
    pos = 0
    while pos < len(full):
        pos = min(len(full), pos + rng.randint(1, 4))
        text = full[:pos]
        cut = rule(text)
        if cut is not None and cut <= len(text) - rule.lookahead:
            return text[:cut]
    cut = rule(full)
    return full if cut is None else full[:cut]


def first_stop_truncation(text: str, stops: tuple[str, ...]) -> str:
    """The specification, written independently: cut before the earliest stop sequence."""
    positions = [text.index(s) for s in stops if s in text]
    return text[: min(positions)] if positions else text


def test_is_a_stop_rule_with_the_papers_sequences():
    rule = StopSequences()
    assert isinstance(rule, StopRule)
    assert rule.sequences == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert rule.lookahead == len("\nprint") - 1


@pytest.mark.parametrize("stops", [HUMANEVAL_STOP, ("\n#",), ("ab", "b", "abc"), ("\n\n\n", "x")])
def test_early_stop_equals_truncating_the_full_generation(stops):
    rng = random.Random(1234)
    rule = StopSequences(stops)
    for _ in range(2000):
        full = "".join(rng.choice(FRAGMENTS + list(stops)) for _ in range(rng.randint(0, 30)))
        assert stream_until_fixed(full, rule, rng) == first_stop_truncation(full, stops), repr(full)
        assert rule.truncate(full) == first_stop_truncation(full, stops)


def test_cuts_before_top_level_code_only():
    body = "    if x:\n        return 1\n    # note\n    return 2\n"
    rule = StopSequences()
    assert rule(body) is None  # indented if/# are part of the body
    text = body + "\n\ndef helper():\n    pass\n\nprint(helper())"
    assert rule.truncate(text) == body + "\n"
    assert rule("x\nif __name__") == 1
    assert rule("x\nprint(1)\n#") == 1


def test_configurable():
    assert stop_rule(None) == StopSequences()
    assert stop_rule([]) is None  # eos only
    assert stop_rule(["END"])("a END b") == 2
    with pytest.raises(ValueError, match="non-empty"):
        StopSequences(("",))
