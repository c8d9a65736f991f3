"""HumanEval end to end through `humaneval.runner.run`: the reference self-check, scripted
generators (exact pass@k, stop rule in the loop, overlap of generation and execution), resume
after a kill, and the Hydra app."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import pytest
import yaml

from codegen_model.generator import Completion, Request
from humaneval.config import BenchmarkConfig, ModelConfig, RunConfig, SamplingConfig, SandboxConfig
from humaneval.data import load_problems
from humaneval.runner import run
from results.driver import result_metrics
from results.records import ExecutionRecord, SampleRecord
from results.store import RunStore, RunStoreError
from tests.killing import sigkill_after_samples

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PROBLEMS = load_problems("bundled")
TOP_LEVEL_JUNK = "\n\ndef junk():\n    raise SystemExit(3)\n\nprint(1 / 0)\nexit(0)\n"
WRONG = "    raise RuntimeError('scripted wrong answer')\n"


def n_passing(task_id: str) -> int:
    """How many of a problem's first samples the scripted model gets right: 0..3 by task number."""
    return int(task_id.rsplit("/", 1)[1]) % 4


def scripted_text(task_id: str, index: int) -> str:
    """Sample `index` of `task_id`: canonical body (with top-level junk the stop rule must cut)
    for the first n_passing samples, a failing body otherwise."""
    if index < n_passing(task_id):
        return PROBLEMS.by_id()[task_id].canonical_solution + TOP_LEVEL_JUNK
    return WRONG + TOP_LEVEL_JUNK


class ScriptedGenerator:
    """A Generator from a function (task id, sample index) -> full-length text. Applies the
    request's stop rule like an engine would; `delay_s` slows each completion (for kill tests);
    `before_yield(i)` runs before the i-th completion is handed out."""

    def __init__(self, script=scripted_text, delay_s: float = 0.0, before_yield=None):
        self.script = script
        self.delay_s = delay_s
        self.before_yield = before_yield
        self.pending: deque[Request] = deque()
        self.submitted: list[Request] = []
        self.yielded = 0

    def submit(self, request: Request) -> None:
        self.pending.append(request)
        self.submitted.append(request)

    def completions(self):
        while self.pending:
            request = self.pending.popleft()
            for j in range(request.n):
                index = request.sample_offset + j
                full = self.script(request.meta["task_id"], index)
                cut = request.stop(full) if request.stop is not None else None
                text = full if cut is None else full[:cut]
                if self.delay_s:
                    time.sleep(self.delay_s)
                if self.before_yield:
                    self.before_yield(self.yielded)
                self.yielded += 1
                yield Completion(request.key, index, text, [], "eos" if cut is None else "stop",
                                 len(request.prompt), len(full), 0.0, request)

    def release(self, conversation: str) -> None:
        pass


def config(run_dir, *, model="scripted", kind="hub", n=3, limit=8, temperature=0.2, **more) -> RunConfig:
    return RunConfig(model=ModelConfig(name=model, kind=kind), run_dir=str(run_dir),
                     sampling=SamplingConfig(temperature=temperature, n=n, seed=1),
                     sandbox=SandboxConfig(wall_s=3.0), benchmark=BenchmarkConfig(ks=(1, 2, 3, 10)),
                     limit=limit, progress="off", **more)


def stable_files(run_dir) -> dict:
    store = RunStore(run_dir)
    return {
        "samples": [r.stable_dict() for r in store.samples()],
        "executions": [r.stable_dict() for r in store.executions()],
        "metrics": result_metrics(store.metrics()),
        "config": (Path(run_dir) / "config.yaml").read_text(),
        "samples_lines": [SampleRecord.from_dict(json.loads(x)).stable_dict()
                          for x in (Path(run_dir) / "samples.jsonl").read_text().splitlines()],
        "executions_lines": [ExecutionRecord.from_dict(json.loads(x)).stable_dict()
                             for x in (Path(run_dir) / "executions.jsonl").read_text().splitlines()],
    }


def test_reference_scores_164_of_164(tmp_path):
    cfg = RunConfig(model=ModelConfig(name="reference", kind="reference"), run_dir=str(tmp_path / "ref"),
                    sampling=SamplingConfig(n=1), progress="off")
    t0 = time.perf_counter()
    summary = run(cfg)
    elapsed = time.perf_counter() - t0
    m = summary.metrics
    executions = RunStore(cfg.run_dir).executions()
    failing = [(e.problem_id, e.status, e.detail) for e in executions if not e.passed]
    assert failing == []
    assert len(executions) == 164 and m["n_problems"] == 164 and m["n_passed"] == 164
    assert m["pass@1"] == 1.0 and "pass@10" not in m  # k <= n only
    assert m["statuses"] == {"passed": 164}
    manifest = json.loads((tmp_path / "ref" / "manifest.json").read_text())
    assert manifest["model"] == "reference" and manifest["dataset_hash"] == PROBLEMS.sha256
    assert manifest["sandbox_limits"]["wall_s"] == 3.0
    print(f"reference: 164 programs in {elapsed:.1f} s ({164 / elapsed:.1f} exec/s)")


