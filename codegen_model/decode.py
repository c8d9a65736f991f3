"""The engine's forward passes: the decode step (one new token for every row of a contiguous
slot range) and the prefill of one prompt (docs/design.md §2).

The same mathematics as `CodeGenForCausalLM.forward` with a `kv_cache.RangeView` (the tests
check the logits agree), written lean because it runs once per generated token: weights are
looked up once; the rotary embedding is two per-step factors applied to the packed qkv output
(`qkv * C + swap_pairs(qkv) * S`, three elementwise kernels per layer); the attention bias is built
once per step; keys/values are read as views of the slot cache (no gather, no copy).

Two attention paths:
- `exact=True` (the engine's choice on CPU): keys/values are kept in fp32 whatever the model's
  dtype; scores, softmax and the weighted sum run in fp32 as explicit batched matmuls (as
  transformers' eager CodeGen upcasts them). On CPU these kernels are fast on the cache's strided
  views, where bf16 ones are not and the fused SDPA kernel is slow for one query per row.
- `exact=False` (CUDA): `scaled_dot_product_attention` on a cache in the model's dtype.

Why a row's result never depends on the rows beside it (exact determinism, fp32 on CPU):
- linear layers: MKL and oneDNN compute a row identically whatever the batch *when the row count
  is a multiple of 4* (rows of a partial 4-row tile take other kernels); the engine decodes slot
  ranges aligned to `ROW_TILE`.
- attention: the explicit path over a key length rounded up to `kv_cache.BLOCK`; masked keys add
  exact zeros, so a row's output is the same whatever key length the batch needs. (The fused CPU
  SDPA kernel is neither batch- nor length-invariant.)
- everything else is elementwise or a per-row kernel.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from .kv_cache import SlotKVCache
from .model import CodeGenForCausalLM

ROW_TILE = 4  # decoded slot ranges start and end at multiples of this
GROUP_COST = 64  # a separate attention call costs about as much as reading this many more keys for one row
PACK_ROWS_HINT = 16  # oneDNN's row-count hint for packing; fixed, so no engine option changes the layout


def can_pack(model: CodeGenForCausalLM) -> bool:
    """oneDNN can hold this model's linear weights prepacked (CPU, fp32 or bf16)."""
    return (model.device.type == "cpu" and model.dtype in (torch.float32, torch.bfloat16)
            and torch.backends.mkldnn.is_available())


def pack_option(model: CodeGenForCausalLM, pack_weights: bool | None, compile: bool | str) -> bool:
    """The engine's `pack_weights` option, defaulted and checked. Default: pack when oneDNN can, the
    decode step is not compiled, and the second copy of the linear weights takes at most a quarter
    of the RAM. Raises ValueError for pack_weights=True on a model oneDNN cannot pack."""
    if pack_weights is None:
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.dim() == 2)
        return can_pack(model) and not compile and weight_bytes <= _ram_bytes() // 4
    if pack_weights and not can_pack(model):
        raise ValueError(f"pack_weights=True needs a CPU model in float32 or bfloat16 and oneDNN; this one is "
                         f"{model.dtype} on {model.device}: leave pack_weights unset")
    return bool(pack_weights)


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def attention_groups(keys: list[int], cost: int = GROUP_COST) -> list[tuple[int, int, int]]:
    """Split a decode step's rows into attention calls: `keys[i]` is the key length row i needs
    (a multiple of BLOCK), 0 for an idle row. Returns (start, end, key length) runs of consecutive
    rows that cover every row needing keys, minimising rows x key length read plus `cost` per call.
    Idle rows outside every run get no attention; rows inside a run read the run's key length."""
    n = len(keys)
    best = [0.0] + [float("inf")] * n  # best[i]: cost of covering rows [0, i)
    choice = [(-1, 0)] * (n + 1)  # (start of the last run, its key length); start -1: row end - 1 is skipped
    for end in range(1, n + 1):
        if keys[end - 1] == 0 and best[end - 1] < best[end]:
            best[end], choice[end] = best[end - 1], (-1, 0)
        longest = 0
        for start in range(end - 1, -1, -1):
            longest = max(longest, keys[start])
            if longest and best[start] + cost + (end - start) * longest < best[end]:
                best[end], choice[end] = best[start] + cost + (end - start) * longest, (start, longest)
    runs, end = [], n
    while end > 0:
        start, length = choice[end]
        if start == -1:
            end -= 1
            continue
        runs.append((start, end, length))
        end = start
    return runs[::-1]


