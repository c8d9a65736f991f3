"""The CodeGen model's own contracts, without transformers: left padding, the cache, the loss,
logits_to_keep, hidden states, errors. Parity with transformers is tests/integration/test_parity.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codegen_model.config import CodeGenConfig
from codegen_model.model import CodeGenForCausalLM, CodeGenModel, DynamicCache, positions_from_mask, rotate_every_two

CFG = CodeGenConfig(vocab_size=100, n_positions=64, n_ctx=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4)
ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    m = CodeGenForCausalLM(CFG).init_random(0)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in m.parameters():
            if p.ndim == 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return m.eval()


def rand_ids(*shape, seed=0):
    return torch.randint(0, CFG.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def left_pad(rows: list[torch.Tensor], pad_id: int = 0):
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, T - len(r):] = r
        mask[b, T - len(r):] = 1
    return ids, mask


def test_rotate_every_two():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_every_two(x).tolist() == [-2.0, 1.0, -4.0, 3.0]


def test_positions_from_mask():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert positions_from_mask(mask, 5).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert positions_from_mask(mask, 2).tolist() == [[1, 2], [3, 4]]


@torch.no_grad()
def test_left_padded_ragged_batch_equals_one_by_one(model):
    rows = [rand_ids(n, seed=n) for n in (3, 9, 6)]
    ids, mask = left_pad(rows)
    batch = model(ids, attention_mask=mask, position_ids=positions_from_mask(mask, ids.shape[1])).logits
    for b, r in enumerate(rows):
        alone = model(r[None]).logits[0]
        torch.testing.assert_close(batch[b, -len(r):], alone, atol=ATOL, rtol=0)


@torch.no_grad()
def test_outputs_are_finite_at_padded_positions(model):
    ids, mask = left_pad([rand_ids(2), rand_ids(7)])
    assert torch.isfinite(model(ids, attention_mask=mask).logits).all()


@torch.no_grad()
@pytest.mark.parametrize("chunks", [[1] * 12, [5, 1, 1, 3, 2], [12]])
def test_cached_decode_equals_full_forward(model, chunks):
    rows = [rand_ids(12, seed=1), rand_ids(8, seed=2)]
    ids, mask = left_pad(rows)
    full = model(ids, attention_mask=mask).logits
    cache, outs, t = DynamicCache(), [], 0
    for n in chunks:
        out = model(ids[:, t:t + n], attention_mask=mask[:, :t + n], cache=cache)
        assert out.cache is cache
        outs.append(out.logits)
        t += n
    stepped = torch.cat(outs, dim=1)
    valid = mask.bool()
    torch.testing.assert_close(stepped[valid], full[valid], atol=ATOL, rtol=0)
    assert cache.length == 12


@torch.no_grad()
def test_logits_to_keep(model):
    ids = rand_ids(2, 7)
    full = model(ids).logits
    last = model(ids, logits_to_keep=1).logits
    assert last.shape == (2, 1, CFG.vocab_size)
    torch.testing.assert_close(last[:, 0], full[:, -1], atol=ATOL, rtol=0)
    torch.testing.assert_close(model(ids, logits_to_keep=3).logits, full[:, -3:], atol=ATOL, rtol=0)


@torch.no_grad()
def test_loss_is_shifted_cross_entropy_ignoring_minus_100(model):
    ids = rand_ids(2, 8)
    labels = ids.clone()
    labels[0, :3] = -100
    out = model(ids, labels=labels)
    want = F.cross_entropy(out.logits[:, :-1].reshape(-1, CFG.vocab_size), labels[:, 1:].reshape(-1),
                           ignore_index=-100)
    torch.testing.assert_close(out.loss, want)
    with pytest.raises(ValueError, match="labels need logits for every position"):
        model(ids, labels=labels, logits_to_keep=1)


@torch.no_grad()
def test_hidden_states(model):
    ids = rand_ids(1, 5)
    out = model(ids, output_hidden_states=True)
    assert len(out.hidden_states) == CFG.n_layer + 1
    bare = CodeGenModel(CFG)
    bare.load_state_dict({k.removeprefix("transformer."): v for k, v in model.state_dict().items()
                          if k.startswith("transformer.")})
    h = bare.eval()(ids).last_hidden_state
    torch.testing.assert_close(h, out.hidden_states[-1], atol=ATOL, rtol=0)
    torch.testing.assert_close(model.lm_head(h), out.logits, atol=ATOL, rtol=0)


@torch.no_grad()
def test_logits_are_fp32_with_padding_rows(model):
    out = model(rand_ids(1, 4)).logits
    assert out.dtype == torch.float32 and out.shape[-1] == CFG.vocab_size


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_tracks_fp32(model, dtype):
    ids, mask = left_pad([rand_ids(5), rand_ids(9)])
    ref = model(ids, attention_mask=mask).logits
    half = CodeGenForCausalLM(CFG)
    half.load_state_dict(model.state_dict())
    out = half.to(dtype).eval()(ids, attention_mask=mask).logits
    assert out.dtype == torch.float32
    valid = mask.bool()
    assert (out[valid] - ref[valid]).abs().max() < 0.05


def test_errors_name_the_limit(model):
    with pytest.raises(ValueError, match=r"position 64 exceeds the model's context of 64 tokens"):
        model(rand_ids(1, 65))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 4\) but keys span \(1, 5\)"):
        model(rand_ids(1, 5), attention_mask=torch.ones(1, 4, dtype=torch.long))


def test_init_random_is_seeded():
    a = CodeGenForCausalLM(CFG).init_random(7).state_dict()
    b = CodeGenForCausalLM(CFG).init_random(7).state_dict()
    c = CodeGenForCausalLM(CFG).init_random(8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["transformer.wte.weight"], c["transformer.wte.weight"])
