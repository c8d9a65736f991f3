"""The run store: one run directory, written line by line, resumable and shardable (docs/design.md §5).

Files in a run directory::

    config.yaml        the resolved config, as given to `start` (kept from the first start)
    manifest.json      the `Manifest` (kept from the first start; a resume must match its identity)
    samples.jsonl      one `SampleRecord` per line
    executions.jsonl   one `ExecutionRecord` per line
    metrics.json       written by `write_metrics` when the run is done
    samples.rank{r}-of-{w}.jsonl, executions.rank{r}-of-{w}.jsonl   shard files (sharded runs)

Every JSONL file goes through `results.jsonl` (ASCII JSON lines, any `str` encodable, split on
"\\n" only). Writing: `append_*` writes one JSON line and flushes it at once (and `os.fsync`s it with
``fsync=True``), so a run killed at any moment loses at most the line being written. A key already
stored is not written again (`append_*` returns False). Before a writer appends to a file whose
last line was cut by a kill, it drops that partial line (logged).

Reading tolerates a cut last line (a run in progress or killed): it is skipped and recorded in
`store.read_issues`. Any other malformed line raises `RecordError` naming file and line.

Canonical order: lines are appended in completion order, which depends on timing. `finalize()`
(for a sharded run: `merge_shards()` on rank 0 once every rank is done) rewrites samples.jsonl and
executions.jsonl with every stored record exactly once (first occurrence of a key wins), sorted
by `key_order`, and removes the shard files. So an uninterrupted run and a killed-and-resumed run
of the same command end with the same lines in the same order (timing fields aside, see
`records.VOLATILE_FIELDS`). Readers (`samples()`, `executions()`) always return that canonical
view, merged over the main file and every shard file.

One writer per file: processes sharing a run directory must each use their own shard.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, TypeVar

import yaml

from results import jsonl
from results.jsonl import ReadIssue
from results.records import ExecutionRecord, Manifest, RecordError, SampleRecord, key_order

log = logging.getLogger(__name__)

R = TypeVar("R", SampleRecord, ExecutionRecord)

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
SAMPLES = "samples"
EXECUTIONS = "executions"


class RunStoreError(ValueError):
    """A run directory that cannot be used as asked (e.g. resumed with another model)."""


def read_jsonl(path: Path, cls: type[R], issues: list[ReadIssue] | None = None) -> list[R]:
    """Records of one JSONL file, in file order (`results.jsonl`: split on "\\n" only; a torn last
    line is skipped and added to `issues`). Raises `RecordError` naming file and line otherwise."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = jsonl.read_jsonl(path, issues)
    except jsonl.JSONLError as err:
        raise RecordError(f"{err}; the file is corrupt") from None
    return [cls.from_dict(obj, where=f"{path}:{number}") for number, obj in lines]


class _ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper; strings holding a line break are written double-quoted (`"\\nclass"`),
    which reads better in a config than YAML's folded single-quoted form."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if "\n" in text or "\r" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ConfigDumper.add_representer(str, _represent_str)


