"""MTPB dataset errata, as data (the reasoning and the method are in docs/mtpb_errata.md).

Each test case was checked by running a hand-written multi-turn reference solution
(tests/integration/mtpb_solutions.py) through the official scoring, and every failing case, every
gold output of a type the official check cannot accept, and every prompt that reads a file or
draws random numbers was examined by hand. The result:

- `needs_file`: the program reads a file the dataset does not ship (problems 38 and 46). It
  cannot pass unless `datasets_dir=` supplies the file, which is then copied into the program's
  working directory;
- `nondeterministic`: the gold output depends on unseeded random draws and is compared exactly;
- `gold_mismatch`: a program that does what the prompt says cannot produce the gold output
  (a wrong gold value, or one that needs a step the prompt does not ask for);
- `gold_unscorable`: the gold output is of a type (None, dict) the official check raises on,
  so no program can pass;
- `note`: passable, but the prompt is ambiguous or has a typo; reported, never excluded.

Runs report how the erratum cases scored, and the pass rate with and without them; with
`exclude_errata=true` the excludable cases are not generated or scored at all.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

KINDS = ("needs_file", "nondeterministic", "gold_mismatch", "gold_unscorable", "note")
EXCLUDABLE = frozenset(KINDS) - {"note"}


@dataclass(frozen=True)
class Erratum:
    problem_id: int
    kind: str
    summary: str
    cases: tuple[int, ...] | None = None  # 0-based test cases; None = every case
    files: tuple[str, ...] = ()  # needs_file: paths the program opens, relative to its working dir

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"erratum kind must be one of {KINDS}, got {self.kind!r}")

    def covers(self, case: int) -> bool:
        return self.cases is None or case in self.cases

    @property
    def excludable(self) -> bool:
        return self.kind in EXCLUDABLE

    def to_dict(self) -> dict:
        cases = list(self.cases) if self.cases is not None else None
        return {"problem_id": self.problem_id, "kind": self.kind, "cases": cases,
                "summary": self.summary, "files": list(self.files)}


ERRATA: tuple[Erratum, ...] = (
    Erratum(9, "gold_mismatch", "case 2: the top notes are Kevin 7, John 9, Mike 7, Mitch 6; the gold says "
            "'Mike', the prompt's answer is 'John'", cases=(2,)),
    Erratum(23, "nondeterministic", "bootstrap percentiles of unseeded resamples (cases 1-3 also of a randomly "
            "drawn array) are compared exactly as a list; no program reproduces them (case 4, a constant array, "
            "is deterministic)", cases=(0, 1, 2, 3)),
    Erratum(31, "gold_mismatch", "case 0: edges 8 and 9 give a maximum third edge of 8 + 9 - 1 = 16 as the "
            "prompt defines it; the gold says 17 (the other cases follow the prompt)", cases=(0,)),
    Erratum(38, "needs_file", "reads ./datasets/mlbootcamp5_train.csv, which the dataset does not ship",
            files=("datasets/mlbootcamp5_train.csv",)),
    Erratum(41, "gold_unscorable", "cases 1 and 4: the gold output is null; the official check raises "
            "'Unsupported type NoneType' for every printed value", cases=(1, 4)),
    Erratum(46, "needs_file", "reads ./datasets/melb_data.csv, which the dataset does not ship (the gold "
            "sum of y_train is the same for every split size, so the gold may not match the prompt either; "
            "unchecked without the file)", files=("datasets/melb_data.csv",)),
    Erratum(55, "gold_mismatch", "case 2: sum([-1, -1, -1, -1, 1]) is -3, not the target -5; the gold says "
            "'True'", cases=(2,)),
    Erratum(56, "gold_mismatch", "case 3: merging [-1000000, 1, 1] and [1, 6] gives [-1000000, 1, 1, 1, 6]; "
            "the gold ends in 8", cases=(3,)),
    Erratum(70, "gold_mismatch", "case 2: the gold strips trailing punctuation ('Berkeley', 'Angeles'), which "
            "the prompt does not ask for; splitting gives 'Berkeley.' and 'Angeles.'", cases=(2,)),
    Erratum(77, "gold_mismatch", "case 2: the gold 39.57 is the standard deviation 39.5727... rounded to two "
            "decimals, which the prompt does not ask for; the check's 1e-6 tolerance rejects the exact value",
            cases=(2,)),
    Erratum(81, "gold_mismatch", "the gold is mean / population std (e.g. case 2: 6.4 / 6.116 = 1.0464), not "
            "the z statistic mean / (s / sqrt(n)) with the sample standard deviation the prompt asks for"),
    Erratum(87, "gold_mismatch", "case 0: for [0, 0, 0, 0, 100] mean + 2 * std is exactly 100, and 100 is not "
            "larger than it; the gold says [100]", cases=(0,)),
    Erratum(89, "gold_unscorable", "every gold output is a dict; the official check raises 'Unsupported type "
            "dict' for every printed value"),
    Erratum(91, "gold_mismatch", "cases 3 and 4: the target is the string '1', but str.format writes it into "
            "the prompt as 1, so the program cannot know; the gold counts only string matches", cases=(3, 4)),
    Erratum(94, "gold_mismatch", "case 1: the Collatz sequence from 9 sums to 339; the gold says 55", cases=(1,)),
    # notes: passable, reported only
    Erratum(1, "note", "same prompts, inputs and outputs as problem 26; the name and description ('Sandwich "
            "string') do not match the prompts"),
    Erratum(17, "note", "the gold follows turn 1's 'drunk' builtins: only a program that redefines str() and "
            "int() as described prints [29348, '29348']"),
    Erratum(20, "note", "samples random points (unseeded); the rounded k-means centroids are robust to the "
            "draw (0 failures in 60 runs of the reference)"),
    Erratum(22, "note", "case 4: the gold keeps False and counts only integer zeros, while `x == 0` and "
            "list.count(0) also match False", cases=(4,)),
    Erratum(39, "note", "'split with a space': str.split(' ') leaves empty words (cases 2 and 3); the gold "
            "follows str.split()", cases=(2, 3)),
    Erratum(44, "note", "'add each pair of adjacent digits': the gold follows non-overlapping pairs "
            "(123456 -> 3|7|11 -> 3711); sliding pairs grow without bound"),
    Erratum(45, "note", "case 2: taken literally, '@' on an empty stack is appended ('@t boy'); the gold "
            "follows backspace semantics ('t boy')", cases=(2,)),
    Erratum(55, "note", "turn 4 says 'return' at top level; the official rewrite prints a last expression"),
    Erratum(57, "note", "turn 3 names the variable 'sum_subarry', turn 4 prints 'sum_subarray'; the line "
            "carries a sixth output for five inputs (ignored, as officially)"),
    Erratum(61, "note", "cases 2 and 4 give a 1-D 'matrix'; the gold treats it as one row (np.diag of a 1-D "
            "array builds a diagonal matrix instead)", cases=(2, 4)),
    Erratum(62, "note", "turn 4 says 'return' at top level; the official rewrite prints a last expression"),
    Erratum(66, "note", "for K = 1 the gold is the point itself ([2, 2]), for K = 2 a list of points",
            cases=(0, 1, 4)),
    Erratum(88, "note", "turn 4 says 'the length of \"index\"', meaning the vocabulary"),
    Erratum(100, "note", "case 4: the first text match depends on the email regex ('example@@example.com' "
            "must not match)", cases=(4,)),
)


def errata_for(problem_id: int, errata: Iterable[Erratum] = ERRATA) -> list[Erratum]:
    return [e for e in errata if e.problem_id == problem_id]


def excluded_cases(problem_id: int, n_cases: int, datasets_available: bool = False,
                   errata: Iterable[Erratum] = ERRATA) -> dict[int, list[Erratum]]:
    """The cases of a problem that excludable errata cover: {case: [errata]}.

    A `needs_file` erratum is lifted when its files are available (`datasets_dir=`)."""
    out: dict[int, list[Erratum]] = {}
    for e in errata_for(problem_id, errata):
        if not e.excludable or (e.kind == "needs_file" and datasets_available):
            continue
        for case in range(n_cases):
            if e.covers(case):
                out.setdefault(case, []).append(e)
    return out


def required_files(problem_id: int, errata: Iterable[Erratum] = ERRATA) -> tuple[str, ...]:
    return tuple(f for e in errata_for(problem_id, errata) if e.kind == "needs_file" for f in e.files)


def load_dataset_files(datasets_dir: str | os.PathLike, problem_ids: Iterable[int]) -> dict[int, dict[str, bytes]]:
    """{problem: {relative path: bytes}} for the problems that read files, from `datasets_dir`.

    A file is looked up as ``datasets_dir/<basename>`` (e.g. ``melb_data.csv``) or under its
    relative path (``datasets_dir/datasets/melb_data.csv``)."""
    root = Path(datasets_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"datasets_dir {root} is not a directory; it must hold the CSV files problems 38 "
                                "and 46 read (mlbootcamp5_train.csv, melb_data.csv)")
    out: dict[int, dict[str, bytes]] = {}
    cache: dict[Path, bytes] = {}
    for pid in problem_ids:
        for rel in required_files(pid):
            candidates = [root / Path(rel).name, root / rel]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(
                    f"problem {pid} reads {rel}, but neither {candidates[0]} nor {candidates[1]} exists; "
                    "add the file to datasets_dir, or leave datasets_dir unset to report the problem as an erratum"
                )
            if found not in cache:
                cache[found] = found.read_bytes()
            out.setdefault(pid, {})[rel] = cache[found]
    return out
