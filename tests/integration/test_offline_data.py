"""Data found offline the same way everywhere: $CODEGEN_SHARED_DATA for MTPB (and a run's own
data_path when it is re-scored); one line naming both settings when nothing is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtpb import data
from mtpb.evaluate import run_data_path

REPO = Path(__file__).resolve().parents[2]


def test_readme_mtpb_command_runs_offline_and_evaluate_uses_the_runs_data(tmp_path, mtpb_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODEGEN_SHARED_DATA": str(mtpb_path.parents[1]),
           "HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mtpb", "model=tiny-random", "limit=3", "sampling.n=2",
           "sampling.max_new_tokens=8", "progress=off"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / json.loads(proc.stdout.strip().splitlines()[-1])["run_dir"]
    assert run_dir.name.endswith("-first3")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data_path"] == str(mtpb_path)  # recorded: the run says which file it was scored on
    assert not (tmp_path / "home" / ".cache" / "codegen-harness").exists()  # nothing downloaded
    # Re-scoring the run without the variable: its own data_path, not a download.
    del env["CODEGEN_SHARED_DATA"]
    proc = subprocess.run([sys.executable, "-m", "mtpb.evaluate", str(run_dir), "--quiet", "--workers", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["n_executions"] == 30
    assert f"dataset: {mtpb_path}" in proc.stderr and "downloading" not in proc.stderr


def test_run_data_path_reads_the_runs_config(tmp_path, mtpb_path):
    run = tmp_path / "run"
    run.mkdir()
    assert run_data_path([str(run)]) is None
    (run / "config.yaml").write_text(yaml.safe_dump({"data_path": str(mtpb_path)}))
    assert run_data_path([str(run)]) == run_data_path([str(run / "samples.jsonl")]) == str(mtpb_path)
    (run / "config.yaml").write_text(yaml.safe_dump({"data_path": str(tmp_path / "gone.jsonl")}))
    assert run_data_path([str(run)]) is None


def test_no_data_anywhere_is_one_line_naming_the_variable_and_data_path(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEGEN_SHARED_DATA")

    def offline(url, timeout_s=60.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(data.DataError) as err:
        data.load_problems(cache_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "CODEGEN_SHARED_DATA" in message and "data_path=" in message


def test_the_variable_is_used_when_no_path_is_given(monkeypatch, mtpb_path):
    monkeypatch.setenv("CODEGEN_SHARED_DATA", str(mtpb_path.parents[1]))
    assert data.shared_data_file() == mtpb_path
    assert data.load_problems().source == str(mtpb_path)
