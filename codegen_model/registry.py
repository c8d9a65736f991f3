"""From a model spec (conf/model/*.yaml, as a dataclass) to a loaded model, tokenizer and generator.

`load(spec)` resolves "auto" dtype/device, loads the checkpoint (or builds `tiny-random`) and
records what a run manifest needs (`ModelInfo`: repo, resolved commit, weights hash, dtype,
device, parameter count). The last loaded model is kept per process, so the jobs of a Hydra
multirun that share a model (e.g. a temperature sweep) load it once; asking for a different
model releases the previous one first, so a sweep over sizes never holds two at a time.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator, Literal

import torch

from .hub import resolve_checkpoint
from .model import CodeGenForCausalLM
from .tokenizer import CodeGenTokenizer, load_tokenizer_folder
from .weights import check_device, load_from_folder, resolve_dtype, weights_hash

log = logging.getLogger(__name__)

KINDS = ("hub", "tiny-random")
# Parameters of the released checkpoints by size (their config.json; conf/model/*.yaml documents the
# same numbers and tests/unit/test_config.py checks both against the architecture).
RELEASED_N_PARAMS = {"350M": 356_712_448, "2B": 2_779_356_160, "6B": 7_064_213_504, "16B": 16_032_155_648}
# The CodeGen tokenizer, used for a checkpoint folder without tokenizer files (docs/design.md §6).
SHARED_TOKENIZER = "codegen-tokenizer"


def load_model(name_or_path: str | os.PathLike, dtype: str | torch.dtype = torch.float32,
               device: str | torch.device = "cpu", revision: str | None = None) -> CodeGenForCausalLM:
    """Our CodeGen with the weights of a local checkpoint folder or a Hub repo id (cached), frozen
    in eval mode (`weights.load_from_folder`); raises CheckpointError / DeviceError as it does."""
    checkpoint = resolve_checkpoint(name_or_path, revision)
    return load_from_folder(checkpoint.folder, CodeGenForCausalLM, dtype, device, source=checkpoint.source)


def documented_n_params(name: str) -> int | None:
    """The parameter count of the released checkpoint called `name` (codegen-350M-mono, ...), else None."""
    parts = name.split("-")
    return RELEASED_N_PARAMS.get(parts[1]) if len(parts) == 3 and parts[0] == "codegen" else None


def check_size(name: str, n_params: int) -> None:
    """Warn when a model named after a released checkpoint does not have that checkpoint's size
    (e.g. model=codegen-350M-mono model.path=<another folder>): its results would be filed under a
    name they do not belong to."""
    expected = documented_n_params(name)
    if expected is not None and n_params != expected:
        log.warning("model %s: the loaded weights have %s parameters, but %s has %s; results are filed "
                    "under %s. For another checkpoint use model=local model.path=DIR model.name=NAME",
                    name, f"{n_params:,}", name, f"{expected:,}", name)


def _tokenizer_for(folder) -> CodeGenTokenizer:
    """The folder's tokenizer, else $CODEGEN_SHARED_DATA/codegen-tokenizer (the CodeGen tokenizer of
    Salesforce/codegen-350M-mono, which every released checkpoint shares)."""
    from pathlib import Path

    names = ("tokenizer.json", "vocab.json")
    if not any((Path(folder) / n).is_file() for n in names) and os.environ.get("CODEGEN_SHARED_DATA"):
        shared = Path(os.environ["CODEGEN_SHARED_DATA"]).expanduser() / SHARED_TOKENIZER
        if shared.is_dir():
            log.info("%s has no tokenizer files; using %s", folder, shared)
            return load_tokenizer_folder(shared)
    return load_tokenizer_folder(folder)


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load. `path`: a local checkpoint folder or a Hub repo id (kind "hub")."""

    name: str
    kind: Literal["hub", "tiny-random"] = "hub"
    path: str | None = None
    revision: str | None = None  # Hub branch, tag or commit; None = main
    dtype: str = "auto"  # auto (float16 on CUDA, float32 on CPU) | float32 | float16 | bfloat16
    device: str = "auto"  # auto (cuda:LOCAL_RANK when CUDA is available, else cpu) | cpu | cuda:N

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "hub" and not self.path:
            raise ValueError(f"model {self.name!r}: kind 'hub' needs path (a Hub repo id such as "
                             "Salesforce/codegen-350M-mono, or a local checkpoint folder)")