def test_scripted_run_exact_pass_at_k_and_stop_rule(tmp_path):
    gen = ScriptedGenerator()
    summary = run(config(tmp_path / "run"), generator=gen)
    chosen = PROBLEMS.problems[:8]
    # One request per problem, keyed by task id, all n samples (per-sample randomness = (seed, task, i)).
    assert [(r.key, r.n, r.sample_offset) for r in gen.submitted] == [(p.task_id, 3, 0) for p in chosen]
    store = RunStore(tmp_path / "run")
    samples = store.samples()
    assert [s.key for s in samples][:4] == ["HumanEval/0/s0", "HumanEval/0/s1", "HumanEval/0/s2", "HumanEval/1/s0"]
    for s in samples:  # the stop rule cut the junk: exactly the body remains
        body = PROBLEMS.by_id()[s.problem_id].canonical_solution if s.sample_index < n_passing(s.problem_id) else WRONG
        assert s.completion == body + "\n" and s.finish_reason == "stop"
        assert s.prompt == PROBLEMS.by_id()[s.problem_id].prompt
    executions = {e.key: e for e in store.executions()}
    assert len(executions) == 24
    for s in samples:
        e = executions[s.key]
        assert e.passed == (s.sample_index < n_passing(s.problem_id)), (e.key, e.status, e.detail)
        if not e.passed:
            assert e.status == "error" and "scripted wrong answer" in e.detail
            assert e.extra["result"] == "failed: scripted wrong answer"
    m = summary.metrics
    for k in (1, 2, 3):
        expected = sum(1 - math.comb(3 - min(n_passing(p.task_id), 3), k) / math.comb(3, k) for p in chosen) / 8
        assert m[f"pass@{k}"] == pytest.approx(expected, abs=1e-12)
    assert "pass@10" not in m
    assert m == json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_execution_overlaps_generation(tmp_path):
    """Programs run while the generator is still producing: before the last completion is handed
    out, executions of earlier ones are already on disk."""
    executions_file = tmp_path / "run" / "executions.jsonl"
    seen_before_last = []

    def before_yield(i):
        if i == 7:  # the last of 8 completions
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (executions_file.exists() and executions_file.read_text()):
                time.sleep(0.02)
            seen_before_last.append(executions_file.exists() and len(executions_file.read_text().splitlines()))

    run(config(tmp_path / "run", n=1), generator=ScriptedGenerator(before_yield=before_yield))
    assert seen_before_last and seen_before_last[0] >= 1


def test_resume_executes_stored_samples_and_checks_identity(tmp_path):
    first = run(config(tmp_path / "run"), generator=ScriptedGenerator())
    reference = stable_files(tmp_path / "run")
    # Drop the last executions (as if killed between generation and execution) and rerun.
    path = tmp_path / "run" / "executions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-5]) + lines[-5][:10])  # and a cut last line
    gen = ScriptedGenerator()
    again = run(config(tmp_path / "run"), generator=gen)
    assert again.n_generated == 0 and gen.submitted == [] and again.n_executed == 5
    assert stable_files(tmp_path / "run") == reference
    assert result_metrics(again.metrics) == result_metrics(first.metrics)
    with pytest.raises(RunStoreError, match="sampling.temperature: 0.2 .* 0.8"):
        run(config(tmp_path / "run", temperature=0.8), generator=ScriptedGenerator())


def test_another_problem_selection_in_the_same_directory_is_refused_before_writing(tmp_path):
    run_dir = tmp_path / "run"
    run(config(run_dir, n=1, limit=2), generator=ScriptedGenerator())
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(RunStoreError, match=r"selection.limit: 2 \(existing run\) != 3 \(this run\)"):
        run(config(run_dir, n=1, limit=3), generator=ScriptedGenerator())
    with pytest.raises(RunStoreError, match=r"selection.problems: None .* \['HumanEval/0'\]"):
        run(config(run_dir, n=1, limit=2, problems=("HumanEval/0",)), generator=ScriptedGenerator())
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_a_run_written_before_selections_were_recorded_still_resumes(tmp_path):
    run_dir = tmp_path / "run"
    first = run(config(run_dir, n=1, limit=2), generator=ScriptedGenerator())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["selection"]  # as the code before this field wrote it
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    gen = ScriptedGenerator()
    again = run(config(run_dir, n=1, limit=2), generator=gen)
    assert gen.submitted == [] and result_metrics(again.metrics) == result_metrics(first.metrics)


