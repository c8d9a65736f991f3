"""The engine's decode step: one new token for every row of a contiguous slot range (DESIGN §2).

The same mathematics as `CodeGenForCausalLM.forward` with a `kv_cache.RangeView` (the tests
check the logits agree), written lean because it runs once per generated token: weights are
looked up once, the rotary angles and the attention bias are built once per step and shared by
all layers, and keys/values are read as views of the slot cache (no gather, no copy).

Why the result of a row never depends on the rows beside it (exact determinism, fp32 on CPU):
- linear layers: MKL computes a row identically whatever the batch *when the row count is a
  multiple of 4* (rows of a partial 4-row tile take another kernel); the engine decodes slot
  ranges aligned to `ROW_TILE`.
- attention (`exact=True`, fp32 on CPU): explicit matmul / softmax / matmul over a key length
  rounded up to `kv_cache.BLOCK`; masked keys add exact zeros, so a row's output is the same
  whatever key length the batch needs. (The fused CPU SDPA kernel is neither batch- nor
  length-invariant; it is used for fp16/bf16 and on CUDA, where exactness is not promised.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .kv_cache import SlotKVCache
from .model import CodeGenForCausalLM

ROW_TILE = 4  # decoded slot ranges start and end at multiples of this


class DecodeStep:
    """Callable: (tokens, positions, owned, lo, hi, key_length) -> (hi - lo, vocab) fp32 logits."""

    def __init__(self, model: CodeGenForCausalLM, cache: SlotKVCache, exact: bool):
        cfg = model.config
        t = model.transformer
        self.cache, self.exact = cache, exact
        self.E, self.nh, self.hs = cfg.n_embd, cfg.n_head, cfg.head_dim
        self.mp = cfg.MP_NUM
        self.rd = cfg.rotary_dim or cfg.head_dim
        self.eps = cfg.layer_norm_epsilon
        self.scale = 1.0 / math.sqrt(self.hs)
        self.wte = t.wte.weight
        self.rotary = t.rotary_table
        self.layers = [
            (b.ln_1.weight, b.ln_1.bias, b.attn.qkv_proj.weight, b.attn.out_proj.weight,
             b.mlp.fc_in.weight, b.mlp.fc_in.bias, b.mlp.fc_out.weight, b.mlp.fc_out.bias)
            for b in t.h
        ]
        self.ln_f = (t.ln_f.weight, t.ln_f.bias)
        self.lm_head = (model.lm_head.weight, model.lm_head.bias)

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, owned: torch.Tensor,
                 lo: int, hi: int, key_length: int) -> torch.Tensor:
        B, E, nh, hs, mp, rd = hi - lo, self.E, self.nh, self.hs, self.mp, self.rd
        Tk = key_length
        cache = self.cache
        x = F.embedding(tokens, self.wte)  # (B, E)
        dtype = x.dtype
        sin, cos = self.rotary[positions].to(dtype).chunk(2, dim=-1)  # (B, rd/2) each
        sin = sin.repeat_interleave(2, dim=-1)[:, None, None, None, :]  # (B, 1, 1, 1, rd)
        cos = cos.repeat_interleave(2, dim=-1)[:, None, None, None, :]
        write = torch.where(owned, positions, torch.full_like(positions, cache.scratch))
        rows = torch.arange(B, device=x.device)
        visible = torch.arange(Tk, device=x.device)[None, :] <= positions[:, None]  # (B, Tk)
        if self.exact:  # (B*nh, 1, Tk) additive fp32 bias for baddbmm
            bias = torch.zeros(B, nh, 1, Tk, dtype=torch.float32, device=x.device)
            bias.masked_fill_(~visible[:, None, None, :], float("-inf"))
            bias = bias.view(B * nh, 1, Tk)
        else:  # (B, 1, 1, Tk) in the model dtype for SDPA
            bias = torch.zeros(B, 1, 1, Tk, dtype=dtype, device=x.device)
            bias.masked_fill_(~visible[:, None, None, :], float("-inf"))

        for layer, (ln_w, ln_b, w_qkv, w_out, w_in, b_in, w_fc, b_fc) in enumerate(self.layers):
            h = F.layer_norm(x, (E,), ln_w, ln_b, self.eps)
            qkv = F.linear(h, w_qkv).view(B, mp, 3, nh // mp, hs)  # per group [q | v | k]
            qk = qkv[:, :, 0::2, :, :rd]  # (B, mp, 2, nh/mp, rd): rotary part of q and k
            pairs = qk.unflatten(-1, (rd // 2, 2))
            rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)  # GPT-J pairs
            qkv[:, :, 0::2, :, :rd] = qk * cos + rotated * sin
            q = qkv[:, :, 0].reshape(B, nh, hs)  # heads group-major, as in the model
            k = qkv[:, :, 2].reshape(B, nh, hs)
            v = qkv[:, :, 1].reshape(B, nh, hs)
            kc = cache.k[layer, lo:hi]  # (B, nh, S + 1, hs) view of the slots
            vc = cache.v[layer, lo:hi]
            kc[rows, :, write] = k
            vc[rows, :, write] = v
            keys, values = kc[:, :, :Tk], vc[:, :, :Tk]  # (B, nh, Tk, hs) views
            if self.exact:
                scores = torch.baddbmm(bias, q.view(B * nh, 1, hs), keys.reshape(B * nh, Tk, hs).transpose(1, 2),
                                       alpha=self.scale)  # (B*nh, 1, Tk)
                y = torch.bmm(torch.softmax(scores, dim=-1), values.reshape(B * nh, Tk, hs))  # (B*nh, 1, hs)
            else:
                y = F.scaled_dot_product_attention(q.view(B, nh, 1, hs), keys, values, attn_mask=bias)
            attn = F.linear(y.reshape(B, E), w_out)
            mlp = F.linear(F.gelu(F.linear(h, w_in, b_in), approximate="tanh"), w_fc, b_fc)
            x = x + attn + mlp
        x = F.layer_norm(x, (E,), self.ln_f[0], self.ln_f[1], self.eps)
        return F.linear(x, *self.lm_head).float()  # (B, V) fp32
