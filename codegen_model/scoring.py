"""Log-likelihood of a text given its context under a CodeGen model: prompt perplexities.

Used by both benchmarks' perplexity analyses (the CodeGen paper's Tables 2 and 4; docs/design.md
§2, §4): `score_segments` returns, for each (context, target) pair, the negative log-likelihood in
nats of the target's tokens and their number, from one batched forward pass, with next-token
log-probabilities over the full output vocabulary exactly as `CodeGenForCausalLM.forward(labels=...)`
computes its loss. With an empty context the first token of the target has nothing to be predicted
from and is not scored (CodeGen has no BOS token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["Segment", "score_segments"]


@dataclass(frozen=True)
class Segment:
    """Score `target`'s tokens given `context`."""

    context: str
    target: str


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
    """(negative log-likelihood in nats, number of tokens) of each segment's target, in order.

    `model`: a `CodeGenForCausalLM` (any device or dtype; log-probabilities in float32);
    `tokenizer`: its `CodeGenTokenizer`. Context + target is tokenized as one text and the target
    starts at the first token that differs from the context's own tokenization (BPE may merge
    across the boundary); at least one target token is scored. A sequence longer than the model's
    window (`config.n_positions`) keeps its last tokens. Sequences are right-padded in batches of
    `batch_size` (causal attention never sees the padding)."""
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
            logits = model(ids.to(device), use_cache=False).logits.float()
            logp = F.log_softmax(logits, dim=-1)
            for row, i in enumerate(batch):
                seq, n_target = prepared[i]
                positions = torch.arange(len(seq) - n_target, len(seq), device=logp.device)
                targets = torch.tensor(seq[len(seq) - n_target:], device=logp.device)
                nll = -logp[row, positions - 1, targets].sum().item()
                out[i] = (nll, n_target)
    return out
