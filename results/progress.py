"""Progress reporting for long runs: a one-line bar with ETA, tokens/s and executions/s on a
terminal, plain periodic log lines otherwise (batch jobs, CI, SLURM logs).

    with Progress(total=len(work), desc="humaneval t0.2") as progress:
        ...
        progress.update(samples=1, tokens=completion.n_new_tokens)
        progress.update(executions=1)

`samples` drive the bar and the ETA; `tokens` and `executions` are rates shown beside it.
Thread-safe: generation and execution may report from different threads.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

log = logging.getLogger(__name__)


def _format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Counts samples (the bar), tokens and executions, and reports them now and then."""

    def __init__(
        self,
        total: int,
        desc: str = "",
        unit: str = "samples",
        stream: TextIO | None = None,
        interval_s: float | None = None,
        bar: bool | None = None,
        initial: int = 0,
        clock=time.monotonic,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.interval_s = interval_s if interval_s is not None else (0.2 if self.bar else 30.0)
        self.clock = clock
        self.initial = initial  # already done before this process (a resume): excluded from rates
        self.samples = initial
        self.tokens = 0
        self.executions = 0
        self._start = clock()
        self._last_report = -float("inf")
        self._lock = threading.Lock()
        self._closed = False

    def update(self, samples: int = 0, tokens: int = 0, executions: int = 0) -> None:
        with self._lock:
            self.samples += samples
            self.tokens += tokens
            self.executions += executions
            now = self.clock()
            if now - self._last_report >= self.interval_s:
                self._report(now)

    def status(self, now: float | None = None) -> str:
        """The report line: done/total, percent, elapsed<ETA, rates."""
        now = self.clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        done_here = self.samples - self.initial
        rate = done_here / elapsed
        left = max(self.total - self.samples, 0)
        eta = left / rate if rate > 0 else float("inf")
        pct = 100.0 * self.samples / self.total if self.total else 100.0
        rates = f"{self.tokens / elapsed:.1f} tok/s, {self.executions / elapsed:.2f} exec/s"
        head = f"{self.desc}: " if self.desc else ""
        if self.bar:
            width = 24
            filled = int(width * min(pct, 100.0) / 100)
            return (f"{head}{pct:3.0f}%|{'#' * filled}{' ' * (width - filled)}| {self.samples}/{self.total} "
                    f"[{_format_duration(elapsed)}<{_format_duration(eta)}, {rates}]")
        return (f"{head}{self.samples}/{self.total} {self.unit} ({pct:.0f}%), elapsed "
                f"{_format_duration(elapsed)}, ETA {_format_duration(eta)}, {rates}")

    def _report(self, now: float) -> None:
        self._last_report = now
        line = self.status(now)
        if self.bar:
            self.stream.write("\r" + line)
            self.stream.flush()
        else:
            log.info("%s", line)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._report(self.clock())
            if self.bar:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NoProgress:
    """`progress=off`: the same interface, reporting nothing."""

    def update(self, samples: int = 0, tokens: int = 0, executions: int = 0) -> None: ...

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc) -> None: ...


PROGRESS_MODES = ("auto", "bar", "log", "off")


def make_progress(mode: str, total: int, desc: str, initial: int = 0, log_every_s: float = 30.0):
    """The apps' `progress=` setting: auto (a bar on a terminal, log lines otherwise), bar, log, off."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress={mode!r} is not one of {', '.join(PROGRESS_MODES)}")
    if mode == "off":
        return NoProgress()
    bar = {"auto": sys.stderr.isatty(), "bar": True, "log": False}[mode]
    return Progress(total=total, desc=desc, bar=bar, initial=initial, interval_s=0.2 if bar else log_every_s)
