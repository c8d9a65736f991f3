"""The narrow interface between benchmarks and a text generator (docs/design.md §1, §2).

Benchmarks submit `Request`s and read `Completion`s; they never touch the model. The real
sampling engine (`codegen_model.engine`), the HumanEval `reference` generator and the scripted
generators in tests all implement `Generator`.

Randomness contract: sample `i` of request `key` draws its randomness only from
(params.seed, key, i, step), so batch size, slot order, request order, resuming and sharding never
change a sample. A request's samples are numbered `sample_offset .. sample_offset + n - 1`, so a
request can be split (e.g. across processes) without changing any sample.

Conversations: a request with `conversation` set keeps, per sample index, the token ids it ended
with; a later request of the same conversation and sample index whose prompt extends that history
reuses the cached prefix (a pure speed-up: results are identical to a fresh prefill).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence, runtime_checkable

FinishReason = Literal["eos", "stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `temperature == 0` means greedy (top_p / top_k ignored)."""

    temperature: float = 0.2
    top_p: float = 0.95  # nucleus: keep the smallest set of tokens whose mass reaches top_p
    top_k: int = 0  # 0 = off
    max_new_tokens: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@runtime_checkable
class StopRule(Protocol):
    """A truncation rule: `cut(text)` is where to cut the completion, or None.

    `lookahead` promises monotonicity: once `cut(text) = c` and `c <= len(text) - lookahead`,
    no continuation of `text` can change the cut, so generation may stop there and the result
    equals full-length generation followed by truncation.
    """

    lookahead: int

    def __call__(self, text: str) -> int | None: ...


@dataclass
class Request:
    key: str  # names the random stream; unique per (benchmark item, turn)
    prompt: str | Sequence[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    n: int = 1
    sample_offset: int = 0
    stop: StopRule | None = None
    conversation: str | None = None  # cache reuse across turns, per sample index
    meta: dict = field(default_factory=dict)  # opaque to the generator, echoed back

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"request {self.key!r}: n must be >= 1, got {self.n}")


@dataclass
class Completion:
    key: str
    sample_index: int  # sample_offset + j
    text: str  # the completion after the stop rule's cut (eos excluded)
    token_ids: list[int]  # generated ids up to the point generation stopped (eos excluded)
    finish_reason: FinishReason
    n_prompt_tokens: int
    n_new_tokens: int  # tokens generated (including those past the cut, before the stop)
    time_s: float  # wall time from admission to finish
    request: Request | None = None  # the request it answers (for meta)


@runtime_checkable
class Generator(Protocol):
    """Streaming generation. `submit` may be called while iterating `completions()`; requests
    submitted then are served in the same pass. `completions()` returns when nothing is pending."""

    def submit(self, request: Request) -> None: ...

    def completions(self) -> Iterator[Completion]: ...

    def release(self, conversation: str) -> None:
        """The conversation is over: cached state for it may be dropped."""
        ...


def generate_all(generator: Generator, requests: Sequence[Request]) -> list[Completion]:
    """Convenience: submit everything, collect everything (order of completion)."""
    for r in requests:
        generator.submit(r)
    return list(generator.completions())
