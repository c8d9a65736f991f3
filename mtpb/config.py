"""The typed configuration of an MTPB run: its Hydra structured-config schema (docs/design.md §6).

`RunConfig` is registered in Hydra's ConfigStore as `mtpb_schema`, the first entry of
`conf/mtpb.yaml`'s defaults list, so Hydra checks every key and type while it composes; the YAML in
`conf/` (groups `benchmark/mtpb`, `sampling/mtpb`, `sandbox/mtpb`, presets `experiment/paper_mtpb`)
holds the values. `from_dictconfig` converts the composed config with `OmegaConf.to_object` into
these dataclasses (each checks its ranges). The parts both apps share are in `results/config.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, List, Optional

from hydra.core.config_store import ConfigStore

from results.aliases import Alias
from results.config import (
    CommonRunConfig,
    ModelConfig,
    SamplingConfig,
    check_fields,
    positive_int,
    setting,
    shared_data,
    to_dict,
)
from results.config import SandboxConfig as SharedSandboxConfig

MODES = ("multi_turn", "single_turn", "perplexity")
SCORINGS = ("official", "strict")
# Old override keys, still accepted (results/aliases.py rewrites them; docs/design.md §6). Before,
# `sandbox.timeout_s` was the official in-process limit and the sandbox killed at timeout_s + wall_grace_s.
ALIASES = (
    Alias("sandbox.timeout_s", "sandbox.official_timeout_s"),
    Alias("sandbox.wall_grace_s", "sandbox.wall_s", plus="sandbox.official_timeout_s"),
)


@dataclass
class SandboxConfig(SharedSandboxConfig):
    """The official script's limits: `official_timeout_s` (20 s) is enforced in-process as
    mtpb_exec.py does (judged by the last print); the sandbox kills at `wall_s` (by default 10 s
    later), for a program that ignores the official timer."""

    wall_s: float = setting(30.0, allowed="a number of seconds > sandbox.official_timeout_s",
                            ok=lambda v: math.isfinite(v) and v > 0)
    official_timeout_s: float = setting(20.0, allowed="a number of seconds > 0",
                                        ok=lambda v: math.isfinite(v) and v > 0)
    memory_mb: Optional[int] = setting(4096, allowed="an integer >= 1 MB (or null)", ok=positive_int)
    guard: bool = setting(True, allowed="true (the official mtpb_exec.py reliability_guard before each program) "
                                        "or false")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.wall_s > self.official_timeout_s:
            raise ValueError(f"sandbox.wall_s={self.wall_s} is not allowed: sandbox.wall_s must be > "
                             f"sandbox.official_timeout_s ({self.official_timeout_s}), the in-process limit")


@dataclass
class BenchmarkConfig:
    PREFIX = "benchmark."
    name: str = setting("mtpb", allowed="mtpb", ok=lambda v: v == "mtpb")
    url: Optional[str] = setting(None, allowed="a URL (null = the pinned salesforce/CodeGen commit)")
    sha256: Optional[str] = setting(None, allowed="64 hex digits (null = the published file's)",
                                    ok=lambda v: len(v) == 64 and all(c in "0123456789abcdef" for c in v.lower()))
    cache_dir: Optional[str] = setting(None, allowed="a folder (null = ~/.cache/codegen-harness/mtpb)")
    ks: List[int] = setting(allowed="a list of integers >= 1", factory=lambda: [1, 10, 100],
                            ok=lambda v: all(positive_int(k) for k in v))

    def __post_init__(self) -> None:
        self.ks = tuple(self.ks)
        check_fields(self, self.PREFIX)


@dataclass
class PerplexityConfig:
    """`mode=perplexity`: prompt perplexity per turn given the history before it (mtpb.perplexity).

    `history="run"` (the paper's, Appendix E): the history holds the model's own completions, from
    `history_run` or else the multi-turn run of the model found under `search_dir` (None = the
    folder above `run_dir`, where the model's default run directories live); `"prompts"`: the
    prompts only."""

    PREFIX = "perplexity."
    history: str = setting("run", allowed="run (the model's own completions, as the paper) or prompts",
                           ok=lambda v: v in ("run", "prompts"))
    history_run: Optional[str] = setting(None, allowed="a multi-turn run directory (or null = find it)")
    search_dir: Optional[str] = setting(None, allowed="a folder (or null = the parent of run_dir)")
    batch_size: int = setting(8, allowed="an integer >= 1 (sequences per forward pass)", ok=positive_int)

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)
        if self.history == "prompts" and self.history_run:
            raise ValueError("perplexity.history=prompts is not allowed with perplexity.history_run: drop one of them")


@dataclass
class RunConfig(CommonRunConfig):
    """One MTPB run: the CodeGen paper's protocol by default (§4.3: top-p 0.95, T 0.2)."""

    ALIASES: ClassVar[tuple[Alias, ...]] = ALIASES
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    data_path: Optional[str] = setting(None, allowed="an mtpb.jsonl (null = $CODEGEN_SHARED_DATA/mtpb/mtpb.jsonl, "
                                       "else the pinned download)")
    mode: str = setting("multi_turn", allowed=f"one of {', '.join(MODES)}", ok=lambda v: v in MODES)
    scoring: str = setting("official", allowed=f"one of {', '.join(SCORINGS)}", ok=lambda v: v in SCORINGS)
    exclude_errata: bool = setting(False, allowed="true or false (skip the test cases with dataset errata)")
    datasets_dir: Optional[str] = setting(None, allowed="a folder with the CSV files problems 38 and 46 read")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.problems is not None:
            items = [self.problems] if isinstance(self.problems, (str, int)) else list(self.problems)
            try:
                self.problems = tuple(int(str(p).removeprefix("mtpb/")) for p in items)
            except ValueError:
                raise ValueError(f"problems={items} is not allowed: problems must be MTPB problem ids "
                                 "(e.g. [1,3] or [mtpb/1])") from None
        if self.data_path is None:  # offline data first (the README's CODEGEN_SHARED_DATA)
            self.data_path = shared_data("mtpb", "mtpb.jsonl")


ConfigStore.instance().store(name="mtpb_schema", node=RunConfig)


def from_dictconfig(cfg: Any) -> RunConfig:
    """The composed Hydra config (or a plain mapping of the same shape) as a checked `RunConfig`.

    Raises ValueError (one line naming the key and its allowed range) for a missing, mistyped,
    unknown or out-of-range value."""
    from results.app import convert

    return convert(cfg, RunConfig)


__all__ = ["ALIASES", "MODES", "SCORINGS", "BenchmarkConfig", "ModelConfig", "PerplexityConfig", "RunConfig",
           "SamplingConfig", "SandboxConfig", "from_dictconfig", "to_dict"]
