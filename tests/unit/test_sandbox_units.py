"""Sandbox pieces without processes: limits, records, the verdict rules, the channel parser, the
output cap, the cache key, the scrubbed environment, the YAML defaults."""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import struct
from pathlib import Path

import pytest
import yaml

from sandbox import ExecResult, Job, Limits, Status
from sandbox.cache import ResultCache, cache_key
from sandbox.pool import scrubbed_env
from sandbox.verdict import Observation, decide
from sandbox.worker import Capture, Channel, VerdictReader

REPO = Path(__file__).resolve().parents[2]


def test_limits_defaults_match_the_yaml_config():
    config = yaml.safe_load((REPO / "conf" / "sandbox" / "default.yaml").read_text())
    assert Limits.from_dict(config) == Limits()
    assert Limits().effective_cpu_s == 4  # ceil(3.0) + 1
    assert Limits(wall_s=2.5, cpu_s=1.2).effective_cpu_s == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"wall_s": 0}, "wall_s must be a positive"),
    ({"wall_s": float("inf")}, "wall_s"),
    ({"cpu_s": -1}, "cpu_s must be positive"),
    ({"memory_mb": 10}, r"memory_mb must be an integer >= 64, got 10"),
    ({"output_bytes": 1.5}, "output_bytes"),
    ({"max_processes": 0}, "max_processes"),
])
def test_limits_reject_bad_values_with_a_message_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Limits(**kwargs)


def test_limits_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown sandbox limit\(s\) \['timeout_s'\]"):
        Limits.from_dict({"timeout_s": 3})
    assert Limits.from_dict({"wall_s": 20.0}).wall_s == 20.0


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../../b", "a/../b", "./a", "", "."])
def test_job_rejects_file_names_outside_the_program_dir(name):
    with pytest.raises(ValueError, match="relative path"):
        Job("x = 1", files={name: b""})


def test_job_types():
    assert Job("x", files={"d/a.csv": b"1"}).files == {"d/a.csv": b"1"}
    with pytest.raises(TypeError, match="must be bytes"):
        Job("x", files={"a.txt": "text"})
    with pytest.raises(TypeError, match="program must be str"):
        Job(b"x = 1")


def test_exec_result_round_trips_through_json():
    r = ExecResult(Status.MEMORY, "MemoryError", "o", "e", 0.5, [1, {"a": 2}], False, {"network": "netns"}, 1,
                   ["stdout"])
    back = ExecResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.status is Status.MEMORY and str(back.status) == "memory"
    assert {s.value for s in Status} == {"passed", "failed", "error", "syntax_error", "timeout", "memory",
                                         "crashed", "sandbox_error"}


L = Limits(wall_s=3.0, memory_mb=512)


@pytest.mark.parametrize("obs, status, detail", [
    (Observation(L, kind="done", returncode=0), Status.PASSED, ""),
    (Observation(L, kind="done", timed_out=False, returncode=-9), Status.PASSED, ""),  # reported, then killed
    (Observation(L, kind="syntax", detail="SyntaxError: x", returncode=1), Status.SYNTAX_ERROR, "SyntaxError: x"),
    (Observation(L, kind="assertion", detail="AssertionError", returncode=1), Status.FAILED, "AssertionError"),
    (Observation(L, kind="assertion", returncode=1), Status.FAILED, "AssertionError"),  # detail lost: still failed
    (Observation(L, kind="memory", detail="MemoryError", returncode=1), Status.MEMORY, "MemoryError"),
    (Observation(L, kind="exit", detail="SystemExit: 0", returncode=1), Status.ERROR, "SystemExit: 0"),
    (Observation(L, kind="other", detail="KeyError: 'k'", returncode=1), Status.ERROR, "KeyError: 'k'"),
    (Observation(L, kind="refused", detail="the sandbox refused gc.get_objects", returncode=1), Status.ERROR,
     "the sandbox refused gc.get_objects"),
    (Observation(L, timed_out=True, returncode=-9), Status.TIMEOUT, "wall-clock limit of 3 s exceeded"),
    (Observation(L, returncode=-signal.SIGXCPU), Status.TIMEOUT, "CPU time limit of 4 s exceeded"),
    (Observation(L, returncode=-9, cpu_s=4.0), Status.TIMEOUT, "CPU time limit of 4 s exceeded"),
    (Observation(L, returncode=-9, cpu_s=0.1), Status.CRASHED, "killed by SIGKILL"),
    (Observation(L, returncode=-11), Status.CRASHED, "killed by SIGSEGV"),
    (Observation(L, returncode=-6, stderr_tail="terminate called after throwing an instance of 'std::bad_alloc'"),
     Status.MEMORY, "killed by SIGABRT after running out of memory (limit 512 MB)"),
    (Observation(L, kind="setup", detail="PermissionError: x", returncode=70), Status.SANDBOX_ERROR,
     "sandbox setup failed before the program started: PermissionError: x"),
    (Observation(L, returncode=None), Status.SANDBOX_ERROR, "the program's exit status was lost"),
])
def test_verdict_rules(obs, status, detail):
    assert decide(obs) == (status, detail)


