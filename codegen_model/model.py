"""CodeGen in pure PyTorch (docs/design.md §2), read bottom-up: rotary, attention, MLP, block, model.

Reference: transformers' `models/codegen/modeling_codegen.py` and the CodeGen page of the
Transformers documentation, whose `CodeGenModel` / `CodeGenForCausalLM` API (from_pretrained,
save_pretrained, the documented forward arguments and outputs, `generate`) these classes offer;
parity is tested (tests/integration/test_parity.py, test_api_model.py; docs/api.md). The quirks
that matter: `qkv_proj` packs 4 groups, each split [query | value | key], heads numbered
group-major; GPT-J "rotate every two" rotary on the first `rotary_dim` dims of each head; one
LayerNorm feeding attention and MLP in parallel; attention scores/softmax in fp32; biased, untied
`lm_head`.

Caching: a `Cache` (cache.py) exposes, per row, where this forward's tokens start (`starts`) and
stores keys and values (`update`). The causal rule is uniform: query `i` of row `b` sits at cache
index `starts[b] + i` and sees key `j` iff `j <= starts[b] + i` and `attention_mask[b, j]`. That
makes one code path exact for left padding, ragged rows, `DynamicCache` continuation and the
engine's slot caches. Position ids default to the cache index (transformers' default); left-padded
rows that should count from 0 pass `positions_from_mask` (as `generate` does).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cache import Cache, DynamicCache
from .config import CodeGenConfig
from .hub import resolve_checkpoint
from .outputs import BaseModelOutputWithPast, CausalLMOutput, CausalLMOutputWithPast, ModelOutput  # noqa: F401
from .weights import load_from_folder, save_model


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


def _activation(name: str):
    """The activation `config.activation_function` names, as transformers' ACT2FN computes it."""
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    if name in ("silu", "swish"):
        return F.silu
    if name == "tanh":
        return torch.tanh
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "sigmoid":
        return torch.sigmoid
    if name == "linear":
        return lambda x: x
    raise ValueError(f"activation_function {name!r} is not supported")  # config.validate names the choices


class CodeGenAttention(nn.Module):
    def __init__(self, config: CodeGenConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.head_dim, self.n_embd = config.n_head, config.head_dim, config.n_embd
        self.rotary_dim = config.rotary_dim or config.head_dim
        self.attn_pdrop = config.attn_pdrop
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.out_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, sin, cos, bias, cache: Cache | None, output_attentions: bool = False, blind=None):
        """x: (B, T, E); bias: (B, 1, T, T_keys) additive; blind: (B, T) bool queries that see no key
        (zero output on the SDPA path), or None. Returns ((B, T, E), weights or None)."""
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
        dropout = self.attn_pdrop if self.training else 0.0
        weights = None
        if output_attentions:
            # transformers' eager attention: scores and softmax in fp32, weights cast to v's dtype
            scores = torch.matmul(q.float(), k.float().transpose(2, 3)) / math.sqrt(hs) + bias.float()
            weights = torch.softmax(scores, dim=-1).to(v.dtype)  # (B, nh, T, Tk)
            y = torch.matmul(F.dropout(weights, dropout, self.training), v)
        else:
            # fp16/bf16: the SDPA kernels compute q.k and the softmax in fp32 internally and cast
            # the probabilities to v's dtype before p @ v, as the reference does by hand.
            y = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=bias.to(q.dtype),
                                               dropout_p=dropout)  # (B, nh, T, hs)
            if blind is not None:
                y = y.masked_fill(blind[:, None, :, None], 0.0)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.resid_dropout(self.out_proj(y.to(x.dtype))), weights


class CodeGenMLP(nn.Module):
    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.n_embd, config.inner_dim)
        self.fc_out = nn.Linear(config.inner_dim, config.n_embd)
        self.act = _activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.fc_out(self.act(self.fc_in(x))))


