"""Finding and reading run directories for reports (docs/design.md §5).

A directory is a run when it holds manifest.json. `find_runs` walks the given paths (a run, or any
folder above runs) and names each given path that holds no run. A Hydra job folder (one with
`.hydra/config.yaml`, e.g. each job of a multirun sweep folder) points at its run through the
`run_dir` of that config (resolved here), so a sweep folder finds its runs even when the run directories
live elsewhere (the benchmarks' run_dir is deterministic from the config, for resuming).
`load_run` reads a run robustly: a run in progress or killed is read up to its last complete line
(shard files included) and marked incomplete with the reasons.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import results.aliases  # noqa: F401  (registers ${alias_plus:...}, which a job's run_dir may refer to)
from results.metrics import executions_frame
from results.records import Manifest, RecordError
from results.store import MANIFEST_FILE, RunStore

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One run directory, read for reporting."""

    path: Path
    manifest: Manifest
    executions: pd.DataFrame  # see `metrics.executions_frame`
    n_samples: int
    n_new_tokens: int
    generate_s: float  # sum of per-sample generation times
    metrics: dict | None  # metrics.json, when the run finished
    incomplete: list[str] = field(default_factory=list)  # why the run is not finished; [] when it is

    @property
    def complete(self) -> bool:
        return not self.incomplete

    @property
    def benchmark(self) -> str:
        return self.manifest.benchmark

    @property
    def temperature(self) -> float | None:
        return self.manifest.sampling.get("temperature")

    @property
    def n(self) -> int:
        """Samples per problem (per case for MTPB): the manifest's `sampling.n`, else as observed."""
        n = self.manifest.sampling.get("n")
        if isinstance(n, int) and n > 0:
            return n
        if self.executions.empty:
            return 0
        return int(self.executions.groupby(["problem_id", "case_index"]).size().min())

    @property
    def tokens_per_s(self) -> float:
        """metrics.json's throughput when the benchmark recorded one, else new tokens over the sum of
        per-sample generation times (a lower bound for batched generation)."""
        for key in ("tokens_per_s", "tok_per_s"):
            if self.metrics and isinstance(self.metrics.get(key), (int, float)):
                return float(self.metrics[key])
        return self.n_new_tokens / self.generate_s if self.generate_s > 0 else float("nan")


def find_runs(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Run directories under `paths` (sorted, each once) and messages naming paths without runs."""
    runs: dict[Path, None] = {}
    skipped: list[str] = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            skipped.append(f"{root}: does not exist")
            continue
        if not root.is_dir():
            skipped.append(f"{root}: not a directory")
            continue
        found = []
        for dirpath, _, filenames in os.walk(root):
            if MANIFEST_FILE in filenames:
                found.append(Path(dirpath))
            if os.path.basename(dirpath) == ".hydra" and "config.yaml" in filenames:
                target = hydra_run_dir(Path(dirpath))
                if target is not None and (target / MANIFEST_FILE).exists():
                    found.append(target)
        found.sort()
        if not found:
            skipped.append(f"{root}: not a run (no {MANIFEST_FILE}) and no run below it; skipped")
        for path in found:
            runs.setdefault(path.resolve(), None)
    return list(runs), skipped


def hydra_run_dir(hydra_dir: Path) -> Path | None:
    """The run directory a Hydra job wrote to, from its saved `.hydra/config.yaml`.

    Hydra saves the config unresolved; OmegaConf (Hydra's config library) loads it and resolves the
    `${a.b}` interpolations of `run_dir` against the same file. A relative result is taken from the
    job's working directory (`hydra.runtime.cwd` in `.hydra/hydra.yaml`). None when there is no
    resolvable run_dir (missing, or an interpolation that only resolves inside a Hydra job).
    """
    try:
        run_dir = OmegaConf.select(OmegaConf.load(hydra_dir / "config.yaml"), "run_dir", throw_on_missing=True)
        if not isinstance(run_dir, str) or not run_dir:
            log.debug("%s: no run_dir (%r)", hydra_dir, run_dir)
            return None
        path = Path(run_dir)
        if not path.is_absolute():
            hydra_yaml = hydra_dir / "hydra.yaml"
            cwd = (OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.runtime.cwd", default=None)
                   if hydra_yaml.exists() else None)
            path = Path(cwd) / path if cwd else hydra_dir.parent / path
        return path
    except (OSError, UnicodeDecodeError, yaml.YAMLError, OmegaConfBaseException) as err:
        log.debug("%s: no resolvable run_dir (%s)", hydra_dir, err)
        return None


def load_run(path: str | os.PathLike) -> Run:
    """Read one run; raises `RecordError` for a corrupt manifest or a corrupt line inside a file."""
    store = RunStore(path)
    manifest = store.manifest()
    if manifest is None:
        raise RecordError(f"{path}: not a run (no {MANIFEST_FILE})")
    samples = store.samples()
    executions = store.executions()
    incomplete = [str(issue) for issue in store.read_issues]
    for kind in ("samples", "executions"):
        shards = store.shard_files(kind)
        if shards:
            incomplete.append(f"{len(shards)} unmerged {kind} shard file(s)")
    metrics = store.metrics()
    if metrics is None:
        incomplete.append("no metrics.json (in progress or killed)")
    unexecuted = {s.key for s in samples} - {e.key for e in executions}
    if unexecuted:
        incomplete.append(f"{len(unexecuted)} sample(s) without an execution")
    return Run(
        path=Path(path),
        manifest=manifest,
        executions=executions_frame(executions),
        n_samples=len(samples),
        n_new_tokens=sum(s.n_new_tokens for s in samples),
        generate_s=sum(s.time_s for s in samples),
        metrics=metrics,
        incomplete=incomplete,
    )


def load_runs(paths: Sequence[str | os.PathLike]) -> tuple[list[Run], list[str]]:
    """Every readable run under `paths`, and messages for each path skipped (and why)."""
    found, skipped = find_runs(paths)
    runs = []
    for path in found:
        try:
            runs.append(load_run(path))
        except (RecordError, OSError, ValueError) as err:
            skipped.append(f"{path}: unreadable run, skipped ({err})")
    for message in skipped:
        log.warning("%s", message)
    return runs, skipped
