"""results.shard: how work is split over ranks, and who merges (docs/design.md §6)."""

import threading

import pytest

from results.shard import Shard, ShardError, owned_range, pending_ranks, resolve_shard, run_sharded


@pytest.mark.parametrize("total, world", [(10, 3), (2, 4), (164, 8), (1, 2), (0, 3)])
def test_contiguous_blocks_cover_every_unit_once(total, world):
    blocks = [owned_range(total, (r, world)) for r in range(world)]
    assert [i for b in blocks for i in b] == list(range(total))  # in order, no gap, no overlap
    assert max(len(b) for b in blocks) - min(len(b) for b in blocks) <= 1  # balanced
    assert owned_range(total, None) == range(total)


def test_resolve_shard_from_config_then_torchrun_then_slurm():
    assert resolve_shard(1, 2, env={}) == (Shard(1, 2), False)
    assert resolve_shard(0, 1, env={}) == (None, False)  # a world of one is no shard
    assert resolve_shard(None, None, env={"RANK": "3", "WORLD_SIZE": "4"}) == (Shard(3, 4), True)
    assert resolve_shard(None, None, env={"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == (Shard(1, 2), False)
    assert resolve_shard(None, None, env={}) == (None, False)
    with pytest.raises(ShardError, match="set both shard.rank and shard.world"):
        resolve_shard(1, None, env={})
    with pytest.raises(ShardError, match="0 <= rank < world"):
        resolve_shard(2, 2, env={})


def test_the_last_rank_to_finish_merges(tmp_path):
    merged = []
    finish = lambda: merged.append(1) or {"merged": True}  # noqa: E731
    assert run_sharded(tmp_path, Shard(0, 2), lambda: None, finish) is None  # rank 1 still running
    assert pending_ranks(tmp_path, 2) == [1]
    assert run_sharded(tmp_path, Shard(1, 2), lambda: None, finish) == {"merged": True}
    assert merged == [1] and pending_ranks(tmp_path, 2) == [0, 1]  # markers cleared after the merge


def test_two_ranks_finishing_together_merge_once(tmp_path):
    merged = []
    barrier = threading.Barrier(2)

    def share():
        barrier.wait()

    def worker(rank):
        run_sharded(tmp_path, Shard(rank, 2), share, lambda: merged.append(rank) or {})

    threads = [threading.Thread(target=worker, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(merged) == 1


def test_a_failed_share_marks_nothing(tmp_path):
    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_sharded(tmp_path, Shard(0, 2), boom, lambda: {})
    assert pending_ranks(tmp_path, 2) == [0, 1]
