"""The mtpb Hydra config: composition, overrides, the paper preset and the typed conversion."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mtpb.config import RunConfig, from_dictconfig, to_dict
from mtpb.data import load_problems
from mtpb.runner import turn_budgets, turn_prompts, work_items
from tests.conftest import SHARED_DATA

CONF = Path(__file__).resolve().parents[2] / "conf"


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("mtpb", overrides=list(overrides))


def test_defaults_follow_the_paper():
    cfg = from_dictconfig(composed())
    assert isinstance(cfg, RunConfig)
    assert cfg.model.name == "codegen-350M-mono" and cfg.model.path == "Salesforce/codegen-350M-mono"
    assert (cfg.sampling.temperature, cfg.sampling.top_p, cfg.sampling.n) == (0.2, 0.95, 1)
    assert cfg.sampling.max_new_tokens is None  # each problem's max_gen_length
    assert cfg.sandbox.official_timeout_s == 20.0 and cfg.sandbox.limit_fields()["wall_s"] == 30.0
    assert cfg.sandbox.guard is True and from_dictconfig(composed("sandbox.guard=false")).sandbox.guard is False
    assert (cfg.mode, cfg.scoring, cfg.exclude_errata) == ("multi_turn", "official", False)
    assert cfg.data_path == str(SHARED_DATA / "mtpb" / "mtpb.jsonl")  # $CODEGEN_SHARED_DATA's
    assert cfg.datasets_dir is None and cfg.limit is None and cfg.problems is None
    assert cfg.run_dir == "outputs/mtpb/codegen-350M-mono/multi_turn-official-t0.2-p0.95-n1-s0"


def test_overrides_reach_the_dataclasses():
    cfg = from_dictconfig(composed(
        "model=tiny-random", "sampling.n=2", "sampling.temperature=0.8", "sampling.max_new_tokens=64",
        "limit=3", "problems=[1,mtpb/14]", "mode=single_turn", "scoring=strict", "datasets_dir=/data/csv",
        "data_path=/tmp/mtpb.jsonl", "exclude_errata=true", "sandbox.official_timeout_s=5", "sandbox.wall_s=15", "sandbox.workers=2",
        "perplexity.history_run=/tmp/run",
    ))
    assert cfg.model.kind == "tiny-random"
    assert cfg.sampling.n == 2 and cfg.sampling.params(64).temperature == 0.8
    assert cfg.limit == 3 and cfg.problems == (1, 14)
    assert (cfg.mode, cfg.scoring, cfg.datasets_dir, cfg.data_path) == ("single_turn", "strict", "/data/csv", "/tmp/mtpb.jsonl")
    assert cfg.exclude_errata and cfg.sandbox.workers == 2 and cfg.sandbox.limit_fields()["wall_s"] == 15.0
    assert cfg.perplexity.history_run == "/tmp/run"
    assert cfg.run_dir == "outputs/mtpb/tiny-random/single_turn-strict-t0.8-p0.95-n2-s0-problems1_14-first3"
    assert to_dict(cfg)["problems"] == [1, 14]


def test_paper_preset():
    cfg = from_dictconfig(composed("experiment=paper_mtpb", "model=codegen-16B-mono"))
    assert (cfg.sampling.n, cfg.sampling.temperature, cfg.sampling.top_p) == (40, 0.2, 0.95)
    assert (cfg.mode, cfg.scoring, cfg.exclude_errata) == ("multi_turn", "official", False)
    # a command-line override still wins over the preset
    assert from_dictconfig(composed("experiment=paper_mtpb", "mode=single_turn")).mode == "single_turn"


@pytest.mark.parametrize("override, message", [
    ("mode=multiturn", "mode must be one of multi_turn, single_turn, perplexity"),
    ("scoring=lenient", "scoring must be one of official, strict"),
    ("sampling.n=0", "sampling.n must be an integer >= 1"),
    ("sampling.top_p=1.5", r"top_p must be a number in \(0, 1\]"),
    ("limit=0", "limit must be an integer >= 1"),
    ("sandbox.official_timeout_s=0", "sandbox.official_timeout_s must be a number of seconds > 0"),
    ("sandbox.official_timeout_s=40", r"sandbox.wall_s must be > sandbox.official_timeout_s \(40.0\)"),
    ("problems=[x]", "problems must be MTPB problem ids"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        from_dictconfig(composed(override))


def test_turn_plan_per_mode(mtpb_path):
    problems = load_problems(mtpb_path).by_id()
    multi = from_dictconfig(composed())
    single = from_dictconfig(composed("mode=single_turn"))
    fixed = from_dictconfig(composed("sampling.max_new_tokens=32"))
    p = problems[3]
    assert turn_prompts(multi, p, 0) == tuple(p.filled_prompts(0))
    assert turn_prompts(single, p, 0) == (" ".join(p.filled_prompts(0)),)
    assert turn_budgets(multi, p) == (128, 128, 128) and turn_budgets(single, p) == (384,)
    assert turn_budgets(fixed, p) == (32, 32, 32)
    assert turn_budgets(multi, problems[40]) == (256,) * 5  # no max_gen_length: 256


def test_exclude_errata_drops_only_the_covered_cases(mtpb_path):
    problems = load_problems(mtpb_path).select([38, 41, 55, 1])
    keep = from_dictconfig(composed())
    drop = from_dictconfig(composed("exclude_errata=true"))
    with_files = from_dictconfig(composed("exclude_errata=true", "datasets_dir=/x"))
    units = lambda cfg: [(w.problem.id, w.case) for w in work_items(cfg, list(problems))]  # noqa: E731
    assert len(units(keep)) == 20
    assert units(drop) == [(1, c) for c in range(5)] + [(41, 0), (41, 2), (41, 3), (55, 0), (55, 1), (55, 3), (55, 4)]
    assert (38, 0) in units(with_files)  # the files lift the needs_file erratum


def test_a_guard_that_is_not_a_boolean_is_refused_by_the_schema():
    with pytest.raises(Exception, match="guard"):
        from_dictconfig(composed("sandbox.guard=maybe"))
