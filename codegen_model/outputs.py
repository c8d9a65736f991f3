"""The outputs of `CodeGenModel` and `CodeGenForCausalLM` (docs/design.md §2), as the Transformers
documentation describes them (`BaseModelOutputWithPast`, `CausalLMOutputWithPast`).

Each is a dataclass that also reads like transformers' `ModelOutput`: by attribute, by key
(`out["logits"]`), by position over the fields that are set (`out[0]`), `keys()` / `items()` /
`to_tuple()`; `forward(return_dict=False)` returns `to_tuple()`. `cache` is an alias of
`past_key_values` (transformers 5's name for it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator

import torch


class _Output:
    """Mapping-like access to the fields that are not None, in declaration order."""

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(self.values())

    def __getitem__(self, key: str | int | slice):
        if isinstance(key, str):
            if key == "cache":
                key = "past_key_values"
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: object) -> bool:
        return ("past_key_values" if key == "cache" else key) in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    @property
    def cache(self):
        """transformers 5's name for `past_key_values`."""
        return self.past_key_values


@dataclass
class BaseModelOutputWithPast(_Output):
    """`CodeGenModel.forward`'s result.

    last_hidden_state: (B, T, n_embd) after the final LayerNorm, in the model's dtype.
    past_key_values: the `DynamicCache` (or the cache passed in) holding every layer's keys/values,
        None when use_cache is off.
    hidden_states: n_layer + 1 tensors (B, T, n_embd): the input of each block (embeddings first),
        then the final output after ln_f; only with output_hidden_states.
    attentions: n_layer tensors (B, n_head, T, T_keys) of softmax attention weights (fp32
        softmax cast to the model's dtype); only with output_attentions.
    """

    last_hidden_state: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CausalLMOutputWithPast(_Output):
    """`CodeGenForCausalLM.forward`'s result.

    loss: () fp32 mean next-token cross-entropy over labels != -100 (labels shifted inside), only
        with labels.
    logits: (B, T or the kept positions, vocab_size) fp32.
    past_key_values, hidden_states, attentions: as in BaseModelOutputWithPast.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: Any = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# The names this package used before the documented API; kept for callers of the old names.
ModelOutput = BaseModelOutputWithPast
CausalLMOutput = CausalLMOutputWithPast
