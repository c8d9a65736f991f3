"""CodeGen configuration, read from a checkpoint's `config.json` (DESIGN §2).

Every size comes from the checkpoint; the defaults below are codegen-350M's, for convenience only.
Field names follow the Hugging Face `config.json` so files round-trip unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path


class ConfigError(ValueError):
    """A config.json that cannot describe a CodeGen model; the message names the field."""


@dataclass
class CodeGenConfig:
    vocab_size: int = 51200  # the embedding rows; ids >= the tokenizer's size (50295) are padding
    n_positions: int = 2048  # context length (rotary table size)
    n_ctx: int = 2048  # legacy duplicate of n_positions in released configs
    n_embd: int = 1024
    n_layer: int = 20
    n_head: int = 16
    rotary_dim: int | None = 32  # rotary on the first rotary_dim dims of each head; None = all
    n_inner: int | None = None  # MLP width; None = 4 * n_embd
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    resid_pdrop: float = 0.0
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    initializer_range: float = 0.02
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    tie_word_embeddings: bool = False

    MP_NUM = 4  # qkv_proj is packed in 4 model-parallel groups, each [q | v | k]

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
        if self.n_embd % self.MP_NUM or self.n_head % self.MP_NUM:
            raise ConfigError(
                f"config fields n_embd={self.n_embd} and n_head={self.n_head} must be divisible "
                f"by {self.MP_NUM}: CodeGen packs qkv_proj in {self.MP_NUM} groups")
        if self.rotary_dim is not None:
            if self.rotary_dim % 2 or not 0 < self.rotary_dim <= self.head_dim:
                raise ConfigError(
                    f"config field rotary_dim={self.rotary_dim} must be even and in "
                    f"(0, head_dim={self.head_dim}]")
        if self.n_inner is not None and self.n_inner < 1:
            raise ConfigError(f"config field n_inner must be a positive integer or null, got {self.n_inner}")
        if self.activation_function != "gelu_new":
            raise ConfigError(
                f"config field activation_function={self.activation_function!r} is not supported; "
                "CodeGen checkpoints use 'gelu_new'")
        if self.tie_word_embeddings:
            raise ConfigError("config field tie_word_embeddings=true: CodeGen's lm_head is untied")

    @classmethod
    def from_dict(cls, data: dict) -> "CodeGenConfig":
        model_type = data.get("model_type", "codegen")
        if model_type != "codegen":
            raise ConfigError(f"config field model_type={model_type!r}: this harness loads 'codegen' models")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> "CodeGenConfig":
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
            return cls.from_dict(data)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        return {"model_type": "codegen", "architectures": ["CodeGenForCausalLM"], **asdict(self)}

    def n_params(self) -> int:
        """Parameter count (embeddings and the biased lm_head included)."""
        E, V, I, L = self.n_embd, self.vocab_size, self.inner_dim, self.n_layer
        block = 2 * E + 3 * E * E + E * E + (E * I + I) + (I * E + E)
        return V * E + L * block + 2 * E + (V * E + V)
