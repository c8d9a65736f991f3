"""Driving conversations through a Generator: request shapes, cache reuse ids, release, histories."""

from __future__ import annotations

import pytest

from codegen_model.generator import SamplingParams
from mtpb.conversation import ContextGuard, ConversationSpec, contiguous_runs, converse
from mtpb.data import load_problems
from mtpb.prompts import STOP_RULE, assemble
from tests.integration.mtpb_scripted import ScriptedGenerator, parse_turn_key


@pytest.fixture(scope="module")
def problems(mtpb_path):
    return load_problems(mtpb_path).by_id()


def spec(problem, case, samples, max_new_tokens=128):
    prompts = tuple(problem.filled_prompts(case))
    return ConversationSpec(problem.id, case, prompts, (SamplingParams(max_new_tokens=max_new_tokens),) * len(prompts),
                            tuple(samples))


def answer(request, sample):
    pid, case, turn = parse_turn_key(request.key)
    # a different text per (turn, sample), with junk after the cut to exercise truncation
    return f"x{turn} = {sample}  # p{pid} c{case}\nprint(x{turn})\nprint('junk')\n# more"


def test_turns_are_submitted_as_they_return_and_reuse_the_conversation(problems):
    p3, p14 = problems[3], problems[14]
    specs = [spec(p3, 0, range(4)), spec(p3, 2, [1, 2, 5]), spec(p14, 1, range(2))]
    gen = ScriptedGenerator(answer, seed=3)
    finished = []
    assert converse(gen, specs, finished.append) == 9
    first = [r for r in gen.requests if r.key.endswith("/t0")]
    # turn 1: one request per contiguous run of sample indices, n samples each
    assert [(r.key, r.n, r.sample_offset) for r in first] == [
        ("mtpb/3/c0/t0", 4, 0), ("mtpb/3/c2/t0", 2, 1), ("mtpb/3/c2/t0", 1, 5), ("mtpb/14/c1/t0", 2, 0)]
    later = [r for r in gen.requests if not r.key.endswith("/t0")]
    assert len(later) == 4 * 2 + 3 * 2 + 2 * 8 and all(r.n == 1 for r in later)
    for r in gen.requests:
        pid, case, turn = parse_turn_key(r.key)
        assert r.conversation == f"mtpb/{pid}/c{case}" and r.stop is STOP_RULE
        assert r.prompt.endswith(f"# {problems[pid].filled_prompts(case)[turn]}\n")
    # the interleaved order still gives every conversation its own, complete history
    for t in finished:
        problem = problems[t.spec.problem_id]
        raw = [answer(type("R", (), {"key": t.spec.request_key(i)}), t.sample_index) for i in range(len(t.spec.prompts))]
        assert t.program == assemble(problem.filled_prompts(t.spec.case), raw)
        assert t.turns == [f"x{i} = {t.sample_index}  # p{problem.id} c{t.spec.case}\nprint(x{i})\n"
                           for i in range(len(t.spec.prompts))]
        assert t.finish_reasons == ["stop"] * len(t.spec.prompts)
    # each (problem, case) is released once, after its last sample
    assert sorted(gen.released) == ["mtpb/14/c1", "mtpb/3/c0", "mtpb/3/c2"]


def test_a_later_turn_prompt_is_the_previous_history(problems):
    gen = ScriptedGenerator(answer)
    converse(gen, [spec(problems[3], 0, [7])], lambda t: None)
    prompts = [r.prompt for r in gen.requests]
    for before, after in zip(prompts, prompts[1:]):
        assert after.startswith(before)  # the engine can reuse the cached prefix


def test_per_turn_budgets_are_passed_through(problems):
    p = problems[3]
    params = (SamplingParams(max_new_tokens=10), SamplingParams(max_new_tokens=20), SamplingParams(max_new_tokens=30))
    gen = ScriptedGenerator(answer)
    converse(gen, [ConversationSpec(3, 0, tuple(p.filled_prompts(0)), params, (0,))], lambda t: None)
    assert [r.params.max_new_tokens for r in gen.requests] == [10, 20, 30]


def test_unrequested_completions_are_an_error(problems):
    class Rogue(ScriptedGenerator):
        def completions(self):
            for c in super().completions():
                c.sample_index += 100
                yield c

    with pytest.raises(RuntimeError, match="not requested"):
        converse(Rogue(answer), [spec(problems[3], 0, [0])], lambda t: None)


def test_a_generator_that_stops_early_is_an_error(problems):
    class Quitter(ScriptedGenerator):
        def completions(self):
            yield from list(super().completions())[:1]
            self._pending.clear()

    with pytest.raises(RuntimeError, match="2 conversations unfinished"):
        converse(Quitter(answer), [spec(problems[3], 0, [0, 1])], lambda t: None)


def test_contiguous_runs():
    assert contiguous_runs([5, 0, 1, 2, 7, 6]) == [(0, 3), (5, 3)]
    assert contiguous_runs([]) == []


def test_the_context_guard_fits_turns_into_the_window(problems):
    """A turn gets at most the room its prompt leaves; with none left, the remaining turns are empty."""
    p = problems[3]
    gen = ScriptedGenerator(lambda request, sample: "x" * 250)  # each turn adds 250 characters

    class Chars(ScriptedGenerator):  # a 'tokenizer' of one token per character, a 600-token window
        tokenizer = type("T", (), {"encode": staticmethod(lambda text: list(text))})
        config = type("C", (), {"n_positions": 600})

    chars = Chars(gen.answer)
    finished = []
    converse(chars, [spec(p, 0, [0], max_new_tokens=200)], finished.append)
    budgets = [r.params.max_new_tokens for r in chars.requests]
    lengths = [len(r.prompt) for r in chars.requests]
    assert len(budgets) == 2 and budgets[0] == 200 and budgets[1] == 600 - lengths[1] < 200
    (t,) = finished
    assert t.turns[2] == "" and t.finish_reasons[2] == "context" and t.clipped_turns == [1, 2]
    assert t.program.endswith(f"# {p.filled_prompts(0)[2]}\n\n\n")
    assert ContextGuard.for_generator(gen) is None and ContextGuard.for_generator(chars).context == 600
