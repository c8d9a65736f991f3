"""What waits for a slot: submitted requests, checked and tokenised, in FIFO order (docs/design.md §2).

`Work` is one submitted request: its prompt ids, the sample indices not admitted yet and, once the
first of them is admitted, its one prefill (kept until every sample has copied it: prefix sharing).
`RequestQueue` keeps the works in submission order and, for each conversation sample
(conversation, sample index), the queue of its turns: a turn is admitted only once its previous
turn has finished, so a conversation sample's turns run in order.
`prompt_ids` checks a request against the model (vocabulary, context) before anything is queued.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import torch

from .generator import Request
from .kv_cache import StagingCache
from .parking import ConversationKey

log = logging.getLogger("codegen_model.engine")


@dataclass
class Work:
    """A submitted request: its prompt ids and the samples not yet admitted."""

    request: Request
    ids: list[int]
    pending: deque[int]  # sample indices waiting for a slot, in order
    staged: StagingCache | None = None  # the prompt's one prefill, while samples still wait for it
    logits: torch.Tensor | None = None  # (1, V) fp32 at the prompt's last token

    def conversation_key(self, index: int) -> ConversationKey | None:
        conversation = self.request.conversation
        return (conversation, index) if conversation is not None else None


class RequestQueue:
    """Works in submission order, and the queued turns of each conversation sample."""

    def __init__(self):
        self._works: deque[Work] = deque()
        self._turns: dict[ConversationKey, deque[Work]] = {}

    def __len__(self) -> int:
        return len(self._works)

    def __iter__(self) -> Iterator[Work]:
        """A snapshot in queue order (admission removes works while it walks them)."""
        return iter(list(self._works))

    def push(self, work: Work) -> None:
        self._works.append(work)
        for index in work.pending:
            key = work.conversation_key(index)
            if key is not None:
                self._turns.setdefault(key, deque()).append(work)

    def next_turn(self, key: ConversationKey | None) -> Work | None:
        """The earliest queued turn of a conversation sample, if any."""
        turns = self._turns.get(key) if key is not None else None
        return turns[0] if turns else None

    def has_turn_queued(self, key: ConversationKey) -> bool:
        return key in self._turns

    def take(self, work: Work, index: int) -> None:
        """Sample `index` of `work` got a slot: it waits no more."""
        work.pending.remove(index)
        key = work.conversation_key(index)
        if key is not None:
            turns = self._turns[key]
            turns.popleft()
            if not turns:
                del self._turns[key]
        if not work.pending:
            self._works.remove(work)

    def waiting(self) -> int:
        """Samples not admitted yet."""
        return sum(len(w.pending) for w in self._works)


def check_stop_rule(request: Request) -> None:
    stop = request.stop
    if stop is not None and not (callable(stop) and isinstance(getattr(stop, "lookahead", None), int)):
        raise TypeError(f"request {request.key!r}: stop must be a StopRule (callable with an int "
                        f"`lookahead`), got {stop!r}")


def prompt_ids(request: Request, tokenizer, vocab_size: int, context: int, truncate: bool) -> list[int]:
    """The request's prompt as token ids that fit the model's `context` with its token budget.

    Raises ValueError for an empty prompt, an id outside `vocab_size`, a budget that leaves no room,
    or a prompt too long for the context (unless `truncate`: then the last tokens are kept, logged).
    """
    prompt = request.prompt
    ids = tokenizer.encode(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
    if not ids:
        raise ValueError(f"request {request.key!r}: the prompt is empty; CodeGen needs at least one token")
    bad = next((i for i in ids if not 0 <= i < vocab_size), None)
    if bad is not None:
        raise ValueError(f"request {request.key!r}: token id {bad} is outside the tokenizer's "
                         f"vocabulary of {vocab_size}")
    budget = request.params.max_new_tokens
    if budget >= context:
        raise ValueError(f"request {request.key!r}: max_new_tokens={budget} leaves no room for the "
                         f"prompt in the model's context of {context} tokens; lower max_new_tokens")
    if len(ids) + budget <= context:
        return ids
    if not truncate:
        raise ValueError(
            f"request {request.key!r}: prompt of {len(ids)} tokens + max_new_tokens={budget} "
            f"exceeds the model's context of {context} tokens; shorten the prompt, lower "
            "max_new_tokens, or build the engine with truncate_prompt=True (keeps the last "
            f"{context - budget} prompt tokens)")
    log.warning("request %r: prompt of %d tokens truncated on the left to %d (context %d, "
                "max_new_tokens %d)", request.key, len(ids), context - budget, context, budget)
    return ids[len(ids) - (context - budget):]