def test_an_early_exit_is_never_a_pass():
    for rc in (0, 1, 3, 70):  # 70: the exit status of a failed setup is no sandbox_error by itself
        status, detail = decide(Observation(L, returncode=rc))
        assert status is Status.ERROR and "before its last line" in detail


def line(obj) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def test_value_pipe_carries_values_only_and_survives_split_reads():
    chan = Channel(cap=1000)
    data = (line({"t": "v", "v": [1, 2]}) + line({"t": "done", "k": "x"}) + b"garbage\n"
            + line({"t": "exc", "cat": "assertion"}) + line({"t": "v", "v": 3}))
    for i in range(0, len(data), 7):  # arbitrary chunking
        chan.feed(data[i:i + 7])
    assert chan.values == [[1, 2], 3]
    assert not hasattr(chan, "done") and not hasattr(chan, "exception")  # no verdict travels here


def test_value_pipe_caps_values_and_skips_an_endless_line():
    chan = Channel(cap=100)
    chan.feed(line({"t": "v", "v": "x" * 60}) + line({"t": "v", "v": "y" * 60}))
    chan.feed(line({"t": "v", "v": "z" * 5000}))  # one huge value: dropped
    assert chan.values == ["x" * 60] and chan.truncated
    chan2 = Channel(cap=1024)
    for _ in range(10):
        chan2.feed(b"a" * 4096)  # no newline ever
    assert len(chan2.buffer) < 1024 + 4096
    chan2.feed(b"tail of the long line\n" + line({"t": "v", "v": 1}))
    assert chan2.values == [1] and chan2.truncated


class _FakeSock:
    def __init__(self, queue):
        self.queue, self.sent = list(queue), []

    def recvmsg(self, size, ancsize):
        if not self.queue:
            raise BlockingIOError
        pid, data, address = self.queue.pop(0)
        cred = struct.pack("iII", pid, 60001, 60001)
        return data, [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, cred)], 0, address

    def sendto(self, data, address):
        self.sent.append((data, address))


def test_verdict_reader_trusts_the_first_record_of_the_main_process_only():
    sock = _FakeSock([
        (999, b"Kdone", None),  # a child or a fresh interpreter the program started: dropped
        (100, b"Dearly text", None),  # text before the kind: not from the runner
        (100, b"Kassertion", None),
        (100, b"Kdone", None),  # a second kind never overrides the first
        (100, b"DAssertionError: x", None),
    ])
    reader = VerdictReader(sock, 100, None)
    reader.read()
    assert reader.kind == "assertion" and reader.detail == "AssertionError: x"


def test_verdict_reader_runs_the_judge_handshake_with_the_announced_process_only():
    sock = _FakeSock([
        (100, b"Kdone", None), (100, b"P200", None),
        (300, b"R", b"\0other"), (300, b"J1", None),  # not the judge the runner announced
        (200, b"R", b"\0judge"), (200, b"J0", None), (200, b"J1", None), (200, b'D{"x": 1}', None),
    ])
    reader = VerdictReader(sock, 100, b"MESSAGE")
    reader.read()
    assert sock.sent == [(b"MESSAGE", b"\0judge")]
    assert reader.judge_result() == {"passed": False, "detail": {"x": 1}}


