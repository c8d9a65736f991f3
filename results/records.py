"""The records of a run directory (docs/design.md §5): one dataclass per kind of line, and the manifest.

A record's schema is its dataclass. `to_dict` gives the JSON object written as one line;
`from_dict` rebuilds it and rejects unknown or missing fields and wrongly typed values with a
`RecordError` that names the file and line (when given) and the field.

Keys: every sample and execution has a `key`, unique within its file, that names the unit of
work (e.g. ``"HumanEval/12/s7"`` or ``"mtpb/3/c2/s0"``; `make_key` builds that form). The store
skips keys already present on resume and orders files by `key_order` (natural order: digit runs
compare as numbers), so a resumed run ends with the same lines in the same order as an
uninterrupted one. Timing fields (`VOLATILE_FIELDS`) naturally differ between two runs;
`stable_dict` drops them for comparisons.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from results.jsonl import clip_text
from sandbox import Status

# Fields that measure wall-clock time or cache hits: they differ between otherwise equal runs.
VOLATILE_FIELDS: dict[str, tuple[str, ...]] = {
    "SampleRecord": ("time_s",),
    "ExecutionRecord": ("duration_s", "cached"),
}


# The longest `ExecutionRecord.detail` stored; longer messages are cut with a marker.
DETAIL_MAX_CHARS = 4000


class RecordError(ValueError):
    """A line or manifest that does not match its record schema."""


def make_key(problem_id: str, sample_index: int, case_index: int | None = None) -> str:
    """The conventional record key: ``problem/s<i>`` or ``problem/c<case>/s<i>``."""
    if case_index is None:
        return f"{problem_id}/s{sample_index}"
    return f"{problem_id}/c{case_index}/s{sample_index}"


_DIGITS = re.compile(r"(\d+)")


def key_order(key: str) -> tuple:
    """Natural sort key: ``"HumanEval/2/s10"`` sorts after ``"HumanEval/2/s9"``, before ``"HumanEval/10/s0"``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(key) if part)


# Types accepted for each annotated field type, as they come out of json.loads.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list[str] | None": (list, type(None)),
    "int | None": (int, type(None)),
    "str | None": (str, type(None)),
}


