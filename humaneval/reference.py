"""The `reference` model: a Generator that answers each problem with its canonical solution.

`model=reference` is the harness's self-check (docs/design.md §4): data loading, prompt handling, the stop
rule, program assembly, the sandbox and pass@k must together score 164/164 with pass@1 = 1.0.
The canonical solution goes through the request's stop rule like any model output, so the check
also shows that the rule never cuts a correct body.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Iterable, Iterator

from codegen_model.generator import Completion, Request

from .data import Problem


class ReferenceGenerator:
    """Looks problems up by `request.meta["task_id"]` (falling back to the request key)."""

    def __init__(self, problems: Iterable[Problem]):
        self._solutions = {p.task_id: p.canonical_solution for p in problems}
        self._pending: deque[Request] = deque()

    def submit(self, request: Request) -> None:
        task_id = request.meta.get("task_id", request.key)
        if task_id not in self._solutions:
            raise KeyError(f"reference model: no canonical solution for task {task_id!r}")
        if not self._solutions[task_id]:
            raise ValueError(
                f"reference model: task {task_id!r} has an empty canonical_solution; the problem "
                f"file must carry canonical solutions to use model=reference"
            )
        self._pending.append(request)

    def completions(self) -> Iterator[Completion]:
        while self._pending:
            request = self._pending.popleft()
            t0 = time.perf_counter()
            text = self._solutions[request.meta.get("task_id", request.key)]
            finish = "eos"
            if request.stop is not None and (cut := request.stop(text)) is not None:
                text, finish = text[:cut], "stop"
            for j in range(request.n):
                yield Completion(
                    key=request.key, sample_index=request.sample_offset + j, text=text,
                    token_ids=[], finish_reason=finish, n_prompt_tokens=0, n_new_tokens=0,
                    time_s=time.perf_counter() - t0, request=request,
                )

    def release(self, conversation: str) -> None:
        return None
