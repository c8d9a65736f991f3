"""`python -m humaneval`: the Hydra app (docs/design.md §6). Thin: results.app checks the config,
results.driver runs the `humaneval.runner.HumanEval` benchmark.

    python -m humaneval model=reference                       # self-check: 164/164, pass@1 = 1.0
    python -m humaneval model=codegen-350M-mono sampling.n=200 sampling.temperature=0.8
    python -m humaneval -m experiment=paper_humaneval model=codegen-2B-mono
    torchrun --nproc-per-node 4 -m humaneval model=codegen-16B-mono   # one process per GPU
    python -m humaneval ... shard.rank=1 shard.world=4               # rerun one dead rank alone
"""

from __future__ import annotations

from results.app import main as app_main
from results.driver import run_app

from .config import RunConfig
from .runner import finish_run, run


def scores(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("pass@") and not k.endswith("_ci")}


def run_humaneval(run_cfg: RunConfig) -> float | None:
    metrics = run_app(lambda shard: run(run_cfg, shard=shard), lambda: finish_run(run_cfg), run_cfg, scores)
    return None if metrics is None else metrics.get("pass@1")  # the value a Hydra sweeper optimises


def main() -> float | None:
    return app_main("humaneval", RunConfig, run_humaneval, __doc__)


if __name__ == "__main__":
    main()
