"""Progress reporting for long runs: a tqdm bar with ETA, tokens/s and executions/s on a terminal,
a short periodic log line otherwise (batch jobs, CI, SLURM logs, where a redrawn bar is noise).

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

from tqdm import tqdm

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

        self._tqdm: tqdm | None = None
        if self.bar:
            # tqdm draws the bar, the ETA and the samples rate (excluding `initial`, as ours);
            # the token and execution rates go in its postfix.
            self._tqdm = tqdm(total=total, initial=initial, desc=desc or None, unit=" " + unit, file=self.stream,
                              mininterval=self.interval_s, dynamic_ncols=True, leave=True)

    def update(self, samples: int = 0, tokens: int = 0, executions: int = 0) -> None:
        with self._lock:
            self.samples += samples
            self.tokens += tokens
            self.executions += executions
            now = self.clock()
            if self._tqdm is not None:
                if now - self._last_report >= self.interval_s:
                    self._last_report = now
                    self._tqdm.set_postfix_str(self._rates(now), refresh=False)
                self._tqdm.update(samples)
            elif now - self._last_report >= self.interval_s:
                self._report(now)

    def _rates(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        return f"{self.tokens / elapsed:.1f} tok/s, {self.executions / elapsed:.2f} exec/s"

    def status(self, now: float | None = None) -> str:
        """The log line: done/total, percent, elapsed, ETA, rates (samples done before this process,
        `initial`, count in done/total but not in the rates)."""
        now = self.clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = (self.samples - self.initial) / elapsed
        left = max(self.total - self.samples, 0)
        eta = left / rate if rate > 0 else float("inf")
        pct = 100.0 * self.samples / self.total if self.total else 100.0
        head = f"{self.desc}: " if self.desc else ""
        return (f"{head}{self.samples}/{self.total} {self.unit} ({pct:.0f}%), elapsed "
                f"{_format_duration(elapsed)}, ETA {_format_duration(eta)}, {self._rates(now)}")

    def _report(self, now: float) -> None:
        self._last_report = now
        log.info("%s", self.status(now))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._tqdm is not None:
                self._tqdm.set_postfix_str(self._rates(self.clock()), refresh=False)
                self._tqdm.close()
            else:
                self._report(self.clock())

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
