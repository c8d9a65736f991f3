"""MTPB problems: loading, validation, the pinned download and the dataset hash (docs/design.md §4).

The Multi-Turn Programming Benchmark is one JSONL file, one problem per line: `id`, `name`,
`description`, `category`, `prompts` (turn instructions, templates filled per test case with
`str.format(**input)`), `inputs` (the test cases), `outputs` (their gold outputs) and, on most lines,
`max_gen_length` (tokens per turn; the official sampler uses 256 where it is missing).

Source: a path when one is given; otherwise the file pinned to one salesforce/CodeGen commit
(`MTPB_URL`), downloaded once into a cache folder and checked against `MTPB_SHA256` (both from
`shared/data/mtpb/SOURCE.md`). A checksum mismatch or a malformed line is an error that says which
file, which line and what to do. Test cases are `zip(inputs, outputs)`, as in the official
scripts (problem 57 carries one surplus output, which is ignored there too).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from results.jsonl import JSONLError, parse_jsonl, write_bytes_atomic
from results.selection import select as select_problems

log = logging.getLogger(__name__)

MTPB_COMMIT = "6f09e495f41e006375055239e4bcb18539f3a38b"
MTPB_URL = (
    "https://raw.githubusercontent.com/salesforce/CodeGen/"
    f"{MTPB_COMMIT}/codegen1/benchmark/mtpb.jsonl"
)
MTPB_SHA256 = "3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c"
DEFAULT_MAX_GEN_LENGTH = 256  # the official sampler's default where a problem has none
CATEGORIES = ("math", "string", "array", "algorithm", "data science", "dict", "class")
REQUIRED_FIELDS = ("id", "name", "category", "prompts", "inputs", "outputs")


class DataError(ValueError):
    """An MTPB file that cannot be used: bad checksum, malformed line, unknown problem id."""


@dataclass(frozen=True)
class Problem:
    id: int
    name: str
    description: str
    category: str
    prompts: tuple[str, ...]  # turn templates
    inputs: tuple[dict, ...]  # one dict of template values per test case
    outputs: tuple[Any, ...]  # gold outputs (JSON values)
    max_gen_length: int | None = None  # tokens per turn; None = DEFAULT_MAX_GEN_LENGTH

    @property
    def n_cases(self) -> int:
        return min(len(self.inputs), len(self.outputs))  # zip(), as the official scripts

    @property
    def max_new_tokens(self) -> int:
        return self.max_gen_length if self.max_gen_length is not None else DEFAULT_MAX_GEN_LENGTH

    def filled_prompts(self, case: int) -> list[str]:
        """The turn instructions of test case `case`: each template `.format(**input)`."""
        if not 0 <= case < self.n_cases:
            raise IndexError(f"problem {self.id} has test cases 0..{self.n_cases - 1}, got {case}")
        return [p.format(**self.inputs[case]) for p in self.prompts]

    def gold(self, case: int) -> Any:
        return self.outputs[case]


@dataclass(frozen=True)
class ProblemSet:
    problems: tuple[Problem, ...]
    source: str  # the path read, or the pinned URL
    sha256: str  # of the file's bytes

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def by_id(self) -> dict[int, Problem]:
        return {p.id: p for p in self.problems}

    def select(self, ids: Sequence[int] | None = None, limit: int | None = None) -> "ProblemSet":
        """The problems with these ids, in id order, then the first `limit` of them (the one
        selection rule, `results.selection`). Raises DataError naming unknown ids."""
        known = self.by_id()

        def resolve(raw: object) -> Problem | None:
            try:
                return known.get(int(str(raw).removeprefix("mtpb/")))
            except ValueError:
                return None

        def unknown(bad: list) -> Exception:
            return DataError(f"unknown MTPB problem id(s) {bad}; ids run from {min(known)} to {max(known)}")

        return ProblemSet(tuple(select_problems(self.problems, ids, limit, resolve=resolve, unknown=unknown)),
                          self.source, self.sha256)


# ---- parsing -------------------------------------------------------------------------------
def _problem_from_row(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}; an MTPB line has {list(REQUIRED_FIELDS)}")
    try:
        pid = int(row["id"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: field 'id' must be an integer (or its string), got {row['id']!r}") from None
    prompts, inputs, outputs = row["prompts"], row["inputs"], row["outputs"]
    if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) for p in prompts)):
        raise DataError(f"{where}: problem {pid}: 'prompts' must be a non-empty list of strings")
    if not (isinstance(inputs, list) and all(isinstance(i, dict) for i in inputs)):
        raise DataError(f"{where}: problem {pid}: 'inputs' must be a list of objects (one per test case)")
    if not isinstance(outputs, list):
        raise DataError(f"{where}: problem {pid}: 'outputs' must be a list (one gold output per test case)")
    if len(outputs) < len(inputs):
        raise DataError(
            f"{where}: problem {pid} has {len(inputs)} inputs but only {len(outputs)} outputs"
        )
    if len(outputs) > len(inputs):
        log.debug("%s: problem %d has %d outputs for %d inputs; the surplus is ignored (as officially)",
                  where, pid, len(outputs), len(inputs))
    mgl = row.get("max_gen_length")
    if mgl is not None and not (isinstance(mgl, int) and not isinstance(mgl, bool) and mgl > 0):
        raise DataError(f"{where}: problem {pid}: 'max_gen_length' must be a positive integer, got {mgl!r}")
    for case, values in enumerate(inputs):
        for template in prompts:
            try:
                template.format(**values)
            except (KeyError, IndexError, ValueError) as err:
                raise DataError(
                    f"{where}: problem {pid}, test case {case}: prompt template {template!r} "
                    f"cannot be filled from {values!r} ({type(err).__name__}: {err})"
                ) from None
    return Problem(
        id=pid,
        name=str(row["name"]),
        description=str(row.get("description", "")),
        category=str(row["category"]),
        prompts=tuple(prompts),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        max_gen_length=mgl,
    )


def parse_problems(data: bytes, where: str) -> tuple[Problem, ...]:
    """Problems from the bytes of an MTPB JSONL file, sorted by id; errors name `where:line`."""
    problems: list[Problem] = []
    seen: dict[int, int] = {}
    try:
        rows = list(parse_jsonl(data, where))
    except JSONLError as err:
        raise DataError(f"{err}; the file is corrupt or not MTPB") from None
    for number, row in rows:
        problem = _problem_from_row(row, f"{where}:{number}")
        if problem.id in seen:
            raise DataError(f"{where}:{number}: problem id {problem.id} already defined on line {seen[problem.id]}")
        seen[problem.id] = number
        problems.append(problem)
    if not problems:
        raise DataError(f"{where}: no problems in the file")
    return tuple(sorted(problems, key=lambda p: p.id))


# ---- sources -------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codegen-harness" / "mtpb"


def _fetch(url: str, timeout_s: float = 60.0) -> bytes:
    """The bytes at `url` (http(s) or file://)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - pinned URL
        return response.read()


def _check_sha256(data: bytes, expected: str, where: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise DataError(
            f"{where}: sha256 {digest} does not match the pinned {expected}; the download is "
            "corrupt or the file was changed. Delete it and retry, or pass data_path= to a file you trust"
        )
    return digest


def download(url: str = MTPB_URL, sha256: str = MTPB_SHA256, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached copy of the pinned file, downloaded and sha256-checked the first time."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"mtpb-{(sha256 or 'unpinned')[:12]}.jsonl"
    if target.exists():
        _check_sha256(target.read_bytes(), sha256, str(target))
        return target
    log.info("downloading MTPB from %s", url)
    try:
        data = _fetch(url)
    except OSError as err:
        raise DataError(
            f"could not download MTPB from {url} ({err}); without network, set CODEGEN_SHARED_DATA to a "
            "folder holding mtpb/mtpb.jsonl, or pass data_path= to a local mtpb.jsonl "
            "(salesforce/CodeGen codegen1/benchmark/mtpb.jsonl; the README says how to get it)"
        ) from None
    _check_sha256(data, sha256, url)
    parse_problems(data, url)  # refuse to cache a file we cannot read
    cache.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)
    return target


def shared_data_file() -> Path | None:
    """`$CODEGEN_SHARED_DATA/mtpb/mtpb.jsonl` when the variable is set and the file is there."""
    root = os.environ.get("CODEGEN_SHARED_DATA")
    if root and (file := Path(root).expanduser() / "mtpb" / "mtpb.jsonl").is_file():
        return file
    return None


def load_problems(
    path: str | os.PathLike | None = None,
    *,
    url: str = MTPB_URL,
    sha256: str = MTPB_SHA256,
    cache_dir: str | os.PathLike | None = None,
) -> ProblemSet:
    """Every problem from `path`; when `path` is None and `url` is the pinned file's, from
    `shared_data_file()` (the offline copy under $CODEGEN_SHARED_DATA) if there, else from the download.

    Raises DataError (one line naming CODEGEN_SHARED_DATA and data_path=) when none is available."""
    if path is None and url == MTPB_URL:
        path = shared_data_file()
    if path is None:
        file = download(url, sha256, cache_dir)
        source = url
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"MTPB file not found: {file}; pass data_path= to an mtpb.jsonl, or null to download it")
        source = str(file)
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if path is not None and digest != MTPB_SHA256:
        log.warning("%s is not the published MTPB file (sha256 %s, published %s); results are not "
                    "comparable with the paper's", file, digest[:12], MTPB_SHA256[:12])
    return ProblemSet(parse_problems(data, str(file)), source, digest)


def categories(problems: Iterable[Problem]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p in problems:
        out.setdefault(p.category, []).append(p.id)
    return out
