"""MTPB data: the shared file, validation errors with line numbers, the pinned download and its checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mtpb import data
from mtpb.data import DataError, load_problems, parse_problems


@pytest.fixture(scope="module")
def problems(mtpb_path):
    return load_problems(mtpb_path)


def test_shared_file_is_the_published_one(problems, mtpb_path):
    assert problems.sha256 == data.MTPB_SHA256 == hashlib.sha256(Path(mtpb_path).read_bytes()).hexdigest()
    assert len(problems) == 115
    assert [p.id for p in problems] == list(range(1, 116))
    assert {p.category for p in problems} == set(data.CATEGORIES)
    assert sum(p.n_cases for p in problems) == 575


def test_max_gen_length_defaults_to_256_where_missing(problems):
    missing = [p.id for p in problems if p.max_gen_length is None]
    assert missing == [39, 40, 41, 42, 43, 44, 45]
    assert {problems.by_id()[i].max_new_tokens for i in missing} == {256}
    assert problems.by_id()[18].max_new_tokens == 512


def test_templates_are_filled_with_str_format(problems):
    p = problems.by_id()[12]
    filled = p.filled_prompts(0)
    assert filled[2] == 'Create an object named "player" with name "David Jones", age 25, height 175, weight 75.'
    assert "{name} is age {age}" in filled[1]  # doubled braces in the template stay literal
    assert problems.by_id()[5].filled_prompts(0)[0] == 'Assign the list of numbers "[1,2,3,4]" to a variable named "my_numbers".'
    with pytest.raises(IndexError, match="test cases 0..4"):
        p.filled_prompts(5)


def test_surplus_outputs_are_ignored_like_zip(problems):
    p = problems.by_id()[57]
    assert len(p.outputs) == 6 and p.n_cases == 5


def test_select_by_id_and_limit(problems):
    assert [p.id for p in problems.select([14, 3])] == [3, 14]
    assert [p.id for p in problems.select(limit=2)] == [1, 2]
    with pytest.raises(DataError, match=r"unknown MTPB problem id\(s\) \[116\]"):
        problems.select([116])


GOOD = {"id": "1", "name": "n", "category": "math", "prompts": ["Set {a}."], "inputs": [{"a": 1}], "outputs": [1]}


def _file(*rows) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows) + b"\n"


@pytest.mark.parametrize("bad, message", [
    (b"{not json", r"f\.jsonl:2: not a JSON line"),
    ({**GOOD, "id": "2", "prompts": []}, r"f\.jsonl:2: problem 2: 'prompts' must be a non-empty list"),
    ({k: v for k, v in GOOD.items() if k != "outputs"} | {"id": "2"}, r"f\.jsonl:2: missing field\(s\) \['outputs'\]"),
    ({**GOOD, "id": "2", "prompts": ["Set {b}."]}, r"f\.jsonl:2: problem 2, test case 0: prompt template .* cannot be filled"),
    ({**GOOD, "id": "2", "outputs": []}, r"f\.jsonl:2: problem 2 has 1 inputs but only 0 outputs"),
    ({**GOOD, "id": "x"}, r"f\.jsonl:2: field 'id' must be an integer"),
    ({**GOOD, "max_gen_length": 0, "id": "2"}, r"f\.jsonl:2: problem 2: 'max_gen_length' must be a positive integer"),
    (GOOD, r"f\.jsonl:2: problem id 1 already defined on line 1"),
])
def test_malformed_lines_are_named_by_line(bad, message):
    with pytest.raises(DataError, match=message):
        parse_problems(_file(GOOD, bad), "f.jsonl")


def test_a_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="MTPB file not found"):
        load_problems(tmp_path / "nope.jsonl")


def test_download_is_checked_and_cached(tmp_path, mtpb_path):
    url = Path(mtpb_path).resolve().as_uri()  # file:// stands in for the pinned https URL
    cache = tmp_path / "cache"
    first = load_problems(None, url=url, sha256=data.MTPB_SHA256, cache_dir=cache)
    assert len(first) == 115 and first.source == url
    cached = list(cache.iterdir())
    assert len(cached) == 1 and cached[0].read_bytes() == Path(mtpb_path).read_bytes()
    # the second load reads the cache (the URL is not fetched again)
    again = load_problems(None, url="file:///nonexistent/mtpb.jsonl", sha256=data.MTPB_SHA256, cache_dir=cache)
    assert again.sha256 == first.sha256


def test_checksum_mismatch_is_an_error_and_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEGEN_SHARED_DATA")  # the download path, not the offline copy
    monkeypatch.setattr(data, "_fetch", lambda url, timeout_s=60.0: _file(GOOD))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"sha256 [0-9a-f]{64} does not match the pinned 3ab79ddb"):
        load_problems(None, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_corrupt_cached_copy_is_detected(tmp_path, mtpb_path, monkeypatch):
    monkeypatch.delenv("CODEGEN_SHARED_DATA")  # the download path, not the offline copy
    cache = tmp_path / "cache"
    load_problems(None, url=Path(mtpb_path).resolve().as_uri(), cache_dir=cache)
    cached = next(cache.iterdir())
    cached.write_bytes(cached.read_bytes()[:-10])
    with pytest.raises(DataError, match="does not match the pinned"):
        load_problems(None, cache_dir=cache)


def test_no_network_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEGEN_SHARED_DATA")  # the download path, not the offline copy
    def offline(url, timeout_s=60.0):
        raise OSError("Name or service not known")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(DataError, match="could not download MTPB .* pass data_path="):
        load_problems(None, cache_dir=tmp_path)


def test_the_pinned_url_is_the_commit_in_source_md(shared_data):
    source = (shared_data / "mtpb" / "SOURCE.md").read_text()
    assert data.MTPB_URL in source and data.MTPB_SHA256 in source and data.MTPB_COMMIT in source
