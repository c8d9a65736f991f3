"""A run split over processes gives the samples and metrics of one process.

torchrun with 2 CPU processes (gloo), a rank killed midway and rerun alone, and the SLURM launcher
preset composing without a cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results.driver import result_metrics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HE = ["model=tiny-random", "limit=4", "sampling.n=3", "sampling.max_new_tokens=24", "progress=off",
      "sandbox.workers=1"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _app(module: str, args: list[str], run_dir: Path, torchrun: int = 0) -> subprocess.Popen:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={torchrun}"]
                if torchrun else [sys.executable])
    return subprocess.Popen([*launcher, "-m", module, *args, f"run_dir={run_dir}"], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _samples(run_dir: Path) -> dict[str, tuple]:
    rows = _lines(run_dir / "samples.jsonl")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "duplicate sample keys"
    return {r["key"]: (r["completion"], r["finish_reason"], r["n_new_tokens"]) for r in rows}


def _executions(run_dir: Path) -> dict[str, str]:
    rows = _lines(run_dir / "executions.jsonl")
    assert len(rows) == len({r["key"] for r in rows}), "duplicate execution keys"
    return {r["key"]: r["status"] for r in rows}


def _metrics(run_dir: Path) -> dict:
    return result_metrics(json.loads((run_dir / "metrics.json").read_text()))


def _same_run(a: Path, b: Path) -> None:
    assert _samples(a) == _samples(b)
    assert _executions(a) == _executions(b)
    assert _metrics(a) == _metrics(b)
    assert not list(b.glob("*.rank*-of-*.jsonl")) and not list(b.glob("shard.rank*.done"))


@pytest.fixture(scope="module")
def single_humaneval(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("scale") / "single"
    _finish(_app("humaneval", HE, run_dir))
    return run_dir


def test_torchrun_two_ranks_equal_one_process_humaneval(single_humaneval, tmp_path):
    out = _finish(_app("humaneval", HE, tmp_path / "torchrun", torchrun=2))
    assert '"merged": false' in out  # rank 1 left the merge to rank 0
    _same_run(single_humaneval, tmp_path / "torchrun")
    assert len(_samples(single_humaneval)) == 4 * 3


def test_torchrun_two_ranks_equal_one_process_mtpb(mtpb_path, tmp_path):
    args = ["model=tiny-random", "problems=[1,7]", "sampling.n=2", "sampling.max_new_tokens=12",
            f"data_path={mtpb_path}", "progress=off", "sandbox.workers=1"]
    _finish(_app("mtpb", args, tmp_path / "single"))
    _finish(_app("mtpb", args, tmp_path / "torchrun", torchrun=2))
    _same_run(tmp_path / "single", tmp_path / "torchrun")
    assert len(_samples(tmp_path / "single")) == 2 * 5 * 2


def test_a_rank_killed_midway_and_rerun_alone_completes_the_run(single_humaneval, tmp_path):
    run_dir = tmp_path / "sharded"
    # one slot: rank 1's samples come one after another, so the kill lands between two of them
    # (engine options change no sample: the comparison with the single run below checks that too)
    rank1 = _app("humaneval", [*HE, "shard.rank=1", "shard.world=2", "+model.engine.max_batch=1"], run_dir)
    shard_file = run_dir / "samples.rank1-of-2.jsonl"
    deadline = time.monotonic() + 120
    while not (shard_file.exists() and shard_file.read_text().count("\n") >= 1):
        assert rank1.poll() is None, "rank 1 finished before it could be killed"
        assert time.monotonic() < deadline, "rank 1 wrote no sample"
        time.sleep(0.02)
    rank1.send_signal(signal.SIGKILL)
    rank1.communicate()
    written = shard_file.read_text().count("\n")
    assert 1 <= written < 6, "the kill was not midway"

    out0 = _finish(_app("humaneval", [*HE, "shard.rank=0", "shard.world=2"], run_dir))
    assert '"merged": false' in out0 and not (run_dir / "metrics.json").exists()
    out1 = _finish(_app("humaneval", [*HE, "shard.rank=1", "shard.world=2"], run_dir))
    assert '"pass@1"' in out1  # the last rank to finish merged and scored the run
    _same_run(single_humaneval, run_dir)


def test_slurm_launcher_preset_composes():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="humaneval", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "model=tiny-random", "hydra.launcher.partition=gpu",
                                 "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 4, 4)
    assert launcher.max_num_timeout == 3 and launcher.array_parallelism == 16
