"""`python -m mtpb` end to end: a scripted generator over a few problems (exact expected scores),
kill and resume, scoring and errata options, single-turn mode, and the real engine on tiny-random."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mtpb.config import from_dictconfig
from mtpb.data import load_problems
from mtpb.errata import excluded_cases
from mtpb.runner import MTPB, run
from results.driver import finish, result_metrics
from results.store import RunStore, RunStoreError
from tests.killing import sigkill_after_samples

from .mtpb_scripted import Killed, ScriptedGenerator, reference_answer
from .mtpb_solutions import VARIANTS

pytestmark = pytest.mark.integration

CONF = Path(__file__).resolve().parents[2] / "conf"
PROBLEMS = [3, 12, 41, 55, 89]  # math, class, array with a null gold, a wrong gold, dict golds


def config(tmp_path: Path, *overrides: str, name: str = "run"):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("mtpb", overrides=["model=tiny-random", f"run_dir={tmp_path / name}", "progress=off",
                                         "sandbox.workers=2", *overrides])
    return from_dictconfig(cfg)


@pytest.fixture(scope="module")
def problem_set(mtpb_path):
    return load_problems(mtpb_path)


def expected_passes(problem_set, ids, variant_ids=frozenset()):
    """Passes of the reference (or variant) answers per (problem, case), from the solutions' own tables."""
    out = {}
    for p in problem_set.select(ids):
        for case in range(p.n_cases):
            if p.id in variant_ids:
                out[(p.id, case)] = VARIANTS[p.id][3][case]
            else:
                out[(p.id, case)] = case not in excluded_cases(p.id, p.n_cases)
    return out


def stable_lines(run_dir: Path, kind: str) -> list[dict]:
    store = RunStore(run_dir)
    records = store.samples() if kind == "samples" else store.executions()
    return [r.stable_dict() for r in records]


def test_scripted_run_scores_exactly(tmp_path, problem_set):
    cfg = config(tmp_path, "sampling.n=2", f"problems=[{','.join(map(str, PROBLEMS))}]")
    gen = ScriptedGenerator(reference_answer(problem_set.problems, frozenset({12})))
    summary = run(cfg, generator=gen, problem_set=problem_set)
    m = summary.metrics
    expected = expected_passes(problem_set, PROBLEMS, frozenset({12}))
    passes = 2 * sum(expected.values())
    assert m["n_executions"] == len(PROBLEMS) * 5 * 2 == summary.n_generated == summary.n_executed
    assert m["n_passed"] == passes and m["pass_rate"] == pytest.approx(passes / 50)
    assert m["pass@1"] == pytest.approx(m["pass_rate"])  # every sample of a case is the same program
    clean = [v for (pid, case), v in expected.items() if case not in excluded_cases(pid, 5)]
    assert m["without_errata"]["n_executions"] == 2 * len(clean) and m["without_errata"]["pass_rate"] == sum(clean) / len(clean)
    assert {e["id"]: e["kind"] for e in m["errata"] if e["excludable"]} == {41: "gold_unscorable", 55: "gold_mismatch",
                                                                            89: "gold_unscorable"}
    assert m["categories"]["class"]["pass_rate"] == pytest.approx(3 / 5)  # the variant fails the height cases
    # files: one line per conversation and per execution, keys mtpb/<id>/c<case>/s<sample>
    samples = RunStore(cfg.run_dir).samples()
    assert [s.key for s in samples][:3] == ["mtpb/3/c0/s0", "mtpb/3/c0/s1", "mtpb/3/c1/s0"]
    s = samples[0]
    assert s.case_index == 0 and len(s.turns) == 3 and s.completion.startswith("# Import libraries.\n\nimport numpy as np\n\n")
    assert s.extra["prompts"] == problem_set.by_id()[3].filled_prompts(0)
    ex = {e.key: e for e in RunStore(cfg.run_dir).executions()}
    assert ex["mtpb/3/c0/s0"].extra["value"]["json"] == 7980 and ex["mtpb/3/c0/s0"].status == "passed"
    assert ex["mtpb/89/c0/s1"].extra["errata"] == ["gold_unscorable"] and not ex["mtpb/89/c0/s1"].passed
    assert ex["mtpb/12/c2/s0"].extra == {**ex["mtpb/12/c2/s0"].extra, "official_passed": False, "strict_passed": False}
    manifest = json.loads((Path(cfg.run_dir) / "manifest.json").read_text())
    assert manifest["benchmark"] == "mtpb" and manifest["mode"] == "multi-turn" and manifest["extra"]["scoring"] == "official"
    assert manifest["dataset_hash"] == problem_set.sha256 and manifest["sandbox_limits"]["timeout_s"] == 20.0
    # the engine-facing traffic: turn 1 once per case for both samples, later turns one sample each
    first = [r for r in gen.requests if r.key.endswith("/t0")]
    assert len(first) == len(PROBLEMS) * 5 and all(r.n == 2 and r.sample_offset == 0 for r in first)
    assert sorted(gen.released) == sorted(f"mtpb/{p}/c{c}" for p in PROBLEMS for c in range(5))
    # a rerun finds everything stored: nothing generated or executed again
    again = run(cfg, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set)
    assert again.n_generated == 0 and again.n_executed == 0 and again.metrics["n_passed"] == passes


