"""`python -m codegen_model.bench` runs every workload and prints the promised fields (on the tiny model)."""

from __future__ import annotations

import json

import pytest
import torch

from codegen_model import bench

pytestmark = pytest.mark.integration

FIELDS = {"workload", "dtype", "ours_tok_s", "ref_tok_s", "ratio", "ours_prefill_ms", "ours_decode_ms_per_step",
          "ref_prefill_ms", "ref_decode_ms_per_step", "peak_memory_mb", "kv_cache_mb", "matmul_ms", "overhead",
          "floor_tok_s", "ratio_to_floor"}


def test_bench_prints_one_json_line_per_workload(capsys):
    pytest.importorskip("transformers")
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--tiny", "--new-tokens", "6", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
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
