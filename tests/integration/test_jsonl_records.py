"""Every record is encodable and bounded, so a run always finishes and resumes (docs/design.md §5).

- a HumanEval run (the `reference` model, a custom problems file) whose canonical solutions raise
  errors holding a lone surrogate, odd line breaks and a 300,000-character message, or hold a lone
  surrogate in their text, finishes, stores every sample and verdict, and resumes after a kill
  tore its last line;
- `python -m mtpb.evaluate` reads a samples.jsonl our store wrote with U+2028, U+2029 and U+0085
  inside its strings (and the same lines as another writer leaves them, raw), with equal verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humaneval.config import BenchmarkConfig, ModelConfig, RunConfig, SamplingConfig, SandboxConfig
from humaneval.data import load_problems as load_humaneval
from humaneval.runner import run as run_humaneval
from mtpb.data import load_problems as load_mtpb
from mtpb.evaluate import main as mtpb_evaluate
from mtpb.runner import run as run_mtpb
from results.records import DETAIL_MAX_CHARS
from results.store import RunStore

from .mtpb_scripted import ScriptedGenerator, reference_answer
from .test_mtpb_run import config as mtpb_config

pytestmark = pytest.mark.integration

LINE_BREAKS = "\u2028 \u2029 \x85"


def odd_problem(task_id: str, body: str) -> dict:
    return {"task_id": task_id, "prompt": "def odd(s):\n", "canonical_solution": body,
            "test": "def check(candidate):\n    assert candidate('a') == 1\n", "entry_point": "odd"}


def humaneval_cfg(run_dir: Path, source: Path) -> RunConfig:
    return RunConfig(model=ModelConfig(name="reference", kind="reference"), run_dir=str(run_dir),
                     sampling=SamplingConfig(n=1), sandbox=SandboxConfig(wall_s=3.0, workers=2),
                     benchmark=BenchmarkConfig(source=str(source), ks=(1,)), progress="off")


def test_a_run_with_unencodable_errors_finishes_and_resumes(tmp_path):
    bundled = load_humaneval("bundled").by_id()["HumanEval/23"]
    rows = [
        {"task_id": "HumanEval/23", "prompt": bundled.prompt, "canonical_solution": bundled.canonical_solution,
         "test": bundled.test, "entry_point": bundled.entry_point},
        odd_problem("Odd/1", "    raise ValueError(b'\\xff'.decode('utf-8', 'surrogateescape'))\n"),
        odd_problem("Odd/2", f"    raise ValueError('{LINE_BREAKS}' + chr(0xDC80) + chr(0xD800))\n"),
        odd_problem("Odd/3", "    raise ValueError('x' * 300000)\n"),
        odd_problem("Odd/4", "    return '\udcff' + '\u2028'\n"),  # a raw lone surrogate in the program text
    ]
    source = tmp_path / "problems.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = humaneval_cfg(tmp_path / "run", source)

    summary = run_humaneval(cfg)
    assert summary.metrics["pass@1"] == 0.2 and summary.n_executed == 5
    stored = {e.problem_id: e for e in RunStore(cfg.run_dir).executions()}
    # the sandbox may deliver a lone surrogate as it is or escaped; either way the record is stored
    assert stored["Odd/1"].detail in ("ValueError: \udcff", "ValueError: \\udcff")
    assert stored["Odd/1"].extra["result"] in ("failed: \udcff", "failed: \\udcff")
    assert stored["Odd/2"].detail.startswith(f"ValueError: {LINE_BREAKS}")
    samples = {s.problem_id: s for s in RunStore(cfg.run_dir).samples()}
    assert samples["Odd/4"].completion == "    return '\udcff' + '\u2028'\n"  # read back exactly
    assert (Path(cfg.run_dir) / "samples.jsonl").read_bytes().isascii()
    assert stored["Odd/3"].detail.startswith("ValueError: xxx") and len(stored["Odd/3"].detail) <= DETAIL_MAX_CHARS
    assert (Path(cfg.run_dir) / "executions.jsonl").read_bytes().isascii()
    finished = [e.stable_dict() for e in RunStore(cfg.run_dir).executions()]

    # A kill tore the last line (the surrogate verdict) and metrics.json was never written: the
    # same command resumes, re-executes only what was lost, and ends with the same records.
    path = Path(cfg.run_dir) / "executions.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert b"\\udcff" in lines[1]
    path.write_bytes(lines[0] + lines[2] + lines[3] + lines[4] + lines[1][: len(lines[1]) // 2])
    (Path(cfg.run_dir) / "metrics.json").unlink()
    resumed = run_humaneval(cfg)
    assert resumed.n_generated == 0 and resumed.n_executed == 1
    assert resumed.metrics["pass@1"] == 0.2
    assert [e.stable_dict() for e in RunStore(cfg.run_dir).executions()] == finished


def test_mtpb_evaluate_reads_our_samples_with_unicode_line_breaks(tmp_path, mtpb_path, capsys):
    problem_set = load_mtpb(mtpb_path)
    base = reference_answer(problem_set.problems)

    def answer(request, sample):  # the reference answer, with the odd characters in a comment
        text = base(request, sample)
        stripped = text.rstrip("\n")
        return stripped + f"  # {LINE_BREAKS}" + text[len(stripped):]

    cfg = mtpb_config(tmp_path, "problems=[3,12]")
    summary = run_mtpb(cfg, generator=ScriptedGenerator(answer), problem_set=problem_set)
    samples = Path(cfg.run_dir) / "samples.jsonl"
    records = RunStore(cfg.run_dir).samples()
    assert all(LINE_BREAKS in r.completion for r in records) and samples.read_bytes().isascii()

    assert mtpb_evaluate([str(samples), "--data", str(mtpb_path), "--quiet"]) == 0
    results = [json.loads(x) for x in Path(str(samples) + "_results.jsonl").read_bytes().split(b"\n") if x]
    stored = {e.key: e.passed for e in RunStore(cfg.run_dir).executions()}
    assert [r["key"] for r in results] == [r.key for r in records]
    assert [r["passed"] for r in results] == [stored[r["key"]] for r in results]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pass_rate"] == summary.metrics["pass_rate"]

    # The same lines as a writer with ensure_ascii=False leaves them: raw U+2028/U+2029/U+0085.
    raw = tmp_path / "raw" / "samples.jsonl"
    raw.parent.mkdir()
    raw.write_bytes(b"".join(json.dumps(r.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n" for r in records))
    assert "\u2028".encode("utf-8") in raw.read_bytes()
    assert mtpb_evaluate([str(raw), "--data", str(mtpb_path), "--quiet"]) == 0
    again = [json.loads(x) for x in Path(str(raw) + "_results.jsonl").read_bytes().split(b"\n") if x]
    assert [r["passed"] for r in again] == [r["passed"] for r in results]


def test_humaneval_evaluate_prints_scores_when_the_results_file_cannot_be_written(tmp_path, capsys):
    from humaneval.evaluate import main as humaneval_evaluate

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/23", "completion": "    return len(string)\n"}) + "\n")
    out = tmp_path / "missing-folder" / "results.jsonl"
    assert humaneval_evaluate([str(samples), "--k", "1", "--workers", "1", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == {"pass@1": 1.0}
    [line] = [x for x in captured.err.splitlines() if x.startswith("error:")]
    assert str(out) in line and "--out" in line
