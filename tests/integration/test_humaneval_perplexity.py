"""HumanEval prompt perplexity split by pass / non-pass (the paper's Table 2) on the tiny random model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codegen_model import registry
from humaneval.data import load_problems
from humaneval.perplexity import MODE, config_from_dict, prompt_perplexities, run
from results.cli import main as results_main
from results.paper_analysis import PPL_FILE, mean_stderr, pick_pass_run, prompt_ppl_split
from results.runs import load_runs

from ..unit.test_results_tables import make_run

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
IDS = ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"]


@pytest.fixture(scope="module")
def tiny():
    return registry.load(registry.ModelSpec(name="tiny-random", kind="tiny-random", dtype="float32", device="cpu"))


def cfg(tmp_path, **over):
    return config_from_dict({"model": {"name": "tiny-random", "kind": "tiny-random", "path": "tiny-random",
                                       "dtype": "float32", "device": "cpu", "n_layer": 2},
                             "run_dir": str(tmp_path / "ppl"), "problems": IDS, **over})


def test_prompt_perplexity_is_the_models_loss_on_the_prompt(tiny):
    prompts = {p.task_id: p.prompt for p in load_problems() if p.task_id in IDS[:2]}
    got = prompt_perplexities(tiny.model, tiny.tokenizer, prompts, batch_size=2)
    for task_id, prompt in prompts.items():
        ids = torch.tensor([tiny.tokenizer.encode(prompt)])
        loss = tiny.model(ids, labels=ids).loss.item()  # mean NLL of tokens 1..n-1, each given the ones before
        assert got[task_id]["tokens"] == ids.shape[1] - 1
        assert got[task_id]["prompt_ppl"] == pytest.approx(math.exp(loss), rel=1e-5)


def test_split_by_hand():
    ppl = {"a": 2.0, "b": 4.0, "c": 10.0, "d": 6.0, "e": 1.0}
    s = prompt_ppl_split(ppl, passed={"a", "b"}, problems={"a", "b", "c", "d"})
    # pass: 2, 4 -> mean 3, std(ddof=1) sqrt(2), se 1; non-pass: 10, 6 -> mean 8, std sqrt(8), se 2
    assert (s["pass_ppl"], s["n_pass"], s["non_pass_ppl"], s["n_non_pass"]) == (3.0, 2, 8.0, 2)
    assert s["pass_ppl_se"] == pytest.approx(1.0) and s["non_pass_ppl_se"] == pytest.approx(2.0)
    assert s["n_unmatched"] == 1  # "e": no sampling record
    assert mean_stderr([5.0]) == (5.0, None)  # undefined: None (null in metrics.json), never NaN
    assert mean_stderr([]) == (None, None) and mean_stderr([None, float("nan"), 2.0, 4.0])[0] == 3.0


def test_end_to_end_with_a_sampling_run(tmp_path, tiny, capsys):
    # HumanEval/0 and /2 have a passing sample out of 4; /1 and /3 none
    make_run(tmp_path / "t0.8", {"HumanEval/0": 1, "HumanEval/1": 0, "HumanEval/2": 3, "HumanEval/3": 0}, n=4,
             temperature=0.8)
    make_run(tmp_path / "t0.2", {"HumanEval/0": 1, "HumanEval/1": 0, "HumanEval/2": 0, "HumanEval/3": 0}, n=4)
    m = run(cfg(tmp_path), loaded=tiny)  # finds the run beside its own directory: the one solving most problems
    assert m["mode"] == MODE and m["n_problems"] == 4 and m["pass_run"].endswith("t0.8")
    rows = {r["problem_id"]: r for r in map(json.loads, (tmp_path / "ppl" / PPL_FILE).read_text().splitlines())}
    assert sorted(rows) == IDS
    pass_values = [rows[p]["prompt_ppl"] for p in ("HumanEval/0", "HumanEval/2")]
    fail_values = [rows[p]["prompt_ppl"] for p in ("HumanEval/1", "HumanEval/3")]
    assert m["pass_ppl"] == pytest.approx(sum(pass_values) / 2) and (m["n_pass"], m["n_non_pass"]) == (2, 2)
    assert m["non_pass_ppl"] == pytest.approx(sum(fail_values) / 2)
    assert m["non_pass_ppl_se"] == pytest.approx(abs(fail_values[0] - fail_values[1]) / 2)  # n = 2: |a - b| / 2
    # `python -m results --paper` does the same split beside the paper's Table 2
    assert results_main([str(tmp_path), "--paper", "--k", "1", "--boot", "20", "--no-files"]) == 0
    row = [line for line in capsys.readouterr().out.split("## Table 2")[1].splitlines() if line.startswith("| tiny-random")]
    cells = [c.strip() for c in row[0].split("|")[1:-1]]
    assert cells[2].startswith(f"{m['pass_ppl']:.2f} ± {m['pass_ppl_se']:.2f} (2 problems, n=4)")
    assert cells[4].startswith(f"{m['non_pass_ppl']:.2f} ± {m['non_pass_ppl_se']:.2f} (2 problems")
    named = run(cfg(tmp_path, pass_run=str(tmp_path / "t0.2")), loaded=tiny)  # resumed: nothing rescored
    assert named["n_pass"] == 1 and named["pass_ppl"] == pytest.approx(rows["HumanEval/0"]["prompt_ppl"])
    with pytest.raises(ValueError, match="not a HumanEval sampling run"):
        run(cfg(tmp_path, pass_run=str(tmp_path / "ppl")), loaded=tiny)


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON")


def test_command_line(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "humaneval.perplexity", "model=tiny-random", "limit=2",
                               f"run_dir={tmp_path / 'ppl'}", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    done = cli()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1], parse_constant=_refuse)  # strict JSON: no bare NaN
    assert out["prompt_ppl"] > 1 and out["pass_run"] is None
    json.loads((tmp_path / "ppl" / "metrics.json").read_text(), parse_constant=_refuse)
    bad = cli(f"pass_run={tmp_path / 'nowhere'}")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "nowhere" in bad.stderr


def test_a_run_that_did_not_sample_every_selected_problem_is_not_picked(tmp_path, tiny):
    # "partial" has more samples per problem (it would win on n) but never sampled HumanEval/2 and /3
    make_run(tmp_path / "partial", {"HumanEval/0": 8, "HumanEval/1": 8}, n=8)
    make_run(tmp_path / "full", {"HumanEval/0": 1, "HumanEval/1": 0, "HumanEval/2": 3, "HumanEval/3": 0}, n=4)
    runs, _ = load_runs([tmp_path])
    assert pick_pass_run(runs, "tiny-random").path.name == "partial"  # no selection: most samples wins
    assert pick_pass_run(runs, "tiny-random", IDS).path.name == "full"  # what `--paper`'s Table 2 asks
    m = run(cfg(tmp_path), loaded=tiny)
    assert m["pass_run"].endswith("full") and (m["n_pass"], m["n_non_pass"], m["n_unmatched"]) == (2, 2, 0)
    # selecting only the problems "partial" sampled: it covers them and wins on samples per problem
    sub = run(cfg(tmp_path, problems=IDS[:2], run_dir=str(tmp_path / "ppl2")), loaded=tiny)
    assert sub["pass_run"].endswith("partial") and (sub["n_pass"], sub["n_non_pass"]) == (2, 0)
    # named with pass_run=: refused, one line naming the fix
    with pytest.raises(ValueError, match=r"did not sample 2 of the selected problems \(HumanEval/2, HumanEval/3\)"
                                         r".*name a run that sampled every selected problem") as err:
        run(cfg(tmp_path, pass_run=str(tmp_path / "partial")), loaded=tiny)
    assert "\n" not in str(err.value)


def test_no_run_covering_the_selection_is_one_error_line(tmp_path, tiny):
    make_run(tmp_path / "partial", {"HumanEval/0": 1, "HumanEval/1": 0, "HumanEval/2": 1}, n=4)
    with pytest.raises(ValueError, match=r"sampled every selected problem \(the closest, .*partial, lacks 1 of the "
                                         r"selected problems \(HumanEval/3\)\); run `python -m humaneval "
                                         r"model=tiny-random`") as err:
        run(cfg(tmp_path), loaded=tiny)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "ppl" / PPL_FILE).exists()  # refused before anything was scored
