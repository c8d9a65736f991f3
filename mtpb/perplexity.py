"""`mode=perplexity`: how well the model understands MTPB's specifications (CodeGen §4.3, Table 4).

For each test case, the perplexity of each turn's prompt text (its comment line, ``"# {prompt}\\n"``)
given everything before it, in two forms:

- multi-turn: turn t is conditioned on the prefix and turns 1..t-1, each turn being its prompt
  followed by the history's completion and ``"\\n\\n"``. The completions are empty by default
  (prompts only: no sampling needed); `perplexity.history_run=RUN_DIR` takes them from sample 0 of
  an existing multi-turn run of the same model, which is the history the model actually saw;
- single-turn: the prompts joined into one turn (as `mode=single_turn` does) given the prefix.

A case's perplexity is exp(total negative log-likelihood / total prompt tokens) over its turns;
a problem's is the mean over its cases; the run's is the mean over problems (as the paper averages
over problems). No sampling, no sandbox: one forward pass per (case, turn), batched, next-token
log-probabilities over the full output vocabulary as `CodeGenForCausalLM.forward(labels=...)` uses.
A context longer than the model's window keeps its last tokens.

Results: `perplexity.jsonl` (one line per test case, appended as computed, so a killed run
resumes) and metrics.json, in the run directory.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from results.store import RunStore
from results.jsonl import Appender, read_objects

from .config import RunConfig, to_dict
from .data import MTPB_SHA256, MTPB_URL, Problem, ProblemSet, load_problems
from .metrics import problem_key
from .prompts import PREFIX, TURN_SEPARATOR, single_turn_prompts, turn_comment

log = logging.getLogger(__name__)

PPL_FILE = "perplexity.jsonl"


@dataclass(frozen=True)
class Segment:
    """Score `target`'s tokens given `context`."""

    context: str
    target: str


def multi_turn_segments(prompts: Sequence[str], completions: Sequence[str] | None = None) -> list[Segment]:
    completions = list(completions) if completions is not None else [""] * len(prompts)
    if len(completions) < len(prompts) - 1:
        raise ValueError(f"{len(prompts)} turns need at least {len(prompts) - 1} history completions, "
                         f"got {len(completions)}")
    segments, history = [], PREFIX
    for t, prompt in enumerate(prompts):
        segments.append(Segment(history, turn_comment(prompt)))
        history += turn_comment(prompt) + (completions[t] if t < len(completions) else "") + TURN_SEPARATOR
    return segments


def single_turn_segment(prompts: Sequence[str]) -> Segment:
    return Segment(PREFIX, turn_comment(single_turn_prompts(prompts)[0]))


def _token_split(tokenizer, segment: Segment) -> tuple[list[int], int]:
    """Token ids of context + target, and how many of the last ids belong to the target."""
    full = tokenizer.encode(segment.context + segment.target)
    context = tokenizer.encode(segment.context)
    shared = 0
    for a, b in zip(context, full):  # BPE may merge across the boundary: the target starts where they differ
        if a != b:
            break
        shared += 1
    shared = min(shared, len(full) - 1)  # at least one target token, and one token of context
    return full, len(full) - max(shared, 1)


