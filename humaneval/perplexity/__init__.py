"""HumanEval prompt perplexity, split by pass / non-pass: the CodeGen paper's Table 2 (docs/design.md §4).

Per problem, the perplexity of its prompt (the function signature and docstring, verbatim) under
the model: exp(negative log-likelihood / tokens) over the prompt's tokens, each predicted from the
ones before it (the first token, with nothing before it, is not scored; `codegen_model.scoring`).
The problems are then split by whether any sample of a HumanEval sampling run of the same model
passed ("pass") or none did ("non-pass"), and each group's mean perplexity is reported with its
standard error over problems (`results.paper_analysis.prompt_ppl_split`). The paper uses 200
samples per problem.

`python -m humaneval.perplexity model=codegen-350M-mono` writes a run-like directory
(docs/results.md): manifest.json (mode "prompt-perplexity"), `perplexity.jsonl` (one line per
problem, appended as computed, so a killed run resumes) and metrics.json (the mean over all
problems and, when a sampling run is named with `pass_run=RUN_DIR` or found beside this run's
directory, the split). `python -m results --paper` reads it and does the split itself against
whichever sampling run of the model it is given.

The sampling run must have sampled every selected problem (a problem it never sampled would be
counted "non-pass" or dropped): `find_pass_run` skips the runs that did not, a named `pass_run=`
that did not is refused, and runs of the model that all lack some problem are one error line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from codegen_model.scoring import Segment, score_segments
from results.config import check_fields, positive_int, setting, to_dict
from results.driver import load_model, open_run, scored_rows
from results.paper_analysis import (
    PPL_FILE,
    mean_stderr,
    missing_problems,
    passed_problems,
    pick_pass_run,
    prompt_ppl_split,
    sampling_runs,
)
from results.provenance import build_manifest
from results.runs import load_run, load_runs
from results.store import RunStore

from ..config import BenchmarkConfig, ModelConfig
from ..data import load_problems, select

log = logging.getLogger(__name__)

MODE = "prompt-perplexity"


@dataclass
class PerplexityConfig:
    """`python -m humaneval.perplexity` (conf/humaneval_perplexity.yaml): its Hydra structured-config
    schema, registered as `humaneval_perplexity_schema` by its `__main__` (docs/design.md §6)."""

    PREFIX = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    run_dir: str = setting(allowed="a directory")
    benchmark: BenchmarkConfig = dataclasses.field(default_factory=BenchmarkConfig)
    pass_run: Optional[str] = setting(None, allowed="a HumanEval sampling run of the model (or null = find one)")
    search_dir: Optional[str] = setting(None, allowed="a folder (or null = the folder above run_dir)")
    batch_size: int = setting(8, allowed="an integer >= 1 (prompts per forward pass)", ok=positive_int)
    limit: Optional[int] = setting(None, allowed="an integer >= 1 (or null for all problems)", ok=positive_int)
    problems: Optional[Any] = setting(None, allowed="a list of task ids, e.g. [HumanEval/0,3] (or null for all)")
    threads: str = setting("auto", allowed="auto or an integer >= 1",
                           ok=lambda v: v == "auto" or (v.isdigit() and int(v) >= 1))

    def __post_init__(self) -> None:
        check_fields(self, self.PREFIX)
        if self.problems is not None:
            items = [self.problems] if isinstance(self.problems, (str, int)) else list(self.problems)
            self.problems = tuple(str(p) for p in items)
        if self.model.kind == "reference":
            raise ValueError("model=reference has no language model to score prompts with; pick a checkpoint "
                             "(model=codegen-350M-mono) or model=tiny-random")



def _num(value: float | None) -> str:
    """A mean or standard error for the log: 3 decimals, or "-" where it is undefined (None)."""
    return "-" if value is None else f"{value:.3f}"


def config_from_dict(data: Mapping[str, Any]) -> PerplexityConfig:
    """The composed config (or a plain mapping of its shape) as a checked `PerplexityConfig`; unknown
    keys, wrong types and out-of-range values are ValueErrors of one line."""
    from results.app import convert

    return convert(data, PerplexityConfig)


def prompt_perplexities(model, tokenizer, prompts: Mapping[str, str], batch_size: int = 8) -> dict[str, dict]:
    """{task_id: {"prompt_ppl", "nll", "tokens"}}: each prompt scored on its own (no context)."""
    ids = list(prompts)
    scores = score_segments(model, tokenizer, [Segment("", prompts[i]) for i in ids], batch_size)
    return {i: {"prompt_ppl": math.exp(nll / n) if n else None, "nll": nll, "tokens": n}
            for i, (nll, n) in zip(ids, scores)}


def _missing_text(missing: list[str]) -> str:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"{len(missing)} of the selected problems ({shown})"


def find_pass_run(model: str, search_dir: str | Path, problems: Sequence[str] | None = None):
    """`results.paper_analysis.pick_pass_run` over the runs under `search_dir`: the best finished
    HumanEval sampling run of `model` that sampled every one of `problems`.

    None when `search_dir` holds no finished sampling run of the model at all. Raises ValueError
    (one line naming the fix) when it holds some but none sampled every selected problem: the
    split would count the unsampled problems wrongly (docs/results.md, Table 2)."""
    if not Path(search_dir).is_dir():
        return None
    runs, _ = load_runs([search_dir])
    picked = pick_pass_run(runs, model, problems)
    if picked is None and problems is not None:
        found = sampling_runs(runs, model)
        if found:
            fewest = min(found, key=lambda r: (len(missing_problems(r, problems)), str(r.path)))
            raise ValueError(
                f"no HumanEval sampling run of {model} under {search_dir} sampled every selected problem (the "
                f"closest, {fewest.path}, lacks {_missing_text(missing_problems(fewest, problems))}); run "
                f"`python -m humaneval model={model}` on these problems (or all), name one with pass_run=RUN_DIR, "
                f"or select fewer problems")
    return picked


def run(cfg: PerplexityConfig, *, loaded=None) -> dict:
    """Compute (or resume) the prompt perplexities of `cfg`'s problems; returns metrics.json's dict."""
    t0 = time.perf_counter()
    problem_set = load_problems(cfg.benchmark.source, hub_id=cfg.benchmark.hub_id,
                                hub_revision=cfg.benchmark.hub_revision)
    problems = select(problem_set, task_ids=cfg.problems, limit=cfg.limit)
    if cfg.pass_run:  # checked before the model loads: a wrong path costs nothing
        pass_run = load_run(cfg.pass_run)
        if pass_run.benchmark != "humaneval" or pass_run.manifest.mode.endswith("perplexity"):
            raise ValueError(f"pass_run={cfg.pass_run} is not a HumanEval sampling run")
        if pass_run.manifest.model != cfg.model.name:
            raise ValueError(f"pass_run={cfg.pass_run} is a run of {pass_run.manifest.model}, not {cfg.model.name}")
        missing = missing_problems(pass_run, [p.task_id for p in problems])
        if missing:
            raise ValueError(f"pass_run={cfg.pass_run} did not sample {_missing_text(missing)}, so it cannot split "
                             f"them into pass / non-pass; name a run that sampled every selected problem, or select "
                             f"only the problems it sampled")
    else:
        pass_run = find_pass_run(cfg.model.name, cfg.search_dir or Path(cfg.run_dir).parent,
                                 [p.task_id for p in problems])
    if loaded is None:
        loaded = load_model(cfg.model)
    info = dataclasses.replace(loaded.info, name=cfg.model.name)  # the run's name for the model
    manifest = build_manifest("humaneval", info, dataset_hash=problem_set.sha256, mode=MODE,
                              extra={"dataset_source": problem_set.source})
    store = RunStore(cfg.run_dir)
    open_run(store, to_dict(cfg), manifest)
    prompts = {p.task_id: p.prompt for p in problems}

    def compute(ids: list[str]) -> list[dict]:
        scores = prompt_perplexities(loaded.model, loaded.tokenizer, {i: prompts[i] for i in ids}, cfg.batch_size)
        return [{"key": task_id, "problem_id": task_id, **row} for task_id, row in scores.items()]

    # flushed chunk by chunk: a kill loses one chunk at most
    done, _ = scored_rows(Path(cfg.run_dir) / PPL_FILE, list(prompts), compute, chunk=max(cfg.batch_size * 4, 1))
    ppl = {p.task_id: done[p.task_id]["prompt_ppl"] for p in problems}
    mean, se = mean_stderr(ppl.values())
    metrics: dict = {"benchmark": "humaneval", "model": cfg.model.name, "mode": MODE, "n_problems": len(ppl),
                     "prompt_ppl": mean, "prompt_ppl_se": se, "pass_run": None}
    if pass_run is not None:
        passed, covered = passed_problems(pass_run.executions)
        metrics.update(pass_run=str(pass_run.path), pass_run_n=pass_run.n, **prompt_ppl_split(ppl, passed, covered))
    else:
        log.warning("humaneval %s prompt perplexity: no HumanEval sampling run of the model found (pass_run=RUN_DIR "
                    "names one): the pass / non-pass split is left to `python -m results --paper`", cfg.model.name)
    store.write_metrics(metrics)
    log.info("humaneval %s prompt perplexity %s ± %s over %d problems (%.1f s)", cfg.model.name, _num(mean),
             _num(se), len(ppl), time.perf_counter() - t0)
    return metrics