def write_yaml(value: Any) -> str:
    """YAML text of JSON-like data (dicts, lists, str, numbers, bools, None), keys in the given order.

    PyYAML's safe dumper (https://pyyaml.org/wiki/PyYAMLDocumentation): strings that would read
    back as something else are quoted, a lone surrogate (e.g. a non-UTF-8 path from argv) is
    written as a `\\uDCxx` escape, so the text is valid UTF-8 and `read_yaml` gives back an equal value.
    """
    return yaml.dump(value, Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def read_yaml(text: str) -> Any:
    """The value of a YAML document (PyYAML's safe loader); reads both this writer's output and the
    hand-written writer's of earlier versions. Raises `yaml.YAMLError` for text that is not YAML."""
    return yaml.safe_load(text)


def _write_exclusive(path: Path, text: str) -> bool:
    """Create `path` with `text` atomically; False (and nothing written) when it already exists."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)  # atomic, and fails if another process created it first
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _write_replace(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (readers see the old or the new file, never half)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _same_config(path: Path, config: dict) -> bool:
    """Whether the stored config.yaml holds `config` (compared as data, so a file written by an
    earlier writer with other quoting still matches)."""
    try:
        return read_yaml(path.read_text(encoding="utf-8")) == json.loads(json.dumps(config))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, ValueError):
        return False


def _record_line(record: SampleRecord | ExecutionRecord) -> str:
    return jsonl.dumps_line(record.to_dict())


class RunStore:
    """Reads and writes one run directory. `shard=(rank, world)` writes that rank's shard files."""

    def __init__(self, run_dir: str | os.PathLike, shard: tuple[int, int] | None = None, fsync: bool = False):
        self.run_dir = Path(run_dir)
        if shard is not None:
            rank, world = shard
            if not (isinstance(rank, int) and isinstance(world, int) and 0 <= rank < world):
                raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard!r}")
        self.shard = shard
        self.fsync = fsync
        self._issues: dict[str, list[ReadIssue]] = {}  # per file, from its latest read
        self._lock = threading.Lock()
        self._appenders: dict[str, jsonl.Appender] = {}
        self._keys: dict[str, set[str]] = {}  # keys stored, loaded on first use

    # ---- paths ---------------------------------------------------------------------------
    def path(self, kind: str) -> Path:
        """The file this store appends `kind` ("samples" | "executions") records to."""
        if self.shard is None:
            return self.run_dir / f"{kind}.jsonl"
        rank, world = self.shard
        return self.run_dir / f"{kind}.rank{rank}-of-{world}.jsonl"

    def shard_files(self, kind: str) -> list[Path]:
        """Every shard file of `kind` in the directory, whatever world size wrote it."""
        return sorted(self.run_dir.glob(f"{kind}.rank*-of-*.jsonl"))

    def _files(self, kind: str) -> list[Path]:
        return [self.run_dir / f"{kind}.jsonl", *self.shard_files(kind)]

    # ---- start / resume ---------------------------------------------------------------------
    def start(self, config: dict, manifest: Manifest) -> bool:
        """Create the run (config.yaml, manifest.json) or check that it may be resumed.

        Returns True when the directory already held this run (a resume). Raises `RunStoreError`
        naming each differing identity field when it holds another run.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not manifest.created_at:
            manifest.created_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        manifest_text = jsonl.dumps_json(manifest.to_dict(), indent=2) + "\n"
        created = _write_exclusive(self.run_dir / MANIFEST_FILE, manifest_text)
        config_text = write_yaml(config)
        if not _write_exclusive(self.run_dir / CONFIG_FILE, config_text):
            if not _same_config(self.run_dir / CONFIG_FILE, config):
                log.info("%s: config differs from the stored one; keeping the stored config.yaml", self.run_dir)
        if created:
            log.info("%s: new run", self.run_dir)
            return False
        existing = self.manifest()
        assert existing is not None, "manifest.json vanished during start"
        problems = existing.incompatibilities(manifest)
        if problems:
            raise RunStoreError(
                f"{self.run_dir} holds another run; it differs in: " + "; ".join(problems)
                + ". Use another run_dir, or delete this one to start over."
            )
        differences = existing.environment_differences(manifest)
        if differences:  # one line: what changed around the run, not what it is
            log.warning("%s: resuming in a different environment: %s", self.run_dir, "; ".join(differences))
        log.info("%s: resuming (%d samples, %d executions stored)", self.run_dir,
                 len(self.sample_keys()), len(self.execution_keys()))
        return True

    def manifest(self) -> Manifest | None:
        path = self.run_dir / MANIFEST_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RecordError(f"{path}: not valid JSON ({err})") from None
        return Manifest.from_dict(data, where=str(path))

    # ---- reading ---------------------------------------------------------------------------
    @property
    def read_issues(self) -> list[ReadIssue]:
        """What the latest reads skipped (cut last lines), per file."""
        return [issue for issues in self._issues.values() for issue in issues]

    def _read(self, kind: str, cls: type[R]) -> list[R]:
        merged: dict[str, R] = {}
        for path in self._files(kind):
            issues: list[ReadIssue] = []
            for record in read_jsonl(path, cls, issues):
                merged.setdefault(record.key, record)  # the first stored copy of a key wins
            self._issues[str(path)] = issues
        return [merged[k] for k in sorted(merged, key=key_order)]

    def samples(self) -> list[SampleRecord]:
        """Every stored sample, each key once, in canonical (`key_order`) order."""
        return self._read(SAMPLES, SampleRecord)

    def executions(self) -> list[ExecutionRecord]:
        """Every stored execution, each key once, in canonical (`key_order`) order."""
        return self._read(EXECUTIONS, ExecutionRecord)

    def _stored_keys(self, kind: str) -> set[str]:
        if kind not in self._keys:
            cls = SampleRecord if kind == SAMPLES else ExecutionRecord
            self._keys[kind] = {r.key for r in self._read(kind, cls)}
        return self._keys[kind]

    def sample_keys(self) -> set[str]:
        with self._lock:
            return set(self._stored_keys(SAMPLES))

    def execution_keys(self) -> set[str]:
        with self._lock:
            return set(self._stored_keys(EXECUTIONS))

    # ---- writing ---------------------------------------------------------------------------
    def _append(self, kind: str, record: SampleRecord | ExecutionRecord) -> bool:
        line = _record_line(record)
        with self._lock:
            keys = self._stored_keys(kind)
            if record.key in keys:
                log.debug("%s: key %r already stored; not written again", self.run_dir, record.key)
                return False
            if kind not in self._appenders:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self._appenders[kind] = jsonl.Appender(self.path(kind), self.fsync)
            self._appenders[kind].write_line(line)
            keys.add(record.key)
            return True

    def append_sample(self, record: SampleRecord) -> bool:
        """Write one sample line and flush it; False when its key was already stored."""
        if not isinstance(record, SampleRecord):
            raise TypeError(f"append_sample takes a SampleRecord, got {type(record).__name__}")
        return self._append(SAMPLES, record)

    def append_execution(self, record: ExecutionRecord) -> bool:
        """Write one execution line and flush it; False when its key was already stored."""
        if not isinstance(record, ExecutionRecord):
            raise TypeError(f"append_execution takes an ExecutionRecord, got {type(record).__name__}")
        return self._append(EXECUTIONS, record)

    def write_metrics(self, metrics: dict) -> None:
        """Write metrics.json (atomically replaced; NaN written as null)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = jsonl.dumps_json({str(k): v for k, v in metrics.items()}, indent=2) + "\n"
        _write_replace(self.run_dir / METRICS_FILE, text)

    def metrics(self) -> dict | None:
        path = self.run_dir / METRICS_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    # ---- canonical files -------------------------------------------------------------------
    def finalize(self) -> dict[str, int]:
        """Rewrite samples.jsonl / executions.jsonl in canonical order, merging and removing shards.

        Call once every writer of the directory is done. Returns the number of records per file.
        """
        self.close()
        counts = {}
        for kind, cls in ((SAMPLES, SampleRecord), (EXECUTIONS, ExecutionRecord)):
            records = self._read(kind, cls)
            shards = self.shard_files(kind)
            main = self.run_dir / f"{kind}.jsonl"
            if records or main.exists():
                _write_replace(main, "".join(_record_line(r) for r in records))
            for path in shards:
                path.unlink()
            counts[kind] = len(records)
        self._keys.clear()
        log.info("%s: finalized %d samples, %d executions", self.run_dir, counts[SAMPLES], counts[EXECUTIONS])
        return counts

    def merge_shards(self) -> dict[str, int]:
        """Merge every rank's shard files into the canonical files (rank 0, after all ranks finish)."""
        if self.shard is not None and self.shard[0] != 0:
            raise RunStoreError(f"merge_shards runs on rank 0 only, this store is rank {self.shard[0]}")
        return self.finalize()

    def close(self) -> None:
        with self._lock:
            for appender in self._appenders.values():
                appender.close()
            self._appenders.clear()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
