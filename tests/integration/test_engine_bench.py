"""`python -m codegen_model.bench` runs every workload and prints the promised fields (on the tiny model)."""

from __future__ import annotations

import json

import pytest
import torch

from codegen_model import bench

pytestmark = pytest.mark.integration

FIELDS = {"workload", "dtype", "ours_tok_s", "ref_tok_s", "ratio", "ours_prefill_ms", "ours_decode_ms_per_step",
          "ref_prefill_ms", "ref_decode_ms_per_step", "peak_memory_mb", "kv_cache_mb", "matmul_ms", "overhead",
          "floor_tok_s", "ratio_to_floor", "ratio_ceiling"}


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


def test_json_line_is_strict_json():
    """The bench's and the GPU check's lines: a rate over zero time is null, never a bare NaN."""
    line = bench.json_line({"workload": "he8", "ratio": float("nan"), "tok_s": float("inf"), "runs": [1.0, -float("inf")]})
    assert json.loads(line, parse_constant=_refuse) == {"workload": "he8", "ratio": None, "tok_s": None,
                                                        "runs": [1.0, None]}


def test_bench_prints_one_json_line_per_workload(capsys):
    pytest.importorskip("transformers")
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--tiny", "--new-tokens", "6", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    lines = [json.loads(line, parse_constant=_refuse) for line in capsys.readouterr().out.splitlines()]
    assert [line["workload"] for line in lines] == list(bench.WORKLOADS)
    for line in lines:
        assert FIELDS <= set(line), FIELDS - set(line)
        assert line["ours_tok_s"] > 0 and line["ref_tok_s"] > 0 and line["ratio"] > 0
    mtpb = lines[bench.WORKLOADS.index("mtpb5")]
    assert mtpb["ours_reused_prompt_tokens"] > 0  # later turns reused the parked caches
    assert lines[0]["new_tokens"] == 8 * 6  # he8: forced length


def test_bench_rejects_unknown_workloads():
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--workloads", "he8,nope", "--no-ref"])


def test_repeated_runs_report_each_sides_fastest_run(capsys):
    runs = [{"ours_s": 2.0, "ours_tok_s": 50.0, "matmul_ms": 9.0, "ref_s": 5.0, "ref_tok_s": 20.0},
            {"ours_s": 1.0, "ours_tok_s": 100.0, "matmul_ms": 11.0, "ref_s": 6.0, "ref_tok_s": 16.7}]
    best = bench.best_of(runs)
    assert best["ours_tok_s"] == 100.0 and best["ref_tok_s"] == 20.0 and best["matmul_ms"] == 9.0
    assert best["ours_s_runs"] == [2.0, 1.0] and best["ref_s_runs"] == [5.0, 6.0]
    assert bench.main(["--tiny", "--new-tokens", "3", "--workloads", "he8", "--no-ref", "--repeat", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert len(line["ours_s_runs"]) == 2 and line["ours_s"] == min(line["ours_s_runs"])
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--repeat", "0", "--no-ref"])


def test_kernel_timer_is_torch_benchmark_timer_at_our_thread_count():
    import time

    import torch

    from codegen_model.bench import _time

    threads = torch.get_num_threads()
    seen = []
    seconds = _time(lambda: (seen.append(torch.get_num_threads()), time.sleep(0.004)), min_run_time_s=0.05)
    assert 0.0035 < seconds < 0.03  # seconds per call, not per block
    assert set(seen) == {threads} and len(seen) > 3  # warmed up and repeated, at this process's thread count
