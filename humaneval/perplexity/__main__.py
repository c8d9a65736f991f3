"""`python -m humaneval.perplexity`: HumanEval prompt perplexity, pass vs non-pass (CodeGen Table 2).

    python -m humaneval.perplexity model=codegen-350M-mono
    python -m humaneval.perplexity model=codegen-350M-mono pass_run=outputs/humaneval/codegen-350M-mono/t0.8-p0.95-n200-len512-s0
    python -m humaneval.perplexity -m model=codegen-350M-mono,codegen-2B-mono,codegen-6B-mono,codegen-16B-mono
"""

from __future__ import annotations

import json
import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from . import config_from_dict, run


@hydra.main(version_base="1.3", config_path="../../conf", config_name="humaneval_perplexity")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = run(config_from_dict(OmegaConf.to_container(cfg, resolve=True)))
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    keys = ("prompt_ppl", "prompt_ppl_se", "pass_ppl", "pass_ppl_se", "n_pass", "non_pass_ppl", "non_pass_ppl_se",
            "n_non_pass", "pass_run")
    print(json.dumps({"run_dir": cfg.run_dir, **{k: metrics[k] for k in keys if k in metrics}}))
    return metrics.get("prompt_ppl")


if __name__ == "__main__":
    main()
