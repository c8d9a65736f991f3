"""Results by content: identical (program, limits, files) jobs run once per `Sandbox` (DESIGN §3).

Sampling at low temperature repeats programs often; a hit comes back as a copy with
`cached=True`. Our own failures (`sandbox_error`) and results with big outputs are not kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict

from .limits import ExecResult, Job, Limits, Status


class ResultCache:
    """LRU of results by content hash; results with big outputs are not kept."""

    def __init__(self, entries: int, max_result_bytes: int = 1 << 20) -> None:
        self.entries, self.max_result_bytes = entries, max_result_bytes
        self._data: OrderedDict[str, ExecResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> ExecResult | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
        return None if hit is None else dataclasses.replace(hit, cached=True, values=list(hit.values))

    def put(self, key: str, result: ExecResult) -> None:
        if self.entries <= 0 or result.status is Status.SANDBOX_ERROR:
            return
        if len(result.stdout) + len(result.stderr) > self.max_result_bytes:
            return
        with self._lock:
            self._data[key] = result
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def cache_key(job: Job, limits: Limits) -> str:
    files = sorted((name, hashlib.sha256(content).hexdigest()) for name, content in (job.files or {}).items())
    payload = json.dumps([job.program, limits.to_dict(), files], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
