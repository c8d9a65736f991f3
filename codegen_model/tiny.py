"""`tiny-random`: a small CodeGen with seeded random weights and a byte-level tokenizer.

For tests and smoke runs: built on the fly, fully offline, deterministic (same seed, same weights,
same tokens on every machine). The architecture is CodeGen's; only the sizes are small. The
tokenizer has the 256 bytes (ids 0..255, in GPT-2's byte-to-unicode alphabet) plus
`<|endoftext|>` = 256, so it round-trips any text; the model's vocabulary (384 rows) is larger, so
padding rows exist exactly as in the released checkpoints (50295 tokens, 51200 rows).
"""

from __future__ import annotations

import hashlib

import torch

from .config import CodeGenConfig
from .model import CodeGenForCausalLM
from .tokenizer import EOS_TOKEN, CodeGenTokenizer, from_bpe_files

TINY_CONFIG = dict(vocab_size=384, n_positions=2048, n_ctx=2048, n_embd=64, n_layer=2, n_head=4,
                   rotary_dim=8)
TINY_SEED = 0


def tiny_config() -> CodeGenConfig:
    return CodeGenConfig(**TINY_CONFIG)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the ByteLevel alphabet)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def tiny_tokenizer() -> CodeGenTokenizer:
    """Byte-level tokenizer: id = byte value for 0..255, `<|endoftext|>` = 256, no merges."""
    vocab = {ch: b for b, ch in bytes_to_unicode().items()}
    vocab[EOS_TOKEN] = 256
    return CodeGenTokenizer(from_bpe_files(vocab, []), source="tiny-random")


def tiny_model(seed: int = TINY_SEED, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> CodeGenForCausalLM:
    """The tiny CodeGen with weights drawn on the CPU from `seed` (so identical on every device)."""
    model = CodeGenForCausalLM(tiny_config()).init_random(seed)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def state_hash(model: torch.nn.Module) -> str:
    """sha256 over the names, shapes and fp32 values of a model's parameters (for manifests)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}\n".encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()
