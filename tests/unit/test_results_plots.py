"""Plots a researcher would publish: each kind rendered from tiny runs, its properties checked in the
matplotlib figure objects (only existing runs, one legend, consistent colours, scope in the title,
rate axes 0-100%), and perplexity runs in the tables and plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from results.cli import main
from results.plots import (
    figure_mtpb_categories,
    figure_perplexity,
    figure_single_vs_multi_turn,
    figure_vs_model_size,
    figure_vs_temperature,
    scope,
    write_plots,
)
from results.records import Manifest
from results.runs import load_runs
from results.store import RunStore
from results.tables import perplexity_table, summary_table
from tests.unit.test_results_tables import make_run

CATS = {"m/1": "math", "m/2": "string", "m/3": "math"}


def make_perplexity_run(run_dir, model="codegen-350M-mono", benchmark="mtpb", **metrics):
    store = RunStore(run_dir)
    store.start({}, Manifest(benchmark=benchmark, model=model, sampling={}, mode="perplexity"))
    store.write_metrics({"benchmark": benchmark, "model": model, "mode": "perplexity", **metrics})
    store.close()


@pytest.fixture
def runs(tmp_path):
    for t, counts in ((0.2, {"A": 3, "B": 1, "C": 0}), (0.8, {"A": 2, "B": 2, "C": 1})):
        make_run(tmp_path / f"he{t}", counts, model="codegen-350M-mono", temperature=t, n=4)
    make_run(tmp_path / "he-2B", {"A": 4, "B": 3, "C": 1}, model="codegen-2B-mono", temperature=0.2, n=4)
    # multi-turn for two models, single-turn for one only: no bar may stand for the missing run
    for model in ("codegen-350M-mono", "codegen-2B-mono"):
        make_run(tmp_path / f"multi-{model}", {("m/1", 0): 1, ("m/2", 0): 2, ("m/3", 0): 0}, benchmark="mtpb", n=2,
                 mode="multi-turn", model=model, categories=CATS)
    make_run(tmp_path / "single", {("m/1", 0): 0, ("m/2", 0): 1, ("m/3", 0): 0}, benchmark="mtpb", n=2,
             mode="single-turn", model="codegen-350M-mono", categories=CATS)
    make_perplexity_run(tmp_path / "ppl", n_problems=3, n_cases=3, multi_turn_ppl=4.5, multi_turn_ppl_se=0.5,
                        single_turn_ppl=5.25, single_turn_ppl_se=0.75)
    found, _ = load_runs([tmp_path])
    return found


def _scored(runs):
    return [r for r in runs if r.manifest.mode != "perplexity"]


def _check_publishable(fig, rates=True):
    title = fig._suptitle.get_text()
    assert "nan" not in title.lower()
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)  # one legend per figure
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == len(set(labels)) and not any("nan" in label for label in labels)
    colour_of: dict = {}  # one colour per series across panels
    for ax in fig.axes:
        if rates:
            assert ax.get_ylim() == (0.0, 100.0)
        for artist in [*ax.lines, *ax.patches, *ax.collections]:
            label = artist.get_label()
            if label.startswith("_"):
                continue
            colour = tuple(artist.get_facecolor()[0] if hasattr(artist, "get_offsets") else
                           artist.get_color() if hasattr(artist, "get_xdata") else artist.get_facecolor())
            assert colour_of.setdefault(label, colour) == colour, label
    return title, labels


def test_vs_temperature_has_one_legend_consistent_colours_and_scope(runs):
    summary = summary_table(_scored(runs), ks=(1, 2), n_boot=50)
    fig = figure_vs_temperature(summary[summary["benchmark"] == "humaneval"], "humaneval", ks=(1, 2))
    title, labels = _check_publishable(fig)
    assert "3 of 164 problems, n=4 samples each" in title
    assert sorted(labels) == ["codegen-2B-mono n=4", "codegen-350M-mono n=4"]
    assert len(fig.axes) == 2  # pass@1, pass@2 (HumanEval's pass rate is its pass@1)
    for ax in fig.axes:  # every panel's series share their colour with the same series elsewhere
        assert {line.get_label() for line in ax.lines if not line.get_label().startswith("_")} <= set(labels)
    plt.close(fig)


def test_vs_model_size_keeps_the_paper_curve_and_rate_axes(runs):
    fig = figure_vs_model_size(summary_table(_scored(runs), ks=(1,), n_boot=50), ks=(1,))
    title, labels = _check_publishable(fig)
    assert "paper CodeGen-Mono" in labels and "codegen-2B-mono" in labels and "3 of 164 problems" in title
    plt.close(fig)


def test_single_vs_multi_turn_draws_only_existing_runs(runs):
    fig = figure_single_vs_multi_turn(summary_table(runs, ks=(1,), n_boot=50))  # perplexity run included
    title, labels = _check_publishable(fig)
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in fig.axes[0].containers if hasattr(c, "patches")}
    # multi-turn: two runs (two bars); single-turn: one run (one bar), not a 0% bar for the missing one
    assert len(bars["ours multi-turn"]) == 2 and len(bars["ours single-turn"]) == 1
    assert all(h > 0 for h in bars["ours single-turn"] + bars["ours multi-turn"])
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["codegen-2B-mono T=0.2", "codegen-350M-mono T=0.2"] and "3 of 115 problems" in title
    plt.close(fig)


def test_mtpb_categories_colours_match_the_legend(runs):
    fig = figure_mtpb_categories(_scored(runs))
    title, labels = _check_publishable(fig)
    assert "MTPB pass rate per category: 3 of 115 problems, n=2 samples each" == title
    assert len(labels) == 3 and all("T=0.2" in label for label in labels)
    plt.close(fig)


def test_perplexity_runs_appear_in_tables_and_plots(runs, tmp_path, capsys):
    table = perplexity_table(runs)
    assert table[["model", "problems", "multi_turn_ppl", "single_turn_ppl_se"]].values.tolist() == \
        [["codegen-350M-mono", 3, 4.5, 0.75]]
    fig = figure_perplexity(runs)
    title, labels = _check_publishable(fig, rates=False)
    assert labels == ["single_turn_ppl", "multi_turn_ppl"] and "3 of 115 problems" in fig.axes[0].get_title()
    assert [p.get_height() for p in fig.axes[0].patches] == [5.25, 4.5]
    plt.close(fig)
    assert main([str(tmp_path / "ppl"), "--no-files"]) == 0
    out = capsys.readouterr().out
    assert "Perplexity runs" in out and "4.50 ± 0.50" in out and "5.25 ± 0.75" in out
    written = write_plots(runs, summary_table(_scored(runs), ks=(1, 2), n_boot=50), tmp_path / "plots", ks=(1, 2))
    assert sorted(p.name for p in written) == [
        "humaneval_vs_model_size.png", "humaneval_vs_temperature.png", "mtpb_categories.png",
        "mtpb_single_vs_multi_turn.png", "mtpb_vs_temperature.png", "perplexity.png"]


def test_scope_names_the_share_of_the_benchmark_covered():
    assert scope("humaneval", [5, 5], [4]) == "5 of 164 problems, n=4 samples each"
    assert scope("humaneval", [164], [1]) == "164 problems, n=1 sample each"
    assert scope("mtpb", [1], [2, 4]) == "1 of 115 problems, n=2-4 samples each"
    assert scope("custom", [1], [1]) == "1 problem, n=1 sample each"
    assert scope("humaneval", [3, 5], []) == "3-5 of 164 problems" and scope("x", [], []) == ""