class CodeGenBlock(nn.Module):
    def __init__(self, config: CodeGenConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CodeGenAttention(config, layer)
        self.mlp = CodeGenMLP(config)

    def forward(self, x, sin, cos, bias, cache, output_attentions: bool = False, blind=None):
        h = self.ln_1(x)  # one LayerNorm feeds attention and MLP in parallel
        attn, weights = self.attn(h, sin, cos, bias, cache, output_attentions, blind)
        return x + attn + self.mlp(h), weights


def positions_from_mask(attention_mask: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) position ids for the last T columns of a (B, Tk) key mask: the count of real tokens
    before each one (0 on left padding), as transformers' `generate` computes them."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)[:, -T:]


def _take_cache(past_key_values, cache):
    if past_key_values is not None and cache is not None:
        raise ValueError("pass the cache once: past_key_values or cache (its transformers 5 name), not both")
    cache = cache if cache is not None else past_key_values
    if isinstance(cache, (tuple, list)):
        cache = DynamicCache.from_legacy_cache(cache)
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(f"past_key_values must be a DynamicCache returned by this model (or a tuple of "
                        f"(keys, values) per layer), got {type(cache).__name__}")
    return cache


class CodeGenPreTrainedModel(nn.Module):
    """from_pretrained / save_pretrained shared by CodeGenModel and CodeGenForCausalLM."""

    config: CodeGenConfig

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, revision: str | None = None,
                        dtype: str | torch.dtype | None = "auto", device: str | torch.device | None = None,
                        config: CodeGenConfig | None = None, torch_dtype=None, **unsupported):
        """The model with the weights of a checkpoint: a local folder in the Hub layout
        (config.json + model.safetensors or pytorch_model.bin, sharded or not) or a Hub repo id such
        as "Salesforce/codegen-350M-mono", fetched once into the Hugging Face cache (HF_HOME; with
        HF_HUB_OFFLINE=1 only the cache is read); `revision` a branch, tag or commit.

        dtype: "auto" (float16 on CUDA, float32 on CPU), "float32" / "float16" / "bfloat16" or a
        torch.dtype (`torch_dtype` is accepted as its older name). device: "cpu" (default), "cuda",
        "cuda:N" or a torch.device. Loaded in eval mode with trainable parameters, as transformers
        does (`model.train()` turns dropout on; wrap inference in `torch.no_grad()`). `config` must
        equal the checkpoint's if given.

        Raises CheckpointError (folder/repo not found, offline without a cached copy, weights that
        do not match config.json), ConfigError, DeviceError: each one line naming the fix; TypeError
        for arguments transformers has but this loader does not support (e.g. device_map).
        """
        if unsupported:
            raise TypeError(f"{cls.__name__}.from_pretrained does not support {', '.join(sorted(unsupported))}; "
                            "supported: revision, dtype (torch_dtype), device, config (see docs/api.md)")
        if torch_dtype is not None:
            if dtype not in (None, "auto") and dtype != torch_dtype:
                raise ValueError("pass dtype or torch_dtype, not both")
            dtype = torch_dtype
        checkpoint = resolve_checkpoint(pretrained_model_name_or_path, revision)
        model = load_from_folder(checkpoint.folder, cls, "auto" if dtype is None else dtype, device or "cpu",
                                 source=checkpoint.source)
        model.requires_grad_(True)  # the harness's loader freezes; transformers' from_pretrained does not
        if config is not None and config != model.config:
            raise ValueError(f"{checkpoint.source}: the config passed differs from the checkpoint's config.json; "
                             "drop config= or save the model with it first")
        return model

    def save_pretrained(self, save_directory, max_shard_size: int | str | None = None,
                        safe_serialization: bool = True):
        """Write config.json and model.safetensors (sharded with an index when `max_shard_size`,
        bytes or "500MB", is smaller than the weights) in the Hub layout that transformers'
        `from_pretrained` reads. Only safetensors is written (safe_serialization=False raises)."""
        if not safe_serialization:
            raise ValueError("save_pretrained writes safetensors only; drop safe_serialization=False")
        return save_model(self, save_directory, max_shard_bytes=_bytes(max_shard_size))

    def materialize_buffers(self, device: torch.device | str) -> None:
        """Build on `device` the buffers checkpoints do not carry (the non-persistent rotary
        table), where a build on the meta device left them empty: `weights.load_from_folder`
        builds the model there and assigns only the checkpoint's tensors. Others are left as they are."""
        for module in self.modules():
            if isinstance(module, CodeGenModel) and module.rotary_table.is_meta:
                rd = module.config.rotary_dim or module.config.head_dim
                module.rotary_table = sinusoidal_table(module.config.n_positions, rd).to(device)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _bytes(size: int | str | None) -> int | None:
    if size is None or isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    text = size.strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit) and text[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(text[: -len(unit)]) * factor)
    raise ValueError(f"max_shard_size {size!r}: give bytes (an int) or a size such as '500MB' or '2GB'")


class CodeGenModel(CodeGenPreTrainedModel):
    """The bare CodeGen transformer: token ids -> final hidden states (after ln_f)."""

    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(CodeGenBlock(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        rd = config.rotary_dim or config.head_dim
        self.register_buffer("rotary_table", sinusoidal_table(config.n_positions, rd), persistent=False)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, *, cache: Cache | None = None):
        """The documented `CodeGenModel.forward`.

        input_ids: (B, T) int64, or inputs_embeds: (B, T, n_embd) (exactly one of them).
        past_key_values: a cache from an earlier call (`cache` is its transformers 5 name; the
            engine's slot caches go here too); attention_mask: (B, T_cached + T), 1 = token,
            0 = padding (default all ones); token_type_ids: (B, T) ids whose embeddings (the same
            `wte`) are added; position_ids: (B, T) or (T,) (default: T_cached + arange(T), as in
            transformers; pass `positions_from_mask(mask, T)` for left-padded rows to start at 0).
        use_cache (default config.use_cache): return a cache (a new DynamicCache unless one was
            given). output_attentions / output_hidden_states: see BaseModelOutputWithPast.
        return_dict (default True): False returns the output's `to_tuple()`.

        Raises ValueError for inputs that cannot be combined (both or neither of input_ids and
        inputs_embeds, a mask that does not span the cached and new tokens, positions past
        n_positions).
        """
        cache = _take_cache(past_key_values, cache)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if use_cache is None:
            use_cache = self.config.use_cache
        if output_attentions is None:
            output_attentions = getattr(self.config, "output_attentions", False)
        if output_hidden_states is None:
            output_hidden_states = getattr(self.config, "output_hidden_states", False)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        if use_cache and cache is None:
            cache = DynamicCache()
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        if x.dim() != 3:
            raise ValueError(f"input_ids must be (batch, length) and inputs_embeds (batch, length, n_embd); "
                             f"got {tuple((input_ids if inputs_embeds is None else inputs_embeds).shape)}")
        B, T = x.shape[:2]
        device = x.device
        starts = cache.starts(B, device) if cache is not None else torch.zeros(B, dtype=torch.long, device=device)
        q_index = starts[:, None] + torch.arange(T, device=device)[None, :]  # (B, T) cache index of each query
        Tk = int(q_index.max()) + 1 if cache is not None else T
        if attention_mask is not None and tuple(attention_mask.shape) != (B, Tk):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but keys span ({B}, {Tk}): "
                "pass a mask over the cached and the new tokens")
        if position_ids is None:
            position_ids = q_index
        position_ids = position_ids.to(device).long()
        if position_ids.dim() == 1:
            position_ids = position_ids[None]
        if int(position_ids.max()) >= self.config.n_positions:
            raise ValueError(
                f"position {int(position_ids.max())} exceeds the model's context of "
                f"{self.config.n_positions} tokens; shorten the prompt or lower max_new_tokens")
        if int(position_ids.min()) < 0:
            raise ValueError(f"position_ids must be >= 0, got {int(position_ids.min())}")
        dtype = x.dtype
        # Additive bias (B, 1, T, Tk). A query sees key j iff j <= its cache index and the mask
        # keeps j: future keys get -inf, padded keys the dtype's finite minimum. A query that sees
        # no key at all (a left-padding position: `blind`) gets the minimum on every key, never
        # NaN; its attention output is then what transformers computes for it: zeros (its SDPA
        # path) or, with output_attentions, uniform weights over every key (its eager path).
        causal = torch.arange(Tk, device=device)[None, None, :] <= q_index[:, :, None]  # (B, T, Tk)
        bias = torch.zeros(B, 1, T, Tk, dtype=dtype, device=device)
        if attention_mask is not None:
            keep = attention_mask.to(device).bool()[:, None, :]  # (B, 1, Tk)
            bias.masked_fill_(~keep[:, None], torch.finfo(dtype).min)
            blind = ~(causal & keep).any(-1)  # (B, T) queries with no visible key
            future = ~causal & ~blind[:, :, None]
        else:
            future = ~causal
        bias.masked_fill_(future[:, None], float("-inf"))
        if attention_mask is not None:
            bias.masked_fill_(blind[:, None, :, None], torch.finfo(dtype).min)
            blind = blind if bool(blind.any()) else None
        else:
            blind = None

        sincos = self.rotary_table[position_ids]  # (B, T, rd) fp32
        sin, cos = sincos.chunk(2, dim=-1)
        if token_type_ids is not None:
            x = x + self.wte(token_type_ids.reshape(-1, T))
        x = self.drop(x)
        sin, cos = sin.to(dtype), cos.to(dtype)
        hidden, attentions = [], []
        for block in self.h:
            if output_hidden_states:
                hidden.append(x)
            x, weights = block(x, sin, cos, bias, cache, bool(output_attentions), blind)
            if output_attentions:
                attentions.append(weights)
        x = self.ln_f(x)
        if output_hidden_states:
            hidden.append(x)
        out = BaseModelOutputWithPast(x, cache if (use_cache or cache is not None) else None,
                                      tuple(hidden) if output_hidden_states else None,
                                      tuple(attentions) if output_attentions else None)
        return out.to_tuple() if return_dict is False else out


