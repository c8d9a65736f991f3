"""`python -m humaneval.perplexity`: HumanEval prompt perplexity, pass vs non-pass (CodeGen Table 2).

    python -m humaneval.perplexity model=codegen-350M-mono
    python -m humaneval.perplexity model=codegen-350M-mono \
        pass_run=outputs/humaneval/codegen-350M-mono/t0.8-p0.95-n200-len512-s0
    python -m humaneval.perplexity -m model=codegen-350M-mono,codegen-2B-mono,codegen-6B-mono,codegen-16B-mono
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from results.app import main as app_main
from results.jsonl import dumps_json

from . import PerplexityConfig, run

ConfigStore.instance().store(name="humaneval_perplexity_schema", node=PerplexityConfig)


def run_perplexity(cfg: PerplexityConfig) -> float | None:
    metrics = run(cfg)
    keys = ("prompt_ppl", "prompt_ppl_se", "pass_ppl", "pass_ppl_se", "n_pass", "non_pass_ppl", "non_pass_ppl_se",
            "n_non_pass", "pass_run")
    print(dumps_json({"run_dir": cfg.run_dir, **{k: metrics[k] for k in keys if k in metrics}}))
    return metrics.get("prompt_ppl")


def main() -> float | None:
    return app_main("humaneval_perplexity", PerplexityConfig, run_perplexity, __doc__, prog="humaneval.perplexity")


if __name__ == "__main__":
    main()
