"""A two-temperature Hydra multirun of `python -m humaneval` with tiny-random, read into one table
by `python -m results` through the sweep folder (docs/design.md §6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from results.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_two_temperature_multirun_reads_into_one_table(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    command = [
        sys.executable, "-m", "humaneval", "-m", "model=tiny-random", "limit=2", "sampling.n=2",
        "sampling.max_new_tokens=8", "sampling.temperature=0.2,0.8", "progress=off",
        f"run_dir={tmp_path}/runs/t${{sampling.temperature}}", f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    assert main([str(sweep), "--k", "1,2", "--boot", "100", "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "report" / "results.csv")
    assert sorted(table["temperature"]) == [0.2, 0.8]
    assert set(table["model"]) == {"tiny-random"} and set(table["benchmark"]) == {"humaneval"}
    assert table["complete"].all() and (table["problems"] == 2).all() and (table["samples"] == 4).all()
    assert table["pass@2"].notna().all() and "Best temperature per k" in out
