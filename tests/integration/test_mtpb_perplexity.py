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
from mtpb.perplexity import PPL_FILE, Segment, multi_turn_segments, score_segments, single_turn_segment
from mtpb.prompts import PREFIX
from mtpb.runner import run

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


def test_perplexity_mode_end_to_end_and_resume(tmp_path, mtpb_path):
    problem_set = load_problems(mtpb_path)
    cfg = config(tmp_path, "mode=perplexity", "problems=[3]", f"data_path={mtpb_path}", name="ppl")
    summary = run(cfg)
    m = summary.metrics
    assert m["mode"] == "perplexity" and m["n_problems"] == 1 and m["n_cases"] == 5 and m["history"] == "prompts"
    assert 1 < m["multi_turn_ppl"] < 1e6 and 1 < m["single_turn_ppl"] < 1e6
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
    run(source, generator=ScriptedGenerator(reference_answer(problem_set.problems)), problem_set=problem_set)
    hist = config(tmp_path, "mode=perplexity", "problems=[3]", f"perplexity.history_run={source.run_dir}",
                  f"data_path={mtpb_path}", name="hist")
    h = run(hist).metrics
    assert h["history"] == "run" and h["multi_turn_ppl"] != pytest.approx(per_problem["mtpb/3"]["multi_turn_ppl"])
    assert h["single_turn_ppl"] == pytest.approx(per_problem["mtpb/3"]["single_turn_ppl"])
