"""MTPB text: the official truncation (every terminal), the stop rule's early cut, and the
assembled program, byte for byte against the official construction."""

from __future__ import annotations

import random
import re

import pytest

from mtpb.data import load_problems
from mtpb.prompts import (
    EOS_TEXT,
    PREFIX,
    STOP_RULE,
    MTPBTruncation,
    append_turn,
    assemble,
    single_turn_prompts,
    truncate,
    turn_comment,
)


def official_truncate(completion: str) -> str:
    """The rule as mtpb_sample.py states it, step by step on strings (an independent transcription)."""
    prints = [m.start() for m in re.finditer("^print", completion, re.MULTILINE)]
    if len(prints) >= 2:
        completion = completion[: prints[1]]
    defs = [m.start() for m in re.finditer("^def", completion, re.MULTILINE)]
    if len(defs) >= 2:
        completion = completion[: defs[1]]
    cuts = []
    for pattern in ("^#", re.escape("<|endoftext|>"), "^'''", '^"""', "\n\n\n"):
        m = re.compile(pattern, re.MULTILINE).search(completion)
        if m:
            cuts.append(m.start())
    return completion[: min(cuts)] if cuts else completion


def official_program(prompts: list[str], completions: list[str]) -> str:
    """The history mtpb_sample.py builds for one sample: prefix, '# prompt\\n', truncated completion, blank line."""
    history = "# Import libraries.\n\nimport numpy as np\n\n"
    for prompt, completion in zip(prompts, completions):
        history = history + f"# {prompt}\n"
        history = history + f"{official_truncate(completion)}\n\n"
    return history


@pytest.mark.parametrize("text, expected", [
    # the official script's own self-test
    ("\nif len_a > len_b:\n    result = a\nelse:\n    result = b\n\n\n\n#", "\nif len_a > len_b:\n    result = a\nelse:\n    result = b"),
    ("x = 1\nprint(x)\ny = 2\nprint(y)\n", "x = 1\nprint(x)\ny = 2\n"),  # second print
    ("print(1)\n    print(2)\nprint(3)", "print(1)\n    print(2)\n"),  # only prints at line start count
    ("def f():\n    return 1\ndef g():\n    return 2", "def f():\n    return 1\n"),  # second def
    ("class A:\n    def f(self):\n        pass\n    def g(self):\n        pass", "class A:\n    def f(self):\n        pass\n    def g(self):\n        pass"),
    ("x = 1\n# next turn\ny = 2", "x = 1\n"),  # '#' at line start
    ("x = 1  # a comment\ny = 2", "x = 1  # a comment\ny = 2"),  # '#' elsewhere stays
    ("# at the very start", ""),
    ("x = 1<|endoftext|>junk", "x = 1"),  # eos text
    ("x = 1\n'''doc'''", "x = 1\n"),  # triple single quotes at line start
    ('x = 1\n"""doc"""', "x = 1\n"),  # triple double quotes at line start
    ('x = """doc"""', 'x = """doc"""'),  # not at line start
    ("x = 1\n\n\ny = 2", "x = 1"),  # three newlines
    ("x = 1\n\ny = 2", "x = 1\n\ny = 2"),  # two are fine
    ("print(1)\n#c\nprint(2)", "print(1)\n"),  # print cut first, then '#'
    ("def f():\n    pass\nprint(f())\ndef g():\n    pass\nprint(g())\n# c", "def f():\n    pass\nprint(f())\n"),
    ("", ""),
])
def test_truncation_covers_every_terminal(text, expected):
    assert truncate(text) == expected
    assert official_truncate(text) == expected


ALPHABET = ["print(x)", "print", "def f():", "def", "#", "# c", "x = 1", " ", "    ", "\n", "\n", "\n", "'''", '"""',
            "<|endoftext|>", "<|end", "oftext|>", "pri", "nt", "de", "f", "'", '"', "\t", "y"]


def _random_texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))


def test_truncation_agrees_with_the_official_rule_on_random_texts():
    for text in _random_texts(3000):
        assert truncate(text) == official_truncate(text), repr(text)
        assert truncate(truncate(text)) == truncate(text)  # idempotent: engines may cut before we do


def test_the_stop_rule_cuts_early_without_changing_the_result():
    """Whenever the rule reports a cut with `lookahead` characters after it, every continuation
    truncates to the same text: generation may stop there."""
    assert isinstance(STOP_RULE, MTPBTruncation) and STOP_RULE.lookahead == len(EOS_TEXT)
    checked = 0
    for full in _random_texts(1500, seed=1):
        final = official_truncate(full)
        for end in range(len(full) + 1):
            prefix = full[:end]
            cut = STOP_RULE(prefix)
            assert cut is None or prefix[:cut] == truncate(prefix)
            if cut is not None and cut <= len(prefix) - STOP_RULE.lookahead:
                assert prefix[:cut] == final, (full, end)
                checked += 1
        if STOP_RULE(full) is None:
            assert final == full
    assert checked > 1000


def test_hand_written_turns_assemble_byte_for_byte(mtpb_path):
    problem = load_problems(mtpb_path).by_id()[3]
    prompts = problem.filled_prompts(0)
    raw = [
        "def minutes_to_seconds(minutes):\n    return minutes * 60\n\n\ndef hours_to_seconds(h):\n    return h * 3600\n",
        "def hours_to_seconds(hours):\n    return hours * 3600\n\n# Print the total\nprint(hours_to_seconds(2))",
        "print(hours_to_seconds(2) + minutes_to_seconds(13))\nprint('done')<|endoftext|>",
    ]
    expected = (
        "# Import libraries.\n\nimport numpy as np\n\n"
        "# Write a function that takes an integer minutes and converts it to seconds.\n"
        "def minutes_to_seconds(minutes):\n    return minutes * 60\n\n"
        "# Write a function that takes an integer hours and converts it to seconds.\n"
        "def hours_to_seconds(hours):\n    return hours * 3600\n\n\n\n"
        "# Print the total seconds of 2 hours and 13 minutes.\n"
        "print(hours_to_seconds(2) + minutes_to_seconds(13))\n\n\n"
    )
    assert assemble(prompts, raw) == expected == official_program(prompts, raw)


def test_random_turns_assemble_like_the_official_construction(mtpb_path):
    problems = load_problems(mtpb_path)
    rng = random.Random(2)
    texts = list(_random_texts(400, seed=3))
    for problem in problems.select(limit=40):
        case = rng.randrange(problem.n_cases)
        prompts = problem.filled_prompts(case)
        raw = [rng.choice(texts) for _ in prompts]
        assert assemble(prompts, raw) == official_program(prompts, raw)


def test_append_turn_is_one_official_turn_of_a_raw_or_truncated_completion():
    """The conversation driver passes raw completions, perplexity's history passes stored
    (already truncated) ones: both must grow the history exactly as the official script does."""
    history = PREFIX + "# First.\nx = 1\n\n"
    for text in _random_texts(1000, seed=5):
        grown = append_turn(history, "Do it.", text)
        assert grown == history + official_program(["Do it."], [text])[len(PREFIX):], repr(text)
        assert append_turn(history, "Do it.", truncate(text)) == grown, repr(text)


def test_turn_comment_prefix_and_single_turn():
    assert PREFIX == "# Import libraries.\n\nimport numpy as np\n\n"
    assert turn_comment("Do it.") == "# Do it.\n"
    assert single_turn_prompts(["Do a.", "Do b. ", "Print c."]) == ["Do a. Do b. Print c."]
    with pytest.raises(ValueError, match="2 turn prompts but 1 completions"):
        assemble(["a", "b"], ["x"])
