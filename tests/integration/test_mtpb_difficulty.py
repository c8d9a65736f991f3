"""Figure 2's difficulty breakdown from a single-turn and a multi-turn MTPB run of the tiny model's
configuration, answered by a scripted generator so that each problem's pass rate is known by hand."""

from __future__ import annotations

import pytest

from mtpb.data import load_problems
from mtpb.runner import run
from results.cli import main as results_main
from results.paper_analysis import difficulty_breakdown, problem_pass_rates
from results.runs import load_run

from .mtpb_scripted import ScriptedGenerator, parse_turn_key
from .mtpb_solutions import completions as reference_completions
from .test_mtpb_run import config

pytestmark = pytest.mark.integration
GARBAGE = "raise SystemExit(3)"  # the program stops before printing anything: fails the official check


def test_figure2_buckets_from_two_runs(tmp_path, mtpb_path, capsys):
    problem_set = load_problems(mtpb_path)
    by_id = problem_set.by_id()

    def multi(request, sample):  # the reference every turn, except sample 1 of problem 4 (its last turn)
        pid, case, turn = parse_turn_key(request.key)
        if pid == 4 and sample == 1 and turn == len(by_id[pid].prompts) - 1:
            return GARBAGE
        return reference_completions(pid, by_id[pid].inputs[case])[turn]

    def single(request, sample):  # one turn holding the whole reference: problem 2, sample 0 only
        pid, case, _ = parse_turn_key(request.key)
        if pid != 2 or sample == 1:
            return GARBAGE
        return "\n".join(reference_completions(pid, by_id[pid].inputs[case]))

    runs = {}
    for mode, answer in (("multi_turn", multi), ("single_turn", single)):
        cfg = config(tmp_path, f"mode={mode}", "problems=[2,3,4]", "sampling.n=2", name=mode)
        run(cfg, generator=ScriptedGenerator(answer), problem_set=problem_set)
        runs[mode] = load_run(cfg.run_dir)
    s, m = problem_pass_rates(runs["single_turn"].executions), problem_pass_rates(runs["multi_turn"].executions)
    assert dict(m) == {"mtpb/2": 1.0, "mtpb/3": 1.0, "mtpb/4": 0.5}
    assert dict(s) == {"mtpb/2": 0.5, "mtpb/3": 0.0, "mtpb/4": 0.0}
    # averages: 2 -> 0.75 easy (+50 points), 3 -> 0.5 medium (+100), 4 -> 0.25 hard (+50)
    b = difficulty_breakdown(s, m).set_index("bucket")
    assert list(b["n_problems"]) == [1, 1, 1]
    assert list(b["gain"]) == pytest.approx([50.0, 100.0, 50.0])
    assert list(b["single"]) == pytest.approx([50.0, 0.0, 0.0]) and list(b["multi"]) == pytest.approx([100.0, 100.0, 50.0])
    # the same through `python -m results --paper`
    assert results_main([str(tmp_path), "--paper", "--no-files", "--boot", "20"]) == 0
    figure = capsys.readouterr().out.split("## Figure 2")[1]
    row = [line for line in figure.splitlines() if line.startswith("| tiny-random")][0]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:7] == ["-", "50.00 (1 problems)", "-", "100.00 (1 problems)", "-", "50.00 (1 problems)"]
