"""`mode=perplexity` on the tiny random model: the numbers are the model's own loss on the prompt
tokens, multi- and single-turn, per case, resumable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from codegen_model import registry
from mtpb.data import load_problems
from mtpb.perplexity import (
    PPL_FILE,
    Segment,
    history_completions,
    multi_turn_segments,
    score_segments,
    single_turn_segment,
    summarize_perplexity,
)
from mtpb.perplexity import run_perplexity as run  # mode=perplexity: python -m mtpb dispatches here
from mtpb.prompts import PREFIX
from mtpb.runner import run as run_sampling
from results.cli import main as results_main

from ..unit.test_results_tables import make_run
from .mtpb_scripted import ScriptedGenerator, reference_answer
from .test_mtpb_run import config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny():
    return registry.load(registry.ModelSpec(name="tiny-random", kind="tiny-random", dtype="float32", device="cpu"))


def test_scores_are_the_models_loss_on_the_target_tokens(tiny):
    model, tokenizer = tiny.model, tiny.tokenizer
    segments = [Segment(PREFIX, "# Print x.\n"), Segment(PREFIX + "# a\nx = 1\n\n", "# Now print it.\n"),
                Segment(PREFIX * 3, "# b\n")]
    scores = score_segments(model, tokenizer, segments, batch_size=2)
    for segment, (nll, n) in zip(segments, scores):
        context = tokenizer.encode(segment.context)
        ids = torch.tensor([tokenizer.encode(segment.context + segment.target)])
        labels = ids.clone()
        labels[0, : len(context)] = -100  # only the target tokens count
        loss = model(ids, labels=labels).loss.item()
        assert n == ids.shape[1] - len(context) and nll / n == pytest.approx(loss, rel=1e-5)


def test_segments(mtpb_path):
    p = load_problems(mtpb_path).by_id()[3]
    prompts = p.filled_prompts(0)
    multi = multi_turn_segments(prompts)
    assert [s.target for s in multi] == [f"# {x}\n" for x in prompts]
    assert multi[2].context == PREFIX + f"# {prompts[0]}\n\n\n# {prompts[1]}\n\n\n"
    with_code = multi_turn_segments(prompts, ["a = 1", "b = 2", "c = 3"])
    assert with_code[1].context == PREFIX + f"# {prompts[0]}\na = 1\n\n"
    assert single_turn_segment(prompts) == Segment(PREFIX, "# " + " ".join(prompts) + "\n")


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


def test_perplexity_mode_end_to_end_and_resume(tmp_path, mtpb_path, capsys):
    problem_set = load_problems(mtpb_path)
    cfg = config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}", "perplexity.history=prompts",
                 name="ppl")
    summary = run(cfg)
    m = summary.metrics
    assert m["mode"] == "perplexity" and m["n_problems"] == 1 and m["n_cases"] == 5 and m["history"] == "prompts"
    assert 1 < m["multi_turn_ppl"] < 1e6 and 1 < m["single_turn_ppl"] < 1e6
    assert m["multi_turn_ppl_se"] is None and m["single_turn_ppl_se"] is None  # one problem: no standard error
    text = (Path(cfg.run_dir) / "metrics.json").read_text()
    assert json.loads(text, parse_constant=_refuse)["multi_turn_ppl_se"] is None  # strict JSON: null, not NaN
    rows = [json.loads(x) for x in (Path(cfg.run_dir) / PPL_FILE).read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["turn_ppl"]) == 3 for r in rows)
    p3 = rows
    per_problem = {p["problem_id"]: p for p in m["problems"]}
    assert per_problem["mtpb/3"]["multi_turn_ppl"] == pytest.approx(sum(r["multi_turn_ppl"] for r in p3) / 5)
    assert all(math.isfinite(r["single_turn_ppl"]) for r in rows)
    assert json.loads((Path(cfg.run_dir) / "manifest.json").read_text())["mode"] == "perplexity"
    assert run(cfg).n_generated == 0  # resumed: every case already computed
    # the history of an existing multi-turn run conditions the later turns
    source = config(tmp_path, "problems=[3]", name="source")
    run_sampling(source, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set)
    hist = config(tmp_path, "mode=perplexity", "problems=[3]", f"perplexity.history_run={source.run_dir}",
                  f"data_path={mtpb_path}", name="hist")
    h = run(hist).metrics
    assert h["history"] == "run" and h["multi_turn_ppl"] != pytest.approx(per_problem["mtpb/3"]["multi_turn_ppl"])
    assert h["single_turn_ppl"] == pytest.approx(per_problem["mtpb/3"]["single_turn_ppl"])
    # the default finds that run beside its own run directory (the paper's definition by default)
    found = run(config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}", name="default")).metrics
    assert found["history_run"] == str(Path(source.run_dir).resolve())
    assert found["multi_turn_ppl"] == pytest.approx(h["multi_turn_ppl"])
    # `python -m results --paper` sets it beside the paper's Table 4 (the paper's definition first)
    assert results_main([str(tmp_path / "default"), str(tmp_path / "ppl"), "--paper", "--no-files"]) == 0
    row = [line for line in capsys.readouterr().out.split("## Table 4")[1].splitlines() if line.startswith("| tiny-random")]
    cells = [c.strip() for c in row[0].split("|")[1:-1]]
    assert cells[4].startswith(f"{found['multi_turn_ppl']:.2f} (1 problems)")
    assert cells[2].startswith(f"{found['single_turn_ppl']:.2f} (1 problems)")
    # the same run directory asked for another history: refused, nothing lost
    with pytest.raises(ValueError, match="history='prompts'"):
        run(config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}",
                   f"perplexity.history_run={source.run_dir}", name="ppl"))


def test_history_is_the_models_own_completions_hand_checked(tiny, tmp_path, mtpb_path):
    """Case 0 of problem 3 with the source run's completions: exp(sum of NLL / sum of tokens) over the
    turns, each scored given the prefix and the earlier turns' prompts and completions."""
    problem_set = load_problems(mtpb_path)
    source = config(tmp_path, "problems=[3]", name="source")
    run_sampling(source, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set)
    turns = history_completions(source.run_dir)[("mtpb/3", 0)]
    prompts = problem_set.by_id()[3].filled_prompts(0)
    assert len(turns) == len(prompts) and all(turns)
    by_hand, context = [], PREFIX
    for prompt, completion in zip(prompts, turns):
        by_hand.append(Segment(context, f"# {prompt}\n"))
        context += f"# {prompt}\n" + completion + "\n\n"
    scores = score_segments(tiny.model, tiny.tokenizer, by_hand)
    expected = math.exp(sum(n for n, _ in scores) / sum(t for _, t in scores))
    hist = config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}", name="hist")
    run(hist)
    row = [json.loads(x) for x in (Path(hist.run_dir) / PPL_FILE).read_text().splitlines()][0]
    assert row["case_index"] == 0 and row["multi_turn_ppl"] == pytest.approx(expected, rel=1e-5)


