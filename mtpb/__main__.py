"""`python -m mtpb`: the Hydra app (docs/design.md §6). Thin: results.app checks the config, `runner.run` runs it.

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

from codegen_model import distributed
from results.app import main as app_main
from results.shard import resolve_shard, run_app

from .config import RunConfig
from .runner import finish_run, run


def run_mtpb(run_cfg: RunConfig) -> float | None:
    shard_cfg = {"rank": run_cfg.shard.rank, "world": run_cfg.shard.world}
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


def main() -> float | None:
    return app_main("mtpb", RunConfig, run_mtpb, __doc__)


if __name__ == "__main__":
    main()
