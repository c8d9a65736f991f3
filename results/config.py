"""The config schema parts both apps share, and their checks (docs/design.md §6).

Hydra structured configs (https://hydra.cc/docs/tutorials/structured_config/intro/): the
dataclasses below and in `humaneval/config.py` / `mtpb/config.py` are registered in Hydra's
ConfigStore as the schema of the primary configs in `conf/`, which hold the values. Hydra then
rejects a key that is not in the schema and a value that does not convert to the field's type
while it composes; `OmegaConf.to_object` turns the composed config into these dataclasses, whose
`__post_init__` checks each field's allowed range (`allowed` / `ok` in the field's metadata). One
vocabulary for limits: `sandbox.wall_s` is the sandbox's `Limits.wall_s` (seconds of wall clock).

`allowed_range(schema, "sampling.n")` gives the same text the check prints, so a type error found by
Hydra and a range error found here read alike: one line naming the key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Optional

from omegaconf import MISSING, OmegaConf

from codegen_model.generator import SamplingParams

MODEL_KINDS = ("hub", "tiny-random", "reference")
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
DTYPES = ("auto", "float32", "float16", "bfloat16")
PROGRESS = ("auto", "bar", "log", "off")


def setting(default: Any = MISSING, *, allowed: str, ok: Callable[[Any], bool] | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """A schema field with its allowed range: `allowed` is the text users read, `ok` the test
    (None = any value of the field's type). `factory` for list or dict defaults."""
    meta = {"allowed": allowed, "ok": ok}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def positive_int(v: Any) -> bool:
    return _is_int(v) and v >= 1


def non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def positive_float(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def check_fields(obj: Any, prefix: str) -> None:
    """Raise ValueError (one line: key, value, allowed range) for the first field of the dataclass
    `obj` whose value is NaN or outside its `allowed` range. Nested dataclasses check themselves."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None or dataclasses.is_dataclass(value):
            continue
        ok = f.metadata.get("ok")
        nan = isinstance(value, float) and math.isnan(value)
        if nan or (ok is not None and not ok(value)):
            raise ValueError(f"{prefix}{f.name}={value} is not allowed: {prefix}{f.name} must be "
                             f"{f.metadata['allowed']}")


def allowed_range(schema: type, key: str) -> str | None:
    """The `allowed` text of the field at dotted `key` of the dataclass `schema` (None if unknown)."""
    cls: Any = schema
    *parents, last = key.split(".")
    for name in parents:
        if not dataclasses.is_dataclass(cls):
            return None
        cls = _field_type(cls, name)
    if not dataclasses.is_dataclass(cls):
        return None
    f = {f.name: f for f in dataclasses.fields(cls)}.get(last)
    return f.metadata.get("allowed") if f is not None else None


def schema_keys(schema: type, key: str) -> list[str]:
    """The keys of the node at dotted `key`'s parent (for "did you mean")."""
    cls = schema
    for name in key.split(".")[:-1]:
        if not dataclasses.is_dataclass(cls):
            return []
        cls = _field_type(cls, name)
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def _field_type(cls: type, name: str) -> Any:
    import typing

    return typing.get_type_hints(cls).get(name)


@dataclass
class ModelConfig:
    """Which generator answers: a released checkpoint (conf/model/codegen-*.yaml), `local` (any
    CodeGen-architecture folder under its own name), `tiny-random`, or `reference` (HumanEval)."""

    PREFIX: ClassVar[str] = "model."
    name: str = setting(allowed="a name (the run directory's folder), e.g. model.name=my-finetune")
    kind: str = setting("hub", allowed=f"one of {', '.join(MODEL_KINDS)}", ok=lambda v: v in MODEL_KINDS)
    path: Optional[str] = setting(None, allowed="a local checkpoint folder or a Hub repo id (null = the preset's)")
    revision: Optional[str] = setting(None, allowed="a Hub branch, tag or commit (null = main)")
    dtype: str = setting("auto", allowed=f"one of {', '.join(DTYPES)}", ok=lambda v: v in DTYPES)
    device: str = setting("auto", allowed="auto, cpu, cuda or cuda:N",
                          ok=lambda v: v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()))
    engine: Dict[str, Any] = setting(allowed="options of codegen_model's engine (slots, ...)", factory=dict)
    # The documented size of a preset (descriptive: the loader reads the checkpoint's own config.json;
    # a loaded checkpoint whose parameter count differs from n_params is warned about).
    n_layer: Optional[int] = setting(None, allowed="an integer >= 1", ok=positive_int)
    n_embd: Optional[int] = setting(None, allowed="an integer >= 1", ok=positive_int)
    n_head: Optional[int] = setting(None, allowed="an integer >= 1", ok=positive_int)
    rotary_dim: Optional[int] = setting(None, allowed="an integer >= 1", ok=positive_int)
    n_params: Optional[int] = setting(None, allowed="an integer >= 1 (parameters of the preset)", ok=positive_int)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)

    @property
    def extra(self) -> dict[str, Any]:
        """The descriptive size facts that are set (for the manifest)."""
        return {k: getattr(self, k) for k in ("n_layer", "n_embd", "n_head", "rotary_dim", "n_params")
                if getattr(self, k) is not None}


