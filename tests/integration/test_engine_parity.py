"""Greedy engine output == `transformers.generate`, token for token (docs/design.md §2, §7).

transformers' CodeGen gets a ragged, left-padded batch; the engine gets the same prompts as
separate requests (no padding: each prompt in its own slot, fewer slots than prompts so slots are
reused). Random weights, seeded; on CPU. The engine's tokenizer here is an id-level stub whose
vocabulary is the model's full row count, so both sides take the argmax over the same rows.

The exact path, and the path a GPU takes (`exact=False`: SDPA) in fp32 and bf16, are checked
(the compiled decode step is checked against the model's own forward in `test_engine.py`, which
is how far its compile cost goes). In fp32 the tokens equal transformers' fp32 greedy tokens; in bf16, where a near tie may break the other way
and the rest of that row then diverges, each token the engine chose is the fp32 reference's argmax
up to `BF16_GAP` logits, teacher-forced on the engine's own tokens (docs/engine.md "Guarantees").
"""

from __future__ import annotations

import copy

import pytest
import torch

from codegen_model.config import CodeGenConfig
from codegen_model.generator import Request, SamplingParams
from codegen_model.model import CodeGenForCausalLM

from .test_engine import EXACT, SDPA, SDPA_BF16, EnginePath

transformers = pytest.importorskip("transformers")  # the test extra; CI installs it
try:
    from transformers.initialization import no_init_weights  # transformers 5
except ImportError:  # transformers 4
    from transformers.modeling_utils import no_init_weights

pytestmark = pytest.mark.integration

# bf16 greedy: the chosen token's fp32 logit is at most this far below the fp32 best (measured:
# <= 0.003 on these models, whose logits spread over 1.2 (tiny) and 6 (350M config) units)
BF16_GAP = 0.05

TINY = dict(vocab_size=320, n_positions=256, n_ctx=256, n_embd=64, n_layer=2, n_head=4, rotary_dim=8)
REAL_350M = dict(vocab_size=51200, n_positions=2048, n_ctx=2048, n_embd=1024, n_layer=20, n_head=16, rotary_dim=32)


class IdTokenizer:
    """Prompts are given as ids; the text of a completion is its ids (enough for these tests)."""

    def __init__(self, vocab_size: int):
        self.vocab_size, self.eos_id, self.pad_id = vocab_size, -1, 0  # eos never drawn: full budget

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError("prompts are token ids here")

    def decode(self, ids) -> str:
        return " ".join(map(str, ids))


def models(sizes: dict, seed: int):
    """transformers' CodeGen with seeded uniform weights (non-trivial biases and norms), and ours
    with the same tensors."""
    config = transformers.CodeGenConfig(**sizes, bos_token_id=None, eos_token_id=None, attn_implementation="eager")
    with no_init_weights():  # its own init is slow at 350M and overwritten anyway
        hf = transformers.CodeGenForCausalLM(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            a = 0.2 if p.ndim == 1 else 0.035
            p.uniform_(-a, a, generator=g)
            if name.endswith(("ln_1.weight", "ln_f.weight")):
                p.add_(1.0)
    ours = CodeGenForCausalLM(CodeGenConfig(**sizes))
    missing, unexpected = ours.load_state_dict(hf.state_dict(), strict=False)
    assert not missing, missing
    assert all(k.endswith(("causal_mask", "masked_bias")) for k in unexpected), unexpected
    return hf, ours.eval().requires_grad_(False)


def prompts(vocab: int, lengths: list[int], seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, vocab, (n,), generator=g).tolist() for n in lengths]


def hf_greedy(hf, batch: list[list[int]], new_tokens: int) -> list[list[int]]:
    T = max(len(p) for p in batch)
    ids = torch.zeros((len(batch), T), dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    for b, p in enumerate(batch):  # left padding
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = 1
    with torch.no_grad():
        out = hf.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                          do_sample=False, pad_token_id=0)
    return out[:, T:].tolist()


def engine_greedy(model, batch: list[list[int]], new_tokens: int, max_batch: int,
                  path: EnginePath | None = None) -> list[list[int]]:
    engine = (path or EXACT).engine(model, IdTokenizer(model.config.vocab_size), max_batch=max_batch)
    for i, p in enumerate(batch):
        engine.submit(Request(key=str(i), prompt=p, params=SamplingParams(temperature=0.0, max_new_tokens=new_tokens)))
    got = {int(c.key): c.token_ids for c in engine.completions()}
    return [got[i] for i in range(len(batch))]


def assert_greedy_parity(path: EnginePath, hf, ours, batch, theirs, max_batch: int) -> None:
    """fp32: the engine's tokens are transformers' tokens. bf16: each is the fp32 argmax up to BF16_GAP."""
    new = len(theirs[0])
    model = ours if path.dtype == torch.float32 else copy.deepcopy(ours).to(path.dtype)
    got = engine_greedy(model, batch, new, max_batch, path)
    if path.dtype == torch.float32:
        assert got == theirs
        return
    assert all(len(g) == new for g in got)
    for prompt, tokens in zip(batch, got):
        with torch.no_grad():
            logits = hf(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1:-1].float()
        chosen = logits.gather(1, torch.tensor(tokens)[:, None])[:, 0]
        gap = (logits.max(-1).values - chosen).max().item()
        assert gap <= BF16_GAP, f"a bf16 greedy token is {gap:.3g} logits below the fp32 argmax"


@pytest.fixture(scope="module")
def tiny_case():
    hf, ours = models(TINY, seed=0)
    batch = prompts(TINY["vocab_size"], [5, 13, 9, 1, 30, 2], seed=0)
    theirs = hf_greedy(hf, batch, 32)
    assert all(len(t) == 32 for t in theirs)
    return hf, ours, batch, theirs


@pytest.fixture(scope="module")
def case_350m():
    hf, ours = models(REAL_350M, seed=1)
    batch = prompts(REAL_350M["vocab_size"], [7, 16, 11], seed=1)
    return hf, ours, batch, hf_greedy(hf, batch, 8)


@pytest.mark.parametrize("path", [EXACT, SDPA, SDPA_BF16], ids=lambda p: p.id)
def test_greedy_equals_transformers_generate_tiny(tiny_case, path):
    assert_greedy_parity(path, *tiny_case, max_batch=4)  # 6 prompts through 4 slots


@pytest.mark.parametrize("path", [EXACT, SDPA, SDPA_BF16], ids=lambda p: p.id)
def test_greedy_equals_transformers_generate_350m_config(case_350m, path):
    assert_greedy_parity(path, *case_350m, max_batch=2)
