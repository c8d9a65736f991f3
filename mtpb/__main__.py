"""`python -m mtpb`: the Hydra app (docs/design.md §6); `mode=perplexity` is dispatched here.

    python -m mtpb model=codegen-350M-mono                       # multi-turn pass rate, n=1
    python -m mtpb model=tiny-random sampling.n=2 limit=3        # a seconds-long smoke run
    python -m mtpb model=codegen-2B-mono mode=single_turn
    python -m mtpb model=codegen-2B-mono mode=perplexity
    python -m mtpb experiment=paper_mtpb model=codegen-16B-mono  # the paper's protocol (n=40)
    torchrun --nproc-per-node 4 -m mtpb model=codegen-16B-mono   # one process per GPU
    python -m mtpb ... shard.rank=1 shard.world=4                # rerun one dead rank alone
"""

from __future__ import annotations

from results.app import main as app_main
from results.driver import run_app
from results.jsonl import dumps_json
from results.shard import resolve_shard

from .config import RunConfig
from .perplexity import run_perplexity
from .runner import finish_run, run

SHOWN = ("pass_rate", "official_pass_rate", "strict_pass_rate", "multi_turn_ppl", "multi_turn_ppl_se",
         "single_turn_ppl", "single_turn_ppl_se", "history_run")


def shown(m: dict) -> dict:
    out = {k: m[k] for k in SHOWN if k in m}
    out.update({k: v for k, v in m.items() if k.startswith("pass@") and not k.endswith("_ci")})
    if "without_errata" in m:
        out["pass_rate_without_errata"] = m["without_errata"]["pass_rate"]
    return out


def run_mtpb(run_cfg: RunConfig) -> float | None:
    """results.driver runs the `mtpb.runner.MTPB` benchmark; `mode=perplexity` (no sampling, no
    sandbox) goes, from this one place, to `mtpb.perplexity`."""
    if run_cfg.mode == "perplexity":  # one cheap forward pass per turn: rank 0 does it all, unsharded
        shard, _ = resolve_shard(run_cfg.shard.rank, run_cfg.shard.world)
        if shard is not None and shard.rank != 0:
            return None
        metrics = run_perplexity(run_cfg).metrics
        print(dumps_json({"run_dir": str(run_cfg.run_dir), **shown(metrics)}))
    else:
        metrics = run_app(lambda shard: run(run_cfg, shard=shard), lambda: finish_run(run_cfg), run_cfg, shown)
    return None if metrics is None else metrics.get("pass_rate")  # the value a Hydra sweeper optimises


def main() -> float | None:
    return app_main("mtpb", RunConfig, run_mtpb, __doc__)


if __name__ == "__main__":
    main()
