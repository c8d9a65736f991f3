"""The run store: records round-trip, resume, cut last lines, shards, canonical files."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from results.records import ExecutionRecord, Manifest, RecordError, SampleRecord, key_order, make_key
from results.store import RunStore, RunStoreError, read_jsonl, read_yaml, write_yaml


def manifest(**changes) -> Manifest:
    fields = dict(benchmark="humaneval", model="tiny-random", seed=3,
                  sampling={"temperature": 0.2, "top_p": 0.95, "n": 4}, dtype="float32", device="cpu")
    fields.update(changes)
    return Manifest(**fields)


def sample(problem: int, i: int, case: int | None = None) -> SampleRecord:
    key = make_key(f"P/{problem}", i, case)
    return SampleRecord(key, f"P/{problem}", i, completion=f"return {problem * i}", prompt="def f():\n",
                        case_index=case, n_new_tokens=5, time_s=0.01 * i)


def execution(problem: int, i: int) -> ExecutionRecord:
    passed = (problem + i) % 2 == 0
    return ExecutionRecord(make_key(f"P/{problem}", i), f"P/{problem}", i,
                           "passed" if passed else "failed", passed, duration_s=0.1)


def test_records_round_trip_and_reject_bad_lines():
    rec = SampleRecord("k", "p", 0, "c", "pr", case_index=2, turns=["a", "b"], extra={"x": 1})
    assert SampleRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    m = manifest()
    assert Manifest.from_dict(m.to_dict()) == m
    with pytest.raises(RecordError, match=r"f.jsonl:7: unknown field\(s\) \['bogus'\]"):
        SampleRecord.from_dict({**rec.to_dict(), "bogus": 1}, where="f.jsonl:7")
    with pytest.raises(RecordError, match=r"missing field\(s\) \['passed'\]"):
        ExecutionRecord.from_dict({"key": "k", "problem_id": "p", "sample_index": 0, "status": "passed"})
    with pytest.raises(RecordError, match="'sample_index'.*must be int"):
        SampleRecord.from_dict({**rec.to_dict(), "sample_index": "3"})
    assert "time_s" not in rec.stable_dict() and "duration_s" not in execution(1, 1).stable_dict()


def test_key_order_is_natural():
    keys = ["P/10/s0", "P/2/s10", "P/2/s9", "P/2/c1/s0", "P/2/c0/s3"]
    assert sorted(keys, key=key_order) == ["P/2/c0/s3", "P/2/c1/s0", "P/2/s9", "P/2/s10", "P/10/s0"]


def test_config_yaml_loads_back_equal():
    config = {"model": {"name": "codegen-350M-mono", "revision": None}, "sampling": {"temperature": 0.2, "n": 10},
              "stop": ["\nclass", "\ndef", "\n#"], "flags": [True, "yes", "1e3", "-x", ""], "empty": {}, "none": [],
              "nested": [{"a": 1, "b": [1, 2]}, [3, 4]], "text": "a: b # c"}
    assert yaml.safe_load(write_yaml(config)) == config


# config.yaml exactly as the hand-written writer of earlier versions wrote it (JSON-style quoting,
# indented lists, a lone-surrogate path from argv as \\udcxx escapes): runs written then still read
OLD_CONFIG_YAML = (
    'model:\n'
    '  name: codegen-350M-mono\n'
    '  path: "/data/ck\\udcff\\udc80pt"\n'
    '  revision: null\n'
    'sampling:\n'
    '  temperature: 0.2\n'
    '  "n": 10\n'
    '  top_p: 0.95\n'
    'benchmark:\n'
    '  stop:\n'
    '    - "\\nclass"\n'
    '    - "\\ndef"\n'
    '    - "\\n#"\n'
    '    - "\\nif"\n'
    'limit: null\n'
    'problems: []\n'
    'run_dir: outputs/humaneval/x\n'
    'flags:\n'
    '  - "yes"\n'
    '  - "1e3"\n'
    '  - "-x"\n'
    '  - ""\n'
    '  - "a: b # c"\n'
    '  - "é"\n'
)
OLD_CONFIG = {"model": {"name": "codegen-350M-mono", "path": "/data/ck\udcff\udc80pt", "revision": None},
              "sampling": {"temperature": 0.2, "n": 10, "top_p": 0.95},
              "benchmark": {"stop": ["\nclass", "\ndef", "\n#", "\nif"]}, "limit": None, "problems": [],
              "run_dir": "outputs/humaneval/x", "flags": ["yes", "1e3", "-x", "", "a: b # c", "\u00e9"]}


def test_config_yaml_of_earlier_versions_reads_back_equal():
    assert read_yaml(OLD_CONFIG_YAML) == OLD_CONFIG


def test_config_yaml_writes_lone_surrogates_as_escapes_and_reads_them_back():
    text = write_yaml(OLD_CONFIG)
    text.encode("utf-8")  # valid UTF-8 on disk despite the surrogates
    assert "\\uDCFF\\uDC80" in text and read_yaml(text) == OLD_CONFIG
    assert '"\\nclass"' in text  # line breaks stay readable escapes, not folded blocks


def test_resume_of_a_run_written_by_the_earlier_yaml_writer_keeps_its_config_quietly(tmp_path, caplog):
    store = RunStore(tmp_path / "run")
    store.start(OLD_CONFIG, manifest())
    (tmp_path / "run" / "config.yaml").write_text(OLD_CONFIG_YAML, encoding="utf-8")
    with caplog.at_level("INFO", logger="results.store"):
        assert RunStore(tmp_path / "run").start(OLD_CONFIG, manifest()) is True
    assert "config differs" not in caplog.text
    assert (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8") == OLD_CONFIG_YAML
    with caplog.at_level("INFO", logger="results.store"):
        RunStore(tmp_path / "run").start({**OLD_CONFIG, "limit": 3}, manifest())
    assert "config differs" in caplog.text


def test_start_then_resume_checks_identity(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.start({"a": 1}, manifest()) is False
    assert (tmp_path / "run" / "config.yaml").exists()
    stored = store.manifest()
    assert stored.model == "tiny-random" and stored.created_at  # filled in at start
    assert RunStore(tmp_path / "run").start({"a": 1}, manifest()) is True
    with pytest.raises(RunStoreError, match=r"sampling\.temperature: 0\.2 \(existing run\) != 0\.8"):
        RunStore(tmp_path / "run").start({"a": 1}, manifest(sampling={"temperature": 0.8, "top_p": 0.95, "n": 4}))
    with pytest.raises(RunStoreError, match="model: 'tiny-random'"):
        RunStore(tmp_path / "run").start({}, manifest(model="other"))
    # environment fields may change on resume
    assert RunStore(tmp_path / "run").start({"a": 1}, manifest(device="cuda:0")) is True


def test_append_skip_and_read_back(tmp_path):
    store = RunStore(tmp_path)
    store.start({}, manifest())
    assert store.append_sample(sample(1, 0)) is True
    assert store.append_sample(sample(1, 0)) is False  # already stored: not written again
    store.append_execution(execution(1, 0))
    # flushed at once: another reader sees the line before close
    assert [r.key for r in RunStore(tmp_path).samples()] == ["P/1/s0"]
    assert RunStore(tmp_path).execution_keys() == {"P/1/s0"}
    with pytest.raises(TypeError):
        store.append_sample(execution(1, 1))
    store.close()


def test_cut_last_line_is_reported_then_repaired(tmp_path, caplog):
    store = RunStore(tmp_path)
    store.start({}, manifest())
    for i in range(3):
        store.append_sample(sample(1, i))
    store.close()
    path = tmp_path / "samples.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # a kill in the middle of the third line
    reader = RunStore(tmp_path)
    assert [r.sample_index for r in reader.samples()] == [0, 1]
    assert len(reader.read_issues) == 1 and "samples.jsonl:3: cut last line" in str(reader.read_issues[0])
    # resuming: the partial line is dropped before appending, so the file stays valid
    resumed = RunStore(tmp_path)
    assert resumed.sample_keys() == {"P/1/s0", "P/1/s1"}
    with caplog.at_level(logging.WARNING):
        resumed.append_sample(sample(1, 2))
    assert "dropping a cut last line" in caplog.text
    resumed.close()
    assert len(read_jsonl(path, SampleRecord)) == 3
    # a corrupt line that is not the last is an error naming file and line
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{oops\n" + lines[2])
    with pytest.raises(RecordError, match=r"samples.jsonl:2: not a JSON line"):
        RunStore(tmp_path).samples()


def test_resumed_run_ends_with_the_same_files(tmp_path):
    work = [(p, i) for p in (2, 10, 1) for i in range(3)]
    full = RunStore(tmp_path / "full")
    full.start({"x": 1}, manifest(created_at="t0"))
    for p, i in reversed(work):  # completion order differs from key order
        full.append_sample(sample(p, i))
        full.append_execution(execution(p, i))
    full.finalize()

    cut = RunStore(tmp_path / "cut")
    cut.start({"x": 1}, manifest(created_at="t0"))
    for p, i in work[:4]:
        cut.append_sample(sample(p, i))
        cut.append_execution(execution(p, i))
    cut.append_sample(sample(*work[4]))  # killed after the sample, before its execution
    cut.close()
    resumed = RunStore(tmp_path / "cut")
    assert resumed.start({"x": 1}, manifest(created_at="t1")) is True
    done_s, done_e = resumed.sample_keys(), resumed.execution_keys()
    for p, i in work:
        if make_key(f"P/{p}", i) not in done_s:
            resumed.append_sample(sample(p, i))
        if make_key(f"P/{p}", i) not in done_e:
            resumed.append_execution(execution(p, i))
    resumed.finalize()
    for name in ("samples.jsonl", "executions.jsonl", "config.yaml", "manifest.json"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name
    keys = [json.loads(line)["key"] for line in (tmp_path / "full" / "samples.jsonl").read_text().splitlines()]
    assert keys == sorted(keys, key=key_order) and len(keys) == len(set(keys)) == 9


def test_shards_merge_into_one_run(tmp_path):
    work = [(p, i) for p in range(5) for i in range(4)]
    single = RunStore(tmp_path / "single")
    single.start({}, manifest(created_at="t"))
    for p, i in work:
        single.append_sample(sample(p, i))
        single.append_execution(execution(p, i))
    single.finalize()

    world = 3
    ranks = [RunStore(tmp_path / "sharded", shard=(r, world)) for r in range(world)]
    for store in ranks:
        store.start({}, manifest(created_at="t"))
    for n, (p, i) in enumerate(work):
        store = ranks[n % world]
        store.append_sample(sample(p, i))
        store.append_execution(execution(p, i))
    for store in ranks:
        store.close()
    # a key in two shard files (a resume with another world size) is kept once
    stale = tmp_path / "sharded" / "samples.rank0-of-2.jsonl"
    stale.write_text(json.dumps(sample(0, 0).to_dict()) + "\n")
    assert (tmp_path / "sharded" / "samples.rank2-of-3.jsonl").exists()
    with pytest.raises(RunStoreError, match="rank 0 only"):
        ranks[1].merge_shards()
    assert ranks[0].merge_shards() == {"samples": 20, "executions": 20}
    for name in ("samples.jsonl", "executions.jsonl"):
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "sharded" / name).read_bytes()
    assert not list((tmp_path / "sharded").glob("*.rank*"))


def test_write_metrics_is_strict_json(tmp_path):
    import numpy as np

    store = RunStore(tmp_path)
    store.write_metrics({"pass@1": np.float64(0.5), "ci": [float("nan"), 1.0], "n": np.int64(3)})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"pass@1": 0.5, "ci": [None, 1.0], "n": 3}
    assert store.metrics()["n"] == 3


def test_sigkill_loses_nothing_flushed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    writer = (
        "import sys\n"
        "from results.store import RunStore\n"
        "from results.records import SampleRecord, Manifest\n"
        "s = RunStore(sys.argv[1]); s.start({}, Manifest('humaneval', 'm'))\n"
        "i = 0\n"
        "while True:\n"
        "    s.append_sample(SampleRecord(f'P/{i}/s0', f'P/{i}', 0, 'x' * 5000, 'p'))\n"
        "    print(i, flush=True); i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path)], cwd=repo, stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    deadline = time.monotonic() + 60
    while acknowledged < 200 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = RunStore(tmp_path)
    keys = store.sample_keys()
    # every line appended before the kill was acknowledged is there, in one piece
    assert {f"P/{i}/s0" for i in range(acknowledged + 1)} <= keys
    n = len(keys)
    store.append_sample(sample(99999, 0))  # resuming appends after any cut line
    store.close()
    assert len(RunStore(tmp_path).samples()) == n + 1


def test_metrics_and_manifest_are_strict_json(tmp_path):
    """An undefined number (one problem's standard error) is null in metrics.json, never a bare NaN."""
    import numpy as np

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    store = RunStore(tmp_path / "r")
    store.start({"t": float("nan")}, Manifest(benchmark="humaneval", model="m",
                                              sampling={"temperature": float("nan")}))
    store.write_metrics({"ppl": 3.5, "ppl_se": float("nan"), "rate": np.float64("inf"), 1: [np.nan]})
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics == {"ppl": 3.5, "ppl_se": None, "rate": None, "1": [None]}
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text(), parse_constant=refuse)
    assert manifest["sampling"]["temperature"] is None
    assert store.metrics() == metrics


def test_a_resume_in_another_environment_warns_in_one_line(tmp_path, caplog):
    """Versions and commit may differ on a resume: one warning line names them; a fact the stored
    manifest did not record (older code) and the loader's description of the model are not
    differences."""
    store = RunStore(tmp_path / "run")
    old = Manifest(benchmark="humaneval", model="m", versions={"torch": "2.3.0"}, git_commit="aaa",
                   extra={"model": {"kind": "hub"}})
    store.start({"a": 1}, old)
    new = Manifest(benchmark="humaneval", model="m", versions={"torch": "2.4.0", "scikit-learn": "1.5"},
                   git_commit="bbb", extra={"model": {"kind": "local", "n_params": 7}})
    with caplog.at_level(logging.WARNING, logger="results.store"):
        assert RunStore(tmp_path / "run").start({"a": 1}, new) is True
    lines = [r.getMessage() for r in caplog.records if "different environment" in r.getMessage()]
    assert len(lines) == 1
    assert "versions.torch: '2.3.0' != '2.4.0'" in lines[0] and "git_commit: 'aaa' != 'bbb'" in lines[0]
    assert "scikit-learn" not in lines[0] and "model." not in lines[0]