def test_ctrl_c_prints_one_line_with_what_is_saved_and_resume_then_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"

    def interrupt(i):
        if i == 3:
            raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run(config(run_dir, n=2, limit=3), generator=ScriptedGenerator(before_yield=interrupt))
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted: 3 samples and ") and f"saved in {run_dir}; resume with: python -m humaneval" in err[-1]
    again = run(config(run_dir, n=2, limit=3), generator=ScriptedGenerator())
    assert again.n_generated == 3
    summary = capsys.readouterr().err
    assert "pass@1" in summary and "95% CI" in summary and f"run dir    {run_dir}" in summary


def test_more_samples_extend_a_run_only_where_missing(tmp_path):
    """Samples already stored are never generated again; missing ones go out as contiguous ranges."""
    run_dir = tmp_path / "run"
    run(config(run_dir, n=3, limit=2), generator=ScriptedGenerator())
    store_path = run_dir / "samples.jsonl"
    kept = [x for x in store_path.read_text().splitlines() if '"sample_index": 1' not in x]
    store_path.write_text("\n".join(kept) + "\n")
    gen = ScriptedGenerator()
    run(config(run_dir, n=3, limit=2), generator=gen)
    assert [(r.key, r.sample_offset, r.n) for r in gen.submitted] == [("HumanEval/0", 1, 1), ("HumanEval/1", 1, 1)]


KILL_SCRIPT = """
import sys
from tests.integration.test_humaneval_run import ScriptedGenerator, config
from humaneval.runner import run
run(config(sys.argv[1], n=4, limit=6), generator=ScriptedGenerator(delay_s=float(sys.argv[2])))
"""


@pytest.mark.slow  # the default run has the same check with tiny-random (test_humaneval_tiny.py)
def test_kill_and_resume_gives_the_same_files(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    sigkill_after_samples([sys.executable, "-c", KILL_SCRIPT, str(killed), "0.1"], killed, 8, timeout_s=60,
                          cwd=REPO, env=env)
    n_before = len(RunStore(killed).sample_keys())
    assert 8 <= n_before < 24
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed), "0"], cwd=REPO, env=env, check=True)
    run(config(clean, n=4, limit=6), generator=ScriptedGenerator())  # uninterrupted
    a, b = stable_files(killed), stable_files(clean)
    assert len(a["samples"]) == len(a["executions"]) == 24
    a["config"] = a["config"].replace(str(killed), "RUN")
    b["config"] = b["config"].replace(str(clean), "RUN")
    assert a == b


def test_hydra_app_reference(tmp_path):
    run_dir = tmp_path / "app"
    out = subprocess.run(
        [sys.executable, "-m", "humaneval", "model=reference", "limit=3", "sampling.n=2",
         f"run_dir={run_dir}", "progress=log", "problems=[HumanEval/5,HumanEval/1,2,HumanEval/9]"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"run_dir": str(run_dir), "pass@1": 1.0}  # pass@10, pass@100 need n >= k
    keys = sorted(e.key for e in RunStore(run_dir).executions())
    assert keys == sorted(f"HumanEval/{t}/s{i}" for t in (5, 1, 2) for i in (0, 1))
    assert (run_dir / "config.yaml").exists() and (run_dir / "manifest.json").exists()


def test_per_problem_true_adds_a_table_of_every_problem_to_the_summary(tmp_path):
    def app(*extra):
        return subprocess.run(
            [sys.executable, "-m", "humaneval", "model=reference", "limit=2", f"run_dir={tmp_path / 'app'}",
             "progress=log", *extra], cwd=REPO, capture_output=True, text=True, timeout=120)

    plain, table = app(), app("per_problem=true")  # the second start finds the run done and only reports
    assert plain.returncode == 0 and table.returncode == 0, plain.stderr + table.stderr
    header = re.compile(r"^\s+problem\s+passed$", re.M)
    assert not header.search(plain.stderr.split("== humaneval")[-1])
    summary = table.stderr.split("== humaneval")[-1]
    assert header.search(summary)
    for task in ("HumanEval/0", "HumanEval/1"):  # the canonical solutions: every sample passes
        assert re.search(rf"^\s+{task}\s+(\d+)/\1\s*$", summary, re.M), summary
    stored = yaml.safe_load((tmp_path / "app" / "config.yaml").read_text())
    assert "per_problem" not in stored  # what the summary prints, not what the run is