class DecodeStep:
    """Callable: (tokens, positions, owned, lo, hi, key_length[, groups]) -> (hi - lo, vocab) fp32 logits.

    `pack`: keep a oneDNN-prepacked copy of every linear weight (CPU). At decode's few rows it is
    2-4x faster than `F.linear` (MKL repacks per call), at the cost of a second copy of the
    weights in memory; rows stay batch-invariant (row counts that are multiples of 4).
    """

    def __init__(self, model: CodeGenForCausalLM, cache: SlotKVCache | None, exact: bool, pack: bool = False,
                 rows_hint: int = PACK_ROWS_HINT):
        cfg = model.config
        t = model.transformer
        self.cache, self.exact, self.pack, self.rows_hint = cache, exact, pack, rows_hint  # cache: set before calls
        self.E, self.nh, self.hs, self.mp = cfg.n_embd, cfg.n_head, cfg.head_dim, cfg.MP_NUM
        self.rd = cfg.rotary_dim or cfg.head_dim
        self.eps = cfg.layer_norm_epsilon
        self.scale = 1.0 / math.sqrt(self.hs)
        self.dtype = model.dtype
        self.work_dtype = torch.float32 if exact else model.dtype  # of q, k, v, the attention and the cache
        self.wte = t.wte.weight
        self.rotary = t.rotary_table  # (n_positions, rd): [sin | cos], fp32
        w = self._weight
        self.layers = [
            (b.ln_1.weight, b.ln_1.bias, w(b.attn.qkv_proj.weight), w(b.attn.out_proj.weight),
             w(b.mlp.fc_in.weight), b.mlp.fc_in.bias, w(b.mlp.fc_out.weight), b.mlp.fc_out.bias)
            for b in t.h
        ]
        self.ln_f = (t.ln_f.weight, t.ln_f.bias)
        self.lm_head = (w(model.lm_head.weight), model.lm_head.bias)
        # Where each of the 3E packed qkv features takes its rotary factors from: groups of
        # [q | v | k], heads of head_dim, rotary on the first rd dims of q and k heads, in pairs.
        d = torch.arange(3 * self.E)
        part = (d % (3 * self.E // self.mp)) // (self.E // self.mp)  # 0 q, 1 v, 2 k
        dim = d % self.hs
        rotary = (part != 1) & (dim < self.rd)
        dev = self.wte.device
        self.factor_index = torch.where(rotary, 1 + dim // 2, 0).to(dev)  # into [1 | cos] and [0 | sin]
        self.sign = torch.where(rotary, torch.where(dim % 2 == 0, -1.0, 1.0), 0.0).to(dev, self.work_dtype)

    def _weight(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.pack:
            return weight
        return torch.ops.mkldnn._reorder_linear_weight(weight, self.rows_hint)

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if self.pack:
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        return F.linear(x, weight, bias)

    def matmuls(self, rows: int, key_length: int) -> None:
        """Only this step's matrix multiplications (the bench's `matmul_ms`): the linear layers on
        random rows, attention's two batched matmuls over the slot cache's own keys/values (read
        from memory as in a real step) or, without a large enough cache, random ones per layer."""
        dev, E, nh, hs, B, Tk = self.wte.device, self.E, self.nh, self.hs, rows, key_length
        x = {n: torch.randn(B, n, dtype=self.dtype, device=dev) for n in (E, 4 * E)}
        q = torch.randn(B * nh, 1, hs, dtype=self.work_dtype, device=dev)
        probs = torch.softmax(torch.randn(B * nh, 1, Tk, dtype=self.work_dtype, device=dev), dim=-1)
        cache = self.cache
        own = cache is not None and cache.slots >= B and cache.capacity >= Tk
        for layer, (_, _, w_qkv, w_out, w_in, b_in, w_fc, b_fc) in enumerate(self.layers):
            if own:
                keys, values = cache.k[layer, :B, :, :Tk], cache.v[layer, :B, :, :Tk]
            else:
                keys = values = torch.randn(B, nh, Tk, hs, dtype=self.work_dtype, device=dev)
            self.linear(x[E], w_qkv)
            torch.bmm(q, keys.reshape(B * nh, Tk, hs).transpose(1, 2))
            torch.bmm(probs, values.reshape(B * nh, Tk, hs))
            self.linear(x[E], w_out)
            self.linear(x[E], w_in, b_in)
            self.linear(x[4 * E], w_fc, b_fc)
        self.linear(x[E], *self.lm_head)

    def _rotary_factors(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3E) factors C, S with rotary(qkv) = qkv * C + swap_pairs(qkv) * S."""
        B, half = positions.shape[0], self.rd // 2
        sincos = self.rotary[positions].to(self.work_dtype)  # (B, rd)
        one = torch.ones(B, 1, dtype=self.work_dtype, device=positions.device)
        cos = torch.cat([one, sincos[:, half:]], dim=1)[:, self.factor_index]
        sin = torch.cat([one, sincos[:, :half]], dim=1)[:, self.factor_index] * self.sign
        return cos, sin

    def _qkv(self, h: torch.Tensor, w_qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """(R, 3E) rows -> rotated q/v/k as (R, mp, 3, nh/mp, hs) in the work dtype."""
        R, E = h.shape[0], self.E
        qkv = self.linear(h, w_qkv).to(self.work_dtype)  # (R, 3E), per group [q | v | k]
        swapped = qkv.view(R, 3 * E // 2, 2).flip(-1).view(R, 3 * E)
        return torch.addcmul(qkv * cos, swapped, sin).view(R, self.mp, 3, self.nh // self.mp, self.hs)

    def prefill(self, ids: list[int], start: int, cache) -> torch.Tensor:
        """Run `ids` at positions start.. through the model, keys/values into `cache` (a
        `kv_cache.StagingCache` or `SlotView` holding `start` earlier tokens); (1, V) fp32 logits of
        the last token. The same mathematics as the model's forward, with this step's kernels."""
        T, E, nh, hs = len(ids), self.E, self.nh, self.hs
        dev = self.wte.device
        x = F.embedding(torch.tensor(ids, dtype=torch.long, device=dev), self.wte)  # (T, E)
        cos, sin = self._rotary_factors(torch.arange(start, start + T, device=dev))
        mask = None
        if start:  # query i sits at start + i and sees keys j <= start + i
            mask = torch.arange(start + T, device=dev)[None, :] <= torch.arange(start, start + T, device=dev)[:, None]
        for layer, (ln_w, ln_b, w_qkv, w_out, w_in, b_in, w_fc, b_fc) in enumerate(self.layers):
            h = F.layer_norm(x, (E,), ln_w, ln_b, self.eps)
            qkv = self._qkv(h, w_qkv, cos, sin)
            q, v, k = (qkv[:, :, i].reshape(T, nh, hs).transpose(0, 1)[None] for i in range(3))  # (1, nh, T, hs)
            keys, values = cache.update(layer, k, v)  # (1, nh, start + T, hs)
            y = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=mask,
                                               is_causal=mask is None)
            attn = self.linear(y[0].transpose(0, 1).reshape(T, E).to(self.dtype), w_out)
            mlp = self.linear(F.gelu(self.linear(h, w_in, b_in), approximate="tanh"), w_fc, b_fc)
            x = x + attn + mlp
        x = F.layer_norm(x[-1:], (E,), self.ln_f[0], self.ln_f[1], self.eps)
        return self.linear(x, *self.lm_head).float()  # (1, V)

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, owned: torch.Tensor,
                 lo: int, hi: int, key_length: int, groups: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
        """(hi - lo, V) fp32 logits of one new token for each row of slots [lo, hi): `tokens`,
        `positions` (B,) int64, `owned` (B,) bool (rows not owned write their keys to the scratch
        column). `groups`: the exact path's attention calls, (start, end, key length) runs of rows
        from `attention_groups` (default: every row over `key_length`); rows outside every run get
        no attention (idle rows, whose logits are discarded)."""
        B, E, nh, hs, mp, Tk = hi - lo, self.E, self.nh, self.hs, self.mp, key_length
        cache, S1 = self.cache, self.cache.capacity + 1
        x = F.embedding(tokens, self.wte)  # (B, E)
        cos, sin = self._rotary_factors(positions)
        write = torch.where(owned, positions, cache.scratch)  # rows not owned write the scratch column
        rows = torch.arange(B, device=tokens.device)
        if self.exact:
            groups = [(0, B, Tk)] if groups is None else groups
            biases = [self._future_bias(positions[a:b], T).expand(b - a, nh, 1, T).reshape((b - a) * nh, 1, T)
                      for a, b, T in groups]  # per run, as (rows * nh, 1, T) for baddbmm
            covered = sum(b - a for a, b, _ in groups)
            y = (torch.empty if covered == B else torch.zeros)(B * nh, 1, hs, dtype=self.work_dtype, device=x.device)
        else:
            bias = self._future_bias(positions, Tk)  # (B, 1, 1, Tk) for SDPA
        for layer, (ln_w, ln_b, w_qkv, w_out, w_in, b_in, w_fc, b_fc) in enumerate(self.layers):
            h = F.layer_norm(x, (E,), ln_w, ln_b, self.eps)
            qkv = self._qkv(h, w_qkv, cos, sin)  # (B, mp, 3, nh/mp, hs)
            kc = cache.k[layer, lo:hi]  # (B, nh, S + 1, hs) views of the slots
            vc = cache.v[layer, lo:hi]
            kc.view(B, mp, nh // mp, S1, hs)[rows, :, :, write] = qkv[:, :, 2]
            vc.view(B, mp, nh // mp, S1, hs)[rows, :, :, write] = qkv[:, :, 1]
            q = qkv[:, :, 0].reshape(B * nh, 1, hs)  # heads group-major, as in the model
            if self.exact:
                self._attend_runs(q, kc, vc, groups, biases, out=y)
            else:
                y = F.scaled_dot_product_attention(q.view(B, nh, 1, hs), kc[:, :, :Tk], vc[:, :, :Tk], attn_mask=bias)
            attn = self.linear(y.reshape(B, E).to(self.dtype), w_out)
            mlp = self.linear(F.gelu(self.linear(h, w_in, b_in), approximate="tanh"), w_fc, b_fc)
            x = x + attn + mlp
        x = F.layer_norm(x, (E,), self.ln_f[0], self.ln_f[1], self.eps)
        return self.linear(x, *self.lm_head).float()  # (B, V) fp32

    def _future_bias(self, positions: torch.Tensor, T: int) -> torch.Tensor:
        """(rows, 1, 1, T) in the work dtype: 0 on the keys a row sees, -inf on keys after its position."""
        dev = positions.device
        hidden = torch.arange(T, device=dev)[None, :] > positions[:, None]
        bias = torch.zeros(len(positions), 1, 1, T, dtype=self.work_dtype, device=dev)
        return bias.masked_fill_(hidden[:, None, None], float("-inf"))

    def _attend_runs(self, q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, groups: list[tuple[int, int, int]],
                     biases: list[torch.Tensor], out: torch.Tensor) -> None:
        """The exact path's attention, one fp32 baddbmm/softmax/bmm per run of rows, into `out`
        (B * nh, 1, hs): q (B * nh, 1, hs), kc/vc (B, nh, S + 1, hs) slot views."""
        nh, hs = self.nh, self.hs
        for (a, b, T), bias in zip(groups, biases):
            keys = kc[a:b, :, :T].reshape((b - a) * nh, T, hs)
            values = vc[a:b, :, :T].reshape((b - a) * nh, T, hs)
            scores = torch.baddbmm(bias, q[a * nh : b * nh], keys.transpose(1, 2), alpha=self.scale)
            torch.bmm(torch.softmax(scores, dim=-1), values, out=out[a * nh : b * nh])
