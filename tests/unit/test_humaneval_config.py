"""The humaneval Hydra config: composition, overrides, presets and the typed conversion."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from codegen_model.stop import HUMANEVAL_STOP
from humaneval.config import RunConfig, SandboxConfig, from_dictconfig

CONF = Path(__file__).resolve().parents[2] / "conf"


def composed(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("humaneval", overrides=list(overrides), return_hydra_config=hydra)


def test_defaults_follow_the_paper():
    cfg = from_dictconfig(composed("model=reference"))
    assert isinstance(cfg, RunConfig)
    assert cfg.model.name == "reference" and cfg.model.kind == "reference"
    assert (cfg.sampling.temperature, cfg.sampling.top_p, cfg.sampling.top_k) == (0.2, 0.95, 0)
    assert cfg.sandbox.wall_s == 3.0 and cfg.sandbox.guard is True and cfg.threads == "auto"
    assert cfg.benchmark.source == "bundled"
    assert cfg.benchmark.stop == HUMANEVAL_STOP
    assert cfg.benchmark.ks == (1, 10, 100)
    assert cfg.limit is None and cfg.problems is None
    assert cfg.run_dir == "outputs/humaneval/reference/t0.2-p0.95-n10-len512-s0"


def test_overrides_reach_the_dataclasses():
    cfg = from_dictconfig(composed(
        "model=reference", "sampling.temperature=0.8", "sampling.top_p=0.9", "sampling.n=200",
        "sampling.max_new_tokens=128", "sampling.seed=3", "sandbox.wall_s=5", "sandbox.workers=2",
        "sandbox.memory_mb=512", "limit=5", "problems=[HumanEval/3,7]", "benchmark.stop=[]",
        "benchmark.source=/tmp/x.jsonl",
    ))
    assert cfg.sampling.params().temperature == 0.8 and cfg.sampling.n == 200
    assert cfg.sampling.params().max_new_tokens == 128 and cfg.sampling.params().seed == 3
    assert cfg.sandbox.limit_fields() == {"wall_s": 5.0, "memory_mb": 512}
    assert cfg.sandbox.workers == 2
    assert cfg.limit == 5 and cfg.problems == ("HumanEval/3", "7")
    assert cfg.benchmark.stop == () and cfg.benchmark.source == "/tmp/x.jsonl"
    # The run dir follows everything that changes the results (the problem selection included),
    # so the same command resumes the same run and a subset never lands in the full run's directory.
    assert cfg.run_dir == "outputs/humaneval/reference/t0.8-p0.9-n200-len128-s3-problems3_7-first5"
    assert from_dictconfig(composed("model=reference", "run_dir=/tmp/r")).run_dir == "/tmp/r"


def test_unknown_or_missing_model_lists_the_known_ones():
    with pytest.raises(MissingConfigException, match=r"(?s)Could not find 'model/nope'.*Available options.*reference"):
        composed("model=nope")
    with pytest.raises(ConfigCompositionException, match=r"(?s)You must specify 'model'.*reference"):
        composed()


def test_paper_preset_sweeps_three_temperatures():
    cfg = composed("model=reference", "experiment=paper_humaneval", hydra=True)
    assert cfg.sampling.n == 200 and cfg.sampling.top_p == 0.95
    assert cfg.hydra.sweeper.params["sampling.temperature"] == "0.2,0.6,0.8"


def test_ci_smoke_preset():
    if not (CONF / "model" / "tiny-random.yaml").exists():
        pytest.fail("conf/model/tiny-random.yaml (foundation) is missing")
    cfg = from_dictconfig(composed("experiment=ci_smoke"))
    assert cfg.model.kind == "tiny-random"
    assert cfg.limit == 3 and cfg.sampling.n == 2


def test_bad_values_are_named():
    with pytest.raises(ConfigCompositionException, match="sampling.temprature"):
        composed("model=reference", "sampling.temprature=0.3")  # the schema has no such key
    with pytest.raises(ValueError, match="unknown key sampling.temprature: did you mean sampling.temperature"):
        from_dictconfig(composed("model=reference", "+sampling.temprature=0.3"))  # forced in with +
    with pytest.raises(ValueError, match=r"sampling.n=0 is not allowed: sampling.n must be an integer >= 1"):
        from_dictconfig(composed("model=reference", "sampling.n=0"))
    with pytest.raises(ValueError, match=r"sampling.top_p must be a number in \(0, 1\]"):
        from_dictconfig(composed("model=reference", "sampling.top_p=1.5"))
    with pytest.raises(ValueError, match="sandbox.wall_s must be a number of seconds > 0"):
        SandboxConfig(wall_s=0)