def _generation_mixin():
    from .generation import GenerationMixin  # a separate module: generation imports the sampler

    return GenerationMixin


class CodeGenForCausalLM(CodeGenPreTrainedModel, _generation_mixin()):
    """CodeGen with its language-modelling head (biased, untied `lm_head`)."""

    def __init__(self, config: CodeGenConfig):
        super().__init__()
        self.config = config
        self.transformer = CodeGenModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)  # biased, untied

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep: int | torch.Tensor = 0, *,
                cache: Cache | None = None):
        """The documented `CodeGenForCausalLM.forward`: CodeGenModel.forward's arguments, plus

        labels: (B, T) int64 next-token targets, shifted inside (labels = input_ids works); -100 is
            ignored. The loss is the mean cross-entropy in fp32 over the kept targets.
        logits_to_keep: int (0 = every position, n = the last n) or a 1-D int64 tensor of positions
            to keep (for every row); logits are (B, kept, vocab_size) fp32.

        Returns CausalLMOutputWithPast (a tuple with return_dict=False). Raises ValueError as
        CodeGenModel.forward does, and for labels whose shape differs from the kept logits'.
        """
        out = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids,
                               inputs_embeds, use_cache, output_attentions, output_hidden_states, True, cache=cache)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        h = out.last_hidden_state
        if isinstance(logits_to_keep, torch.Tensor):
            if logits_to_keep.dim() != 1 or logits_to_keep.is_floating_point() or logits_to_keep.dtype == torch.bool:
                raise ValueError("logits_to_keep as a tensor must be 1-D integer positions (kept for every row)")
            h = h[:, logits_to_keep.to(h.device)]
        elif logits_to_keep:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h).float()  # (B, kept, V) fp32
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels have shape {tuple(labels.shape)} but the logits kept cover "
                                 f"{tuple(logits.shape[:2])}: labels need logits for every position; "
                                 "drop logits_to_keep")
            shifted = F.pad(labels, (0, 1), value=-100)[:, 1:]  # target of position t is labels[t + 1]
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100)
        result = CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)
        return result.to_tuple() if return_dict is False else result

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
