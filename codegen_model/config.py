"""CodeGen configuration (docs/design.md §2): the documented `CodeGenConfig`, read from and written to a
checkpoint's `config.json`.

Source followed: the Transformers documentation page of CodeGen ("CodeGenConfig") and
`transformers/models/codegen/configuration_codegen.py`. Every field and default is the documented
one (the defaults describe a 6B-sized model, `Salesforce/codegen-6B`-like with vocab_size 50400);
the harness never relies on them: every size of a real model comes from its checkpoint. Field
names follow the Hugging Face `config.json`, so files round-trip unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


class ConfigError(ValueError):
    """A config.json that cannot describe a CodeGen model; the message names the field."""


# The activations `activation_function` may name, as transformers' ACT2FN defines them (the
# documentation lists relu, silu, gelu, tanh and gelu_new; the others are ACT2FN aliases).
ACTIVATIONS = ("gelu_new", "gelu", "relu", "silu", "swish", "tanh", "gelu_pytorch_tanh", "gelu_fast",
               "quick_gelu", "sigmoid", "linear")

# The released codegen-350M config.json sizes (every 350M checkpoint: nl, multi, mono).
CODEGEN_350M = dict(vocab_size=51200, n_positions=2048, n_ctx=2048, n_embd=1024, n_layer=20, n_head=16,
                    rotary_dim=32)


@dataclass
class CodeGenConfig:
    """The architecture of a CodeGen model; the defaults are the documented ones.

    Sizes: `vocab_size` embedding rows (the released checkpoints have 51200, of which the
    tokenizer uses 50295; the rest are padding rows), `n_positions` the context in tokens (the
    rotary table's length), `n_ctx` unused (kept for old checkpoints), `n_embd` the hidden size,
    `n_layer` blocks, `n_head` attention heads of `n_embd // n_head` dims, `rotary_dim` the leading
    dims of each head that get rotary position embeddings (None: all), `n_inner` the MLP width
    (None: 4 * n_embd). `activation_function` one of ACTIVATIONS. `resid_pdrop`, `embd_pdrop`,
    `attn_pdrop` dropout probabilities, applied in train mode only. `layer_norm_epsilon` of every
    LayerNorm; `initializer_range` the std of the normal weight init. `use_cache`: forward returns
    the keys/values cache unless told otherwise. `bos_token_id`/`eos_token_id` (50256,
    `<|endoftext|>`); `tie_word_embeddings` must stay False (CodeGen's lm_head is untied).

    Raises ConfigError (a ValueError) naming the field for values that cannot describe a model.
    """

    vocab_size: int = 50400
    n_positions: int = 2048
    n_ctx: int = 2048
    n_embd: int = 4096
    n_layer: int = 28
    n_head: int = 16
    rotary_dim: int | None = 64
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.0
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    tie_word_embeddings: bool = False

    MP_NUM = 4  # qkv_proj is packed in 4 model-parallel groups, each [q | v | k]

    def __getattr__(self, name: str):
        """transformers' generic config keys given to the constructor (see GENERIC_KEYS)."""
        extra = self.__dict__.get("extra") or {}
        if name in extra:
            return extra[name]
        raise AttributeError(f"CodeGenConfig has no attribute {name!r}")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def inner_dim(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def validate(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"config field {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"config field n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.n_embd % self.MP_NUM:
            raise ConfigError(
                f"config field n_embd={self.n_embd} must be divisible by {self.MP_NUM}: CodeGen packs "
                f"qkv_proj in {self.MP_NUM} groups")
        if self.rotary_dim is not None:
            if (not isinstance(self.rotary_dim, int) or isinstance(self.rotary_dim, bool) or self.rotary_dim % 2
                    or not 0 < self.rotary_dim <= self.head_dim):
                raise ConfigError(
                    f"config field rotary_dim={self.rotary_dim} must be even and in "
                    f"(0, head_dim={self.head_dim}]")
        if self.n_inner is not None and (not isinstance(self.n_inner, int) or self.n_inner < 1):
            raise ConfigError(f"config field n_inner must be a positive integer or null, got {self.n_inner}")
        if self.activation_function not in ACTIVATIONS:
            raise ConfigError(
                f"config field activation_function={self.activation_function!r} is not supported; "
                f"use one of {', '.join(ACTIVATIONS)} (CodeGen checkpoints use 'gelu_new')")
        for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"config field {name} must be a probability in [0, 1], got {value!r}")
        if self.tie_word_embeddings:
            raise ConfigError("config field tie_word_embeddings=true: CodeGen's lm_head is untied "
                              "(every released checkpoint has its own lm_head); set it to false")

    # transformers' attribute_map: the generic names of the sizes
    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def max_position_embeddings(self) -> int:
        return self.n_positions

    @classmethod
    def from_dict(cls, data: dict, **overrides) -> "CodeGenConfig":
        """From a config.json's mapping; transformers' generic keys (GENERIC_KEYS, e.g.
        `transformers_version`, `torch_dtype`, `pad_token_id`) are kept in `extra`, other keys ignored. `overrides` are
        fields to replace; an unknown override raises ConfigError."""
        model_type = data.get("model_type", "codegen")
        if model_type != "codegen":
            raise ConfigError(f"config field model_type={model_type!r}: this harness loads 'codegen' models")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"CodeGenConfig has no field {unknown[0]!r}; the fields are {', '.join(sorted(known))}")
        keep = known | GENERIC_KEYS
        return cls(**{**{k: v for k, v in data.items() if k in keep}, **overrides})

    @classmethod
    def from_json(cls, path: str | Path, **overrides) -> "CodeGenConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no config.json; a checkpoint folder needs one") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e}); re-download the checkpoint") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        try:
            return cls.from_dict(data, **overrides)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, revision: str | None = None,
                        **overrides) -> "CodeGenConfig":
        """The config of a checkpoint: a local folder in the Hub layout (or a config.json path), or a
        Hub repo id such as "Salesforce/codegen-350M-mono" (fetched once into the Hugging Face
        cache; `revision` a branch, tag or commit). `overrides` replace fields, as in transformers.

        Raises CheckpointError (folder or repo not found, offline without a cached copy) or
        ConfigError (the file cannot describe a CodeGen model), each one line naming the fix.
        """
        from .hub import resolve_checkpoint  # lazily: the config itself needs no Hub client

        path = Path(pretrained_model_name_or_path)
        if path.is_file():
            return cls.from_json(path, **overrides)
        folder = resolve_checkpoint(pretrained_model_name_or_path, revision).folder
        return cls.from_json(Path(folder) / "config.json", **overrides)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `config.json` (transformers reads it) into `save_directory`, created if needed;
        returns the file's path."""
        folder = Path(save_directory)
        if folder.is_file():
            raise ConfigError(f"{folder} is a file; save_pretrained needs a folder")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    def to_dict(self) -> dict:
        """Every field plus `model_type`, `architectures` and the generic keys given, as config.json
        holds them."""
        extra = {k: v for k, v in (self.__dict__.get("extra") or {}).items()
                 if k not in ("model_type", "architectures")}
        return {"model_type": "codegen", "architectures": ["CodeGenForCausalLM"], **extra, **asdict(self)}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def n_params(self) -> int:
        """Parameter count (embeddings and the biased lm_head included)."""
        E, V, F, L = self.n_embd, self.vocab_size, self.inner_dim, self.n_layer  # F: the MLP's inner width
        block = 2 * E + 3 * E * E + E * E + (E * F + F) + (F * E + E)
        return V * E + L * block + 2 * E + (V * E + V)