def test_the_judge_may_speak_before_its_parent_announces_it():
    sock = _FakeSock([(100, b"Kdone", None), (200, b"R", b"\0judge"), (100, b"P200", None), (200, b"J1", None)])
    reader = VerdictReader(sock, 100, b"MESSAGE")
    reader.read()
    assert sock.sent == [(b"MESSAGE", b"\0judge")] and reader.judge_result()["passed"] is True


def test_capture_keeps_the_first_bytes_and_counts_the_rest():
    cap = Capture(10)
    cap.feed(b"0123456")
    cap.feed(b"789abc")
    assert cap.text() == "0123456789" and cap.total == 13 and cap.truncated
    cap2 = Capture(10)
    cap2.feed("é".encode()[:1])
    assert cap2.text() == "\ufffd" and not cap2.truncated


def test_cache_key_depends_on_program_limits_and_files():
    base = cache_key(Job("x = 1"), Limits())
    assert base == cache_key(Job("x = 1"), Limits())
    assert base != cache_key(Job("x = 2"), Limits())
    assert base != cache_key(Job("x = 1"), Limits(wall_s=4.0))
    assert base != cache_key(Job("x = 1", files={"a": b"1"}), Limits())
    assert cache_key(Job("x = 1", files={"a": b"1"}), Limits()) != cache_key(Job("x = 1", files={"a": b"2"}), Limits())
    assert cache_key(Job("\udc80"), Limits())  # lone surrogates from a bad decode still hash


def test_cache_returns_copies_marked_cached_and_evicts():
    cache = ResultCache(entries=2)
    r = ExecResult(Status.PASSED, values=[1])
    cache.put("a", r)
    hit = cache.get("a")
    assert hit.cached and hit == dataclasses.replace(r, cached=True)
    hit.values.append(2)
    assert cache.get("a").values == [1]
    cache.put("b", r)
    cache.put("c", r)
    assert cache.get("a") is None and cache.get("c") is not None
    cache.put("d", ExecResult(Status.SANDBOX_ERROR))
    assert cache.get("d") is None  # our failures are never remembered


def test_cache_has_a_byte_budget_as_well_as_an_entry_count():
    cache = ResultCache(entries=65536, max_bytes=2_000_000)
    big = ExecResult(Status.FAILED, stdout="o" * 300_000, stderr="e" * 300_000)
    for i in range(300):  # 300 results of ~600 KB each, as a program printing 600 KB with other comments
        cache.put(f"k{i}", big)
    assert cache.bytes <= 2_000_000 and len(cache._data) == 3
    assert cache.get("k299") is not None and cache.get("k0") is None
    assert ResultCache(entries=10).max_bytes == 256 << 20  # the documented default


def test_cache_key_depends_on_profile_and_judge():
    from sandbox import HUMAN_EVAL
    base = cache_key(Job("x = 1"), Limits())
    assert base != cache_key(Job("x = 1", profile=HUMAN_EVAL), Limits())
    assert base != cache_key(Job("x = 1", judge="def judge(ns, g): return True, None", judge_input=1), Limits())
    assert cache_key(Job("x", judge="j", judge_input=[1]), Limits()) != cache_key(Job("x", judge="j", judge_input=[2]),
                                                                                 Limits())


def test_profile_stdio_field():
    from sandbox import HUMAN_EVAL, HUMAN_EVAL_UNGUARDED, PYTHON, ExecProfile
    assert (PYTHON.stdio, HUMAN_EVAL.stdio, HUMAN_EVAL_UNGUARDED.stdio) == ("python", "human-eval", "human-eval")
    assert ExecProfile.from_dict(HUMAN_EVAL.to_dict()) == HUMAN_EVAL
    with pytest.raises(ValueError, match="stdio must be one of"):
        ExecProfile(stdio="humaneval")
    assert cache_key(Job("x", profile=ExecProfile()), Limits()) != cache_key(
        Job("x", profile=ExecProfile(stdio="human-eval")), Limits())


def test_scrubbed_env_drops_secrets_and_proxies(monkeypatch):
    for name in ("HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "HTTPS_PROXY", "http_proxy", "LD_PRELOAD", "PYTHONPATH"):
        monkeypatch.setenv(name, "secret")
    env = scrubbed_env()
    assert "secret" not in env.values()
    assert env["OPENBLAS_NUM_THREADS"] == "1" and "PATH" in env
