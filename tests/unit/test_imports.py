"""The direction of imports (DESIGN §1, /INTERFACES "Import rules"), enforced by parsing every module.

- codegen_model: torch, tokenizers, huggingface_hub, safetensors, stdlib; nothing else of ours.
- sandbox: stdlib (+ multiprocess); no torch, nothing of ours.
- results: pandas, numpy, matplotlib, stdlib; of ours only what the app entry (results/app.py) and
  the shared config schema (results/config.py) need: codegen_model (SamplingParams) and sandbox.
- humaneval, mtpb: may use codegen_model, sandbox, results; never each other.
- Hydra / OmegaConf only in a package's `__main__.py` and its small `config.py`, and in the one
  app entry `results/app.py`.
- transformers is a test-only dependency: no package imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"codegen_model", "sandbox", "humaneval", "mtpb", "results"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
ALLOWED_THIRD_PARTY = {  # None: any third-party package (still subject to the rules below)
    "codegen_model": {"torch", "tokenizers", "huggingface_hub", "safetensors"},
    "sandbox": {"multiprocess"},
    # torch: the apps' threads setting (results/app.py); scipy: bootstrap intervals; yaml: config.yaml; tqdm: progress
    "results": {"pandas", "numpy", "matplotlib", "torch", "scipy", "yaml", "tqdm"},
    "humaneval": None,
    "mtpb": None,
}
ALLOWED_OURS = {
    "codegen_model": set(), "sandbox": set(), "results": {"codegen_model", "sandbox"},
    "humaneval": {"codegen_model", "sandbox", "results"},
    "mtpb": {"codegen_model", "sandbox", "results"},
}
HYDRA = {"hydra", "omegaconf"}
# results/runs.py resolves the `${...}` interpolations of the `.hydra/config.yaml` files Hydra writes
HYDRA_FILES = {"__main__.py", "config.py", "results/app.py", "results/runs.py"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


OURS_FILES = {"results": {"results/app.py", "results/config.py"}}  # the only files of results importing ours


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        where = path.relative_to(REPO)
        for line, mod in imports_of(path):
            if mod == package or mod in STDLIB:
                continue
            if mod in OURS:
                if mod not in ALLOWED_OURS[package] or (package in OURS_FILES and str(where) not in OURS_FILES[package]):
                    bad.append(f"{where}:{line} imports {mod} ({package} may import {sorted(ALLOWED_OURS[package]) or 'nothing of ours'})")
            elif mod in HYDRA:
                if (path.name not in HYDRA_FILES and str(where) not in HYDRA_FILES) or package == "codegen_model":
                    bad.append(f"{where}:{line} imports {mod} (Hydra only in __main__.py / config.py of an app)")
            elif mod == "transformers":
                bad.append(f"{where}:{line} imports transformers (a test-only dependency)")
            elif ALLOWED_THIRD_PARTY[package] is not None and mod not in ALLOWED_THIRD_PARTY[package]:
                bad.append(f"{where}:{line} imports {mod} ({package} may import {sorted(ALLOWED_THIRD_PARTY[package])} + stdlib)")
    return bad


PACKAGES = sorted(p for p in OURS if (REPO / p / "__init__.py").is_file())


def test_codegen_model_is_present():
    assert "codegen_model" in PACKAGES


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package):
    assert violations(package) == []


def test_parser_sees_nested_and_from_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os.path, hydra\nfrom pandas import DataFrame\nfrom . import x\n"
                   "def f():\n    from mtpb.data import load\n")
    assert imports_of(src) == [(1, "os"), (1, "hydra"), (2, "pandas"), (5, "mtpb")]


def test_codegen_model_imports_without_the_app_stack():
    """Every codegen_model module imports on a box without hydra, datasets, pandas or transformers."""
    blocked = ["hydra", "omegaconf", "datasets", "pandas", "transformers", "sandbox", "humaneval",
               "mtpb", "results"]
    modules = sorted(p.stem for p in (REPO / "codegen_model").glob("*.py") if p.stem != "__init__")
    code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
            "import importlib\nimport codegen_model\n"
            f"for m in {modules!r}: importlib.import_module('codegen_model.' + m)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
