"""The documented API on CUDA (run with `-m gpu` on a machine with a GPU): from_pretrained(device=...)
and generate there equal the CPU fp32 results (docs/api.md)."""

from __future__ import annotations

import pytest
import torch

from codegen_model import CodeGenConfig, CodeGenForCausalLM

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SIZES = dict(vocab_size=512, n_positions=128, n_ctx=128, n_embd=64, n_layer=2, n_head=4, rotary_dim=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("api-gpu")
    CodeGenForCausalLM(CodeGenConfig(**SIZES)).init_random(4).save_pretrained(path)
    return path


def test_forward_and_greedy_generate_on_cuda_fp32(folder):
    cpu = CodeGenForCausalLM.from_pretrained(folder)
    gpu = CodeGenForCausalLM.from_pretrained(folder, device="cuda", dtype="float32")
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    ids = torch.randint(0, 512, (3, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    with torch.no_grad():
        want = cpu(ids, attention_mask=mask, output_attentions=True)
        got = gpu(ids.cuda(), attention_mask=mask.cuda(), output_attentions=True)
    assert (got.logits.cpu() - want.logits).abs().max() < 1e-4
    for x, y in zip(got.attentions, want.attentions):
        assert (x.cpu() - y).abs().max() < 1e-5
    a = cpu.generate(ids, attention_mask=mask, max_new_tokens=16)
    b = gpu.generate(ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=16)
    assert b.device.type == "cuda" and b.cpu().tolist() == a.tolist()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_generate_on_cuda(folder, dtype):
    model = CodeGenForCausalLM.from_pretrained(folder, device="cuda", dtype=dtype)
    ids = torch.randint(0, 512, (2, 9), device="cuda")
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    out = model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=True, top_p=0.9, seed=0,
                         num_return_sequences=2)
    assert out.shape == (4, 17) and out.dtype == torch.long
    assert torch.equal(out, model.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=True, top_p=0.9,
                                           seed=0, num_return_sequences=2))
    with torch.no_grad():
        assert torch.isfinite(model(ids, attention_mask=mask).logits).all()
