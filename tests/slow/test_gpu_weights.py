"""Loading onto CUDA in each dtype (run with `-m gpu` on a machine with a GPU)."""

from __future__ import annotations

import pytest
import torch

from codegen_model.registry import load_model
from codegen_model.tiny import tiny_model
from codegen_model.weights import save_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_load_to_cuda_tracks_cpu_fp32(tmp_path, dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    ref = tiny_model()
    folder = save_model(ref, tmp_path / "ckpt")
    model = load_model(folder, dtype=dtype, device="cuda")
    assert all(p.device.type == "cuda" and p.dtype == dtype for p in model.parameters())
    assert model.transformer.rotary_table.device.type == "cuda"
    ids = torch.randint(0, 257, (2, 33), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :10] = 0
    with torch.no_grad():
        want = ref(ids, attention_mask=mask).logits
        got = model(ids.cuda(), attention_mask=mask.cuda()).logits.cpu()
    valid = mask.bool()
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    assert got.dtype == torch.float32 and (got[valid] - want[valid]).abs().max() < tol
