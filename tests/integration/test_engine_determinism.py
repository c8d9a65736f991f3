"""Exact determinism of the engine with realistic kernels (docs/design.md §2: bit for bit in fp32 on CPU).

The tiny model's matrices are small; here the widths are codegen-350M's (n_embd 1024, 16 heads of
64, the real 50295-token vocabulary over 51200 rows) with 2 layers, run with the default threads,
so the BLAS, attention and sampling kernels take the paths they take in a real run. Every draw's
logits must be bit-for-bit the same whatever the batch size, request order or split: on the exact
path (the CPU default), and on the path a GPU takes (`exact=False`: SDPA on a cache in the model's
dtype) in fp32 and bf16, whose CPU kernels are batch-invariant too (docs/engine.md "Guarantees").
"""

from __future__ import annotations

import random

import pytest
import torch

from codegen_model.config import CodeGenConfig
from codegen_model.engine import Engine
from codegen_model.generator import Request, SamplingParams
from codegen_model.model import CodeGenForCausalLM
from codegen_model.stop import StopSequences
from codegen_model.tokenizer import load_tokenizer_folder

from .test_engine import EXACT, SDPA, SDPA_BF16, LogitsSpy, assert_same_logits, by_sample

pytestmark = pytest.mark.integration

WIDE = dict(vocab_size=51200, n_positions=2048, n_ctx=2048, n_embd=1024, n_layer=2, n_head=16, rotary_dim=32)
PROMPTS = ["def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "import numpy as np\n\n# load the data and compute the mean of each column\n",
           "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
           "# " + "sort a list of numbers and print the largest one " * 14]  # > 128 tokens: its rows
# attend over more keys than the others', so the decode step splits its attention into runs
# (decode.attention_groups) that differ with the batch size


@pytest.fixture(scope="module")
def wide(tokenizer_dir):
    model = CodeGenForCausalLM(CodeGenConfig(**WIDE)).init_random(5).eval().requires_grad_(False)
    return model, load_tokenizer_folder(tokenizer_dir)


@pytest.fixture(params=[EXACT, SDPA, SDPA_BF16], ids=lambda p: p.id)
def path(request):
    return request.param


def requests(split: bool = False) -> list[Request]:
    out = []
    for i, prompt in enumerate(PROMPTS):
        params = SamplingParams(temperature=0.8, top_p=0.95 if i != 2 else 1.0, top_k=40 if i == 3 else 0,
                                max_new_tokens=8, seed=11)
        stop = StopSequences(("\n\n", "(")) if i % 2 else None
        parts = [(0, 1), (1, 1)] if split else [(0, 2)]
        out += [Request(key=f"w{i}", prompt=prompt, params=params, n=n, sample_offset=o, stop=stop)
                for o, n in parts]
    return out


def run(engine: Engine, reqs: list[Request], conversation: bool = True):
    """The requests plus a two-turn conversation whose second turn follows the first at once."""
    params = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=6, seed=2)
    if conversation:
        engine.submit(Request(key="c/1", prompt="# Import libraries.\n\nimport numpy as np\n\n# make an array\n",
                              params=params, n=2, conversation="c"))
    for r in reqs:
        engine.submit(r)
    out = []
    for c in engine.completions():
        out.append(c)
        if c.key == "c/1":
            engine.submit(Request(key="c/2", prompt=c.request.prompt + c.text + "\n\n# print it\n", params=params,
                                  sample_offset=c.sample_index, conversation="c"))
    engine.release("c")
    return out


def test_logits_and_samples_are_bit_identical_for_batch_sizes_order_and_splits(wide, path, monkeypatch):
    model, tok = wide
    if path.dtype != model.dtype:
        model = CodeGenForCausalLM(CodeGenConfig(**WIDE)).init_random(5).to(path.dtype).eval().requires_grad_(False)
    assert torch.get_num_threads() >= 1
    spy = LogitsSpy(monkeypatch)
    base_engine = path.engine(model, tok, max_batch=16)
    path.check_engine(base_engine)
    base = by_sample(run(base_engine, requests()))
    base_logits = spy.take()
    assert len(base) == 2 * len(PROMPTS) + 4 and len(base_logits) > 40

    assert by_sample(run(path.engine(model, tok, max_batch=1), requests())) == base
    assert_same_logits(spy.take(), base_logits, path)

    shuffled = requests()
    random.Random(1).shuffle(shuffled)
    assert by_sample(run(path.engine(model, tok, max_batch=7), shuffled)) == base
    assert_same_logits(spy.take(), base_logits, path)

    halves = requests(split=True)
    first = run(path.engine(model, tok, max_batch=3), halves[::2])
    second = run(path.engine(model, tok, max_batch=6), halves[1::2], conversation=False)
    assert by_sample(first + second) == base
    assert_same_logits(spy.take(), base_logits, path)
