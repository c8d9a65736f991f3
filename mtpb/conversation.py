"""Driving every MTPB conversation of a run through one Generator, all at once (docs/design.md §4).

A conversation is one (problem, test case, sample). All of them advance together: turn 1 of each
(problem, case) is one `Request` for its n samples (prefilled once, the engine shares the prefix);
when a sample's turn comes back, its history grows by the truncated completion and ``"\\n\\n"`` and
its next turn is submitted at once as an n=1 request with ``sample_offset=i`` and the same
`conversation` id, so the engine reuses that sample's cache. A (problem, case) is released when
its last sample finishes.

Request keys are ``mtpb/<id>/c<case>/t<turn>``: sample i of a turn draws its randomness only from
(seed, key, i), so batching, ordering and resuming never change a sample.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from codegen_model.generator import Completion, Generator, Request, SamplingParams
from results.shard import contiguous_runs

from .prompts import PREFIX, STOP_RULE, append_turn, truncate, turn_comment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationSpec:
    """The samples still to generate for one (problem, test case)."""

    problem_id: int
    case: int
    prompts: tuple[str, ...]  # filled turn instructions (one for single-turn mode)
    params: tuple[SamplingParams, ...]  # per turn (their max_new_tokens may differ)
    samples: tuple[int, ...]  # sample indices to generate

    @property
    def conversation(self) -> str:
        return f"mtpb/{self.problem_id}/c{self.case}"

    def request_key(self, turn: int) -> str:
        return f"{self.conversation}/t{turn}"


@dataclass
class Transcript:
    """One finished (or running) conversation."""

    spec: ConversationSpec
    sample_index: int
    history: str = PREFIX
    turns: list[str] = field(default_factory=list)  # truncated completions
    finish_reasons: list[str] = field(default_factory=list)
    n_prompt_tokens: int = 0  # of the last turn's prompt
    n_new_tokens: int = 0  # over all turns
    time_s: float = 0.0  # sum of the turns' generation times
    clipped_turns: list[int] = field(default_factory=list)  # turns whose budget the context cut short

    @property
    def program(self) -> str:
        return self.history


@dataclass(frozen=True)
class ContextGuard:
    """Keeps each turn inside the model's context: a turn whose prompt leaves fewer tokens than its
    budget gets the room that is left (the official script would have failed there); a turn with
    no room left ends the conversation with empty completions for it and the turns after it."""

    count_tokens: Callable[[str], int]
    context: int

    @classmethod
    def for_generator(cls, generator: Generator) -> "ContextGuard | None":
        tokenizer = getattr(generator, "tokenizer", None)
        context = getattr(getattr(generator, "config", None), "n_positions", None)
        if tokenizer is None or not isinstance(context, int):
            return None
        return cls(lambda text: len(tokenizer.encode(text)), context)

    def room(self, prompt: str) -> int:
        return self.context - self.count_tokens(prompt)


def converse(generator: Generator, specs: Iterable[ConversationSpec],
             on_finished: Callable[[Transcript], None],
             on_turn: Callable[[Completion], None] | None = None,
             guard: ContextGuard | None = None) -> int:
    """Run every conversation to its end; `on_finished(transcript)` as each one ends.

    `guard` (default: from the generator's tokenizer and model config, when it has them) fits
    each turn's budget into the context. Returns the number of conversations finished."""
    if guard is None:
        guard = ContextGuard.for_generator(generator)
    specs = [s for s in specs if s.samples]
    running: dict[tuple[str, int], Transcript] = {}
    remaining: dict[str, int] = {}
    by_conversation = {s.conversation: s for s in specs}
    if len(by_conversation) != len(specs):
        raise ValueError("two conversation specs for the same (problem, case)")
    for spec in specs:
        remaining[spec.conversation] = len(spec.samples)
        for i in spec.samples:
            running[(spec.conversation, i)] = Transcript(spec, i)
        prompt = PREFIX + turn_comment(spec.prompts[0])
        params = spec.params[0]
        if guard is not None and guard.room(prompt) < params.max_new_tokens:
            room = guard.room(prompt)
            if room < 1:
                raise ValueError(f"{spec.conversation}: the first turn's prompt does not fit the model's context "
                                 f"of {guard.context} tokens")
            params = dataclasses.replace(params, max_new_tokens=room)
            for i in spec.samples:
                running[(spec.conversation, i)].clipped_turns.append(0)
        for start, count in contiguous_runs(spec.samples):
            generator.submit(Request(key=spec.request_key(0), prompt=prompt, params=params, n=count,
                                     sample_offset=start, stop=STOP_RULE, conversation=spec.conversation,
                                     meta={"mtpb_turn": 0}))
    finished = 0
    t0 = time.perf_counter()
    for completion in generator.completions():
        conversation, turn = _parse_key(completion.key)
        transcript = running.get((conversation, completion.sample_index))
        if transcript is None or turn != len(transcript.turns):
            raise RuntimeError(f"the generator returned {completion.key!r} sample {completion.sample_index}, "
                               "which was not requested (or twice)")
        spec = transcript.spec
        transcript.history = append_turn(transcript.history, spec.prompts[turn], completion.text)
        transcript.turns.append(truncate(completion.text))
        transcript.finish_reasons.append(completion.finish_reason)
        transcript.n_prompt_tokens = completion.n_prompt_tokens
        transcript.n_new_tokens += completion.n_new_tokens
        transcript.time_s += completion.time_s
        if on_turn is not None:
            on_turn(completion)
        nxt = turn + 1
        if nxt < len(spec.prompts):
            prompt = transcript.history + turn_comment(spec.prompts[nxt])
            params = spec.params[nxt]
            room = guard.room(prompt) if guard is not None else params.max_new_tokens
            if room >= 1:
                if room < params.max_new_tokens:
                    transcript.clipped_turns.append(nxt)
                    params = dataclasses.replace(params, max_new_tokens=room)
                generator.submit(Request(key=spec.request_key(nxt), prompt=prompt, params=params, n=1,
                                         sample_offset=completion.sample_index, stop=STOP_RULE,
                                         conversation=conversation, meta={"mtpb_turn": nxt}))
                continue
            log.warning("%s sample %d: no room left in the %d-token context at turn %d; the remaining turns "
                        "are empty", conversation, completion.sample_index, guard.context, nxt)
            for rest in range(nxt, len(spec.prompts)):
                transcript.history = append_turn(transcript.history, spec.prompts[rest], "")
                transcript.turns.append("")
                transcript.finish_reasons.append("context")
                transcript.clipped_turns.append(rest)
        del running[(conversation, completion.sample_index)]
        on_finished(transcript)
        finished += 1
        remaining[conversation] -= 1
        if remaining[conversation] == 0:
            generator.release(conversation)
    if running:
        example = next(iter(running))
        raise RuntimeError(f"the generator stopped with {len(running)} conversations unfinished, e.g. "
                           f"{example[0]} sample {example[1]}")
    log.debug("%d conversations in %.1f s", finished, time.perf_counter() - t0)
    return finished


def _parse_key(key: str) -> tuple[str, int]:
    conversation, _, turn = key.rpartition("/t")
    if not conversation or not turn.isdigit():
        raise RuntimeError(f"the generator returned a completion for key {key!r}, not an MTPB turn key")
    return conversation, int(turn)
