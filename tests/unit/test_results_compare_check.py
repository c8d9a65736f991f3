"""`compare` of two runs, the `check` regression gate, and the plots (docs/design.md §5)."""

from __future__ import annotations

import json

import pytest

from results.check import BaselineError, check_run, read_baseline
from results.cli import main
from results.compare import compare_runs
from results.plots import write_plots
from results.runs import load_run, load_runs
from results.tables import summary_table
from tests.unit.test_results_tables import make_run


def test_compare_two_runs(tmp_path, capsys):
    # B wins P1 and P2, loses P3, ties P0; P9 only in B
    a = make_run(tmp_path / "a", {"P0": 2, "P1": 0, "P2": 1, "P3": 4}, n=4)
    b = make_run(tmp_path / "b", {"P0": 2, "P1": 3, "P2": 4, "P3": 3, "P9": 4}, n=4, model="other")
    table, per_problem, notes = compare_runs(load_run(a), load_run(b), ks=(1, 10), n_boot=500)
    row = table.set_index("metric").loc["pass@1"]
    assert row["A"] == pytest.approx(7 / 16) and row["B"] == pytest.approx(12 / 16)
    assert row["B-A"] == pytest.approx(5 / 16)
    assert row["low"] <= row["B-A"] <= row["high"]
    assert (row["B won"], row["B lost"], row["tied"], row["problems"]) == (2, 1, 1, 4)
    assert list(table["metric"]) == ["pass@1", "pass_rate"]  # pass@10 needs n >= 10
    assert any("only in B" in n and "P9" in n for n in notes) and any("k=[10]" in n for n in notes)
    assert list(per_problem["problem_id"]) == ["P0", "P1", "P2", "P3"]

    assert main(["compare", str(a), str(b), "--k", "1", "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "B vs A" in out and "31.25" in out  # 5/16 in percent
    assert (tmp_path / "cmp" / "compare_per_problem.csv").exists()
    other = make_run(tmp_path / "m", {("x", 0): 1}, benchmark="mtpb", n=1)
    with pytest.raises(ValueError, match="cannot compare a humaneval run"):
        compare_runs(load_run(a), load_run(other))


def test_compare_detects_a_real_difference(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    weak = {f"P{i}": int(rng.binomial(10, 0.2)) for i in range(60)}
    strong = {f"P{i}": int(rng.binomial(10, 0.6)) for i in range(60)}
    a = make_run(tmp_path / "weak", weak, n=10)
    b = make_run(tmp_path / "strong", strong, n=10)
    table, _, _ = compare_runs(load_run(a), load_run(b), ks=(1,), n_boot=500)
    row = table.set_index("metric").loc["pass@1"]
    assert row["significant"] and row["low"] > 0.25 and row["high"] < 0.55  # true difference 0.4


def test_check_passes_and_fails_with_exit_code_and_message(tmp_path, capsys):
    good = make_run(tmp_path / "good", {f"P{i}": 3 for i in range(8)}, n=4)  # pass@1 = 0.75
    baseline = tmp_path / "baseline.json"
    assert main(["check", str(good), "--write-baseline", str(baseline), "--tolerance", "0.05", "--k", "1"]) == 0
    data = json.loads(baseline.read_text())
    assert data["metrics"]["pass@1"] == {"value": 0.75, "tolerance": 0.05} and data["n"] == 4
    capsys.readouterr()

    assert main(["check", str(good), "--baseline", str(baseline), "--k", "1"]) == 0
    assert "check passed" in capsys.readouterr().out

    # same kind of run, worse: pass@1 = 0.5 < 0.75 - 0.05
    bad = make_run(tmp_path / "bad", {f"P{i}": 2 for i in range(8)}, n=4)
    assert main(["check", str(bad), "--baseline", str(baseline), "--k", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL pass@1: 0.5000 < 0.7000 (baseline 0.7500 - tolerance 0.0500)" in out
    assert "FAIL pass_rate" in out and "check FAILED" in out

    # "ci" tolerance: a small drop inside the interval passes, a large one fails
    data["metrics"] = {"pass@1": {"value": 0.75, "tolerance": "ci"}}
    baseline.write_text(json.dumps(data))
    wobbly = make_run(tmp_path / "wobbly", {**{f"P{i}": 3 for i in range(7)}, "P7": 2}, n=4)
    assert main(["check", str(wobbly), "--baseline", str(baseline)]) == 0
    assert main(["check", str(bad), "--baseline", str(baseline)]) == 1
    assert "FAIL pass@1: 0.5000 95% CI [0.5000, 0.5000] lies below the baseline 0.7500" in capsys.readouterr().out

    # another model: an error, not a pass
    other = make_run(tmp_path / "other", {f"P{i}": 3 for i in range(8)}, n=4, model="codegen-350M-mono")
    assert main(["check", str(other), "--baseline", str(baseline)]) == 2
    assert "model: baseline 'tiny-random', run 'codegen-350M-mono'" in capsys.readouterr().err

    # an incomplete run fails unless allowed
    partial = make_run(tmp_path / "partial", {f"P{i}": 3 for i in range(8)}, n=4, finish=False)
    assert main(["check", str(partial), "--baseline", str(baseline)]) == 1
    assert "FAIL run incomplete" in capsys.readouterr().out
    ok, _ = check_run(load_run(partial), read_baseline(baseline), allow_incomplete=True)
    assert ok


def test_bad_baseline_files(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("{not json")
    with pytest.raises(BaselineError, match="not valid JSON"):
        read_baseline(path)
    path.write_text(json.dumps({"metrics": {"pass@1": {"value": 0.5, "tolerance": -1}}}))
    with pytest.raises(BaselineError, match="tolerance must be a number >= 0"):
        read_baseline(path)
    path.write_text(json.dumps({"metrics": {}}))
    with pytest.raises(BaselineError, match="non-empty"):
        read_baseline(path)


def test_plots_written_and_non_empty(tmp_path):
    for t, counts in ((0.2, {"A": 3, "B": 1}), (0.8, {"A": 2, "B": 2})):
        make_run(tmp_path / f"he{t}", counts, model="codegen-350M-mono", temperature=t, n=4)
    cats = {"m/1": "math", "m/2": "string"}
    make_run(tmp_path / "multi", {("m/1", 0): 1, ("m/2", 0): 2}, benchmark="mtpb", n=2, mode="multi-turn",
             model="codegen-350M-mono", categories=cats)
    make_run(tmp_path / "single", {("m/1", 0): 0, ("m/2", 0): 1}, benchmark="mtpb", n=2, mode="single-turn",
             model="codegen-350M-mono", categories=cats)
    runs, _ = load_runs([tmp_path])
    written = write_plots(runs, summary_table(runs, ks=(1, 2), n_boot=50), tmp_path / "plots", ks=(1, 2))
    names = sorted(p.name for p in written)
    assert names == ["humaneval_vs_model_size.png", "humaneval_vs_temperature.png", "mtpb_categories.png",
                     "mtpb_single_vs_multi_turn.png", "mtpb_vs_temperature.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_write_baseline_creates_its_folder_and_stores_no_absolute_path(tmp_path, monkeypatch, capsys):
    make_run(tmp_path / "outputs" / "run", {"A": 2, "B": 1})
    monkeypatch.chdir(tmp_path)
    assert main(["check", "outputs/run", "--write-baseline", "ci/baseline.json", "--tolerance", "ci", "--k", "1"]) == 0
    data = json.loads((tmp_path / "ci" / "baseline.json").read_text())
    assert data["created_from"] == "outputs/run"
    assert str(tmp_path) not in (tmp_path / "ci" / "baseline.json").read_text()
    assert main(["check", "outputs/run", "--baseline", "ci/baseline.json", "--k", "1"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["check", "RUN", "--baseline", "missing.json"], "cannot read baseline missing.json"),
    (["check", "RUN", "--write-baseline", "FILE/under/a/file.json"], "cannot write baseline"),
    (["check", "nowhere", "--baseline", "x.json"], "expected one run directory, found no run"),
    (["RUN", "--boot", "0"], "--boot needs at least 1"),
    (["RUN", "--out", "FILE/sub"], "error: "),
])
def test_user_errors_in_the_cli_are_one_line_without_traceback(tmp_path, monkeypatch, capsys, argv, message):
    make_run(tmp_path / "RUN", {"A": 1})
    (tmp_path / "FILE").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_baseline_file_is_strict_json(tmp_path):
    from results.check import write_baseline

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    path = tmp_path / "ci" / "baseline.json"
    write_baseline({"metrics": {"pass@1": {"value": 0.5, "tolerance": float("nan")}}}, path)
    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["metrics"]["pass@1"] == {"value": 0.5, "tolerance": None}