def test_kill_and_resume_ends_like_an_uninterrupted_run(tmp_path, problem_set):
    ids = "problems=[3,8,12]"
    answer = reference_answer(problem_set.problems, frozenset({8}))
    whole = config(tmp_path, "sampling.n=2", ids, name="whole")
    run(whole, generator=ScriptedGenerator(answer, seed=1), problem_set=problem_set)

    killed = config(tmp_path, "sampling.n=2", ids, name="killed")
    gen = ScriptedGenerator(answer, seed=2, kill_after=60)
    with pytest.raises(Killed):
        run(killed, generator=gen, problem_set=problem_set)
    stored = RunStore(killed.run_dir).sample_keys()
    assert 0 < len(stored) < 30  # some conversations finished and were flushed before the kill
    resume_gen = ScriptedGenerator(answer, seed=3)
    summary = run(killed, generator=resume_gen, problem_set=problem_set)
    assert summary.n_generated == 30 - len(stored)
    asked = {(r.key.rsplit("/", 1)[0], r.sample_offset + j) for r in resume_gen.requests if r.key.endswith("/t0")
             for j in range(r.n)}
    assert not {(k.rsplit("/", 1)[0], int(k.rsplit("/s", 1)[1])) for k in stored} & asked  # stored ones skipped
    for kind in ("samples", "executions"):
        assert stable_lines(Path(killed.run_dir), kind) == stable_lines(Path(whole.run_dir), kind)
    metrics = lambda cfg: {k: v for k, v in result_metrics(json.loads((Path(cfg.run_dir) / "metrics.json").read_text())).items()  # noqa: E731
                           if k not in ("pass_rate_ci", "pass@1_ci")}
    assert metrics(killed) == metrics(whole)


def test_strict_scoring_and_a_changed_scoring_is_refused(tmp_path, problem_set):
    def answer(request, sample):  # the right value, then a crash
        return reference_answer(problem_set.problems)(request, sample) + (
            "\nraise RuntimeError('after the print')" if request.key.endswith("/t2") else "")

    strict = config(tmp_path, "problems=[3]", "scoring=strict", name="strict")
    m = run(strict, generator=ScriptedGenerator(answer), problem_set=problem_set).metrics
    assert m["scoring"] == "strict" and m["pass_rate"] == 0.0 and m["strict_pass_rate"] == 0.0
    assert m["official_pass_rate"] == 1.0 and m["statuses"] == {"error": 5}
    official = config(tmp_path, "problems=[3]", "scoring=official", f"run_dir={strict.run_dir}")
    with pytest.raises(RunStoreError, match="scoring='strict'"):
        run(official, generator=ScriptedGenerator(answer), problem_set=problem_set)


def test_exclude_errata_and_datasets_dir(tmp_path, problem_set):
    excluded = config(tmp_path, "problems=[38,41]", "exclude_errata=true", name="excluded")
    m = run(excluded, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set).metrics
    assert m["n_executions"] == 3 and m["pass_rate"] == 1.0 and m["exclude_errata"]

    csv = tmp_path / "csv"
    csv.mkdir()
    (csv / "mlbootcamp5_train.csv").write_text("gender,alco\n1,0\n1,0\n2,1\n1,1\n")
    (csv / "melb_data.csv").write_text("Price\n1\n")
    files = config(tmp_path, "problems=[38]", f"datasets_dir={csv}", name="files")
    summary = run(files, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set)
    first = RunStore(files.run_dir).executions()[0]
    assert first.extra["value"]["json"] == 2  # the reference read our file: gender 1 has alco 0 twice
    assert first.extra["errata"] == [] and first.detail == "the last print np.int64(2) is not the gold output"
    assert not any(e["kind"] == "needs_file" for e in summary.metrics["errata"])
    manifest = json.loads((Path(files.run_dir) / "manifest.json").read_text())
    assert set(manifest["extra"]["dataset_files"]) == {"datasets/mlbootcamp5_train.csv"}


def test_single_turn_mode_is_one_turn_with_the_summed_budget(tmp_path, problem_set):
    def answer(request, sample):
        assert request.key.endswith("/t0")
        return "def f():\n    return 1\nprint(7980)\nprint('x')"

    cfg = config(tmp_path, "problems=[3]", "mode=single_turn")
    gen = ScriptedGenerator(answer)
    summary = run(cfg, generator=gen, problem_set=problem_set)
    assert len(gen.requests) == 5 and {r.params.max_new_tokens for r in gen.requests} == {3 * 128}
    p = problem_set.by_id()[3]
    assert gen.requests[0].prompt == "# Import libraries.\n\nimport numpy as np\n\n# " + " ".join(p.filled_prompts(0)) + "\n"
    assert summary.metrics["mode"] == "single-turn" and summary.metrics["n_passed"] == 1  # 7980 is case 0's gold
    assert json.loads((Path(cfg.run_dir) / "manifest.json").read_text())["mode"] == "single-turn"


