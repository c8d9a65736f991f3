"""Splitting one run over several processes (docs/design.md §6: torchrun ranks, or shards run by hand).

Every benchmark enumerates its work units (HumanEval: problem x sample; MTPB: problem x case x
sample) in one canonical order; rank r of w owns the contiguous block
`[r * U // w, (r + 1) * U // w)`. Contiguous blocks keep a problem's samples together (one shared
prefill), balance any n (n = 1 included), and, because each sample's randomness depends only on
(seed, key, sample index, step), give exactly the samples of a single-process run.

A rank writes its own shard files and, when its share is complete, a `shard.rank{r}-of-{w}.done`
marker. Whoever finishes last (rank 0 after a torchrun barrier, or a rank rerun by hand) finds every
marker and merges the shards into the canonical run files. A rank that died is rerun alone with
`shard.rank=R shard.world=W`: it resumes from its own shard file.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

log = logging.getLogger(__name__)


class ShardError(ValueError):
    """A shard setting that cannot describe a split; the message names the value."""


@dataclass(frozen=True)
class Shard:
    rank: int
    world: int

    def __post_init__(self) -> None:
        if not (isinstance(self.rank, int) and isinstance(self.world, int)) or not 0 <= self.rank < self.world:
            raise ShardError(f"shard needs 0 <= rank < world, got rank={self.rank!r} world={self.world!r}; "
                             "set shard.rank and shard.world (or run under torchrun)")

    def as_tuple(self) -> tuple[int, int]:
        return (self.rank, self.world)

    def owned(self, total: int) -> range:
        """The indices of `total` canonically ordered work units this rank owns."""
        return range(self.rank * total // self.world, (self.rank + 1) * total // self.world)


def owned_range(total: int, shard: tuple[int, int] | Shard | None) -> range:
    if shard is None:
        return range(total)
    s = shard if isinstance(shard, Shard) else Shard(*shard)
    return s.owned(total)


def contiguous_runs(indices: Iterable[int]) -> list[tuple[int, int]]:
    """[(start, count)] covering the sorted `indices` with maximal contiguous ranges: the requests
    (sample_offset, n) that generate exactly these sample indices."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indices):
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def resolve_shard(rank: int | None, world: int | None,
                  env: Mapping[str, str] = os.environ) -> tuple[Shard | None, bool]:
    """(shard, under_torchrun). Explicit `shard.rank/world` win; else torchrun's RANK/WORLD_SIZE;
    else SLURM's task id / task count (a submitit job with several tasks, merged without a barrier)."""
    if rank is not None or world is not None:
        if rank is None or world is None:
            raise ShardError(f"set both shard.rank and shard.world, got rank={rank!r} world={world!r}")
        return (Shard(int(rank), int(world)) if int(world) > 1 else None), False
    if "RANK" in env and "WORLD_SIZE" in env:
        try:
            r, w = int(env["RANK"]), int(env["WORLD_SIZE"])
        except ValueError:
            raise ShardError(f"RANK={env['RANK']!r} / WORLD_SIZE={env['WORLD_SIZE']!r} are not integers") from None
        return (Shard(r, w) if w > 1 else None), w > 1
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:  # submitit: several tasks of one job
        r, w = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        return (Shard(r, w) if w > 1 else None), False
    return None, False


def done_marker(run_dir: str | os.PathLike, shard: Shard) -> Path:
    return Path(run_dir) / f"shard.rank{shard.rank}-of-{shard.world}.done"


def mark_done(run_dir: str | os.PathLike, shard: Shard) -> None:
    done_marker(run_dir, shard).write_text("done\n")


def pending_ranks(run_dir: str | os.PathLike, world: int) -> list[int]:
    return [r for r in range(world) if not done_marker(run_dir, Shard(r, world)).exists()]


def clear_markers(run_dir: str | os.PathLike) -> None:
    for path in Path(run_dir).glob("shard.rank*-of-*.done"):
        path.unlink()


def run_sharded(run_dir: str | os.PathLike, shard: Shard | None, run_share: Callable[[], object],
                finish: Callable[[], dict], barrier: Callable[[], None] | None = None) -> dict | None:
    """Run this process's share, then merge and score if every share is done.

    `run_share` runs (or resumes) this process's share; `finish` merges the canonical files and
    returns the metrics; `barrier` (torchrun) waits for every rank. Returns the metrics when this
    process merged, else None (another rank is still running; its rerun or rank 0 will merge).
    """
    if shard is None:
        run_share()
        return finish()
    run_share()
    mark_done(run_dir, shard)
    if barrier is not None:
        barrier()
        if shard.rank != 0:
            return None
    # Two ranks rerun by hand may finish together: the merge runs under an OS lock (released
    # if its holder dies), and the last one in finds the markers gone and merges nothing.
    with open(Path(run_dir) / "shard.merge.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pending = pending_ranks(run_dir, shard.world)
        if pending:
            log.warning("%s: shard %d/%d is done; rank(s) %s still running: the last to finish merges "
                        "the run (rerun a dead rank alone with shard.rank=R shard.world=%d)",
                        run_dir, shard.rank, shard.world, pending, shard.world)
            return None
        metrics = finish()
        clear_markers(run_dir)
        (Path(run_dir) / "shard.merge.lock").unlink(missing_ok=True)  # the merged run keeps no lock file
    return metrics


class _Distributed(Protocol):
    def init(self) -> bool: ...
    def barrier(self) -> None: ...
    def shutdown(self) -> None: ...


def run_app(run_dir: str | os.PathLike, shard_cfg: Mapping | None, run: Callable[[tuple[int, int] | None], Any],
            finish: Callable[[], dict], dist: _Distributed | None = None) -> tuple[dict | None, Shard | None]:
    """An app's whole run: find this process's shard (config, torchrun or SLURM), join torchrun's
    group through `dist` (codegen_model.distributed), run the share, merge when the last share is
    done. `run(shard)` returns a summary whose `.metrics` an unsharded run already computed.
    Returns (metrics or None when another rank merges, shard)."""
    shard_cfg = shard_cfg or {}
    shard, torchrun = resolve_shard(shard_cfg.get("rank"), shard_cfg.get("world"))
    use_group = torchrun and dist is not None
    if use_group:
        dist.init()
    summaries: list = []
    try:
        metrics = run_sharded(
            run_dir, shard,
            run_share=lambda: summaries.append(run(shard.as_tuple() if shard else None)),
            finish=lambda: summaries[-1].metrics if shard is None else finish(),
            barrier=dist.barrier if use_group else None)
    finally:
        if use_group:
            dist.shutdown()
    return metrics, shard
