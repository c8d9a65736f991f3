"""The direction of imports (docs/design.md §1), enforced by parsing every module.

- codegen_model: torch, tokenizers, huggingface_hub, safetensors, stdlib; nothing else of ours.
- sandbox: stdlib (+ multiprocess); no torch, nothing of ours.
- results: pandas, numpy, matplotlib, scipy, PyYAML, tqdm, stdlib; of ours codegen_model's protocol types and
  sandbox's API (the app entry results/app.py and the shared schema results/config.py also load models).
- humaneval, mtpb: may use codegen_model, sandbox, results; never each other.
- Hydra / OmegaConf only in a package's `__main__.py` and its small `config.py`, in the one
  app entry `results/app.py` and the old-key rewriting it does first, `results/aliases.py`.
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
HYDRA_FILES = {"__main__.py", "config.py", "results/app.py", "results/aliases.py", "results/runs.py"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found




def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        where = path.relative_to(REPO)
        for line, mod in imports_of(path):
            if mod == package or mod in STDLIB:
                continue
            if mod in OURS:
                if mod not in ALLOWED_OURS[package]:
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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (absolute and relative, nested ones included);
    `from pkg import name` counts as `pkg.name` when that is a module, else as `pkg`."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (a depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_modules():
    """docs/design.md §1: no module imports, directly or through others, a module that imports it
    (a package's `__init__` re-exporting its own modules is the one allowed back edge)."""
    graph = {m: {t for t in edges if not (m.startswith(t + ".") and "." not in m[len(t) + 1:])}
             for m, edges in module_graph().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_mtpb_runner_and_perplexity_do_not_import_each_other():
    graph = module_graph()
    assert "mtpb.runner" not in graph["mtpb.perplexity"]


def test_cycle_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