@dataclass
class SamplingConfig:
    """Nucleus sampling as in the CodeGen paper (§4.1, §4.3): top-p 0.95 and T 0.2 by default;
    `temperature=0` is greedy. `max_new_tokens` null = the benchmark's own budget (MTPB: each
    problem's max_gen_length)."""

    PREFIX: ClassVar[str] = "sampling."
    temperature: float = setting(0.2, allowed="a finite number >= 0 (0 = greedy)",
                                 ok=lambda v: math.isfinite(v) and v >= 0)
    top_p: float = setting(0.95, allowed="a number in (0, 1] (1 = off)", ok=lambda v: 0 < v <= 1)
    top_k: int = setting(0, allowed="an integer >= 0 (0 = off)", ok=non_negative_int)
    n: int = setting(1, allowed="an integer >= 1 (samples per problem or test case)", ok=positive_int)
    max_new_tokens: Optional[int] = setting(None, allowed="an integer >= 1 (or null for the benchmark's own)",
                                            ok=positive_int)
    seed: int = setting(0, allowed="an integer >= 0", ok=non_negative_int)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)

    def params(self, max_new_tokens: int | None = None) -> SamplingParams:
        """The engine's `SamplingParams`, with `max_new_tokens` (else this config's) tokens."""
        budget = max_new_tokens if max_new_tokens is not None else self.max_new_tokens
        if budget is None:
            raise ValueError("sampling.max_new_tokens is null and no per-problem budget was given")
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=budget, seed=self.seed)


@dataclass
class SandboxConfig:
    """Per-program limits under the sandbox's `Limits` names (docs/sandbox.md); null = the
    sandbox's default. `wall_s` is the wall-clock limit after which everything is killed."""

    PREFIX: ClassVar[str] = "sandbox."
    wall_s: float = setting(3.0, allowed="a number of seconds > 0", ok=positive_float)
    cpu_s: Optional[float] = setting(None, allowed="a number of seconds > 0 (or null)", ok=positive_float)
    memory_mb: Optional[int] = setting(None, allowed="an integer >= 1 MB (or null)", ok=positive_int)
    file_size_mb: Optional[int] = setting(None, allowed="an integer >= 1 MB (or null)", ok=positive_int)
    output_bytes: Optional[int] = setting(None, allowed="an integer >= 1 (or null)", ok=positive_int)
    max_processes: Optional[int] = setting(None, allowed="an integer >= 1 (or null)", ok=positive_int)
    open_files: Optional[int] = setting(None, allowed="an integer >= 1 (or null)", ok=positive_int)
    workers: Optional[int] = setting(None, allowed="an integer >= 1 (or null for one per core)", ok=positive_int)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)

    def limit_fields(self) -> dict[str, Any]:
        """The set limits as keyword arguments of `sandbox.Limits`."""
        out: dict[str, Any] = {"wall_s": float(self.wall_s)}
        for name in ("cpu_s", "memory_mb", "file_size_mb", "output_bytes", "max_processes", "open_files"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        return out


@dataclass
class ShardConfig:
    """Where this process runs (results.shard), not what the run is: not part of `RunConfig`."""

    PREFIX: ClassVar[str] = "shard."
    rank: Optional[int] = setting(None, allowed="an integer >= 0 (or null: from RANK)", ok=non_negative_int)
    world: Optional[int] = setting(None, allowed="an integer >= 1 (or null: from WORLD_SIZE)", ok=positive_int)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)


