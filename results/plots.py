"""Plots (PNG, matplotlib): pass@k against temperature per model, pass@k against model size (with
the paper's CodeGen-Mono curve), MTPB pass rate per category per run, single- vs multi-turn MTPB,
and the perplexity runs.

Made to be put in a paper as they are: only runs that exist are drawn (no 0% bar for a missing
run, no "T=nan" for a run without a temperature); one legend per figure, below the panels, with
one colour per series across all panels; the number of problems and samples in the title; rate axes
from 0 to 100%; error bars are the 95% bootstrap intervals over problems (perplexity: +- one
standard error). Each `figure_*` function returns the matplotlib Figure (None when the runs hold
nothing for it) and each `plot_*` writes it as PNG and returns the path.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from results.metrics import DEFAULT_KS  # noqa: E402
from results.paper import normalize_mode, paper_numbers, params_b  # noqa: E402
from results.runs import Run  # noqa: E402
from results.tables import PERPLEXITY_METRICS, best_temperature, perplexity_table  # noqa: E402

log = logging.getLogger(__name__)

BENCHMARK_PROBLEMS = {"humaneval": 164, "mtpb": 115}  # the full benchmarks' sizes, for "5 of 164 problems"
PAPER_COLOUR = "black"


def colours(labels: Iterable[str]) -> dict[str, tuple]:
    """One colour per series label (matplotlib's tab10 cycle, in sorted label order), shared by every
    panel of a figure."""
    cycle = plt.get_cmap("tab10").colors
    return {label: cycle[i % len(cycle)] for i, label in enumerate(sorted(set(labels)))}


def scope(benchmark: str, problems: Iterable, samples: Iterable) -> str:
    """"5 of 164 problems, n=4 samples each": what a figure covers, for its title."""
    problems = sorted({int(p) for p in problems if p == p and p is not None})
    samples = sorted({int(n) for n in samples if n == n and n is not None})
    if not problems:
        return ""
    count = "-".join(str(p) for p in (problems[0], problems[-1]) if p is not None) if len(problems) > 1 \
        else str(problems[0])
    full = BENCHMARK_PROBLEMS.get(benchmark)
    if full and problems[-1] < full:
        text = f"{count} of {full} problems"
    else:
        text = f"{count} problem{'' if problems == [1] else 's'}"
    if samples:
        n = str(samples[0]) if len(samples) == 1 else f"{samples[0]}-{samples[-1]}"
        text += f", n={n} sample{'s' if samples[-1] != 1 else ''} each"
    return text


def _run_label(model: str, mode: str = "", temperature=None, n=None) -> str:
    parts = [str(model)]
    if mode:
        parts.append(str(mode))
    if isinstance(temperature, (int, float)) and not math.isnan(temperature):
        parts.append(f"T={temperature:g}")
    if n is not None and n == n:
        parts.append(f"n={int(n)}")
    return " ".join(parts)


def _finish(fig, axes, title: str, rate_axes: bool = True):
    """One legend for the figure (below the panels, each label once), the title, rate axes 0-100%."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
        if rate_axes:
            ax.set_ylim(0, 100)
    fig.suptitle(title, fontsize=10)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(4, len(handles)),
                   fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * math.ceil(len(handles) / 4), 1, 1))
    return fig


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log.debug("wrote %s", path)
    return path


def _yerr(frame: pd.DataFrame, metric: str) -> np.ndarray:
    value = frame[metric].to_numpy(float)
    low, high = frame[f"{metric}_lo"].to_numpy(float), frame[f"{metric}_hi"].to_numpy(float)
    return 100 * np.vstack([value - low, high - value])


def _metrics(frame: pd.DataFrame, ks: Sequence[int]) -> list[str]:
    names = [f"pass@{k}" for k in ks] + ["pass_rate"]
    return [m for m in names if m in frame and frame[m].notna().any()]


def figure_vs_temperature(frame: pd.DataFrame, benchmark: str, ks: Sequence[int] = DEFAULT_KS):
    """Each reported metric of one benchmark against temperature, a line per model x mode x n."""
    frame = frame[frame["temperature"].notna()]
    metrics = [m for m in _metrics(frame, ks) if not (benchmark == "humaneval" and m == "pass_rate")]
    if frame.empty or not metrics:
        return None
    series = {key: _run_label(key[0], key[1], None, key[2]) for key, _ in frame.groupby(["model", "mode", "n"])}
    colour = colours(series.values())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key, line in frame.groupby(["model", "mode", "n"]):
            line = line[line[metric].notna()].sort_values("temperature")
            if line.empty:
                continue
            ax.errorbar(line["temperature"], 100 * line[metric], yerr=_yerr(line, metric), marker="o",
                        capsize=3, label=series[key], color=colour[series[key]])
        ax.set(title=metric, xlabel="temperature", ylabel=f"{metric} (%)")
        ax.grid(alpha=0.3)
    return _finish(fig, axes[0], f"{benchmark}: {scope(benchmark, frame['problems'], frame['n'])}")


