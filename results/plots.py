"""Plots (PNG, matplotlib, issue #7 item 4): pass@k against temperature per model, pass@k against
model size (with the paper's CodeGen-Mono curve), MTPB pass rate per category per model, and
single- vs multi-turn MTPB. Each function returns the path it wrote, or None when the runs hold
nothing to plot; error bars are the 95% bootstrap intervals over problems.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from results.metrics import DEFAULT_KS  # noqa: E402
from results.paper import normalize_mode, paper_numbers, params_b  # noqa: E402
from results.runs import Run  # noqa: E402
from results.tables import best_temperature  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log.debug("wrote %s", path)
    return path


def _yerr(frame: pd.DataFrame, metric: str) -> np.ndarray:
    value = frame[metric].to_numpy(float)
    return 100 * np.vstack([value - frame[f"{metric}_lo"].to_numpy(float), frame[f"{metric}_hi"].to_numpy(float) - value])


def _metrics(frame: pd.DataFrame, ks: Sequence[int]) -> list[str]:
    names = [f"pass@{k}" for k in ks] + ["pass_rate"]
    return [m for m in names if m in frame and frame[m].notna().any()]


def plot_vs_temperature(summary: pd.DataFrame, out_dir: Path, ks: Sequence[int] = DEFAULT_KS) -> list[Path]:
    """One PNG per benchmark: each reported metric against temperature, a line per model (and mode)."""
    written = []
    for benchmark, frame in summary.groupby("benchmark"):
        frame = frame[frame["temperature"].notna()]
        metrics = [m for m in _metrics(frame, ks) if not (benchmark == "humaneval" and m == "pass_rate")]
        if frame.empty or not metrics:
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            for (model, mode, n), line in frame.groupby(["model", "mode", "n"]):
                line = line[line[metric].notna()].sort_values("temperature")
                if line.empty:
                    continue
                label = " ".join(str(x) for x in (model, mode, f"n={n}") if x)
                ax.errorbar(line["temperature"], 100 * line[metric], yerr=_yerr(line, metric), marker="o",
                            capsize=3, label=label)
            ax.set(title=f"{benchmark} {metric}", xlabel="temperature", ylabel=f"{metric} (%)")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        written.append(_save(fig, out_dir / f"{benchmark}_vs_temperature.png"))
    return written


def plot_vs_model_size(summary: pd.DataFrame, out_dir: Path, ks: Sequence[int] = DEFAULT_KS) -> Path | None:
    """HumanEval pass@k (best temperature per k) against parameters, beside the paper's CodeGen-Mono."""
    best = best_temperature(summary[summary["benchmark"] == "humaneval"], ks) if len(summary) else pd.DataFrame()
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
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, k in zip(axes[0], metrics):
        ref = paper[paper["metric"] == f"pass@{k}"].sort_values("params_b")
        ax.plot(ref["params_b"], ref["value"], "k--", marker="x", label="paper CodeGen-Mono")
        for model, points in best[best["k"] == k].groupby("model"):
            yerr = 100 * np.vstack([points["value"] - points["low"], points["high"] - points["value"]])
            ax.errorbar(points["params_b"], 100 * points["value"], yerr=yerr, marker="o", capsize=3, ls="", label=model)
        ax.set(xscale="log", title=f"HumanEval pass@{k}", xlabel="parameters (B)", ylabel=f"pass@{k} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _save(fig, out_dir / "humaneval_vs_model_size.png")


def plot_mtpb_categories(runs: Sequence[Run], out_dir: Path) -> Path | None:
    """MTPB pass rate per problem category (executions' extra["category"]), one bar per run."""
    frames = []
    for run in runs:
        ex = run.executions
        if run.benchmark != "mtpb" or ex.empty or not (ex["category"] != "").any():
            continue
        label = " ".join(str(x) for x in (run.manifest.model, run.manifest.mode, f"T={run.temperature}") if x)
        frames.append(ex.groupby("category")["passed"].mean().rename(label))
    if not frames:
        return None
    table = 100 * pd.concat(frames, axis=1).sort_index()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(table) * max(1, len(frames)) ** 0.5), 4.0))
    table.plot.bar(ax=ax, width=0.8)
    ax.set(title="MTPB pass rate per category", xlabel="category", ylabel="pass rate (%)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir / "mtpb_categories.png")


def plot_single_vs_multi_turn(summary: pd.DataFrame, out_dir: Path) -> Path | None:
    """MTPB pass rate single- vs multi-turn per model (and temperature), paper values as markers."""
    mtpb = summary[summary["benchmark"] == "mtpb"].copy() if len(summary) else pd.DataFrame()
    if mtpb.empty:
        return None
    mtpb["paper_mode"] = [normalize_mode("mtpb", m) for m in mtpb["mode"]]
    if mtpb["paper_mode"].nunique() < 2:
        return None
    mtpb["label"] = [f"{m} T={t}" for m, t in zip(mtpb["model"], mtpb["temperature"])]
    modes = ["single-turn", "multi-turn"]
    labels = sorted(mtpb["label"].unique())
    paper = paper_numbers("mtpb", "pass_rate")
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(labels)), 3.8))
    x = np.arange(len(labels))
    for i, mode in enumerate(modes):
        rows = mtpb[mtpb["paper_mode"] == mode].set_index("label").reindex(labels)
        yerr = _yerr(rows.fillna({"pass_rate": 0, "pass_rate_lo": 0, "pass_rate_hi": 0}), "pass_rate")
        ax.bar(x + (i - 0.5) * 0.38, 100 * rows["pass_rate"].fillna(0), 0.38, yerr=yerr, capsize=3, label=f"ours {mode}")
        ref = [paper[(paper["model"].str.lower() == lbl.split(" T=")[0].lower().rsplit("/", 1)[-1])
                     & (paper["mode"] == mode)]["value"] for lbl in labels]
        ax.scatter(x + (i - 0.5) * 0.38, [r.iloc[0] if len(r) else np.nan for r in ref], marker="_", s=300,
                   color="k", label="paper" if i == 0 else None, zorder=3)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=7)
    ax.set(title="MTPB: single- vs multi-turn", ylabel="pass rate (%)")
    ax.legend(fontsize=7)
    return _save(fig, out_dir / "mtpb_single_vs_multi_turn.png")


def write_plots(runs: Sequence[Run], summary: pd.DataFrame, out_dir: str | Path, ks: Sequence[int] = DEFAULT_KS) -> list[Path]:
    """Every plot the runs support, as PNG files under `out_dir`."""
    out_dir = Path(out_dir)
    written = plot_vs_temperature(summary, out_dir, ks)
    for path in (plot_vs_model_size(summary, out_dir, ks), plot_mtpb_categories(runs, out_dir),
                 plot_single_vs_multi_turn(summary, out_dir)):
        if path is not None:
            written.append(path)
    return written