def test_no_multi_turn_run_is_one_clear_error(tmp_path, mtpb_path):
    cfg = config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}", name="ppl")
    with pytest.raises(ValueError, match="found no finished multi-turn MTPB run of tiny-random") as err:
        run(cfg)
    assert "perplexity.history=prompts" in str(err.value) and "\n" not in str(err.value)
    assert not (Path(cfg.run_dir) / PPL_FILE).exists()
    # another model's completions are not this model's history
    make_run(tmp_path / "other", {("mtpb/3", 0): 1}, benchmark="mtpb", model="codegen-350M-mono", mode="multi-turn")
    with pytest.raises(ValueError, match="is a run of codegen-350M-mono, not tiny-random"):
        run(config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}",
                   f"perplexity.history_run={tmp_path / 'other'}", name="ppl"))


def test_summary_mean_and_standard_error_over_problems():
    rows = [{"problem_id": "mtpb/1", "category": "", "multi_turn_ppl": 2.0, "single_turn_ppl": 4.0},
            {"problem_id": "mtpb/1", "category": "", "multi_turn_ppl": 4.0, "single_turn_ppl": 6.0},
            {"problem_id": "mtpb/2", "category": "", "multi_turn_ppl": 9.0, "single_turn_ppl": 5.0}]
    s = summarize_perplexity(rows)
    # problems: multi 3 and 9 -> mean 6, std(ddof=1) = sqrt(18), se = sqrt(18)/sqrt(2) = 3
    assert s["n_problems"] == 2 and s["multi_turn_ppl"] == 6.0 and s["multi_turn_ppl_se"] == pytest.approx(3.0)
    # single 5 and 5 -> se 0
    assert s["single_turn_ppl"] == 5.0 and s["single_turn_ppl_se"] == 0.0


def test_command_line_without_a_multi_turn_run(tmp_path, mtpb_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "mtpb", "model=tiny-random", "mode=perplexity", "problems=[3]",
                           f"data_path={mtpb_path}", f"run_dir={tmp_path / 'ppl'}", "progress=off"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "found no finished multi-turn MTPB run of tiny-random" in errors[0]


def test_command_line_prints_strict_json_for_one_problem(tmp_path, mtpb_path):
    """One problem has no standard error: the printed line and metrics.json say null, never a bare NaN."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    run_dir = tmp_path / "ppl"
    done = subprocess.run([sys.executable, "-m", "mtpb", "model=tiny-random", "mode=perplexity", "problems=[3]",
                           "perplexity.history=prompts", f"data_path={mtpb_path}", f"run_dir={run_dir}",
                           "progress=off"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1
    shown = json.loads(printed[0], parse_constant=_refuse)
    assert shown["multi_turn_ppl_se"] is None and shown["single_turn_ppl_se"] is None
    assert shown["multi_turn_ppl"] > 1
    for name in ("metrics.json", "manifest.json"):
        json.loads((run_dir / name).read_text(), parse_constant=_refuse)
    for line in (run_dir / PPL_FILE).read_text().splitlines():
        json.loads(line, parse_constant=_refuse)
