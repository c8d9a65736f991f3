"""The apps turn a user's mistake into one line naming the fix (exit 2), never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _app(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


def test_a_checkpoint_neither_cached_nor_reachable(tmp_path):
    proc = _app("humaneval", "experiment=quick", f"run_dir={tmp_path / 'run'}",
                env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    line = _one_line_error(proc)
    assert "Salesforce/codegen-350M-mono" in line and "HF_HOME" in line and "HF_HUB_OFFLINE is set" in line


def test_a_malformed_dataset_line(tmp_path, mtpb_path):
    bad = tmp_path / "mtpb.jsonl"
    lines = mtpb_path.read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2], *lines[2:]]) + "\n")
    proc = _app("mtpb", "model=tiny-random", f"data_path={bad}", f"run_dir={tmp_path / 'run'}")
    line = _one_line_error(proc)
    assert f"{bad}:2:" in line and "not a JSON line" in line


def test_a_bad_sampling_value(tmp_path):
    proc = _app("humaneval", "model=tiny-random", "sampling.top_p=1.5", f"run_dir={tmp_path / 'run'}")
    assert "top_p" in _one_line_error(proc)


@pytest.mark.parametrize("app, problem, words", [
    ("humaneval", "HumanEval/999", ["unknown task id 'HumanEval/999'", "164 problems"]),
    ("mtpb", "999", ["unknown MTPB problem id", "999"]),
])
def test_an_unknown_problem_id_is_one_line_and_leaves_no_run_directory(tmp_path, app, problem, words):
    (tmp_path / "outputs" / "earlier").mkdir(parents=True)  # someone else's folder: kept
    proc = subprocess.run([sys.executable, "-m", app, "model=tiny-random", f"problems=[{problem}]"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    line = _one_line_error(proc)
    assert all(w in line for w in words), line
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["outputs", "outputs/earlier"]


def test_an_old_key_runs_with_one_warning_line(tmp_path):
    proc = _app("humaneval", "model=reference", "limit=1", "sampling.n=1", "sandbox.timeout_s=4",
                f"run_dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: sandbox.timeout_s is now sandbox.wall_s (the old name still works)"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["sandbox_limits"]["wall_s"] == 4.0


@pytest.mark.parametrize("app, old, new", [
    ("humaneval", "sandbox.timeout_s=4", "sandbox.wall_s=5"),
    ("mtpb", "sandbox.wall_grace_s=5", "sandbox.wall_s=40"),
])
def test_an_old_key_with_its_new_name_is_one_line_and_no_directory(tmp_path, app, old, new):
    proc = subprocess.run([sys.executable, "-m", app, "model=tiny-random", old, new], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    line = _one_line_error(proc)
    assert old in line and new in line and f"give only {new.split('=')[0]}" in line
    assert proc.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module, old, new", [
    ("humaneval.evaluate", "--timeout-s", "--wall-s"),
    ("mtpb.evaluate", "--timeout-s", "--official-timeout-s"),
])
def test_the_evaluate_commands_old_limit_flag_warns_and_both_names_are_refused(module, old, new, tmp_path):
    """One vocabulary for limits in the evaluate CLIs too; the flag of before still works."""
    from results.aliases import rename_flags

    err = io.StringIO()
    assert rename_flags(["x.jsonl", f"{old}=5", "--workers", "2"], {old: new}, err) == ["x.jsonl", f"{new}=5",
                                                                                       "--workers", "2"]
    assert err.getvalue() == f"warning: {old} is now {new} (the old name still works)\n"
    done = subprocess.run([sys.executable, "-m", module, str(tmp_path / "none.jsonl"), old, "5", new, "5"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and done.stderr.strip() == \
        f"error: {old} and {new} are the same setting ({old} is its old name): give only {new}"
