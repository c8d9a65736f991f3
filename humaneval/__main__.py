"""`python -m humaneval`: the Hydra app (DESIGN §6). Thin: config -> dataclasses -> `runner.run`.

    python -m humaneval model=reference                       # self-check: 164/164, pass@1 = 1.0
    python -m humaneval model=codegen-350M-mono sampling.n=200 sampling.temperature=0.8
    python -m humaneval -m experiment=paper_humaneval model=codegen-2B-mono
    torchrun --nproc-per-node 4 -m humaneval model=codegen-16B-mono   # one process per GPU
    python -m humaneval ... shard.rank=1 shard.world=4               # rerun one dead rank alone
"""

from __future__ import annotations

import json
import logging
import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from codegen_model import distributed
from results.shard import run_app
from sandbox import SandboxUnavailable

from .config import from_dictconfig
from .runner import finish_run, run

log = logging.getLogger("humaneval")


# Errors a user can cause (a config value, a dataset line, a checkpoint, a run directory) are
# ValueErrors whose message names the fix: one line, no traceback (HYDRA_FULL_ERROR=1 shows it).
USER_ERRORS = (ValueError, FileNotFoundError, SandboxUnavailable)


@hydra.main(version_base="1.3", config_path="../conf", config_name="humaneval")
def main(cfg: DictConfig) -> float | None:
    try:
        return _main(cfg)
    except USER_ERRORS as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _main(cfg: DictConfig) -> float | None:
    data = OmegaConf.to_container(cfg, resolve=True)
    run_cfg = from_dictconfig(data)
    metrics, shard = run_app(run_cfg.run_dir, data.get("shard"), lambda shard: run(run_cfg, shard=shard),
                             finish=lambda: finish_run(run_cfg), dist=distributed)
    if metrics is None:  # a shard whose peers are still running
        print(json.dumps({"run_dir": str(run_cfg.run_dir), "shard": list(shard.as_tuple()), "merged": False}))
        return None
    scores = {k: v for k, v in metrics.items() if k.startswith("pass@") and not k.endswith("_ci")}
    print(json.dumps({"run_dir": str(run_cfg.run_dir), **scores}))
    return scores.get("pass@1")  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
