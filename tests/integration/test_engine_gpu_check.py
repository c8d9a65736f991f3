"""The prepared GPU check (`scripts/gpu_check.sh`, `codegen_model.gpu_check`; docs/engine.md "The GPU
check"): it refuses cleanly without CUDA, and every part of it runs (at tiny sizes, `--smoke`) on
whatever machine CI has, so the script a GPU session runs in one call is known to work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from codegen_model import bench, gpu_check
from codegen_model.tiny import tiny_model

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def no_cuda_env() -> dict:
    """This environment with every GPU hidden (so the refusal is tested on a GPU machine too)."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_the_script_refuses_in_one_line_without_cuda(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(out)], capture_output=True, text=True,
                          env=no_cuda_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: gpu_check needs a CUDA GPU") and "nothing was measured" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (out / "gpu_check.jsonl").exists()


def test_the_script_needs_an_output_folder():
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: scripts/gpu_check.sh OUT_DIR")


def test_smoke_run_writes_every_part(tmp_path):
    """`--smoke`: the whole check on the tiny model (the CPU here), every part ok, the lines parse."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "codegen_model.gpu_check", str(out), "--smoke"], capture_output=True,
                          text=True, env=no_cuda_env(), timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "gpu_check.jsonl").read_text().splitlines()]
    assert proc.stdout.strip().splitlines() == [json.dumps(line) for line in lines]  # also printed
    parts = [line["part"] for line in lines]
    assert parts[0] == "start" and parts[-1] == "summary"
    assert set(parts) == {"start", "env", "copy_bandwidth", "decode_bandwidth", "gpu_tests", "bench", "humaneval_shaped",
                          "summary"}
    assert all(line.get("status", "ok") == "ok" for line in lines), [ln for ln in lines if ln.get("status")]
    assert all(line["wall_s"] >= 0 for line in lines if line["part"] not in ("start",))
    decode = [line for line in lines if line["part"] == "decode_bandwidth"]
    assert [d["rows"] for d in decode] == gpu_check.SMOKE["rows"] and all(d["eager_gb_s"] > 0 for d in decode)
    tests = next(line for line in lines if line["part"] == "gpu_tests")
    assert tests["passed"] + tests["skipped"] >= 6 and tests["failed"] == tests["errors"] == 0  # all skip on a CPU
    assert "tests/integration/test_engine.py" in tests["files"]
    assert (out / "gpu_tests.xml").exists()
    benches = [line for line in lines if line["part"] == "bench"]
    assert [b["workload"] for b in benches] == gpu_check.SMOKE["workloads"]
    assert all(b["ratio"] > 0 and b["decode_gb_s"] > 0 and b["decode_bw_fraction"] is not None for b in benches)
    he = next(line for line in lines if line["part"] == "humaneval_shaped")
    assert he["complete"] and he["samples_done"] == he["samples"] == 3 * 4 and he["projected_run_wall_s"] == he["run_wall_s"] <= he["wall_s"]
    summary = lines[-1]
    assert summary["ok"] and summary["not_ok"] == [] and summary["ratio_he16_stop_bf16_min"] > 0


def test_datasheet_bandwidth_of_known_cards():
    assert gpu_check.datasheet_gb_s("NVIDIA H200") == 4800.0
    assert gpu_check.datasheet_gb_s("NVIDIA H100 80GB HBM3") == 3350.0
    assert gpu_check.datasheet_gb_s("NVIDIA H100 PCIe") == 2000.0
    assert gpu_check.datasheet_gb_s("NVIDIA A100-SXM4-80GB") == 2039.0
    assert gpu_check.datasheet_gb_s("NVIDIA A100-SXM4-40GB") == 1555.0
    assert gpu_check.datasheet_gb_s("NVIDIA L4") == 300.0 and gpu_check.datasheet_gb_s("NVIDIA L40S") == 864.0
    assert gpu_check.datasheet_gb_s("Some Future GPU") is None


def test_junit_report_is_counted(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text("""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.a" name="test_ok" time="0.1"/>
<testcase classname="tests.a" name="test_bad" time="0.1"><failure message="AssertionError: 1 != 2">trace</failure></testcase>
<testcase classname="tests.a" name="test_skip" time="0.0"><skipped type="pytest.skip" message="needs CUDA"/></testcase>
<testcase classname="" name="tests.integration.test_x" time="0.0"><error message="collection failure">ModuleNotFoundError: No module named 'hydra'</error></testcase>
</testsuite></testsuites>""")
    got = gpu_check.parse_junit(report)
    assert (got["passed"], got["failed"], got["skipped"], got["errors"]) == (1, 1, 1, 1)
    assert got["failures"] == [{"test": "tests.a::test_bad", "error": "AssertionError: 1 != 2"}]
    assert got["collection_errors"] == [{"file": "tests.integration.test_x", "error": "collection failure"}]
    assert got["skip_reasons"][0]["reason"] == "needs CUDA"


def test_gpu_test_files_are_found():
    files = {p.relative_to(REPO).as_posix() for p in gpu_check.gpu_test_files(REPO)}
    assert {"tests/integration/test_engine.py", "tests/slow/test_gpu_weights.py"} <= files
    assert "tests/integration/test_engine_parity.py" not in files


def test_decode_step_bytes_counts_weights_keys_and_logits():
    model = tiny_model(dtype=torch.bfloat16)
    cfg = model.config
    linear = sum(w.numel() for w in bench.linear_weights(model)) * 2 + cfg.vocab_size * 2  # + lm_head bias
    kv = 2 * cfg.n_layer * cfg.n_embd * 2 * 8 * (100 + 1)  # 8 rows reading 100 keys, writing 1, per layer
    want = linear + kv + 8 * cfg.n_embd * 2 + 8 * cfg.vocab_size * 4
    assert bench.decode_step_bytes(model, 8, 100, torch.bfloat16) == want
    assert bench.decode_step_bytes(model, 8, 100, torch.float32) == want + kv  # an fp32 cache moves twice the keys


def test_a_part_that_does_not_fit_the_budget_is_skipped_and_an_error_is_recorded(tmp_path):
    check = gpu_check.Check(tmp_path, budget_s=5.0)
    assert not check.part("big", 3600, lambda: {"never": 1})
    assert not check.part("broken", 0, lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert check.part("fine", 0, lambda: iter([{"x": 1}, {"x": 2}]))
    check.close()
    lines = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    assert lines[0]["part"] == "big" and lines[0]["status"] == "skipped" and "needs ~3600 s" in lines[0]["reason"]
    assert lines[1]["status"] == "error" and lines[1]["error"] == "ValueError: boom"
    assert [ln.get("x") for ln in lines[2:]] == [1, 2]
    assert check.status == {"big": {"status": "skipped", "wall_s": 0.0}, "broken": {"status": "error", "wall_s": 0.0},
                            "fine": {"status": "ok", "wall_s": 0.0}}


def test_humaneval_shaped_run_stops_at_its_deadline_and_projects_the_wall_time():
    model, tok = tiny_model(), __import__("codegen_model.tiny", fromlist=["tiny_tokenizer"]).tiny_tokenizer()
    res = gpu_check.humaneval_shaped(model, tok, prompts=(20, 30, 40), n=8, max_batch=4,
                                     params=gpu_check.SMOKE["params"], deadline=time.perf_counter())
    assert not res["complete"] and 0 < res["samples_done"] < 24
    assert res["projected_run_wall_s"] > res["run_wall_s"]


def test_the_hard_time_limit_keeps_the_lines_written_and_says_so(tmp_path):
    out = tmp_path / "out"
    env = {**no_cuda_env(), "GPU_CHECK_TIMEOUT_S": "5"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(out), "--smoke"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 124
    assert proc.stderr.strip().splitlines()[-1].startswith("error: gpu_check stopped by its 5 s time limit")
    lines = [json.loads(line) for line in (out / "gpu_check.jsonl").read_text().splitlines()]
    assert lines[0]["part"] == "start" and lines[-1] == {"part": "summary", "ok": False,
                                                         "error": "stopped by the 5 s time limit"}
