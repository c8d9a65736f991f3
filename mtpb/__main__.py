"""`python -m mtpb`: the Hydra app (DESIGN §6). Thin: config -> dataclasses -> `runner.run`.

    python -m mtpb model=codegen-350M-mono                       # multi-turn pass rate, n=1
    python -m mtpb model=tiny-random sampling.n=2 limit=3        # a seconds-long smoke run
    python -m mtpb model=codegen-2B-mono mode=single_turn
    python -m mtpb model=codegen-2B-mono mode=perplexity
    python -m mtpb experiment=paper_mtpb model=codegen-16B-mono  # the paper's protocol (n=40)
"""

from __future__ import annotations

import json
import logging

import hydra
from omegaconf import DictConfig

from .config import from_dictconfig
from .runner import run

log = logging.getLogger("mtpb")


@hydra.main(version_base="1.3", config_path="../conf", config_name="mtpb")
def main(cfg: DictConfig) -> float | None:
    run_cfg = from_dictconfig(cfg)
    summary = run(run_cfg)
    m = summary.metrics
    keys = ("pass_rate", "official_pass_rate", "strict_pass_rate", "multi_turn_ppl", "single_turn_ppl")
    shown = {k: m[k] for k in keys if k in m}
    shown.update({k: v for k, v in m.items() if k.startswith("pass@") and not k.endswith("_ci")})
    if "without_errata" in m:
        shown["pass_rate_without_errata"] = m["without_errata"]["pass_rate"]
    print(json.dumps({"run_dir": str(summary.run_dir), **shown}))
    return m.get("pass_rate")  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
