"""`mode=perplexity`: how well the model understands MTPB's specifications (CodeGen §4.3, Table 4).

For each test case, the perplexity of each turn's prompt text (its comment line, ``"# {prompt}\\n"``)
given everything before it, in two forms (docs/design.md §4):

- multi-turn, the paper's definition (Appendix E, the default `perplexity.history=run`): turn t is
  conditioned on the prefix and turns 1..t-1, each being its prompt, the model's own truncated
  completion of that turn, and ``"\\n\\n"``. The completions are sample 0 of each (problem, case)
  of a multi-turn run of the same model: `perplexity.history_run=RUN_DIR`, or else the one found
  beside this run's directory (`find_history_run`); none found is one clear error.
  `perplexity.history=prompts` is the prompts-only variant (empty completions: no sampling run
  needed; not the paper's number);
- single-turn: the prompts joined into one turn (as `mode=single_turn` does) given the prefix.

A case's perplexity is exp(total negative log-likelihood / total prompt tokens) over its turns; a
problem's is the mean over its cases; the run's is the mean over problems (as the paper averages
over problems), with its standard error over problems (`std(ddof=1) / sqrt(n)`, the paper's "±").
No sampling, no sandbox: one forward pass per (case, turn), batched, next-token log-probabilities
over the full output vocabulary as `CodeGenForCausalLM.forward(labels=...)` uses. A context longer
than the model's window keeps its last tokens.

Results: `perplexity.jsonl` (one line per test case, appended as computed, so a killed run
resumes) and metrics.json, in the run directory.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Sequence

from codegen_model.scoring import Segment, score_segments
from results.driver import RunSummary, load_model, open_run, scored_rows
from results.paper_analysis import PPL_FILE, mean_stderr
from results.provenance import build_manifest
from results.runs import find_runs
from results.store import RunStore

from .config import RunConfig, to_dict
from .data import MTPB_SHA256, MTPB_URL, Problem, ProblemSet, load_problems
from .metrics import problem_key
from .prompts import PREFIX, append_turn, single_turn_prompts, turn_comment

log = logging.getLogger(__name__)

__all__ = ["PPL_FILE", "Segment", "multi_turn_segments", "single_turn_segment", "score_segments", "case_perplexity",
           "find_history_run", "history_completions", "summarize_perplexity", "run_perplexity"]


def multi_turn_segments(prompts: Sequence[str], completions: Sequence[str] | None = None) -> list[Segment]:
    completions = list(completions) if completions is not None else [""] * len(prompts)
    if len(completions) < len(prompts) - 1:
        raise ValueError(f"{len(prompts)} turns need at least {len(prompts) - 1} history completions, "
                         f"got {len(completions)}")
    segments, history = [], PREFIX
    for t, prompt in enumerate(prompts):
        segments.append(Segment(history, turn_comment(prompt)))
        history = append_turn(history, prompt, completions[t] if t < len(completions) else "")
    return segments


def single_turn_segment(prompts: Sequence[str]) -> Segment:
    return Segment(PREFIX, turn_comment(single_turn_prompts(prompts)[0]))


def _ppl(nll: float, tokens: int) -> float:
    return math.exp(nll / tokens) if tokens else None


def case_perplexity(model, tokenizer, problem: Problem, case: int, history: Sequence[str] | None,
                    batch_size: int = 8) -> dict:
    prompts = problem.filled_prompts(case)
    segments = multi_turn_segments(prompts, history) + [single_turn_segment(prompts)]
    scores = score_segments(model, tokenizer, segments, batch_size)
    multi, single = scores[:-1], scores[-1]
    nll = sum(s[0] for s in multi)
    tokens = sum(s[1] for s in multi)
    return {"key": f"{problem_key(problem.id)}/c{case}", "problem_id": problem_key(problem.id), "case_index": case,
            "category": problem.category, "multi_turn_ppl": _ppl(nll, tokens), "multi_turn_tokens": tokens,
            "turn_ppl": [_ppl(*s) for s in multi], "single_turn_ppl": _ppl(*single), "single_turn_tokens": single[1]}


def history_completions(run_dir: str | Path, model: str | None = None) -> dict[tuple[str, int], list[str]]:
    """{(problem_id, case): per-turn completions} of sample 0 of each conversation of a multi-turn
    MTPB run (of `model`, when given). Raises ValueError when `run_dir` is not one."""
    store = RunStore(run_dir)
    manifest = store.manifest()
    if manifest is None or manifest.benchmark != "mtpb":
        raise ValueError(f"perplexity.history_run={run_dir} is not an MTPB run directory (no MTPB manifest.json)")
    if manifest.mode not in ("multi-turn", ""):
        raise ValueError(f"perplexity.history_run={run_dir} is a {manifest.mode} run; it must be a multi-turn run")
    if model is not None and manifest.model != model:
        raise ValueError(f"perplexity.history_run={run_dir} is a run of {manifest.model}, not {model}: the history "
                         "must be the model's own completions")
    return {(s.problem_id, s.case_index): list(s.turns or []) for s in store.samples() if s.sample_index == 0}


def find_history_run(model: str, search_dir: str | Path, weights_hash: str = "") -> Path:
    """The multi-turn MTPB run of `model` under `search_dir` whose completions serve as history.

    Candidates: finished runs (metrics.json present) with benchmark mtpb, mode multi-turn, the same
    model name and, when both are given, the same weights hash. Preferred: temperature closest
    to the paper's 0.2, then more samples, then the path. Raises ValueError (one line naming the
    fixes) when there is none."""
    found, _ = find_runs([search_dir]) if Path(search_dir).is_dir() else ([], [])
    candidates = []
    for path in found:
        store = RunStore(path)
        m = store.manifest()
        if m is None or m.benchmark != "mtpb" or m.mode != "multi-turn" or m.model != model:
            continue
        if weights_hash and m.weights_hash and m.weights_hash != weights_hash:
            continue
        if store.metrics() is None:
            continue
        temperature = m.sampling.get("temperature")
        t = float(temperature) if isinstance(temperature, (int, float)) else float("inf")
        candidates.append((abs(t - 0.2), -int(m.sampling.get("n") or 1), str(path), path))
    if not candidates:
        raise ValueError(
            f"mode=perplexity computes the paper's multi-turn perplexity from the model's own completions "
            f"and found no finished multi-turn MTPB run of {model} under {search_dir}: run "
            f"`python -m mtpb model=... mode=multi_turn` first, name one with perplexity.history_run=RUN_DIR, "
            f"or set perplexity.history=prompts for the prompts-only variant")
    return min(candidates)[3]


def summarize_perplexity(rows: Sequence[dict]) -> dict:
    """Per problem the mean over its cases; over problems the mean and its standard error.

    Returns n_problems, n_cases, multi_turn_ppl, multi_turn_ppl_se, single_turn_ppl,
    single_turn_ppl_se and `problems` (one dict per problem)."""
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    problems = []
    for pid, cases in by_problem.items():
        problems.append({"problem_id": pid, "category": cases[0]["category"], "n_cases": len(cases),
                         "multi_turn_ppl": mean_stderr(c["multi_turn_ppl"] for c in cases)[0],
                         "single_turn_ppl": mean_stderr(c["single_turn_ppl"] for c in cases)[0]})
    out = {"n_problems": len(problems), "n_cases": len(rows)}
    for key in ("multi_turn_ppl", "single_turn_ppl"):
        out[key], out[f"{key}_se"] = mean_stderr(p[key] for p in problems)
    return {**out, "problems": problems}


def _history(cfg: RunConfig, history: dict | None, problem: Problem, case: int) -> list[str] | None:
    """The completions conditioning a case's later turns (None: prompts only). Raises ValueError
    when the history run lacks the case."""
    if history is None:
        return None
    turns = history.get((problem_key(problem.id), case))
    if turns is None:
        raise ValueError(f"perplexity.history_run={cfg.perplexity.history_run} has no sample 0 for "
                         f"problem {problem.id} case {case}; run it on the same problems first")
    return turns


def run_perplexity(cfg: RunConfig, *, problem_set: ProblemSet | None = None, loaded=None):
    """Compute (or resume) the prompt perplexities of `cfg`'s problems; returns a RunSummary."""
    t0 = time.perf_counter()
    if problem_set is None:
        problem_set = load_problems(cfg.data_path, url=cfg.benchmark.url or MTPB_URL,
                                    sha256=cfg.benchmark.sha256 or MTPB_SHA256, cache_dir=cfg.benchmark.cache_dir)
    problems = list(problem_set.select(cfg.problems, cfg.limit))
    history_run = history = None
    if cfg.perplexity.history == "run":  # found and read before the model loads: a missing run costs nothing
        found = cfg.perplexity.history_run or find_history_run(cfg.model.name,
                                                               cfg.perplexity.search_dir or Path(cfg.run_dir).parent)
        history_run = str(Path(found).resolve())
        history = history_completions(history_run, cfg.model.name)
        log.info("mtpb %s perplexity: history from %s", cfg.model.name, history_run)
    if loaded is None:
        loaded = load_model(cfg.model)
    model, tokenizer = loaded.model, loaded.tokenizer
    info = dataclasses.replace(loaded.info, name=cfg.model.name)  # the run's name for the model
    if history_run is not None:
        source_hash, weights_hash = RunStore(history_run).manifest().weights_hash, info.weights_hash
        if source_hash and weights_hash and source_hash != weights_hash:
            raise ValueError(f"perplexity.history_run={history_run} was sampled from other weights (hash "
                             f"{source_hash[:12]}) than this model's ({weights_hash[:12]}); "
                             "rerun it with these weights")
    manifest = build_manifest("mtpb", info, dataset_hash=problem_set.sha256, mode="perplexity",
                              extra={"history": cfg.perplexity.history, "history_run": history_run})
    open_run(RunStore(cfg.run_dir), to_dict(cfg), manifest, resume_keys=("history", "history_run"))
    by_key = {f"{problem_key(p.id)}/c{case}": (p, case) for p in problems for case in range(p.n_cases)}

    def compute(keys: list[str]) -> list[dict]:
        return [case_perplexity(model, tokenizer, *by_key[k], _history(cfg, history, *by_key[k]),
                                cfg.perplexity.batch_size) for k in keys]

    done, computed = scored_rows(Path(cfg.run_dir) / PPL_FILE, list(by_key), compute)
    rows = [done[k] for k in by_key]  # problem, then case order
    metrics = {"benchmark": "mtpb", "model": cfg.model.name, "mode": "perplexity",
               "history": cfg.perplexity.history, "history_run": history_run, **summarize_perplexity(rows)}
    RunStore(cfg.run_dir).write_metrics(metrics)
    elapsed = time.perf_counter() - t0
    num = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731  (None: undefined, e.g. one problem's error)
    log.info("mtpb %s perplexity: multi-turn %s ± %s (history: %s), single-turn %s ± %s over %d problems "
             "(%.1f s)", cfg.model.name, num(metrics["multi_turn_ppl"]), num(metrics["multi_turn_ppl_se"]),
             cfg.perplexity.history,
             num(metrics["single_turn_ppl"]), num(metrics["single_turn_ppl_se"]), metrics["n_problems"], elapsed)
    return RunSummary(Path(cfg.run_dir), metrics, computed, 0, elapsed, elapsed, 0)