class _Record:
    """Shared JSON conversion for the record dataclasses."""

    _kind: ClassVar[str] = "record"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        """Build a record from a JSON object; `where` (e.g. ``"run/samples.jsonl:12"``) prefixes errors."""
        prefix = f"{where}: " if where else ""
        if not isinstance(data, dict):
            raise RecordError(f"{prefix}expected a JSON object for a {cls.__name__}, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise RecordError(
                f"{prefix}unknown field(s) {unknown} for a {cls.__name__} (known: {sorted(fields)}); "
                "the file was written by another version of the harness or is not a "
                f"{cls._kind} file"
            )
        required = [
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise RecordError(f"{prefix}missing field(s) {missing} for a {cls.__name__}")
        for name, value in data.items():
            accepted = _JSON_TYPES.get(str(fields[name].type))
            if accepted is None:
                continue
            # bool is an int in Python; do not accept true/false for int or float fields.
            bad_bool = isinstance(value, bool) and bool not in accepted
            if bad_bool or not isinstance(value, accepted):
                raise RecordError(
                    f"{prefix}field {name!r} of a {cls.__name__} must be {fields[name].type}, "
                    f"got {value!r}"
                )
        return cls(**data)

    def stable_dict(self) -> dict[str, Any]:
        """`to_dict` without the timing fields that differ between equal runs."""
        out = self.to_dict()
        for name in VOLATILE_FIELDS.get(type(self).__name__, ()):
            out.pop(name, None)
        return out


@dataclass
class SampleRecord(_Record):
    """One generated sample (a whole conversation for multi-turn MTPB)."""

    _kind: ClassVar[str] = "samples"

    key: str
    problem_id: str
    sample_index: int
    completion: str  # the (truncated) completion; for a conversation, the final program text
    prompt: str
    case_index: int | None = None  # MTPB test case
    turns: list[str] | None = None  # MTPB: the truncated completion of each turn
    finish_reason: str = ""  # "eos" | "stop" | "length" (for conversations, of the last turn)
    n_prompt_tokens: int = 0
    n_new_tokens: int = 0
    time_s: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass
class ExecutionRecord(_Record):
    """The verdict on one sample's program."""

    _kind: ClassVar[str] = "executions"

    key: str
    problem_id: str
    sample_index: int
    status: Status  # the sandbox's closed set (passed failed error syntax_error timeout memory crashed sandbox_error)
    passed: bool  # the benchmark's verdict
    detail: str = ""
    duration_s: float = 0.0
    case_index: int | None = None
    cached: bool = False
    extra: dict = field(default_factory=dict)  # e.g. {"category": ..., "strict_passed": ...}

    def __post_init__(self) -> None:
        try:  # a str-valued enum: written as its value, equal to it, and typed everywhere else
            self.status = Status(str(getattr(self.status, "value", self.status)))
        except ValueError:
            raise RecordError(f"execution {self.key!r}: status {self.status!r} is not one of "
                              f"{[s.value for s in Status]}") from None
        # A record is one bounded line: a long message is cut with a marker (results.jsonl.clip_text).
        if isinstance(self.detail, str):
            self.detail = clip_text(self.detail, DETAIL_MAX_CHARS)


@dataclass
class Manifest(_Record):
    """What a run is: the model, data, sampling and environment that produced its records.

    `IDENTITY_FIELDS` must match for a run directory to be resumed; the other fields describe the
    environment and may differ (a warning is logged).
    """

    _kind: ClassVar[str] = "manifest"
    IDENTITY_FIELDS: ClassVar[tuple[str, ...]] = (
        "benchmark",
        "model",
        "revision",
        "weights_hash",
        "dataset_hash",
        "seed",
        "sampling",
        "mode",
        "dtype",
        "sandbox_limits",
        "selection",
    )

    benchmark: str  # "humaneval" | "mtpb"
    model: str
    revision: str | None = None
    weights_hash: str = ""
    dataset_hash: str = ""
    seed: int = 0
    sampling: dict = field(default_factory=dict)  # temperature, top_p, top_k, max_new_tokens, n, ...
    mode: str = ""  # e.g. "multi-turn" | "single-turn" for MTPB
    device: str = ""
    dtype: str = ""
    sandbox_limits: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    git_commit: str = ""
    created_at: str = ""
    extra: dict = field(default_factory=dict)
    # The problem selection ({"limit": N or None, "problems": [ids] or None}): a run directory
    # holds the samples and metrics of one selection. None: written before selections were
    # recorded (such a run resumes under any selection, as it did).
    selection: dict | None = None

    def incompatibilities(self, other: "Manifest") -> list[str]:
        """Human-readable differences in identity fields (``"sampling.temperature: 0.2 != 0.8"``);
        `self` is the stored manifest, `other` the new run's. An identity field the stored
        manifest predates (None there) is not compared."""
        mine = self.to_dict()
        names = [n for n in self.IDENTITY_FIELDS if not (n == "selection" and mine.get(n) is None)]
        return [
            f"{name}: {a!r} (existing run) != {b!r} (this run)"
            for name, a, b in _diff(mine, other.to_dict(), names)
        ]

    def environment_differences(self, other: "Manifest") -> list[str]:
        """Differences outside the identity (library versions, git commit, device, descriptive
        extras), `self` being the stored manifest. Not differences: a fact the stored manifest did not
        record (None there, written by older code), and `extra.model`, the loader's description of a
        model the identity fields already pin (weights hash, revision, dtype)."""
        names = [f.name for f in dataclasses.fields(self) if f.name not in self.IDENTITY_FIELDS + ("created_at",)]
        return [f"{n}: {a!r} != {b!r}" for n, a, b in _diff(self.to_dict(), other.to_dict(), names)
                if a is not None and not n.startswith("extra.model.")]


def _diff(a: dict, b: dict, names, prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for name in names:
        x, y = a.get(name), b.get(name)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, sorted(set(x) | set(y)), prefix=f"{prefix}{name}.")
        elif x != y:
            out.append((f"{prefix}{name}", x, y))
    return out
