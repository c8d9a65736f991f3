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

    def add_turn(self, completion: Completion) -> None:
        """Append the next turn: its prompt and `completion`, cut by the one turn rule."""
        self.history = append_turn(self.history, self.spec.prompts[len(self.turns)], completion.text)
        self.turns.append(truncate(completion.text))
        self.finish_reasons.append(completion.finish_reason)
        self.n_prompt_tokens = completion.n_prompt_tokens
        self.n_new_tokens += completion.n_new_tokens
        self.time_s += completion.time_s

    def end_without_room(self) -> None:
        """The remaining turns get empty completions (no room left in the context)."""
        for turn in range(len(self.turns), len(self.spec.prompts)):
            self.history = append_turn(self.history, self.spec.prompts[turn], "")
            self.turns.append("")
            self.finish_reasons.append("context")
            self.clipped_turns.append(turn)


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
    each turn's budget into the context. Returns the number of conversations finished. Raises
    ValueError when a first turn does not fit the context, RuntimeError when the generator returns
    a turn that was not asked for or stops with conversations unfinished."""
    if guard is None:
        guard = ContextGuard.for_generator(generator)
    specs = [s for s in specs if s.samples]
    if len({s.conversation for s in specs}) != len(specs):
        raise ValueError("two conversation specs for the same (problem, case)")
    running = {(s.conversation, i): Transcript(s, i) for s in specs for i in s.samples}
    remaining = {s.conversation: len(s.samples) for s in specs}
    for spec in specs:
        for request in _first_turn(spec, guard, running):
            generator.submit(request)
    finished, t0 = 0, time.perf_counter()
    for completion in generator.completions():
        transcript = _transcript_of(completion, running)
        transcript.add_turn(completion)
        if on_turn is not None:
            on_turn(completion)
        if len(transcript.turns) < len(transcript.spec.prompts):
            request = _next_turn(transcript, guard)
            if request is not None:
                generator.submit(request)
                continue
            transcript.end_without_room()
        conversation = transcript.spec.conversation
        del running[(conversation, transcript.sample_index)]
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


def _first_turn(spec: ConversationSpec, guard: ContextGuard | None,
                running: dict[tuple[str, int], Transcript]) -> list[Request]:
    """Turn 0 of every sample of `spec`: one request per contiguous range of sample indices (one
    shared prefill), its budget cut to the room the context leaves (the turn is then noted clipped)."""
    prompt, params = PREFIX + turn_comment(spec.prompts[0]), spec.params[0]
    if guard is not None and guard.room(prompt) < params.max_new_tokens:
        room = guard.room(prompt)
        if room < 1:
            raise ValueError(f"{spec.conversation}: the first turn's prompt does not fit the model's context "
                             f"of {guard.context} tokens")
        params = dataclasses.replace(params, max_new_tokens=room)
        for i in spec.samples:
            running[(spec.conversation, i)].clipped_turns.append(0)
    return [Request(key=spec.request_key(0), prompt=prompt, params=params, n=count, sample_offset=start,
                    stop=STOP_RULE, conversation=spec.conversation, meta={"mtpb_turn": 0})
            for start, count in contiguous_runs(spec.samples)]


def _next_turn(transcript: Transcript, guard: ContextGuard | None) -> Request | None:
    """The request for `transcript`'s next turn (n=1, its sample's own cache via `conversation`),
    its budget cut to the room left; None (and a warning) when no room is left."""
    spec, turn = transcript.spec, len(transcript.turns)
    prompt, params = transcript.history + turn_comment(spec.prompts[turn]), spec.params[turn]
    room = guard.room(prompt) if guard is not None else params.max_new_tokens
    if room < 1:
        log.warning("%s sample %d: no room left in the %d-token context at turn %d; the remaining turns "
                    "are empty", spec.conversation, transcript.sample_index, guard.context, turn)
        return None
    if room < params.max_new_tokens:
        transcript.clipped_turns.append(turn)
        params = dataclasses.replace(params, max_new_tokens=room)
    return Request(key=spec.request_key(turn), prompt=prompt, params=params, n=1,
                   sample_offset=transcript.sample_index, stop=STOP_RULE, conversation=spec.conversation,
                   meta={"mtpb_turn": turn})


def _transcript_of(completion: Completion, running: dict[tuple[str, int], Transcript]) -> Transcript:
    """The running conversation a completion continues; RuntimeError if none asked for it."""
    conversation, turn = _parse_key(completion.key)
    transcript = running.get((conversation, completion.sample_index))
    if transcript is None or turn != len(transcript.turns):
        raise RuntimeError(f"the generator returned {completion.key!r} sample {completion.sample_index}, "
                           "which was not requested (or twice)")
    return transcript


def _parse_key(key: str) -> tuple[str, int]:
    conversation, _, turn = key.rpartition("/t")
    if not conversation or not turn.isdigit():
        raise RuntimeError(f"the generator returned a completion for key {key!r}, not an MTPB turn key")
    return conversation, int(turn)
