"""Custom checkpoints: model=local files results under its own name; a preset whose weights are not
its documented size warns with both numbers; Hub errors name the real repo id and model.path=."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codegen_model import CodeGenConfig, CodeGenForCausalLM, registry
from codegen_model.hub import hub_repo_id
from codegen_model.tiny import TINY_CONFIG, tiny_tokenizer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    CodeGenForCausalLM(CodeGenConfig(**TINY_CONFIG)).init_random(0).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def env(tmp_path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}


def test_model_local_evaluates_a_folder_under_its_own_name(tmp_path, tiny_folder):
    cmd = [sys.executable, "-m", "humaneval", "model=local", f"model.path={tiny_folder}", "model.name=my-tiny",
           "model.device=cpu", "model.dtype=float32", "limit=1", "sampling.n=1", "sampling.max_new_tokens=4",
           "progress=off"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = json.loads(proc.stdout.strip().splitlines()[-1])["run_dir"]
    assert run_dir.startswith("outputs/humaneval/my-tiny/") and (tmp_path / run_dir / "samples.jsonl").is_file()
    assert "parameters, but" not in proc.stderr  # not a preset name: no size warning


def test_a_preset_loaded_from_another_folder_warns_with_both_sizes(tiny_folder, caplog):
    registry.clear_cache()
    spec = registry.ModelSpec(name="codegen-350M-mono", path=str(tiny_folder), dtype="float32", device="cpu")
    with caplog.at_level(logging.WARNING, logger="codegen_model.registry"):
        loaded = registry.load(spec)
    n = loaded.info.n_params
    assert n == 148_864
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{n:,}" in warning and "356,712,448" in warning and "model=local" in warning
    caplog.clear()
    registry.clear_cache()
    with caplog.at_level(logging.WARNING, logger="codegen_model.registry"):
        registry.load(registry.ModelSpec(name="my-tiny", path=str(tiny_folder), dtype="float32", device="cpu"))
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_released_names_map_to_their_repo_ids():
    assert hub_repo_id("codegen-350M-mono") == "Salesforce/codegen-350M-mono"
    assert hub_repo_id("codegen-16B-nl") == "Salesforce/codegen-16B-nl"
    assert hub_repo_id("someone/codegen-350M-mono") == "someone/codegen-350M-mono"
    assert registry.documented_n_params("codegen-2B-multi") == 2_779_356_160
    assert registry.documented_n_params("my-finetune") is None


def test_codegen_model_offline_suggests_the_real_repo_id_and_model_path(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "codegen_model", "--model", "codegen-350M-mono"], cwd=tmp_path,
                          env=env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr
    assert "`hf download Salesforce/codegen-350M-mono`" in error[0] and "model.path=" in error[0]
    assert "hf download codegen-350M-mono" not in proc.stderr


def test_humaneval_hub_source_offline_fails_fast_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "humaneval", "model=reference", "benchmark.source=hub", "progress=off"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "benchmark.source=bundled" in errors[0]
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    assert elapsed < 20, elapsed


def test_a_folder_without_tokenizer_files_gets_the_shared_codegen_tokenizer(tmp_path, shared_data, monkeypatch):
    folder = tmp_path / "weights-only"
    CodeGenForCausalLM(CodeGenConfig(**{**TINY_CONFIG, "vocab_size": 51200})).init_random(0).save_pretrained(folder)
    monkeypatch.setenv("CODEGEN_SHARED_DATA", str(shared_data))
    registry.clear_cache()
    loaded = registry.load(registry.ModelSpec(name="w", path=str(folder), dtype="float32", device="cpu"))
    assert loaded.tokenizer.vocab_size == 50295  # the CodeGen tokenizer (GPT-2 BPE + 38 whitespace tokens)
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("def f():\n    return 1")) == "def f():\n    return 1"
    registry.clear_cache()
    monkeypatch.delenv("CODEGEN_SHARED_DATA")
    with pytest.raises(ValueError, match="tokenizer"):
        registry.load(registry.ModelSpec(name="w", path=str(folder), dtype="float32", device="cpu"))
