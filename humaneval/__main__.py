"""`python -m humaneval`: the Hydra app (DESIGN §6). Thin: config -> dataclasses -> `runner.run`.

    python -m humaneval model=reference                       # self-check: 164/164, pass@1 = 1.0
    python -m humaneval model=codegen-350M-mono sampling.n=200 sampling.temperature=0.8
    python -m humaneval -m experiment=paper_humaneval model=codegen-2B-mono
"""

from __future__ import annotations

import json
import logging

import hydra
from omegaconf import DictConfig

from .config import from_dictconfig
from .runner import run

log = logging.getLogger("humaneval")


@hydra.main(version_base="1.3", config_path="../conf", config_name="humaneval")
def main(cfg: DictConfig) -> float | None:
    run_cfg = from_dictconfig(cfg)
    summary = run(run_cfg)
    scores = {k: v for k, v in summary.metrics.items() if k.startswith("pass@") and not k.endswith("_ci")}
    print(json.dumps({"run_dir": str(summary.run_dir), **scores}))
    return scores.get("pass@1")  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
