"""Killing a run midway, as a crash or an out-of-memory kill would: shared by the resume tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence


def sigkill_after_samples(cmd: Sequence[str], run_dir: Path, n_samples: int, *, timeout_s: float, cwd: Path,
                          env: Mapping[str, str] | None = None) -> None:
    """Start `cmd`, SIGKILL it as soon as `run_dir/samples.jsonl` holds `n_samples` lines, and check
    that the run had not finished (no metrics.json). AssertionError when it finished first."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env))
    samples = Path(run_dir) / "samples.jsonl"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.exists() and len(samples.read_text().splitlines()) >= n_samples:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (Path(run_dir) / "metrics.json").exists()
