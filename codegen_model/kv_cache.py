"""Preallocated key/value caches for the sampling engine (docs/design.md §2, "preallocated KV cache").

`SlotKVCache` holds keys and values for a fixed number of slots, one sequence per slot, each
starting at cache index 0 (no padding): `k`, `v` of shape (n_layer, slots, n_head, capacity + 1,
head_dim). Index `capacity` is a scratch column: a batched decode step writes the rows it does not
own (free or parked slots inside the decoded slot range) there, and attention never reads it.
Capacity is a multiple of `BLOCK` and grows on demand (a rare copy), so the rounded key lengths
the decode step attends over never run past the end. The cache's dtype may be wider than the
model's: the engine keeps fp32 keys/values on CPU for every model dtype, so decode attention runs
in fp32 (as transformers' eager CodeGen computes it) on CPU kernels that are fast for it.

The caches implement `codegen_model.model.Cache` (`starts`, `update`), so the model's own
`forward` prefills into them:
- `StagingCache`: a fresh prompt, prefilled once per request; its keys/values are then copied into
  each sample's slot (prefix sharing).
- `SlotView`: one slot from a start index on (a conversation's next turn after its common prefix).
- `RangeView`: a batched decode over slots [lo, hi) (the slow reference path the lean decode step
  in `decode.py` is tested against).
"""

from __future__ import annotations

import logging

import torch

from .config import CodeGenConfig

log = logging.getLogger("codegen_model.engine")

BLOCK = 64  # capacity and decode key lengths are multiples of this


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class SlotKVCache:
    """Keys/values for `slots` sequences of up to `capacity` tokens each."""

    def __init__(self, config: CodeGenConfig, slots: int, capacity: int, dtype: torch.dtype,
                 device: torch.device | str):
        self.n_layer, self.n_head, self.head_dim = config.n_layer, config.n_head, config.head_dim
        self.slots, self.dtype, self.device = slots, dtype, torch.device(device)
        self.capacity = 0
        self.k = self.v = torch.empty(0)
        self.grow(capacity)

    @property
    def scratch(self) -> int:
        """The column a decode step writes rows it does not own to."""
        return self.capacity

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def bytes_per_token(self) -> int:
        return 2 * self.n_layer * self.n_head * self.head_dim * torch.empty(0, dtype=self.dtype).element_size()

    def grow(self, capacity: int) -> None:
        """Make room for `capacity` tokens per slot (rounded up to BLOCK), keeping the contents."""
        capacity = round_up(max(capacity, 1), BLOCK)
        if capacity <= self.capacity:
            return
        shape = (self.n_layer, self.slots, self.n_head, capacity + 1, self.head_dim)
        # zeros, not empty: rows that do not own a slot still read it, and must stay finite
        k = torch.zeros(shape, dtype=self.dtype, device=self.device)
        v = torch.zeros(shape, dtype=self.dtype, device=self.device)
        if self.capacity:
            k[:, :, :, : self.capacity] = self.k[:, :, :, : self.capacity]
            v[:, :, :, : self.capacity] = self.v[:, :, :, : self.capacity]
        self.k, self.v, self.capacity = k, v, capacity

    def reserve(self, need: int, limit: int) -> None:
        """Room for `need` tokens per slot: grown by at least half (fewer copies), never past `limit`
        (the model's context) rounded up to BLOCK."""
        if need > self.capacity:
            self.grow(min(max(need, self.capacity * 3 // 2), round_up(limit, BLOCK)))
            log.info("engine: KV cache grown to %d tokens per slot (%.1f MiB)", self.capacity, self.nbytes / 2**20)

    def load(self, slot: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Copy (n_layer, n_head, L, head_dim) keys/values into `slot` at indices [0, L)."""
        length = k.shape[2]
        self.k[:, slot, :, :length] = k
        self.v[:, slot, :, :length] = v

    def save(self, slot: int, length: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of the first `length` keys/values of `slot`, as (n_layer, n_head, L, head_dim)."""
        k = self.k[:, slot, :, :length].to(device, copy=True)
        v = self.v[:, slot, :, :length].to(device, copy=True)
        return k, v

    def slot_view(self, slot: int, start: int) -> "SlotView":
        return SlotView(self, slot, start)


class StagingCache:
    """A one-row cache for a fresh prefill of `length` tokens: (n_layer, n_head, L, head_dim) buffers.

    Its dtype may be wider than the model's (the engine keeps keys/values in fp32 on CPU); the
    forward's attention gets its own keys back, in the model's dtype.
    """

    def __init__(self, config: CodeGenConfig, length: int, dtype: torch.dtype, device: torch.device | str):
        shape = (config.n_layer, config.n_head, length, config.head_dim)
        self.k = torch.empty(shape, dtype=dtype, device=device)
        self.v = torch.empty(shape, dtype=dtype, device=device)

    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        assert batch_size == 1, "StagingCache holds one row"
        return torch.zeros(1, dtype=torch.long, device=device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k[layer] = k[0].to(self.k.dtype)
        self.v[layer] = v[0].to(self.v.dtype)
        if self.k.dtype != k.dtype:
            return k, v  # nothing else is cached: these are all the keys
        return self.k[layer : layer + 1], self.v[layer : layer + 1]


class SlotView:
    """One slot as a Cache: this forward's tokens go to indices start, start + 1, ..."""

    def __init__(self, cache: SlotKVCache, slot: int, start: int):
        self.cache, self.slot, self.start = cache, slot, start

    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        assert batch_size == 1, "SlotView holds one row"
        return torch.full((1,), self.start, dtype=torch.long, device=device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.start + k.shape[2]
        if end > self.cache.capacity:
            raise ValueError(f"slot {self.slot}: {end} tokens exceed the cache capacity {self.cache.capacity}")
        s = self.slot
        self.cache.k[layer, s, :, self.start : end] = k[0].to(self.cache.dtype)
        self.cache.v[layer, s, :, self.start : end] = v[0].to(self.cache.dtype)
        keys, values = self.cache.k[layer, s : s + 1, :, :end], self.cache.v[layer, s : s + 1, :, :end]
        return keys.to(k.dtype), values.to(v.dtype)  # the model's dtype for its attention


class RangeView:
    """Slots [lo, hi) as a Cache for one new token per row at `positions` (B,).

    Rows with `owned` False write to the scratch column instead (their slot is free or parked).
    """

    def __init__(self, cache: SlotKVCache, lo: int, hi: int, positions: torch.Tensor, owned: torch.Tensor):
        self.cache, self.lo, self.hi, self.positions = cache, lo, hi, positions
        self.write = torch.where(owned, positions, torch.full_like(positions, cache.scratch))
        self.rows = torch.arange(hi - lo, device=positions.device)
        self.length = int(positions.max()) + 1

    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        return self.positions

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kc = self.cache.k[layer, self.lo : self.hi]
        vc = self.cache.v[layer, self.lo : self.hi]
        kc[self.rows, :, self.write] = k[:, :, 0].to(kc.dtype)
        vc[self.rows, :, self.write] = v[:, :, 0].to(vc.dtype)
        return kc[:, :, : self.length].to(k.dtype), vc[:, :, : self.length].to(v.dtype)
