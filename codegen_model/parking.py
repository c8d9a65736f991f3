"""Conversation caches between turns and the swap-to-host policy (docs/design.md §2).

When a turn of a conversation sample (conversation, sample index) finishes, the keys/values it
cached stay *parked*: first in its slot, later perhaps swapped out to host memory. Its next turn
continues from them, so a sample's computation never depends on what else ran in between.
`ParkedCaches` holds them and is the one place the policy lives:

- **swap out** (`victim`, `swap_out`): when a new sample needs a slot and none is free, the least
  recently parked cache still in a slot whose conversation has no turn queued is copied to host
  memory (exact) and its slot freed. A cache whose next turn is queued is never chosen: it is
  about to be continued.
- **swap in** (`swap_in`): its next turn copies the reused prefix back into the slot it is given.
- **drop**: only when the host copies exceed `memory_bytes` is the oldest one dropped (logged once
  at warning level); its next turn is prefilled from scratch, which agrees to float rounding but is
  not bit-identical.
- **release**: a conversation that is over drops all its caches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .kv_cache import SlotKVCache

log = logging.getLogger("codegen_model.engine")

ConversationKey = tuple[str, int]  # (conversation, sample index)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class Parked:
    """A conversation sample's cache after its turn: `ids` are the tokens whose keys/values are cached."""

    key: ConversationKey
    ids: list[int]
    slot: int | None  # the slot holding them; None once swapped out to host memory
    host: tuple[torch.Tensor, torch.Tensor] | None = None  # (n_layer, n_head, len(ids), head_dim) copies
    tick: int = 0  # parking order (least recently parked = smallest)

    @property
    def nbytes(self) -> int:
        """Host memory held (0 while in a slot)."""
        return 0 if self.host is None else sum(t.numel() * t.element_size() for t in self.host)

    def reusable(self, ids: Sequence[int]) -> int:
        """Tokens of the next turn's prompt `ids` whose keys are cached here; at least one token is
        left to prefill, for the logits of the first new token."""
        return min(common_prefix(self.ids, ids), len(ids) - 1)


class ParkedCaches:
    """Every parked conversation cache, in a slot or in host memory, and the swap-to-host policy.

    `memory_bytes` caps the host copies (the engine's `park_memory_mb`).
    """

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self.host_bytes = 0
        self._caches: dict[ConversationKey, Parked] = {}
        self._tick = 0
        self._warned = False

    def __len__(self) -> int:
        return len(self._caches)

    def get(self, key: ConversationKey | None) -> Parked | None:
        return self._caches.get(key) if key is not None else None

    def park(self, key: ConversationKey, ids: list[int], slot: int) -> Parked:
        """A finished turn leaves `ids` cached in `slot`."""
        self._tick += 1
        self._caches[key] = parked = Parked(key, ids, slot, tick=self._tick)
        return parked

    def take(self, key: ConversationKey) -> Parked:
        """Remove a cache (its next turn continues from it, or it is dropped)."""
        parked = self._caches.pop(key)
        self.host_bytes -= parked.nbytes
        return parked

    def release(self, conversation: str) -> list[int]:
        """Drop every cache of `conversation`; returns the slots that held some (now free)."""
        dropped = [self.take(key) for key in [k for k in self._caches if k[0] == conversation]]
        return [p.slot for p in dropped if p.slot is not None]

    def victim(self, has_turn_queued: Callable[[ConversationKey], bool]) -> Parked | None:
        """The cache to swap out for a slot: the least recently parked one still in a slot whose
        conversation sample has no turn queued; None when there is none."""
        idle = [p for p in self._caches.values() if p.slot is not None and not has_turn_queued(p.key)]
        return min(idle, key=lambda p: p.tick, default=None)

    def swap_out(self, parked: Parked, cache: SlotKVCache) -> int:
        """Copy `parked` to host memory (its slot is then free), then drop the oldest host copies
        while they exceed `memory_bytes`. Returns how many were dropped."""
        parked.host = cache.save(parked.slot, len(parked.ids), "cpu")
        parked.slot = None
        self.host_bytes += parked.nbytes
        dropped = 0
        while self.host_bytes > self.memory_bytes:
            oldest = min((p for p in self._caches.values() if p.host is not None), key=lambda p: p.tick)
            (log.debug if self._warned else log.warning)(
                "engine: parked conversation caches exceed park_memory_mb=%g; dropping %r and the oldest "
                "after it (their next turns are prefilled from scratch: equal to float rounding, not "
                "bit-identical; stats.parked_dropped counts them)", self.memory_bytes / 2**20, oldest.key)
            self._warned = True
            self.take(oldest.key)
            dropped += 1
        return dropped

    @staticmethod
    def swap_in(parked: Parked, cache: SlotKVCache, slot: int, keep: int) -> None:
        """Copy the first `keep` cached tokens of a swapped-out cache into `slot` (a cache still in
        its own slot needs nothing)."""
        if parked.host is not None:
            k, v = parked.host
            cache.load(slot, k[:, :, :keep].to(cache.device), v[:, :, :keep].to(cache.device))
