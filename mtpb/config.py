"""Typed configuration of an MTPB run, and its conversion from Hydra's DictConfig (DESIGN §6).

The YAML lives in `conf/` (primary config `conf/mtpb.yaml`, groups `benchmark/mtpb`,
`sampling/mtpb`, `sandbox/mtpb`, presets `experiment/paper_mtpb`); `from_dictconfig` turns the
composed config into these frozen dataclasses, which is all the library code sees. Unknown keys are
errors that name the key, so a typo in an override never silently does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from codegen_model.generator import SamplingParams

MODES = ("multi_turn", "single_turn", "perplexity")
SCORINGS = ("official", "strict")


@dataclass(frozen=True)
class ModelConfig:
    """Which model answers: a released checkpoint or `tiny-random` (conf/model/*.yaml)."""

    name: str
    kind: str = "hub"  # "hub" | "tiny-random"
    path: str | None = None  # a local folder or Hub repo id
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    engine: dict = field(default_factory=dict)  # options for codegen_model's engine
    extra: dict = field(default_factory=dict)  # descriptive keys of conf/model/*.yaml (size, ...)


@dataclass(frozen=True)
class SamplingConfig:
    """The paper's MTPB sampling (CodeGen §4.3): top-p 0.95, T 0.2; n samples per test case
    (the paper: 40). `max_new_tokens=None` keeps each problem's own `max_gen_length` per turn
    (256 where missing), as the official sampler does."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    n: int = 1  # samples per test case
    max_new_tokens: int | None = None  # per turn; None = the problem's max_gen_length
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"sampling.n must be >= 1 sample per test case, got {self.n!r}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"sampling.max_new_tokens must be >= 1 (or null for each problem's "
                             f"max_gen_length), got {self.max_new_tokens}")
        self.params(1)  # validates temperature / top_p / top_k

    def params(self, max_new_tokens: int) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=max_new_tokens, seed=self.seed)


@dataclass(frozen=True)
class SandboxConfig:
    """Per-program limits. `timeout_s` is the official in-process limit (20 s); the sandbox's
    wall-clock deadline is `timeout_s + wall_grace_s`. None = the sandbox's own default."""

    timeout_s: float = 20.0
    wall_grace_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int | None = 4096
    file_size_mb: int | None = None
    output_bytes: int | None = None
    max_processes: int | None = None
    open_files: int | None = None
    workers: int | None = None  # parallel programs; None = one per core
    guard: bool = True  # the official script's reliability_guard before each program; false = without

    def __post_init__(self) -> None:
        if not isinstance(self.guard, bool):
            raise ValueError(f"sandbox.guard must be true or false, got {self.guard!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"sandbox.timeout_s must be > 0 seconds, got {self.timeout_s}")
        if not self.wall_grace_s >= 0:
            raise ValueError(f"sandbox.wall_grace_s must be >= 0 seconds, got {self.wall_grace_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"sandbox.workers must be >= 1 (or null for one per core), got {self.workers}")

    def limit_fields(self) -> dict[str, Any]:
        """The set limits under the sandbox's `Limits` field names."""
        out: dict[str, Any] = {"wall_s": float(self.timeout_s + self.wall_grace_s)}
        for name in ("cpu_s", "memory_mb", "file_size_mb", "output_bytes", "max_processes", "open_files"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class BenchmarkConfig:
    name: str = "mtpb"
    url: str | None = None  # None = the pinned salesforce/CodeGen commit (mtpb.data.MTPB_URL)
    sha256: str | None = None  # None = the published file's (mtpb.data.MTPB_SHA256)
    cache_dir: str | None = None  # where the download is kept; None = ~/.cache/codegen-harness/mtpb
    ks: tuple[int, ...] = (1, 10, 100)  # pass@k per test case, reported for k <= n when n > 1

    def __post_init__(self) -> None:
        bad = [k for k in self.ks if not isinstance(k, int) or k < 1]
        if bad:
            raise ValueError(f"benchmark.ks must be positive integers, got {list(self.ks)}")


@dataclass(frozen=True)
class PerplexityConfig:
    """`mode=perplexity`: prompt perplexity per turn given the history before it (mtpb.perplexity).

    `history="run"` (the paper's, Appendix E): the history holds the model's own completions, from
    `history_run` or else the multi-turn run of the model found under `search_dir` (None = the
    folder above `run_dir`, where the model's default run directories live); `"prompts"`: the
    prompts only."""

    history: str = "run"  # run | prompts
    history_run: str | None = None  # a multi-turn run dir whose sample-0 completions fill the history
    search_dir: str | None = None  # where to look for it; None = the parent of run_dir
    batch_size: int = 8  # sequences per forward pass

    def __post_init__(self) -> None:
        if self.history not in ("run", "prompts"):
            raise ValueError(f"perplexity.history must be 'run' (the model's own completions, as the paper) or "
                             f"'prompts' (prompts only), got {self.history!r}")
        if self.history == "prompts" and self.history_run:
            raise ValueError("perplexity.history=prompts takes no perplexity.history_run; drop one of them")
        if self.batch_size < 1:
            raise ValueError(f"perplexity.batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    run_dir: str
    sampling: SamplingConfig = SamplingConfig()
    sandbox: SandboxConfig = SandboxConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    perplexity: PerplexityConfig = PerplexityConfig()
    data_path: str | None = None  # an mtpb.jsonl; None = the pinned download
    mode: str = "multi_turn"  # multi_turn | single_turn | perplexity
    scoring: str = "official"  # official | strict (which verdict is `passed`; both are recorded)
    limit: int | None = None  # the first N (selected) problems
    problems: tuple[int, ...] | None = None  # problem ids; None = all
    exclude_errata: bool = False  # skip the test cases excludable errata cover (mtpb.errata)
    datasets_dir: str | None = None  # holds the CSV files problems 38 and 46 read
    progress: str = "auto"  # auto | bar | log | off
    log_every_s: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.progress not in ("auto", "bar", "log", "off"):
            raise ValueError(f"progress must be auto, bar, log or off, got {self.progress!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 (or null for all problems), got {self.limit}")


def from_dictconfig(cfg: Any) -> RunConfig:
    """The composed Hydra config (or a plain mapping of the same shape) as a `RunConfig`."""
    if not isinstance(cfg, Mapping):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    data = dict(cfg)
    data.pop("hydra", None)
    data.pop("shard", None)  # where this process runs (results.shard), not what the run is
    data.pop("experiment", None)
    model = dict(data.pop("model", None) or {})
    if "name" not in model:
        raise ValueError("no model selected: add model=<name> (e.g. model=codegen-350M-mono or model=tiny-random)")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    extra = {k: model.pop(k) for k in list(model) if k not in model_fields}
    model["extra"] = {**model.get("extra", {}), **extra}
    benchmark = dict(data.pop("benchmark", None) or {})
    if "ks" in benchmark:
        benchmark["ks"] = tuple(benchmark["ks"])
    problems = data.pop("problems", None)
    if problems is not None:
        items = [problems] if isinstance(problems, (str, int)) else list(problems)
        try:
            problems = tuple(int(str(p).removeprefix("mtpb/")) for p in items)
        except ValueError:
            raise ValueError(f"problems must be MTPB problem ids (e.g. [1,3] or [mtpb/1]), got {items}") from None
    return _build(RunConfig, data, "", model=_build(ModelConfig, model, "model."),
                  sampling=_build(SamplingConfig, data.pop("sampling", None) or {}, "sampling."),
                  sandbox=_build(SandboxConfig, data.pop("sandbox", None) or {}, "sandbox."),
                  benchmark=_build(BenchmarkConfig, benchmark, "benchmark."),
                  perplexity=_build(PerplexityConfig, data.pop("perplexity", None) or {}, "perplexity."),
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
