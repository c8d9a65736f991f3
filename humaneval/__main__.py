"""`python -m humaneval`: the Hydra app (docs/design.md §6). Thin: results.app checks the config, `runner.run` runs it.

    python -m humaneval model=reference                       # self-check: 164/164, pass@1 = 1.0
    python -m humaneval model=codegen-350M-mono sampling.n=200 sampling.temperature=0.8
    python -m humaneval -m experiment=paper_humaneval model=codegen-2B-mono
    torchrun --nproc-per-node 4 -m humaneval model=codegen-16B-mono   # one process per GPU
    python -m humaneval ... shard.rank=1 shard.world=4               # rerun one dead rank alone
"""

from __future__ import annotations

import json

from codegen_model import distributed
from results.app import main as app_main
from results.shard import run_app

from .config import RunConfig
from .runner import finish_run, run


def shard_of(cfg) -> dict:
    return {"rank": cfg.shard.rank, "world": cfg.shard.world}


def run_humaneval(run_cfg: RunConfig) -> float | None:
    metrics, shard = run_app(run_cfg.run_dir, shard_of(run_cfg), lambda shard: run(run_cfg, shard=shard),
                             finish=lambda: finish_run(run_cfg), dist=distributed)
    if metrics is None:  # a shard whose peers are still running
        print(json.dumps({"run_dir": str(run_cfg.run_dir), "shard": list(shard.as_tuple()), "merged": False}))
        return None
    scores = {k: v for k, v in metrics.items() if k.startswith("pass@") and not k.endswith("_ci")}
    print(json.dumps({"run_dir": str(run_cfg.run_dir), **scores}))
    return scores.get("pass@1")  # the value a Hydra sweeper optimises


def main() -> float | None:
    return app_main("humaneval", RunConfig, run_humaneval, __doc__)


if __name__ == "__main__":
    main()
