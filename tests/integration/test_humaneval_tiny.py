"""HumanEval with the real engine on `tiny-random` (offline, seconds): the stop rule inside the
engine equals truncating the full-length generation, and `python -m humaneval` killed with
SIGKILL midway then rerun ends with the same files as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from codegen_model import registry
from codegen_model.generator import Request, SamplingParams, generate_all
from codegen_model.stop import StopSequences
from humaneval.config import from_dictconfig
from humaneval.data import load_problems
from humaneval.runner import run
from tests.integration.test_humaneval_run import stable_files

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PROBLEMS = load_problems("bundled").problems


def tiny_generator(**options):
    spec = registry.ModelSpec(name="tiny-random", kind="tiny-random", path="tiny-random", dtype="float32",
                              device="cpu")
    return registry.build_generator(spec, **options)


def test_engine_stop_rule_equals_truncated_full_generation():
    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=40, seed=7)
    prompts = [PROBLEMS[0].prompt, PROBLEMS[1].prompt]

    def requests(stop):
        return [Request(key=f"HumanEval/{i}", prompt=p, params=params, n=3, stop=stop) for i, p in enumerate(prompts)]

    full = {(c.key, c.sample_index): c for c in generate_all(tiny_generator(), requests(None))}
    assert all(c.finish_reason in ("length", "eos") for c in full.values())
    # Stop sequences that do occur in the middle of the full generations (so rows stop early).
    texts = [c.text for c in full.values() if len(c.text) > 30]
    assert len(texts) >= 2, "tiny-random produced almost no text"
    stops = tuple(dict.fromkeys(t[i:i + 2] for t, i in ((texts[0], 8), (texts[1], 20)) if "\ufffd" not in t[i:i + 2]))
    assert stops, "no clean stop sequence found"
    rule = StopSequences(stops)
    stopped = {(c.key, c.sample_index): c for c in generate_all(tiny_generator(), requests(rule))}
    assert stopped.keys() == full.keys()
    cut_early = 0
    for key, c in stopped.items():
        assert c.text == rule.truncate(full[key].text), key
        if rule(full[key].text) is not None:
            assert c.finish_reason == "stop"
            cut_early += c.n_new_tokens < full[key].n_new_tokens
    assert cut_early >= 1  # the engine did stop early, and that changed nothing


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("humaneval", overrides=list(overrides))


def test_app_killed_and_resumed_gives_the_same_files(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    common = ["model=tiny-random", "limit=3", "sampling.n=2", "sampling.max_new_tokens=16",
              "sampling.temperature=0.8", "+model.engine.max_batch=1", "progress=log"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "humaneval", *common, f"run_dir={killed}"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = killed / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.exists() and samples.read_text().count("\n") >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished (or failed) before it could be killed: " + proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    assert 2 <= samples.read_text().count("\n") < 6
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout + done.stderr

    summary = run(from_dictconfig(composed(*common, f"run_dir={clean}")))  # uninterrupted, in process
    assert summary.n_generated == 6 and summary.metrics["n_executions"] == 6
    a, b = stable_files(killed), stable_files(clean)
    assert len(a["samples"]) == 6 and all(s["n_new_tokens"] >= 1 for s in a["samples"])
    a["config"] = a["config"].replace(str(killed), "RUN")
    b["config"] = b["config"].replace(str(clean), "RUN")
    assert a == b
