"""MTPB errata data: well-formed, consistent with the dataset and with docs/mtpb_errata.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtpb.data import load_problems
from mtpb.errata import ERRATA, Erratum, excluded_cases, load_dataset_files, required_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "mtpb_errata.md"


@pytest.fixture(scope="module")
def problems(mtpb_path):
    return load_problems(mtpb_path).by_id()


def test_every_erratum_names_real_cases(problems):
    for e in ERRATA:
        assert e.problem_id in problems, e
        if e.cases is not None:
            assert e.cases and all(0 <= c < problems[e.problem_id].n_cases for c in e.cases), e
        assert e.summary and (e.kind == "needs_file") == bool(e.files), e


def test_the_known_classes_are_there(problems):
    kinds = {(e.problem_id, e.kind) for e in ERRATA}
    assert {(38, "needs_file"), (46, "needs_file"), (89, "gold_unscorable"), (41, "gold_unscorable"),
            (23, "nondeterministic")} <= kinds
    # the gold types the official check cannot accept are exactly what the errata list as unscorable
    unscorable = {(pid, c) for pid, p in problems.items() for c in range(p.n_cases)
                  if p.gold(c) is None or isinstance(p.gold(c), dict)}
    listed = {(e.problem_id, c) for e in ERRATA if e.kind == "gold_unscorable"
              for c in (e.cases if e.cases is not None else range(problems[e.problem_id].n_cases))}
    assert unscorable == listed
    # every problem whose prompt reads a csv file is listed with that file
    readers = {pid for pid, p in problems.items() if any(".csv" in t for t in p.prompts)}
    assert readers == {e.problem_id for e in ERRATA if e.kind == "needs_file"} == {38, 46}
    assert required_files(38) == ("datasets/mlbootcamp5_train.csv",)


def test_excluded_cases():
    assert excluded_cases(41, 5) == {1: [e for e in ERRATA if e.problem_id == 41 and e.kind != "note"],
                                     4: [e for e in ERRATA if e.problem_id == 41 and e.kind != "note"]}
    assert set(excluded_cases(38, 5)) == set(range(5)) and excluded_cases(38, 5, datasets_available=True) == {}
    assert excluded_cases(1, 5) == {}  # notes are never excluded
    assert excluded_cases(3, 5) == {}


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="erratum kind must be one of"):
        Erratum(1, "typo", "x")


def test_dataset_files_from_a_folder(tmp_path):
    (tmp_path / "melb_data.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mlbootcamp5_train.csv").write_bytes(b"x\n")
    assert load_dataset_files(tmp_path, [3, 38, 46]) == {38: {"datasets/mlbootcamp5_train.csv": b"x\n"},
                                                         46: {"datasets/melb_data.csv": b"a,b\n1,2\n"}}
    (tmp_path / "melb_data.csv").unlink()
    with pytest.raises(FileNotFoundError, match="problem 46 reads datasets/melb_data.csv"):
        load_dataset_files(tmp_path, [46])
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_dataset_files(tmp_path / "nope", [46])


def test_the_document_lists_every_erratum():
    text = DOC.read_text(encoding="utf-8")
    for e in ERRATA:
        assert re.search(rf"\|\s*{e.problem_id}\s*\|", text), f"problem {e.problem_id} missing from {DOC.name}"
        assert e.kind in text
