"""The CI regression gate (docs/design.md §5): compare a run's metrics with a baseline file.

A baseline is JSON::

    {"benchmark": "humaneval", "model": "tiny-random", "mode": "", "temperature": 0.2, "n": 4,
     "metrics": {"pass@1": {"value": 0.25, "tolerance": 0.05},
                 "pass_rate": {"value": 0.25, "tolerance": "ci"}},
     "created_from": "outputs/...", "created_at": "..."}

Metric values are fractions. A metric fails when it falls below its baseline beyond its
tolerance: with a number, when ``value < baseline - tolerance``; with ``"ci"``, when the run's 95%
bootstrap interval lies wholly below the baseline. Identity fields present in the baseline
(benchmark, model, mode, temperature, n) must match the run: a gate checked against the wrong
run is an error, not a pass. An incomplete run fails unless allowed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Sequence

from results.jsonl import dumps_json
from results.metrics import DEFAULT_KS
from results.runs import Run
from results.tables import run_row

IDENTITY = ("benchmark", "model", "mode", "temperature", "n")


class BaselineError(ValueError):
    """A baseline file that cannot be used, or that describes another kind of run."""


def make_baseline(run: Run, tolerance: float | str = "ci", metrics: Sequence[str] | None = None,
                  ks: Sequence[int] = DEFAULT_KS, n_boot: int = 2000, seed: int = 0) -> dict:
    """A baseline from a run's metrics (every reported metric unless `metrics` names some)."""
    _check_tolerance(tolerance, "--tolerance")
    row = run_row(run, ks, n_boot, seed)
    available = [m for m in ["pass_rate", *(f"pass@{k}" for k in ks)] if _is_number(row.get(m))]
    chosen = list(metrics) if metrics else available
    missing = [m for m in chosen if m not in available]
    if missing:
        raise BaselineError(f"{run.path} reports no {missing}; it reports {available}")
    return {
        **{name: row[name] for name in IDENTITY},
        "metrics": {m: {"value": row[m], "tolerance": tolerance} for m in chosen},
        "created_from": _portable(run.path),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _portable(path: Path) -> str:
    """`path` relative to the working directory when below it, else its last component: a baseline
    is committed to a repository, so it holds no absolute path of the machine that wrote it."""
    resolved, cwd = Path(path).resolve(), Path.cwd().resolve()
    if resolved == cwd or cwd in resolved.parents:
        return Path(os.path.relpath(resolved, cwd)).as_posix()
    return resolved.name


def write_baseline(baseline: dict, path: str | Path) -> None:
    """Write `baseline` as JSON to `path`, creating missing parent folders; raises BaselineError
    naming the path when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps_json(baseline, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise BaselineError(f"cannot write baseline {path}: {err.strerror or err}; choose a writable path") from None


def read_baseline(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise BaselineError(f"cannot read baseline {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise BaselineError(f"baseline {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict) or not data["metrics"]:
        raise BaselineError(f"baseline {path} needs a non-empty \"metrics\" object of name -> {{value, tolerance}}")
    for name, spec in data["metrics"].items():
        if not isinstance(spec, dict) or not _is_number(spec.get("value")):
            raise BaselineError(f"baseline {path}: metric {name!r} needs a numeric \"value\", got {spec!r}")
        _check_tolerance(spec.get("tolerance", data.get("tolerance", "ci")), f"baseline {path}: metric {name!r}")
    return data


def check_run(run: Run, baseline: dict, ks: Sequence[int] = DEFAULT_KS, allow_incomplete: bool = False,
              n_boot: int = 2000, seed: int = 0) -> tuple[bool, list[str]]:
    """(passed, one line per metric). Raises `BaselineError` when the run is not the baseline's kind."""
    row = run_row(run, ks, n_boot, seed)
    mismatched = [f"{name}: baseline {baseline[name]!r}, run {row[name]!r}"
                  for name in IDENTITY if name in baseline and baseline[name] is not None
                  and not _same(baseline[name], row[name])]
    if mismatched:
        raise BaselineError(f"{run.path} is not the run this baseline describes ({'; '.join(mismatched)})")
    ok, lines = True, []
    if not run.complete and not allow_incomplete:
        ok = False
        lines.append(f"FAIL run incomplete: {'; '.join(run.incomplete)}")
    for name, spec in baseline["metrics"].items():
        base = float(spec["value"])
        tolerance = spec.get("tolerance", baseline.get("tolerance", "ci"))
        value = row.get(name)
        if not _is_number(value):
            ok = False
            lines.append(f"FAIL {name}: not reported by this run (baseline {base:.4f})")
            continue
        low, high = row[f"{name}_lo"], row[f"{name}_hi"]
        if tolerance == "ci":
            failed = high < base
            verdict = (f"95% CI [{low:.4f}, {high:.4f}] lies below the baseline {base:.4f}" if failed
                       else f"95% CI [{low:.4f}, {high:.4f}] reaches the baseline {base:.4f}")
        else:
            floor = base - float(tolerance)
            failed = value < floor
            verdict = f"{'<' if failed else '>='} {floor:.4f} (baseline {base:.4f} - tolerance {float(tolerance):.4f})"
        ok &= not failed
        lines.append(f"{'FAIL' if failed else 'ok  '} {name}: {value:.4f} {verdict}")
    return ok, lines


def _check_tolerance(tolerance, where: str) -> None:
    if tolerance == "ci":
        return
    if not _is_number(tolerance) or tolerance < 0:
        raise BaselineError(
            f"{where}: tolerance must be a number >= 0 (absolute, as a fraction) or \"ci\", got {tolerance!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _same(a, b) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b