def test_tiny_random_end_to_end(tmp_path, mtpb_path, monkeypatch, capsys):
    """`python -m mtpb` (the Hydra app, in process) with the real engine, conversation caches and
    all, on the random tiny model (its output is noise, so nothing passes)."""
    from hydra.core.global_hydra import GlobalHydra

    from mtpb.__main__ import main

    argv = ["mtpb", f"--config-path={CONF}", "model=tiny-random", "problems=[3]", "sampling.n=2", "sampling.max_new_tokens=8",
            f"data_path={mtpb_path}", "progress=off", "sandbox.workers=2", f"run_dir={tmp_path / 'cli'}",
            f"hydra.run.dir={tmp_path / 'hydra'}"]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        main()
    finally:
        GlobalHydra.instance().clear()
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["run_dir"] == str(tmp_path / "cli") and printed["pass_rate"] == 0.0
    m = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert m["n_executions"] == 10 and sum(m["statuses"].values()) == 10 and m["model"] == "tiny-random"
    assert m["tokens"] > 0 and m["tokens_per_s"] > 0
    samples = RunStore(tmp_path / "cli").samples()
    assert len(samples) == 10 and all(len(s.turns) == 3 and 0 < s.n_new_tokens <= 24 for s in samples)
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["model"] == "tiny-random" and manifest["weights_hash"]


def test_two_shards_merge_into_the_single_process_run(tmp_path, problem_set):
    ids = "problems=[3,12]"
    answer = reference_answer(problem_set.problems, frozenset({12}))
    single = config(tmp_path, "sampling.n=2", ids, name="single")
    run(single, generator=ScriptedGenerator(answer), problem_set=problem_set)
    sharded = config(tmp_path, "sampling.n=2", ids, name="sharded")
    sizes = []
    for rank in (0, 1):
        summary = run(sharded, generator=ScriptedGenerator(answer, seed=rank), problem_set=problem_set, shard=(rank, 2))
        assert summary.metrics == {}
        sizes.append(summary.n_generated)
    assert sizes == [10, 10]
    metrics = finish(MTPB(sharded, problem_set), RunStore(sharded.run_dir, shard=(0, 2)))
    assert not list(Path(sharded.run_dir).glob("*.rank*"))
    for kind in ("samples", "executions"):
        assert stable_lines(Path(sharded.run_dir), kind) == stable_lines(Path(single.run_dir), kind)
    assert metrics["n_passed"] == json.loads((Path(single.run_dir) / "metrics.json").read_text())["n_passed"]


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from hydra import compose, initialize_config_dir
from mtpb.config import from_dictconfig
from mtpb.data import load_problems
from mtpb.runner import run
from tests.integration.mtpb_scripted import ScriptedGenerator, reference_answer
run_dir, data, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
with initialize_config_dir(config_dir=str(Path('conf').resolve()), version_base="1.3"):
    cfg = from_dictconfig(compose("mtpb", overrides=["model=tiny-random", "run_dir=" + run_dir, "progress=off",
                                                     "problems=[3,8]", "sampling.n=2", "sandbox.workers=2"]))
problems = load_problems(data)
answer = reference_answer(problems.problems, frozenset({8}))
def slow(request, sample):
    time.sleep(delay)
    return answer(request, sample)
run(cfg, generator=ScriptedGenerator(slow), problem_set=problems)
"""


def test_sigkill_midway_then_rerun_equals_an_uninterrupted_run(tmp_path, problem_set, mtpb_path):
    """The process is SIGKILLed while conversations and executions are in flight; rerunning the same
    command completes the run, and its files equal those of a run that was never interrupted."""
    repo = Path(__file__).resolve().parents[2]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    sigkill_after_samples([sys.executable, "-c", KILL_SCRIPT, str(killed), str(mtpb_path), "0.02"], killed, 4,
                          timeout_s=120, cwd=repo)
    assert 4 <= len(RunStore(killed).sample_keys()) < 20
    answer = reference_answer(problem_set.problems, frozenset({8}))
    overrides = ("problems=[3,8]", "sampling.n=2")
    run(config(tmp_path, *overrides, name="killed"), generator=ScriptedGenerator(answer), problem_set=problem_set)
    run(config(tmp_path, *overrides, name="whole"), generator=ScriptedGenerator(answer), problem_set=problem_set)
    for kind in ("samples", "executions"):
        assert stable_lines(killed, kind) == stable_lines(whole, kind)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (killed, whole))
    assert a["n_passed"] == b["n_passed"] == 2 * (5 + sum(VARIANTS[8][3])) and a["problems"] == b["problems"]
