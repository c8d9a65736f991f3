"""CodeGen in pure PyTorch (DESIGN §2), read bottom-up: rotary, attention, MLP, block, model.

Reference: transformers' `models/codegen/modeling_codegen.py`; parity is tested. The quirks that
matter: `qkv_proj` packs 4 groups, each split [query | value | key], heads numbered group-major;
GPT-J "rotate every two" rotary on the first `rotary_dim` dims of each head; one LayerNorm feeding
attention and MLP in parallel; attention scores/softmax in fp32; biased, untied `lm_head`.

Caching: a `Cache` exposes, per row, where this forward's tokens start (`starts`) and stores keys
and values (`update`). The causal rule is uniform: query `i` of row `b` sits at cache index
`starts[b] + i` and sees key `j` iff `j <= starts[b] + i` and `attention_mask[b, j]`. That makes one
code path exact for left padding, ragged rows and the engine's slot cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .config import CodeGenConfig


class Cache(Protocol):
    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """(B,) cache index of this forward's first token, per row."""

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, nh, T, hs) keys/values of this forward; return all keys/values (B, nh, Tk, hs)."""


class DynamicCache:
    """A growing cache (all rows share one length), for the plain `forward(..., cache=...)` API."""

    def __init__(self) -> None:
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []

    @property
    def length(self) -> int:
        return self.k[0].shape[2] if self.k else 0

    def starts(self, batch_size: int, device: torch.device) -> torch.Tensor:
        return torch.full((batch_size,), self.length, dtype=torch.long, device=device)

    def update(self, layer, k, v):
        if layer == len(self.k):
            self.k.append(k)
            self.v.append(v)
        else:
            self.k[layer] = torch.cat([self.k[layer], k], dim=2)
            self.v[layer] = torch.cat([self.v[layer], v], dim=2)
        return self.k[layer], self.v[layer]


def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """(n_positions, dim): [sin | cos] of position * inv_freq, base 10000, computed in fp32."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    angles = torch.arange(n_positions, dtype=torch.int64).float()[:, None] * inv_freq[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)  # GPT-J interleaved pairs


