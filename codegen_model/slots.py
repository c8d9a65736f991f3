"""The slot table and the per-slot decode inputs (docs/design.md §2).

The KV cache holds one sequence per slot. `SlotTable` says what each slot holds, in one of three
states:

    FREE     nothing anyone needs; admission gives it to the next waiting sample
    RUNNING  a `Row`: one sample being generated; every decode step feeds it one token
    PARKED   a conversation sample's cache between turns (`parking.Parked`); its next turn continues
             in it, or the swap policy moves it to host memory (swapped out: it then holds no slot)
             and the slot is FREE again

    FREE --admit--> RUNNING --finish--> FREE, or PARKED (a conversation) --next turn--> RUNNING
    PARKED --swap out / release--> FREE

Only the first `usable` slots (the engine's `max_batch`) are given out; the others exist so that a
decoded slot range can always be aligned to `decode.ROW_TILE` rows.

`SlotInputs` is everything the decode step and the sampler read per slot, as (slots,) tensors on
the model's device, written only through its four methods: `start` (a row's sampling parameters
and stream key), `feed` (its first token), `advance` (after a decode step), `clear` (the row is
done: the slot decodes as an idle greedy row whose output is discarded). `row_params` builds the
sampler's `RowParams` for any set of slots: the one place they are built.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import torch

from .admission import Work
from .decode import ROW_TILE
from .generator import SamplingParams
from .kv_cache import round_up
from .parking import ConversationKey, Parked
from .sampling import RowParams, row_flags


class SlotState(enum.Enum):
    FREE = "free"
    RUNNING = "running"
    PARKED = "parked"


@dataclass
class Row:
    """One sample being generated in a slot."""

    work: Work
    sample_index: int
    slot: int
    key: tuple[int, int]  # the sample's random stream (`sampling.row_key`), as (hi, lo) 32-bit halves
    pos: int  # tokens cached in the slot = position of the next token fed
    t0: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)  # drawn so far (a final eos included)
    text: str | None = None  # the decoded text, once the stop rule fixed the cut early
    cut: int | None = None
    park: bool = False  # leave the cache parked when done (a conversation not yet released)

    @property
    def params(self) -> SamplingParams:
        return self.work.request.params

    @property
    def conversation_key(self) -> ConversationKey | None:
        return self.work.conversation_key(self.sample_index)


class SlotTable:
    """What each of `slots` slots holds: None (FREE), a `Row` (RUNNING) or a `Parked` cache (PARKED)."""

    def __init__(self, slots: int, usable: int):
        self.occupants: list[Row | Parked | None] = [None] * slots
        self.usable = usable
        self._conversations: dict[ConversationKey, Row] = {}  # running rows of conversation samples

    def state(self, slot: int) -> SlotState:
        occupant = self.occupants[slot]
        if occupant is None:
            return SlotState.FREE
        return SlotState.RUNNING if isinstance(occupant, Row) else SlotState.PARKED

    def free_slots(self) -> list[int]:
        """Usable free slots, lowest first."""
        return [s for s in range(self.usable) if self.occupants[s] is None]

    def rows(self) -> list[Row]:
        """Running rows in slot order."""
        return [o for o in self.occupants if isinstance(o, Row)]

    def parked(self) -> list[Parked]:
        """Parked caches still in a slot, in slot order."""
        return [o for o in self.occupants if isinstance(o, Parked)]

    def has_rows(self) -> bool:
        return any(isinstance(o, Row) for o in self.occupants)

    def is_running(self, key: ConversationKey | None) -> bool:
        """A turn of this conversation sample is being generated."""
        return key in self._conversations

    def run(self, row: Row) -> None:
        """FREE (or the row's own PARKED cache) -> RUNNING."""
        held = self.occupants[row.slot]
        assert held is None or (isinstance(held, Parked) and held.key == row.conversation_key), \
            f"slot {row.slot} is {self.state(row.slot).value}, not free for {row.work.request.key!r}"
        self.occupants[row.slot] = row
        if row.conversation_key is not None:
            self._conversations[row.conversation_key] = row

    def finish(self, row: Row, parked: Parked | None) -> None:
        """RUNNING -> PARKED (`parked`, the row's cache kept for its next turn) or FREE."""
        assert self.occupants[row.slot] is row, f"slot {row.slot} is not running {row.work.request.key!r}"
        self.occupants[row.slot] = parked
        if row.conversation_key is not None:
            del self._conversations[row.conversation_key]

    def free(self, slot: int) -> None:
        """PARKED -> FREE (the cache was swapped out or dropped)."""
        assert self.state(slot) is SlotState.PARKED, f"slot {slot} is {self.state(slot).value}, not parked"
        self.occupants[slot] = None

    @staticmethod
    def span(rows: list[Row]) -> tuple[int, int]:
        """The smallest slot range [lo, hi) holding `rows`, aligned to ROW_TILE."""
        lo = min(r.slot for r in rows) // ROW_TILE * ROW_TILE
        return lo, round_up(max(r.slot for r in rows) + 1, ROW_TILE)


class SlotInputs:
    """Per-slot decode and sampling inputs, (slots,) tensors on `device`."""

    def __init__(self, slots: int, device: torch.device):
        def zeros(dtype: torch.dtype) -> torch.Tensor:
            return torch.zeros(slots, dtype=dtype, device=device)

        self.token = zeros(torch.long)  # the next token to feed
        self.position = zeros(torch.long)  # its position = tokens cached in the slot
        self.draw = zeros(torch.long)  # index of the row's next draw (0 = its first new token)
        self.active = zeros(torch.bool)  # a running row owns the slot (else keys go to the scratch column)
        self.temperature = zeros(torch.float32)  # 0 = greedy, also for idle slots: the cheapest draw
        self.top_p = torch.ones(slots, dtype=torch.float32, device=device)
        self.top_k = zeros(torch.long)  # 0 = off
        self.key_hi = zeros(torch.long)  # the row's random stream; 0 on idle slots
        self.key_lo = zeros(torch.long)

    def start(self, row: Row) -> None:
        """A row takes its slot: its sampling parameters and stream, its first draw next."""
        s, p = row.slot, row.params
        self.temperature[s], self.top_p[s], self.top_k[s] = p.temperature, p.top_p, p.top_k
        self.key_hi[s], self.key_lo[s] = row.key
        self.draw[s] = 0

    def feed(self, row: Row, token: int) -> None:
        """The row's first token was drawn from its prefill: decode steps feed it from now on."""
        s = row.slot
        self.token[s], self.position[s], self.draw[s] = token, row.pos, 1
        self.active[s] = True

    def advance(self, lo: int, hi: int, sampled: torch.Tensor) -> None:
        """After a decode step over [lo, hi): active rows feed their new token next, one position on."""
        active = self.active[lo:hi]
        step = active.long()
        self.token[lo:hi] = torch.where(active, sampled, self.token[lo:hi])
        self.position[lo:hi] += step
        self.draw[lo:hi] += step

    def clear(self, slot: int) -> None:
        """The slot's row is done: idle (greedy, no stream) until the next `start`."""
        self.active[slot] = False
        self.temperature[slot], self.top_p[slot], self.top_k[slot] = 0.0, 1.0, 0
        self.key_hi[slot] = self.key_lo[slot] = 0

    def row_params(self, index: slice | torch.Tensor, rows: list[Row]) -> RowParams:
        """The sampler's inputs for the slots `index` (a slot range, or slot indices), whose
        generating rows are `rows` (idle slots in a range draw greedily and are discarded)."""
        params = [r.params for r in rows]
        flags = row_flags([p.temperature for p in params], [p.top_p for p in params], [p.top_k for p in params])
        return RowParams(self.temperature[index], self.top_p[index], self.top_k[index], self.key_hi[index],
                         self.key_lo[index], self.draw[index], **flags)