def score_segments(model, tokenizer, segments: Sequence[Segment], batch_size: int = 8) -> list[tuple[float, int]]:
    """(negative log-likelihood in nats, number of tokens) of each segment's target."""
    import torch
    import torch.nn.functional as F

    window = int(getattr(model.config, "n_positions", 2048))
    device = next(model.parameters()).device
    prepared = []
    for seg in segments:
        ids, n_target = _token_split(tokenizer, seg)
        if len(ids) > window:
            ids = ids[-window:]
            n_target = min(n_target, window - 1)
        prepared.append((ids, n_target))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(prepared)
    order = sorted(range(len(prepared)), key=lambda i: len(prepared[i][0]))  # similar lengths together
    pad = getattr(tokenizer, "pad_id", 0)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(prepared[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            for row, i in enumerate(batch):  # right padding: causal attention never sees it
                ids[row, : len(prepared[i][0])] = torch.tensor(prepared[i][0])
            logits = model(ids.to(device)).logits.float()
            logp = F.log_softmax(logits, dim=-1)
            for row, i in enumerate(batch):
                seq, n_target = prepared[i]
                positions = torch.arange(len(seq) - n_target, len(seq), device=logp.device)
                targets = torch.tensor(seq[len(seq) - n_target:], device=logp.device)
                nll = -logp[row, positions - 1, targets].sum().item()
                out[i] = (nll, n_target)
    return out


def _ppl(nll: float, tokens: int) -> float:
    return math.exp(nll / tokens) if tokens else float("nan")


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


def history_completions(run_dir: str) -> dict[tuple[str, int], list[str]]:
    """{(problem_id, case): turns} of sample 0 of each conversation of a multi-turn run."""
    store = RunStore(run_dir)
    manifest = store.manifest()
    if manifest is None or manifest.benchmark != "mtpb":
        raise ValueError(f"perplexity.history_run={run_dir} is not an MTPB run directory (no MTPB manifest.json)")
    if manifest.mode not in ("multi-turn", ""):
        raise ValueError(f"perplexity.history_run={run_dir} is a {manifest.mode} run; it must be a multi-turn run")
    return {(s.problem_id, s.case_index): list(s.turns or []) for s in store.samples() if s.sample_index == 0}


def summarize_perplexity(rows: Sequence[dict]) -> dict:
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    problems = []
    for pid, cases in by_problem.items():
        problems.append({"problem_id": pid, "category": cases[0]["category"], "n_cases": len(cases),
                         "multi_turn_ppl": sum(c["multi_turn_ppl"] for c in cases) / len(cases),
                         "single_turn_ppl": sum(c["single_turn_ppl"] for c in cases) / len(cases)})
    mean = lambda key: sum(p[key] for p in problems) / len(problems) if problems else float("nan")  # noqa: E731
    return {"n_problems": len(problems), "n_cases": len(rows), "multi_turn_ppl": mean("multi_turn_ppl"),
            "single_turn_ppl": mean("single_turn_ppl"), "problems": problems}


def run_perplexity(cfg: RunConfig, *, problem_set: ProblemSet | None = None, loaded=None):
    """Compute (or resume) the prompt perplexities of `cfg`'s problems; returns a RunSummary."""
    from results.records import Manifest

    from results.provenance import git_commit, library_versions

    from .runner import REPO, VERSIONED, RunSummary, select_problems

    t0 = time.perf_counter()
    if problem_set is None:
        problem_set = load_problems(cfg.data_path, url=cfg.benchmark.url or MTPB_URL,
                                    sha256=cfg.benchmark.sha256 or MTPB_SHA256, cache_dir=cfg.benchmark.cache_dir)
    problems = list(select_problems(cfg, problem_set))
    if loaded is None:
        from codegen_model import registry

        spec = registry.ModelSpec(name=cfg.model.name, kind=cfg.model.kind, path=cfg.model.path,
                                  revision=cfg.model.revision, dtype=cfg.model.dtype, device=cfg.model.device)
        loaded = registry.load(spec)
    model, tokenizer = loaded.model, loaded.tokenizer
    info = loaded.info.to_dict() if hasattr(loaded.info, "to_dict") else dict(loaded.info or {})
    history = history_completions(cfg.perplexity.history_run) if cfg.perplexity.history_run else None
    manifest = Manifest(benchmark="mtpb", model=cfg.model.name, revision=info.get("revision"),
                        weights_hash=str(info.get("weights_hash", "")), dataset_hash=problem_set.sha256,
                        seed=0, sampling={}, mode="perplexity", device=str(info.get("device", "")),
                        dtype=str(info.get("dtype", "")), versions=library_versions(VERSIONED),
                        git_commit=git_commit(REPO),
                        extra={"history_run": cfg.perplexity.history_run})
    store = RunStore(cfg.run_dir)
    store.start(to_dict(cfg), manifest)
    path = Path(cfg.run_dir) / PPL_FILE
    done = {}
    if path.exists():
        for _, row in read_objects(path):  # a torn last line (a kill) is skipped
            done[row["key"]] = row
    computed = 0
    with Appender(path) as f:
        for p in problems:
            for case in range(p.n_cases):
                key = f"{problem_key(p.id)}/c{case}"
                if key in done:
                    continue
                turns = None
                if history is not None:
                    turns = history.get((problem_key(p.id), case))
                    if turns is None:
                        raise ValueError(f"perplexity.history_run={cfg.perplexity.history_run} has no sample 0 for "
                                         f"problem {p.id} case {case}; run it on the same problems first")
                row = case_perplexity(model, tokenizer, p, case, turns, cfg.perplexity.batch_size)
                f.write(row)
                done[key] = row
                computed += 1
    wanted = {f"{problem_key(p.id)}/c{c}" for p in problems for c in range(p.n_cases)}
    rows = [done[k] for k in sorted(wanted, key=lambda k: (int(k.split("/")[1]), k))]
    metrics = {"benchmark": "mtpb", "model": cfg.model.name, "mode": "perplexity",
               "history": "run" if history is not None else "prompts", **summarize_perplexity(rows)}
    store.write_metrics(metrics)
    elapsed = time.perf_counter() - t0
    log.info("mtpb %s perplexity: multi-turn %.2f, single-turn %.2f over %d problems (%.1f s)", cfg.model.name,
             metrics["multi_turn_ppl"], metrics["single_turn_ppl"], metrics["n_problems"], elapsed)
    return RunSummary(Path(cfg.run_dir), metrics, computed, 0, elapsed, elapsed, 0)