def apply_rotary(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """x: (B, T, nh, rd); sin/cos: (B, T, rd/2), each repeated over pairs."""
    sin = torch.repeat_interleave(sin[:, :, None, :], 2, dim=3)  # (B, T, 1, rd)
    cos = torch.repeat_interleave(cos[:, :, None, :], 2, dim=3)
    return x * cos + rotate_every_two(x) * sin


class CodeGenAttention(nn.Module):
    def __init__(self, config: CodeGenConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.head_dim, self.n_embd = config.n_head, config.head_dim, config.n_embd
        self.rotary_dim = config.rotary_dim or config.head_dim
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.out_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, sin, cos, bias, cache: Cache | None):
        B, T, E = x.shape
        nh, hs, mp = self.n_head, self.head_dim, CodeGenConfig.MP_NUM
        qkv = self.qkv_proj(x).view(B, T, mp, 3 * E // mp)  # 4 groups, each [q | v | k]
        q, v, k = qkv.split(E // mp, dim=-1)  # (B, T, mp, E/mp) each
        q = q.reshape(B, T, nh, hs)  # (B, T, nh, hs), heads group-major
        k = k.reshape(B, T, nh, hs)
        v = v.reshape(B, T, nh, hs)
        rd = self.rotary_dim
        q = torch.cat([apply_rotary(q[..., :rd], sin, cos), q[..., rd:]], dim=-1)
        k = torch.cat([apply_rotary(k[..., :rd], sin, cos), k[..., rd:]], dim=-1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, nh, Tk, hs)
        # fp16/bf16: the SDPA kernels compute q.k and the softmax in fp32 internally and cast
        # the probabilities to v's dtype before p @ v, as the reference does by hand.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.out_proj(y)


class CodeGenMLP(nn.Module):
    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.n_embd, config.inner_dim)
        self.fc_out = nn.Linear(config.inner_dim, config.n_embd)

    def forward(self, x):
        return self.fc_out(F.gelu(self.fc_in(x), approximate="tanh"))  # gelu_new == tanh GELU


class CodeGenBlock(nn.Module):
    def __init__(self, config: CodeGenConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CodeGenAttention(config, layer)
        self.mlp = CodeGenMLP(config)

    def forward(self, x, sin, cos, bias, cache):
        h = self.ln_1(x)  # one LayerNorm feeds attention and MLP in parallel
        return x + self.attn(h, sin, cos, bias, cache) + self.mlp(h)


@dataclass
class ModelOutput:
    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    cache: Cache | None = None


@dataclass
class CausalLMOutput:
    logits: torch.Tensor  # fp32 (B, T or logits_to_keep, vocab_size)
    loss: torch.Tensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


def positions_from_mask(attention_mask: torch.Tensor, T: int) -> torch.Tensor:
    """Position ids for the last T columns of a (B, Tk) key mask: count of real tokens before."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)[:, -T:]


class CodeGenModel(nn.Module):
    """The bare transformer: token ids -> final hidden states (after ln_f)."""

    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.h = nn.ModuleList(CodeGenBlock(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        rd = config.rotary_dim or config.head_dim
        self.register_buffer("rotary_table", sinusoidal_table(config.n_positions, rd), persistent=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache: Cache | None = None,
                output_hidden_states: bool = False) -> ModelOutput:
        B, T = input_ids.shape
        device = input_ids.device
        starts = cache.starts(B, device) if cache is not None else torch.zeros(B, dtype=torch.long, device=device)
        q_index = starts[:, None] + torch.arange(T, device=device)[None, :]  # (B, T) cache index of each query
        Tk = int(q_index.max()) + 1 if cache is not None else T
        if attention_mask is not None and attention_mask.shape != (B, Tk):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but keys span ({B}, {Tk}): "
                "pass a mask over the cached and the new tokens")
        if position_ids is None:
            position_ids = positions_from_mask(attention_mask, T) if attention_mask is not None else q_index
        if int(position_ids.max()) >= self.config.n_positions:
            raise ValueError(
                f"position {int(position_ids.max())} exceeds the model's context of "
                f"{self.config.n_positions} tokens; shorten the prompt or lower max_new_tokens")
        causal = torch.arange(Tk, device=device)[None, None, :] <= q_index[:, :, None]  # (B, T, Tk)
        # Additive bias: future keys -inf, padded keys the dtype's finite minimum. A query at a
        # left-padding position then attends uniformly over its (padded) past, as the reference
        # does, and never produces NaN (its own key is always causal-visible).
        dtype = self.wte.weight.dtype
        bias = torch.zeros(B, 1, T, Tk, dtype=dtype, device=device)
        if attention_mask is not None:
            bias.masked_fill_(~attention_mask.bool()[:, None, None, :], torch.finfo(dtype).min)
        bias.masked_fill_(~causal[:, None], float("-inf"))

        sincos = self.rotary_table[position_ids]  # (B, T, rd) fp32
        sin, cos = sincos.chunk(2, dim=-1)
        x = self.wte(input_ids)
        sin, cos = sin.to(x.dtype), cos.to(x.dtype)
        hidden = []
        for block in self.h:
            if output_hidden_states:
                hidden.append(x)
            x = block(x, sin, cos, bias, cache)
        x = self.ln_f(x)
        if output_hidden_states:
            hidden.append(x)
        return ModelOutput(x, tuple(hidden) if output_hidden_states else None, cache)


class CodeGenForCausalLM(nn.Module):
    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.config = config
        self.transformer = CodeGenModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)  # biased, untied

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache: Cache | None = None,
                labels=None, logits_to_keep: int = 0, output_hidden_states: bool = False) -> CausalLMOutput:
        out = self.transformer(input_ids, attention_mask, position_ids, cache, output_hidden_states)
        h = out.last_hidden_state if logits_to_keep == 0 else out.last_hidden_state[:, -logits_to_keep:]
        logits = self.lm_head(h).float()  # (B, T, V) fp32
        loss = None
        if labels is not None:
            if logits_to_keep:
                raise ValueError("labels need logits for every position; drop logits_to_keep")
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutput(logits, loss, out.cache, out.hidden_states)

    @torch.no_grad()
    def init_random(self, seed: int = 0) -> "CodeGenForCausalLM":
        """Seeded random weights, the reference's scheme (normal(0, initializer_range), zero biases)."""
        g = torch.Generator().manual_seed(seed)
        std = self.config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device