def plot_vs_temperature(summary: pd.DataFrame, out_dir: Path, ks: Sequence[int] = DEFAULT_KS) -> list[Path]:
    """One PNG per benchmark: `figure_vs_temperature`."""
    written = []
    for benchmark, frame in summary.groupby("benchmark"):
        fig = figure_vs_temperature(frame, str(benchmark), ks)
        if fig is not None:
            written.append(_save(fig, out_dir / f"{benchmark}_vs_temperature.png"))
    return written


def figure_vs_model_size(summary: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS):
    """HumanEval pass@k (best temperature per k) against parameters, beside the paper's CodeGen-Mono."""
    humaneval = summary[summary["benchmark"] == "humaneval"] if len(summary) else pd.DataFrame()
    best = best_temperature(humaneval, ks) if len(humaneval) else pd.DataFrame()
    if best.empty:
        return None
    best["params_b"] = [params_b(m) for m in best["model"]]
    best = best[best["params_b"].notna()]
    if best.empty:
        log.info("no model with a known size among the runs: skipping the model-size plot")
        return None
    paper = paper_numbers("humaneval")
    paper = paper[paper["family"] == "codegen-mono"]
    metrics = [k for k in ks if (best["k"] == k).any()]
    colour = colours(best["model"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
    for ax, k in zip(axes[0], metrics):
        ref = paper[paper["metric"] == f"pass@{k}"].sort_values("params_b")
        ax.plot(ref["params_b"], ref["value"], "--", color=PAPER_COLOUR, marker="x", label="paper CodeGen-Mono")
        for model, points in best[best["k"] == k].groupby("model"):
            yerr = 100 * np.vstack([points["value"] - points["low"], points["high"] - points["value"]])
            ax.errorbar(points["params_b"], 100 * points["value"], yerr=yerr, marker="o", capsize=3, ls="",
                        label=model, color=colour[model])
        ax.set(xscale="log", title=f"pass@{k}", xlabel="parameters (B)", ylabel=f"pass@{k} (%)")
        ax.grid(alpha=0.3)
    covered = scope("humaneval", humaneval["problems"], humaneval["n"])
    return _finish(fig, axes[0], f"HumanEval, best temperature per k: {covered}")


def plot_vs_model_size(summary: pd.DataFrame, out_dir: Path, ks: Sequence[int] = DEFAULT_KS) -> Path | None:
    fig = figure_vs_model_size(summary, ks)
    return None if fig is None else _save(fig, out_dir / "humaneval_vs_model_size.png")


def figure_mtpb_categories(runs: Sequence[Run]):
    """MTPB pass rate per problem category (executions' extra["category"]), one bar per existing run."""
    frames, problems, samples = [], [], []
    for run in runs:
        ex = run.executions
        if run.benchmark != "mtpb" or ex.empty or not (ex["category"] != "").any():
            continue
        label = _run_label(run.manifest.model, run.manifest.mode, run.temperature)
        frames.append(ex.groupby("category")["passed"].mean().rename(label))
        problems.append(ex["problem_id"].nunique())
        samples.append(run.n)
    if not frames:
        return None
    table = 100 * pd.concat(frames, axis=1).sort_index()
    colour = colours(table.columns)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(table) * max(1, len(frames)) ** 0.5), 4.2))
    table.plot.bar(ax=ax, width=0.8, color=[colour[c] for c in table.columns], legend=False)
    ax.set(xlabel="category", ylabel="pass rate (%)")
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, [ax], f"MTPB pass rate per category: {scope('mtpb', problems, samples)}")


def plot_mtpb_categories(runs: Sequence[Run], out_dir: Path) -> Path | None:
    fig = figure_mtpb_categories(runs)
    return None if fig is None else _save(fig, out_dir / "mtpb_categories.png")


