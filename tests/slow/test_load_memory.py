"""Load time and peak memory of a random codegen-350M checkpoint in fp32 (docs/design.md §2, "Weights").

Writes the 350M config with random weights as model.safetensors (fp32) and as the released
layout (fp16 pytorch_model.bin with legacy buffers), then loads each in a fresh process and reads
its peak RSS (VmHWM) after loading and after one forward. The loader must not hold a second full
copy: peak RSS stays below the fp32 weights plus the process baseline plus a margin.

    python -m pytest tests/slow/test_load_memory.py -m slow -s     # as a test
    python -m tests.slow.test_load_memory [DIR]                       # just print the numbers
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30
PROBE = r"""
import json, sys, time
def hwm():
    return {k: int(v.split()[0]) * 1024 for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
            if k in ("VmHWM", "VmRSS")}
import torch
from codegen_model.registry import load_model
base = hwm()
t0 = time.perf_counter()
model = load_model(sys.argv[1], dtype=sys.argv[2])
load_s = time.perf_counter() - t0
after_load = hwm()
with torch.no_grad():
    model(torch.arange(1, 65)[None])
print(json.dumps({"load_s": load_s, "base": base, "after_load": after_load, "after_forward": hwm(),
                  "weights_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}))
"""


def write_checkpoints(root: Path) -> dict[str, Path]:
    from codegen_model.config import CODEGEN_350M, CodeGenConfig
    from codegen_model.model import CodeGenForCausalLM
    from codegen_model.weights import save_model

    model = CodeGenForCausalLM(CodeGenConfig(**CODEGEN_350M)).init_random(0)
    st = save_model(model, root / "fp32-safetensors")
    legacy = root / "fp16-bin"
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps(model.config.to_dict()))
    state = {k: v.half() for k, v in model.state_dict().items()}
    mask = torch.tril(torch.ones(2048, 2048, dtype=torch.bool))[None, None]
    for i in range(model.config.n_layer):
        state[f"transformer.h.{i}.attn.causal_mask"] = mask
        state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e9)
    torch.save(state, legacy / "pytorch_model.bin")
    return {"fp32 model.safetensors": st, "fp16 pytorch_model.bin (legacy)": legacy}


def measure(folder: Path, dtype: str = "float32") -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(folder), dtype], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(name: str, m: dict) -> str:
    base = m["base"]["VmRSS"]
    return (f"{name}: load {m['load_s']:.2f} s; peak RSS {m['after_load']['VmHWM'] / GIB:.2f} GiB after load, "
            f"{m['after_forward']['VmHWM'] / GIB:.2f} GiB after a forward (torch baseline {base / GIB:.2f} GiB, "
            f"fp32 weights {m['weights_bytes'] / GIB:.2f} GiB)")


@pytest.mark.slow
def test_350m_loads_without_a_second_copy(tmp_path):
    for name, folder in write_checkpoints(tmp_path).items():
        m = measure(folder)
        print(report(name, m))
        extra = m["after_forward"]["VmHWM"] - m["base"]["VmRSS"] - m["weights_bytes"]
        # one fp32 copy of the weights, plus (for the fp16 file) its memory-mapped pages: < 0.9 GiB
        assert extra < 0.9 * GIB, f"{name}: {extra / GIB:.2f} GiB beyond the weights"


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="codegen-350m-"))
    folders = write_checkpoints(root) if not (root / "fp16-bin").is_dir() else {
        "fp32 model.safetensors": root / "fp32-safetensors", "fp16 pytorch_model.bin (legacy)": root / "fp16-bin"}
    for name, folder in folders.items():
        print(report(name, measure(folder)))