# transformers' generic `PreTrainedConfig` keys: the constructor accepts them (kept in `extra`,
# readable as attributes, written back by to_dict) so that configs built for transformers build
# here too; `pad_token_id` is generate's default pad id, `output_attentions`,
# `output_hidden_states` and `return_dict` the forward's defaults. Any other unknown name raises.
GENERIC_KEYS = frozenset({
    "pad_token_id", "output_attentions", "output_hidden_states", "return_dict", "dtype", "torch_dtype",
    "transformers_version", "architectures", "model_type", "_name_or_path", "name_or_path", "id2label",
    "label2id", "problem_type", "is_encoder_decoder", "chunk_size_feed_forward", "tokenizer_class",
    "task_specific_params", "gradient_checkpointing", "scale_attn_weights", "attn_implementation",
    "summary_activation", "summary_first_dropout", "summary_proj_to_labels", "summary_type",
    "summary_use_proj"})
_dataclass_init = CodeGenConfig.__init__


def _init(self, *args, **kwargs) -> None:
    known = {f.name for f in fields(CodeGenConfig)}
    unknown = sorted(k for k in kwargs if k not in known and k not in GENERIC_KEYS)
    if unknown:
        raise ConfigError(f"CodeGenConfig has no field {unknown[0]!r}; the fields are {', '.join(sorted(known))}")
    self.extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in known}
    _dataclass_init(self, *args, **kwargs)


_init.__doc__ = _dataclass_init.__doc__
CodeGenConfig.__init__ = _init