def figure_single_vs_multi_turn(summary: pd.DataFrame):
    """MTPB pass rate single- vs multi-turn per model (and temperature), paper values as markers.
    A bar only where that run exists; None unless both modes have a run."""
    mtpb = summary[summary["benchmark"] == "mtpb"].copy() if len(summary) else pd.DataFrame()
    if mtpb.empty:
        return None
    mtpb["paper_mode"] = [normalize_mode("mtpb", m) for m in mtpb["mode"]]
    modes = ["single-turn", "multi-turn"]
    mtpb = mtpb[mtpb["paper_mode"].isin(modes) & mtpb["pass_rate"].notna()]
    if mtpb["paper_mode"].nunique() < 2:
        return None
    mtpb["label"] = [_run_label(m, "", t) for m, t in zip(mtpb["model"], mtpb["temperature"])]
    labels = sorted(mtpb["label"].unique())
    colour = colours(f"ours {mode}" for mode in modes)
    paper = paper_numbers("mtpb", "pass_rate")
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(labels)), 4.2))
    x = np.arange(len(labels))
    for i, mode in enumerate(modes):
        rows = mtpb[mtpb["paper_mode"] == mode].drop_duplicates("label").set_index("label")
        where = np.array([labels.index(lbl) for lbl in rows.index]) + (i - 0.5) * 0.38
        if len(rows):
            ax.bar(where, 100 * rows["pass_rate"], 0.38, yerr=_yerr(rows, "pass_rate"), capsize=3,
                   label=f"ours {mode}", color=colour[f"ours {mode}"])
        model_of = {lbl: m for lbl, m in zip(mtpb["label"], mtpb["model"])}
        ref = [paper[(paper["model"].str.lower() == str(model_of[lbl]).lower().rsplit("/", 1)[-1])
                     & (paper["mode"] == mode)]["value"] for lbl in labels]
        ref_x = [xi + (i - 0.5) * 0.38 for xi, r in zip(x, ref) if len(r)]
        if ref_x:
            ax.scatter(ref_x, [r.iloc[0] for r in ref if len(r)], marker="_", s=300, color=PAPER_COLOUR,
                       label="paper", zorder=3)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=7)
    ax.set(ylabel="pass rate (%)")
    return _finish(fig, [ax], f"MTPB single- vs multi-turn: {scope('mtpb', mtpb['problems'], mtpb['n'])}")


def plot_single_vs_multi_turn(summary: pd.DataFrame, out_dir: Path) -> Path | None:
    fig = figure_single_vs_multi_turn(summary)
    return None if fig is None else _save(fig, out_dir / "mtpb_single_vs_multi_turn.png")


def figure_perplexity(runs: Sequence[Run]):
    """Perplexity runs: per benchmark a panel, per model a group of bars (one per reported
    perplexity, the same colour in every panel), +- one standard error. None without such runs."""
    table = perplexity_table(runs)
    if table.empty:
        return None
    benchmarks = sorted(table["benchmark"].unique())
    names = [n for n in PERPLEXITY_METRICS if n in table]
    colour = colours(names)
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.8 * len(benchmarks), 3.8), squeeze=False)
    for ax, benchmark in zip(axes[0], benchmarks):
        rows = table[table["benchmark"] == benchmark].reset_index(drop=True)
        shown = [n for n in names if rows[n].notna().any()]
        width = 0.8 / max(1, len(shown))
        for j, name in enumerate(shown):
            ax.bar(np.arange(len(rows)) + (j - (len(shown) - 1) / 2) * width, rows[name], width,
                   yerr=rows[f"{name}_se"].fillna(0), capsize=3, label=name, color=colour[name])
        ax.set_xticks(np.arange(len(rows)), rows["model"], rotation=20, ha="right", fontsize=7)
        ax.set(title=f"{benchmark}: {scope(benchmark, rows['problems'], [])}", ylabel="perplexity")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    return _finish(fig, axes[0], "Perplexity (mean over problems, +- one standard error)", rate_axes=False)


def plot_perplexity(runs: Sequence[Run], out_dir: Path) -> Path | None:
    fig = figure_perplexity(runs)
    return None if fig is None else _save(fig, out_dir / "perplexity.png")


def write_plots(runs: Sequence[Run], summary: pd.DataFrame, out_dir: str | Path,
                ks: Sequence[int] = DEFAULT_KS) -> list[Path]:
    """Every plot the runs support, as PNG files under `out_dir` (`summary`: `summary_table` of the
    scored runs; perplexity runs among `runs` get their own plot)."""
    out_dir = Path(out_dir)
    scored = [run for run in runs if not str(run.manifest.mode).endswith("perplexity")]
    written = plot_vs_temperature(summary, out_dir, ks)
    for path in (plot_vs_model_size(summary, out_dir, ks), plot_mtpb_categories(scored, out_dir),
                 plot_single_vs_multi_turn(summary, out_dir), plot_perplexity(runs, out_dir)):
        if path is not None:
            written.append(path)
    return written
