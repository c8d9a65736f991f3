"""Parity with `transformers.CodeGenForCausalLM` on random weights (docs/design.md §7).

For a tiny config and the real codegen-350M config, transformers' model is written in the three
layouts the loader must read: `save_pretrained` -> model.safetensors, `save_pretrained` sharded with
an index, and the released checkpoints' own: an fp16 `pytorch_model.bin` from `torch.save` that
still carries the legacy `attn.causal_mask` / `attn.masked_bias` buffers. The reference weights are
rounded to fp16 first, so all three files hold the same values and one reference serves them all.

Comparisons are on positions that hold real tokens: transformers 5 fills logits at left-padding
query positions with values of no meaning, and defaults position ids to `arange` (harmless for
real tokens, rotary being relative; we pass it mask-derived ids all the same). For the same reason
the padded loss comparison sets labels to -100 wherever the predicting position is padding.

The 350M checkpoint is 1.4 GB in fp32: it is written once per module and each format is loaded once.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from codegen_model.__main__ import greedy_generate
from codegen_model.model import DynamicCache
from codegen_model.registry import load_model

transformers = pytest.importorskip("transformers")  # the test extra; CI installs it
try:
    from transformers.initialization import no_init_weights  # transformers 5
except ImportError:  # transformers 4
    from transformers.modeling_utils import no_init_weights

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

TINY = dict(vocab_size=320, n_positions=256, n_ctx=256, n_embd=64, n_layer=2, n_head=4, rotary_dim=8)
REAL_350M = dict(vocab_size=51200, n_positions=2048, n_ctx=2048, n_embd=1024, n_layer=20, n_head=16, rotary_dim=32)
FORMATS = ("safetensors", "sharded", "legacy-bin")
LOGITS_ATOL = 1e-4
LOSS_ATOL = 1e-5


def reference_model(sizes: dict, seed: int):
    """transformers' CodeGen with seeded random fp16-representable weights (every tensor drawn here,
    biases and norms non-trivial, so a dropped or swapped tensor shows)."""
    config = transformers.CodeGenConfig(**sizes, bos_token_id=None, eos_token_id=None,
                                        attn_implementation="eager")
    with no_init_weights():  # transformers' own init takes ~10 s at 350M; we overwrite it anyway
        model = transformers.CodeGenForCausalLM(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            a = 0.2 if p.ndim == 1 else 0.035  # uniform: std 0.12 for vectors, 0.02 for matrices
            p.uniform_(-a, a, generator=g)
            if name.endswith(("ln_1.weight", "ln_f.weight")):
                p.add_(1.0)
            p.copy_(p.half())  # fp16-representable: the fp16 .bin then holds exactly these values
    return model


def write_formats(hf, root, shard_size: str) -> dict:
    dirs = {fmt: root / fmt for fmt in FORMATS}
    hf.save_pretrained(dirs["safetensors"])
    hf.save_pretrained(dirs["sharded"], max_shard_size=shard_size)
    legacy = dirs["legacy-bin"]
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps(hf.config.to_dict()))
    state = {k: v.half() for k, v in hf.state_dict().items()}
    n = hf.config.n_positions
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, None]
    for i in range(hf.config.n_layer):  # what the released fp16 checkpoints still carry
        state[f"transformer.h.{i}.attn.causal_mask"] = mask
        state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e9)
    torch.save(state, legacy / "pytorch_model.bin")
    assert len(list(dirs["sharded"].glob("model-*.safetensors"))) > 1
    assert (dirs["sharded"] / "model.safetensors.index.json").is_file()
    return dirs


def ragged_batch(vocab: int, lengths: list[int], seed: int):
    """Left-padded ids (pad id 0) and mask for prompts of the given lengths."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.zeros((len(lengths), T), dtype=torch.long)
    mask = torch.zeros((len(lengths), T), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, T - n:] = torch.randint(1, vocab, (n,), generator=g)
        mask[b, T - n:] = 1
    return ids, mask


def mask_positions(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


def padded_labels(ids, mask):
    """Labels = ids, -100 at padding and wherever the position predicting the label is padding."""
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, 1:] = labels[:, 1:].masked_fill(mask[:, :-1] == 0, -100)
    return labels


