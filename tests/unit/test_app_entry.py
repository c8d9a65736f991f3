"""The one app entry (results/app.py): typed config errors are one line and exit 2 before any
directory exists, --help and list work without a model, threads, the run dir names the selection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from humaneval.config import RunConfig as HumanEvalConfig
from mtpb.config import RunConfig as MtpbConfig
from results import app
from results.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]
APPS = {"humaneval": HumanEvalConfig, "mtpb": MtpbConfig}

BAD = [  # (override, the one line must say)
    ("sampling.n=abc", "sampling.n=abc is not allowed: sampling.n must be an integer >= 1"),
    ("sampling.n=2.5", "sampling.n=2.5 is not allowed: sampling.n must be an integer >= 1"),
    ("sampling.n=-3", "sampling.n=-3 is not allowed: sampling.n must be an integer >= 1"),
    ("limit=abc", "limit=abc is not allowed: limit must be an integer >= 1"),
    ("limit=-1", "limit=-1 is not allowed: limit must be an integer >= 1"),
    ("sampling.temperature=hot", "sampling.temperature=hot is not allowed: sampling.temperature must be a finite number >= 0"),
    ("sampling.temperature=nan", "sampling.temperature=nan is not allowed: sampling.temperature must be a finite number >= 0"),
    ("sampling.temperature=-0.5", "sampling.temperature=-0.5 is not allowed"),
    ("sampling.top_p=1.5", r"sampling.top_p=1.5 is not allowed: sampling.top_p must be a number in (0, 1]"),
    ("sampling.top_p=0", "sampling.top_p=0.0 is not allowed"),
    ("sampling.top_k=-1", "sampling.top_k=-1 is not allowed: sampling.top_k must be an integer >= 0"),
    ("sampling.max_new_tokens=0", "sampling.max_new_tokens=0 is not allowed"),
    ("sandbox.wall_s=nan", "sandbox.wall_s=nan is not allowed: sandbox.wall_s must be a number of seconds >"),
    ("sandbox.wall_s=-1", "sandbox.wall_s=-1.0 is not allowed"),
    ("sandbox.workers=0", "sandbox.workers=0 is not allowed: sandbox.workers must be an integer >= 1"),
    ("log_every_s=inf", "log_every_s=inf is not allowed"),
    ("threads=many", "threads=many is not allowed: threads must be auto"),
    ("sampling.tempreature=1", "unknown key sampling.tempreature: did you mean sampling.temperature?"),
    ("sandbox.timout_s=3", "unknown key sandbox.timout_s"),  # sandbox.timeout_s is an old name (test_aliases.py)
]


def entry(name: str, *argv: str, run=lambda cfg: cfg):
    return app.main(name, APPS[name], run, argv=list(argv))


@pytest.mark.parametrize("name", sorted(APPS))
@pytest.mark.parametrize("override, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_is_one_line_exit_2_and_no_directory(name, override, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    ran = []
    with pytest.raises(SystemExit) as stop:
        entry(name, "model=tiny-random", f"run_dir={run_dir}", override, run=ran.append)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and ran == []
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not run_dir.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, override, message", [
    ("mtpb", "mode=multiturn", "mode must be one of multi_turn, single_turn, perplexity"),
    ("mtpb", "sandbox.official_timeout_s=60", "sandbox.wall_s must be > sandbox.official_timeout_s"),
    ("mtpb", "perplexity.batch_size=0", "perplexity.batch_size must be an integer >= 1"),
    ("humaneval", "sandbox.guard=maybe", "sandbox.guard"),
    ("humaneval", "benchmark.ks=[0,1]", "benchmark.ks must be a list of integers >= 1"),
])
def test_app_specific_keys_are_checked_too(name, override, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        entry(name, "model=tiny-random", f"run_dir={tmp_path / 'run'}", override)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_good_command_reaches_run_with_the_typed_config(tmp_path):
    # run() is handed the checked dataclass; Hydra's own job dir is its business (here under tmp_path).
    seen = []
    entry("humaneval", "model=tiny-random", f"run_dir={tmp_path / 'r'}", "sampling.n=3", "limit=2",
          f"hydra.run.dir={tmp_path / 'hydra'}", run=seen.append)
    (cfg,) = seen
    assert isinstance(cfg, HumanEvalConfig) and cfg.sampling.n == 3 and cfg.limit == 2


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_real_command_fails_in_one_line_before_any_directory(name, tmp_path):
    proc = subprocess.run([sys.executable, "-m", name, "model=tiny-random", "sampling.temperature=nan",
                           f"run_dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "sampling.temperature=nan is not allowed" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(APPS))
def test_help_needs_no_model_and_lists_groups_and_keys(name, capsys):
    entry(name, "--help")
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {name} model=NAME")
    assert "model: codegen-16B-mono" in out and "local" in out and "reference" in out
    for key in ("sampling.temperature", "sampling.n", "sandbox.wall_s", "limit", "problems", "threads"):
        assert f"\n  {key} " in out, key
    assert "CODEGEN_SHARED_DATA" in out


def test_help_from_the_command_line_is_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "humaneval", "--help"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "usage:" in proc.stdout


def test_list_shows_models_experiments_benchmarks_one_line_each(capsys):
    entry("humaneval", "list")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "models (model=NAME):"
    names = {line.split()[0] for line in lines if line.startswith("  ")}
    conf = REPO / "conf"
    want = {p.stem for group in ("model", "experiment", "benchmark") for p in (conf / group).glob("*.yaml")}
    assert names == want
    assert len([line for line in lines if line.startswith("  ")]) == len(want)  # one line each
    assert any(line.split()[:2] == ["codegen-350M-mono", "Salesforce/codegen-350M-mono:"] for line in lines)
    for line in (line for line in lines if line.startswith("  ")):  # each description is whole
        last = line.rstrip().split()[-1]
        assert not line.rstrip().endswith((",", ":", ";", "(")), line
        assert last.lower() not in {"the", "a", "an", "of", "and", "or", "with", "to", "in", "on", "built"}, line


def test_a_missing_model_names_the_options(capsys):
    with pytest.raises(SystemExit) as stop:
        entry("humaneval")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert "You must specify 'model'" in err and "tiny-random" in err and "python -m humaneval list" in err


@pytest.mark.parametrize("name", sorted(APPS))
def test_run_dir_names_the_problem_selection(name):
    base = app.precheck(name, ["model=tiny-random"], APPS[name]).run_dir
    first5 = app.precheck(name, ["model=tiny-random", "limit=5"], APPS[name]).run_dir
    some = app.precheck(name, ["model=tiny-random", "problems=[3,7]"], APPS[name]).run_dir
    both = app.precheck(name, ["model=tiny-random", "problems=[3,7]", "limit=1"], APPS[name]).run_dir
    assert len({base, first5, some, both}) == 4
    assert first5 == base + "-first5" and some == base + "-problems3_7" and both == base + "-problems3_7-first1"


def test_model_local_files_results_under_its_own_name(tmp_path):
    cfg = app.precheck("humaneval", ["model=local", f"model.path={tmp_path}", "model.name=my-finetune"],
                       HumanEvalConfig)
    assert cfg.model.path == str(tmp_path) and cfg.model.kind == "hub"
    assert cfg.run_dir.startswith("outputs/humaneval/my-finetune/")
    with pytest.raises(ValueError, match="model.path has no value"):
        app.precheck("mtpb", ["model=local", "model.name=x"], MtpbConfig)


def test_threads_auto_leaves_cores_to_the_sandbox_on_cpu():
    cpu = ModelConfig(name="m", kind="hub", device="cpu")
    assert app.resolve_threads("auto", cpu, cores=2) == 1
    assert app.resolve_threads("auto", cpu, cores=16) == 8
    assert app.resolve_threads("auto", cpu, cores=1) == 1
    assert app.resolve_threads("3", cpu, cores=2) == 3
    assert app.resolve_threads("auto", ModelConfig(name="m", kind="hub", device="cuda:0"), cores=16) is None
    assert app.resolve_threads("auto", ModelConfig(name="reference", kind="reference"), cores=16) is None


def test_threads_setting_reaches_torch(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        seen = []
        entry("humaneval", "model=tiny-random", f"run_dir={tmp_path / 'r'}", "threads=1",
              f"hydra.run.dir={tmp_path / 'hydra'}", run=lambda cfg: seen.append(torch.get_num_threads()))
        assert seen == [1]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("override, message", [
    ("batch_size=abc", "batch_size=abc is not allowed: batch_size must be an integer >= 1"),
    ("batch_size=2.5", "batch_size=2.5 is not allowed: batch_size must be an integer >= 1"),
    ("batch_size=0", "batch_size=0 is not allowed: batch_size must be an integer >= 1"),
    ("limit=nan", "limit=nan is not allowed: limit must be an integer >= 1"),
    ("limit=-2", "limit=-2 is not allowed: limit must be an integer >= 1"),
    ("threads=many", "threads=many is not allowed: threads must be auto"),
    ("model.dtype=float8", "model.dtype=float8 is not allowed: model.dtype must be one of auto"),
    ("batch_sise=4", "unknown key batch_sise: did you mean batch_size?"),
])
def test_the_humaneval_perplexity_app_checks_its_values_alike(override, message, tmp_path, capsys):
    """The third app (`python -m humaneval.perplexity`) goes through the same entry and checks."""
    import humaneval.perplexity.__main__  # noqa: F401 (registers the app's schema)
    from humaneval.perplexity import PerplexityConfig

    run_dir, ran = tmp_path / "run", []
    with pytest.raises(SystemExit) as stop:
        app.main("humaneval_perplexity", PerplexityConfig, ran.append,
                 argv=["model=tiny-random", f"run_dir={run_dir}", override])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and ran == []
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []
