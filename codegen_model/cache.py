"""Key/value caches for the model's forward (docs/design.md §2, "Caching").

`Cache` is the protocol the model's attention talks to: per row, where this forward's tokens start
(`starts`), and a per-layer store (`update`). The sampling engine's preallocated slot caches
(`kv_cache.py`) implement it; so does `DynamicCache`, the growing cache that `forward(use_cache=True)`
returns as `past_key_values` and that can be passed back to continue, as the Transformers
documentation describes for CodeGen (its `DynamicCache`: every row of the batch shares one length).
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

import torch


@runtime_checkable
class Cache(Protocol):
    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """(B,) int64 cache index of this forward's first token, per row."""

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, n_head, T, head_dim) keys/values of this forward; return all keys/values
        (B, n_head, T_keys, head_dim)."""


class DynamicCache:
    """A growing keys/values cache: per layer, (B, n_head, T_cached, head_dim) keys and values.

    Returned as `past_key_values` by `CodeGenModel` / `CodeGenForCausalLM.forward` (and `generate`);
    pass it back with the next tokens (and an attention mask over cached + new tokens) to continue.
    Mirrors transformers' `DynamicCache` surface: `get_seq_length()`, `len(cache)` (layers),
    `cache[layer]` -> (keys, values), `to_legacy_cache()` / `from_legacy_cache()`, `crop(n)`,
    `reorder_cache(beam_idx)`, `batch_repeat_interleave(n)`, `batch_select_indices(idx)`.
    """

    def __init__(self) -> None:
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []

    # --- the model's protocol
    @property
    def length(self) -> int:
        return self.k[0].shape[2] if self.k else 0

    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        if self.k and self.k[0].shape[0] != batch_size:
            raise ValueError(f"past_key_values holds {self.k[0].shape[0]} rows but the input has {batch_size}; "
                             "continue with the same batch (or use cache.batch_select_indices)")
        return torch.full((batch_size,), self.length, dtype=torch.long, device=device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.k):
            self.k.append(k)
            self.v.append(v)
        else:
            self.k[layer] = torch.cat([self.k[layer], k.to(self.k[layer].dtype)], dim=2)
            self.v[layer] = torch.cat([self.v[layer], v.to(self.v[layer].dtype)], dim=2)
        return self.k[layer], self.v[layer]

    # --- transformers' DynamicCache surface
    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens cached (the same for every row and layer)."""
        return self.k[layer_idx].shape[2] if layer_idx < len(self.k) else 0

    def __len__(self) -> int:
        return len(self.k)

    def __getitem__(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.k[layer], self.v[layer]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(zip(self.k, self.v))

    def __repr__(self) -> str:
        shape = tuple(self.k[0].shape) if self.k else ()
        return f"DynamicCache(layers={len(self.k)}, keys per layer {shape})"

    def to_legacy_cache(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """((keys, values) per layer), each (B, n_head, T, head_dim)."""
        return tuple(zip(self.k, self.v))

    @classmethod
    def from_legacy_cache(cls, past) -> "DynamicCache":
        """From ((keys, values) per layer), each (B, n_head, T, head_dim)."""
        cache = cls()
        for layer, pair in enumerate(past or ()):
            if len(pair) != 2:
                raise ValueError("a legacy past_key_values is a tuple of (keys, values) per layer")
            cache.update(layer, pair[0], pair[1])
        return cache

    def crop(self, max_length: int) -> None:
        """Keep the first `max_length` cached tokens (negative: drop that many from the end)."""
        if max_length < 0:
            max_length = self.length + max_length
        self.k = [k[:, :, :max_length] for k in self.k]
        self.v = [v[:, :, :max_length] for v in self.v]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.batch_select_indices(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.k = [k[indices.to(k.device)] for k in self.k]
        self.v = [v[indices.to(v.device)] for v in self.v]

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.k = [k.repeat_interleave(repeats, dim=0) for k in self.k]
        self.v = [v.repeat_interleave(repeats, dim=0) for v in self.v]
