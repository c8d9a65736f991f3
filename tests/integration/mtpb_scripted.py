"""A scripted `Generator` for MTPB tests: answers each turn from a function, records the traffic.

`ScriptedGenerator(answer)` calls ``answer(request, sample_index) -> text`` for every sample of
every request, applies the request's stop rule (as the engine does: the returned text is the cut
text), and streams completions in a shuffled but seeded order, so tests see interleaved
conversations. It keeps every request and release for assertions, and can raise after a given
number of completions (a simulated kill).

`reference_answer(problems)` answers each turn with the hand-written reference solution
(tests/integration/mtpb_solutions.py), so a run over it must pass every case no errata covers.
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import Callable, Iterator

from codegen_model.generator import Completion, Request

from .mtpb_solutions import completions as reference_completions


class Killed(RuntimeError):
    """Raised by the scripted generator to simulate a kill mid-run."""


class ScriptedGenerator:
    def __init__(self, answer: Callable[[Request, int], str], seed: int = 0, kill_after: int | None = None):
        self.answer = answer
        self.rng = random.Random(seed)
        self.kill_after = kill_after
        self.requests: list[Request] = []
        self.released: list[str] = []
        self.completed = 0
        self._pending: deque[tuple[Request, int]] = deque()

    def submit(self, request: Request) -> None:
        self.requests.append(request)
        for j in range(request.n):
            self._pending.append((request, request.sample_offset + j))

    def completions(self) -> Iterator[Completion]:
        while self._pending:
            # pick any pending sample: conversations interleave like in a batching engine
            index = self.rng.randrange(len(self._pending))
            self._pending.rotate(-index)
            request, sample = self._pending.popleft()
            if self.kill_after is not None and self.completed >= self.kill_after:
                raise Killed(f"killed after {self.completed} completions")
            t0 = time.perf_counter()
            text = self.answer(request, sample)
            finish = "eos"
            if request.stop is not None and (cut := request.stop(text)) is not None:
                text, finish = text[:cut], "stop"
            self.completed += 1
            yield Completion(key=request.key, sample_index=sample, text=text, token_ids=[], finish_reason=finish,
                             n_prompt_tokens=len(request.prompt), n_new_tokens=len(text),
                             time_s=time.perf_counter() - t0, request=request)

    def release(self, conversation: str) -> None:
        self.released.append(conversation)


def parse_turn_key(key: str) -> tuple[int, int, int]:
    """``mtpb/<id>/c<case>/t<turn>`` -> (id, case, turn)."""
    _, pid, case, turn = key.split("/")
    return int(pid), int(case[1:]), int(turn[1:])


def reference_answer(problems, variant_ids: frozenset[int] = frozenset()) -> Callable[[Request, int], str]:
    """Answer each turn with the reference solution (its edited variant for `variant_ids`)."""
    by_id = {p.id: p for p in problems}

    def answer(request: Request, sample: int) -> str:
        pid, case, turn = parse_turn_key(request.key)
        return reference_completions(pid, by_id[pid].inputs[case], variant=pid in variant_ids)[turn]

    return answer
