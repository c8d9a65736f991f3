"""`python -m mtpb`: the Hydra app (DESIGN §6). Thin: config -> dataclasses -> `runner.run`.

    python -m mtpb model=codegen-350M-mono                       # multi-turn pass rate, n=1
    python -m mtpb model=tiny-random sampling.n=2 limit=3        # a seconds-long smoke run
    python -m mtpb model=codegen-2B-mono mode=single_turn
    python -m mtpb model=codegen-2B-mono mode=perplexity
    python -m mtpb experiment=paper_mtpb model=codegen-16B-mono  # the paper's protocol (n=40)
    torchrun --nproc-per-node 4 -m mtpb model=codegen-16B-mono   # one process per GPU
    python -m mtpb ... shard.rank=1 shard.world=4                # rerun one dead rank alone
"""

from __future__ import annotations

import json
import logging
import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from codegen_model import distributed
from results.shard import resolve_shard, run_app
from sandbox import SandboxUnavailable

from .config import from_dictconfig
from .runner import finish_run, run

log = logging.getLogger("mtpb")


# Errors a user can cause (a config value, a dataset line, a checkpoint, a run directory) are
# ValueErrors whose message names the fix: one line, no traceback (HYDRA_FULL_ERROR=1 shows it).
USER_ERRORS = (ValueError, FileNotFoundError, SandboxUnavailable)


@hydra.main(version_base="1.3", config_path="../conf", config_name="mtpb")
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
    shard_cfg = data.get("shard") or {}
    if run_cfg.mode == "perplexity":  # one cheap forward pass per problem: rank 0 does it all, unsharded
        shard, _ = resolve_shard(shard_cfg.get("rank"), shard_cfg.get("world"))
        if shard is not None and shard.rank != 0:
            return None
        shard_cfg = {"rank": 0, "world": 1}
    m, shard = run_app(run_cfg.run_dir, shard_cfg, lambda shard: run(run_cfg, shard=shard),
                       finish=lambda: finish_run(run_cfg), dist=distributed)
    if m is None:  # a shard whose peers are still running
        print(json.dumps({"run_dir": str(run_cfg.run_dir), "shard": list(shard.as_tuple()), "merged": False}))
        return None
    keys = ("pass_rate", "official_pass_rate", "strict_pass_rate", "multi_turn_ppl", "multi_turn_ppl_se",
            "single_turn_ppl", "single_turn_ppl_se", "history_run")
    shown = {k: m[k] for k in keys if k in m}
    shown.update({k: v for k, v in m.items() if k.startswith("pass@") and not k.endswith("_ci")})
    if "without_errata" in m:
        shown["pass_rate_without_errata"] = m["without_errata"]["pass_rate"]
    print(json.dumps({"run_dir": str(run_cfg.run_dir), **shown}))
    return m.get("pass_rate")  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