def threads_ok(v: str) -> bool:
    return v == "auto" or (v.isdigit() and int(v) >= 1)


@dataclass
class CommonRunConfig:
    """The keys every app has. `problems` and `limit` select the problems (and name the run dir)."""

    PREFIX: ClassVar[str] = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    run_dir: str = setting(allowed="a directory")
    limit: Optional[int] = setting(None, allowed="an integer >= 1 (or null for all problems)", ok=positive_int)
    problems: Optional[Any] = setting(None, allowed="a list of problem ids, e.g. [0,3] (or null for all)")
    progress: str = setting("auto", allowed=f"one of {', '.join(PROGRESS)}", ok=lambda v: v in PROGRESS)
    log_every_s: float = setting(30.0, allowed="a number of seconds > 0", ok=positive_float)
    threads: str = setting("auto", allowed="auto (half the cores when generating on the CPU, leaving the "
                           "rest to the sandbox workers) or an integer >= 1", ok=threads_ok)
    per_problem: bool = setting(False, allowed="true (the end-of-run summary adds a table of every problem) or false")
    shard: ShardConfig = field(default_factory=ShardConfig)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON/YAML-able form of a run config (for the run directory's config.yaml); the shard
    and threads (where and how fast this process runs, not what the run is) and the summary's
    per-problem table (what it prints) are left out."""
    data = _plain(dataclasses.asdict(cfg))
    data.pop("shard", None)
    data.pop("threads", None)
    data.pop("per_problem", None)
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def selection_suffix(limit: Any, problems: Any) -> str:
    """The run-dir suffix for a problem selection: "" for every problem (so run dirs of full runs
    keep their names), "-first5", "-problems0_3", "-problems<8 hex of the sha256>" for long lists."""
    out = ""
    if problems is not None:
        items = [problems] if isinstance(problems, (str, int)) else list(problems)
        ids = "_".join(str(p).split("/")[-1] for p in items)
        if len(ids) > 40 or not all(c.isalnum() or c in "_-." for c in ids):
            import hashlib

            ids = hashlib.sha256(",".join(map(str, items)).encode()).hexdigest()[:8]
        out += f"-problems{ids}"
    if limit is not None:
        out += f"-first{limit}"
    return out


OmegaConf.register_new_resolver("selection", selection_suffix, replace=True)


def known_models(conf_dir: Path = CONF_DIR) -> list[str]:
    """The model names `model=` accepts: the files of conf/model/."""
    return sorted(p.stem for p in (conf_dir / "model").glob("*.yaml"))


def shared_data(*parts: str) -> str | None:
    """`$CODEGEN_SHARED_DATA/<parts>` when the variable is set and that path exists, else None.

    CODEGEN_SHARED_DATA names the folder holding the offline data (mtpb/mtpb.jsonl and the CodeGen
    tokenizer in codegen-tokenizer/); the README says where they come from."""
    root = os.environ.get("CODEGEN_SHARED_DATA")
    if not root:
        return None
    path = os.path.join(os.path.expanduser(root), *parts)
    return path if os.path.exists(path) else None


__all__ = ["CONF_DIR", "CommonRunConfig", "ModelConfig", "SamplingConfig", "SandboxConfig", "ShardConfig",
           "allowed_range", "check_fields", "known_models", "schema_keys", "setting", "shared_data", "to_dict"]