class Case:
    def __init__(self, name, sizes, seed, lengths, shard_size, root):
        self.name = name
        hf = reference_model(sizes, seed)
        self.dirs = write_formats(hf, root, shard_size)
        self.ids, self.mask = ragged_batch(sizes["vocab_size"], lengths, seed)
        self.valid = self.mask.bool()
        with torch.no_grad():
            self.logits = hf(self.ids, attention_mask=self.mask, position_ids=mask_positions(self.mask)).logits
            self.plain = self.ids[self.valid.all(1)]  # the unpadded row(s)
            assert len(self.plain), "the batch needs one row of full length"
            self.plain_loss = hf(self.plain, labels=self.plain).loss
            self.labels = padded_labels(self.ids, self.mask)
            self.padded_loss = hf(self.ids, attention_mask=self.mask, position_ids=mask_positions(self.mask),
                                  labels=self.labels).loss
        self.hf = hf if name == "tiny" else None  # keep the small one for generate(); free 1.4 GB


@pytest.fixture(scope="module")
def tiny_case(tmp_path_factory):
    return Case("tiny", TINY, 0, [5, 13, 9, 1], "20KB", tmp_path_factory.mktemp("parity-tiny"))


@pytest.fixture(scope="module")
def case_350m(tmp_path_factory):
    return Case("350M", REAL_350M, 1, [7, 16, 11], "300MB", tmp_path_factory.mktemp("parity-350m"))


@pytest.fixture(params=["tiny", "350M"])
def case(request):
    return request.getfixturevalue("tiny_case" if request.param == "tiny" else "case_350m")


@pytest.fixture(scope="module", autouse=True)
def release_models():
    yield
    _loaded.clear()


_loaded: dict[str, tuple[str, torch.nn.Module]] = {}


def ours(case, fmt):
    """Our model loaded from one format; one kept per config, so memory stays bounded."""
    if _loaded.get(case.name, ("", None))[0] != fmt:
        _loaded.pop(case.name, None)
        _loaded[case.name] = (fmt, load_model(case.dirs[fmt], dtype=torch.float32))
    return _loaded[case.name][1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_logits_match_transformers_on_a_left_padded_ragged_batch(case, fmt):
    model = ours(case, fmt)
    with torch.no_grad():
        logits = model(case.ids, attention_mask=case.mask, position_ids=mask_positions(case.mask)).logits
    diff = (logits[case.valid] - case.logits[case.valid]).abs().max().item()
    print(f"parity {case.name} {fmt}: logits max-abs-diff {diff:.2e} (|logits| max {case.logits[case.valid].abs().max():.2f})")
    assert diff <= LOGITS_ATOL


@pytest.mark.parametrize("fmt", ["legacy-bin"])
def test_loss_matches_transformers(case, fmt):
    model = ours(case, fmt)
    with torch.no_grad():
        plain = model(case.plain, labels=case.plain).loss
        padded = model(case.ids, attention_mask=case.mask, position_ids=mask_positions(case.mask),
                       labels=case.labels).loss
    print(f"parity {case.name}: loss diff {abs(plain - case.plain_loss).item():.2e} (no padding), "
          f"{abs(padded - case.padded_loss).item():.2e} (left-padded, labels -100 after padding)")
    assert abs(plain.item() - case.plain_loss.item()) <= LOSS_ATOL
    assert abs(padded.item() - case.padded_loss.item()) <= LOSS_ATOL


@pytest.mark.parametrize("fmt", ["legacy-bin"])
def test_cached_decode_equals_one_full_forward(case, fmt):
    model = ours(case, fmt)
    ids, mask = case.ids, case.mask
    T = ids.shape[1]
    prefill = T - 6
    pos = mask_positions(mask)
    with torch.no_grad():
        cache = DynamicCache()
        steps = [model(ids[:, :prefill], attention_mask=mask[:, :prefill], position_ids=pos[:, :prefill],
                       cache=cache).logits]
        for t in range(prefill, T):  # then one token at a time
            steps.append(model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], position_ids=pos[:, t:t + 1],
                               cache=cache).logits)
    stepped = torch.cat(steps, dim=1)
    valid = case.valid
    diff = (stepped[valid] - case.logits[valid]).abs().max().item()
    print(f"parity {case.name}: cached decode vs transformers full forward max-abs-diff {diff:.2e}")
    assert diff <= LOGITS_ATOL


def test_32_greedy_tokens_equal_transformers_generate(tiny_case):
    model = ours(tiny_case, "safetensors")
    prompts = [row[m.bool()].tolist() for row, m in zip(tiny_case.ids, tiny_case.mask)]
    with torch.no_grad():
        hf_out = tiny_case.hf.generate(tiny_case.ids, attention_mask=tiny_case.mask, max_new_tokens=32,
                                       min_new_tokens=32, do_sample=False, pad_token_id=0)
    theirs = hf_out[:, tiny_case.ids.shape[1]:].tolist()
    mine = greedy_generate(model, prompts, 32)
    assert all(len(t) == 32 for t in theirs)
    assert mine == theirs
