"""The one problem-selection rule of every benchmark and mode (docs/design.md §5).

`problems=[...]` names problems, `limit=N` keeps the first N: the run holds the named problems (each
once) in the dataset's order, else all of them, then the first `limit`. The dataset's order, not the
order typed, so `problems=[3,0]` and `problems=[0,3]` run the same problems in the same canonical
order (records, shards and tables follow it). A benchmark says only how a typed id names one of its
problems (`resolve`: "HumanEval/3" or "3"; MTPB's 3 or "mtpb/3") and how to word an unknown one.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, TypeVar

P = TypeVar("P")


def select(problems: Sequence[P], ids: Iterable[Any] | None, limit: int | None, *,
           resolve: Callable[[Any], P | None], unknown: Callable[[list[Any]], Exception]) -> list[P]:
    """The problems of a run (see the module docstring).

    `resolve(raw_id)` gives the problem an id names, or None; `unknown(raw_ids)` builds the error
    raised when some ids name no problem (it names them and the valid ids). Raises ValueError for
    `limit` < 1."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} is not allowed: limit must be an integer >= 1 (or null for all problems)")
    chosen = list(problems)
    items = [] if ids is None else [ids] if isinstance(ids, (str, int)) else list(ids)
    if items:
        named = [(raw, resolve(raw)) for raw in items]
        bad = [raw for raw, problem in named if problem is None]
        if bad:
            raise unknown(bad)
        wanted = {id(problem) for _, problem in named}
        chosen = [p for p in chosen if id(p) in wanted]
    return chosen if limit is None else chosen[:limit]
