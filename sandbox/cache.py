"""Results by content: identical jobs run once per `Sandbox` (docs/design.md §3).

Sampling at low temperature repeats programs often; a hit comes back as a copy with
`cached=True`. Our own failures (`sandbox_error`) and results with big outputs are not kept,
and the cache holds at most `entries` results and `max_bytes` bytes of their text (default
256 MiB: stdout, stderr, detail and values, as UTF-8), oldest out first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict

from .limits import ExecResult, Job, Limits, Status

DEFAULT_MAX_BYTES = 256 << 20


def result_bytes(result: ExecResult) -> int:
    """What a cached result costs, counted as the UTF-8 size of its text plus a fixed 512 bytes."""
    size = 512 + len(result.stdout) + len(result.stderr) + len(result.detail)
    if result.values:
        size += len(json.dumps(result.values, default=repr))
    if result.judge:
        size += len(json.dumps(result.judge, default=repr))
    return size


class ResultCache:
    """LRU of results by content hash, bounded in entries and in bytes; big results are not kept."""

    def __init__(self, entries: int, max_bytes: int = DEFAULT_MAX_BYTES, max_result_bytes: int = 1 << 20) -> None:
        self.entries, self.max_bytes = entries, max_bytes
        self.max_result_bytes = min(max_result_bytes, max_bytes)
        self._data: OrderedDict[str, tuple[ExecResult, int]] = OrderedDict()
        self.bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> ExecResult | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
        if entry is None:
            return None
        hit = entry[0]
        return dataclasses.replace(hit, cached=True, values=list(hit.values))

    def put(self, key: str, result: ExecResult) -> None:
        if self.entries <= 0 or result.status is Status.SANDBOX_ERROR:
            return
        size = result_bytes(result)
        if size > self.max_result_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._data[key] = (result, size)
            self.bytes += size
            while len(self._data) > self.entries or self.bytes > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0


def cache_key(job: Job, limits: Limits) -> str:
    files = sorted((name, hashlib.sha256(content).hexdigest()) for name, content in (job.files or {}).items())
    extra = [job.profile.to_dict() if job.profile else None, job.judge, job.judge_input]
    payload = json.dumps([job.program, limits.to_dict(), files, *extra], ensure_ascii=False, default=repr)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