@dataclass
class ModelInfo:
    """What a run's manifest records about the model behind a generator (the one description of a
    model in the project: the loader fills every field; a generator that is not a checkpoint, such as
    HumanEval's reference solutions, gives its name and kind and leaves the rest empty)."""

    name: str
    kind: str = ""
    path: str = ""  # the repo id or local folder as given ("tiny-random" for the tiny model)
    folder: str = ""  # the local folder the weights were read from ("" for tiny-random)
    revision: str | None = None  # the resolved Hub commit when known, else the revision asked for
    weights_hash: str = ""
    dtype: str = ""
    device: str = ""
    n_params: int = 0
    load_s: float = 0.0  # seconds; timing, not identity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelInfo":
        """The inverse of `to_dict` (unknown keys are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class LoadedModel:
    model: CodeGenForCausalLM
    tokenizer: CodeGenTokenizer
    info: ModelInfo

    def __iter__(self) -> Iterator:  # `model, tokenizer = load(spec)` also works
        return iter((self.model, self.tokenizer))


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        # one process per GPU: torchrun's LOCAL_RANK, or the task's index on its node under SLURM
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))
        return f"cuda:{local % torch.cuda.device_count()}"
    return "cpu"


def resolve_spec_dtype(dtype: str, device: str) -> torch.dtype:
    return resolve_dtype(dtype, device)  # auto: fp16 on CUDA (the released weights), fp32 on CPU


_loaded: dict[tuple, LoadedModel] = {}


def clear_cache() -> None:
    """Drop the kept model (and free its device memory once nothing else holds it)."""
    _loaded.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load(spec: ModelSpec) -> LoadedModel:
    """The model, tokenizer and info of `spec`; reuses the last load when it was the same model."""
    device = resolve_device(spec.device)
    dtype = resolve_spec_dtype(spec.dtype, device)
    key = (spec.kind, spec.path, spec.revision, str(dtype), device)
    if key in _loaded:
        log.info("model %s: reusing the loaded %s", spec.name, spec.path or spec.kind)
        kept = _loaded[key]  # same weights; the info carries this spec's name
        return replace(kept, info=replace(kept.info, name=spec.name))
    clear_cache()
    t0 = time.perf_counter()
    if spec.kind == "tiny-random":
        from . import tiny

        check_device(device, dtype)
        model = tiny.tiny_model(dtype=dtype, device=device)
        tokenizer = tiny.tiny_tokenizer()
        path, folder, revision, digest = spec.path or "tiny-random", "", None, tiny.state_hash(model)
    else:
        checkpoint = resolve_checkpoint(spec.path, spec.revision)
        model = load_from_folder(checkpoint.folder, CodeGenForCausalLM, dtype, device, source=checkpoint.source)
        tokenizer = _tokenizer_for(checkpoint.folder)
        path, folder = spec.path, str(checkpoint.folder)
        revision, digest = checkpoint.commit or spec.revision, weights_hash(checkpoint.folder)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"model {spec.name}: the tokenizer has {tokenizer.vocab_size} tokens but the "
                         f"model only {model.config.vocab_size} embedding rows; they do not belong together")
    info = ModelInfo(name=spec.name, kind=spec.kind, path=path, folder=folder, revision=revision,
                     weights_hash=digest, dtype=str(dtype).removeprefix("torch."), device=device,
                     n_params=sum(p.numel() for p in model.parameters()),
                     load_s=round(time.perf_counter() - t0, 3))
    log.info("model %s: %s params, %s on %s, loaded in %.1f s", spec.name, f"{info.n_params:,}",
             info.dtype, device, info.load_s)
    check_size(spec.name, info.n_params)
    _loaded[key] = LoadedModel(model, tokenizer, info)
    return _loaded[key]


def build_generator(spec: ModelSpec, **engine_options):
    """The sampling engine (a `Generator`) on the model of `spec`; `model_info` is set on it."""
    from .engine import Engine  # lazily: loading a model does not need the engine

    loaded = load(spec)
    cfg = loaded.model.config
    if cfg.activation_function not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast") or cfg.n_head % cfg.MP_NUM:
        raise ValueError(f"model {spec.name}: the engine computes CodeGen's released architecture (tanh GELU, "
                         f"n_head divisible by {cfg.MP_NUM}); this config has activation_function="
                         f"{cfg.activation_function!r}, n_head={cfg.n_head}: use the model's own generate()")
    engine = Engine(loaded.model, loaded.tokenizer, **engine_options)
    if getattr(engine, "model_info", None) is None:
        engine.model_info = loaded.info.to_dict()
    return engine
