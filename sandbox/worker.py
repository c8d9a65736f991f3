"""A worker: a warm copy of the fork server that runs one program at a time and supervises it.

Set up once: subreaper (orphans come back to us), a private uid when root (locked across
processes), a mount namespace (interpreter reachable by that uid, private /tmp and /dev/shm), a
network and IPC namespace (else a seccomp socket filter per program). Per job: a fresh directory,
fork (or fork + exec in spawn mode), `confine.start` in the child, and here the wall deadline,
bounded reads of stdout/stderr/channel, SIGKILL of everything the program started, cleanup, and
the verdict. The worker never runs program code itself and never trusts what the program wrote.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import select
import shutil
import signal
import socket
import stat
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import confine, oslevel, protocol, runner, verdict
from .limits import ExecResult, Limits, Status

log = logging.getLogger(__name__)

READ_CHUNK = 65536
CONTROL_LINE_MAX = 8192  # runner messages other than values are short


@dataclass
class WorkerConfig:
    base_dir: str  # host directory for uid locks and (without a mount namespace) program dirs
    mode: str = "fork"  # "fork": fork this warm interpreter; "spawn": exec a fresh one per program
    network: str = "auto"  # "auto" | "netns" | "socket-blocked" | "none" (tests force fallbacks)
    drop_uid: bool | None = None  # None: when running as root
    private_mounts: bool = True
    env: dict[str, str] = field(default_factory=dict)
    hide_sys_path: tuple[str, ...] = ()
    kind: str = "lean"  # which fork server: "lean" (plain interpreter) or "warm" (numpy, pandas)


class Capture:
    """Keeps the first `cap` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap, self.kept, self.total = cap, bytearray(), 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")


class Channel:
    """Parses the runner's JSON lines; keeps values up to `cap` bytes, always sees control lines."""

    def __init__(self, cap: int, token: str) -> None:
        self.cap, self.token = cap, token
        self.buffer = bytearray()
        self.skipping = False  # inside an over-long line
        self.values: list = []
        self.value_bytes = 0
        self.truncated = False
        self.done = False
        self.syntax: str | None = None
        self.exception: tuple[str, str] | None = None
        self.setup: str | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > self.cap + CONTROL_LINE_MAX:  # a value too big to keep
                    self.buffer.clear()
                    self.skipping = self.truncated = True
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if self.skipping:
                self.skipping = False
                continue
            self._line(line)

    def _line(self, line: bytes) -> None:
        is_value = line.startswith(b'{"t": "v"')
        if is_value and self.value_bytes + len(line) > self.cap:
            self.truncated = True
            return
        if not is_value and len(line) > CONTROL_LINE_MAX:
            return
        try:
            msg = protocol.json.loads(line)
            kind = msg["t"]
        except (ValueError, KeyError, TypeError):
            return  # not from the runner (e.g. a forked grandchild interleaving): ignore
        if kind == "v":
            self.values.append(msg.get("v"))
            self.value_bytes += len(line)
        elif kind == "done":
            self.done = self.done or msg.get("k") == self.token
        elif kind == "exc" and self.exception is None:
            self.exception = (str(msg.get("cat")), str(msg.get("detail")))
        elif kind == "syntax" and self.syntax is None:
            self.syntax = str(msg.get("detail"))
        elif kind == "setup" and self.setup is None:
            self.setup = str(msg.get("detail"))


@dataclass
class _Child:
    pid: int
    out_r: int
    err_r: int
    ch_r: int
    job_w: int | None  # a pre-forked child waits for its job here

    def close(self) -> None:
        for fd in (self.out_r, self.err_r, self.ch_r, self.job_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


class ParentGone(Exception):
    """The harness closed our socket: stop everything and exit."""


class Worker:
    def __init__(self, sock: socket.socket, config: WorkerConfig) -> None:
        self.sock = sock
        self.config = config
        self.uid: int | None = None
        self.isolation: dict = {"mode": config.mode, "server": config.kind}
        self.vm_mb = 0
        self._setup()

    # --- once per worker --------------------------------------------------------------------

    def _setup(self) -> None:
        cfg = self.config
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # not the fork server's handler: we wait ourselves
        oslevel.become_subreaper()
        base = Path(cfg.base_dir)
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
        st = os.lstat(base)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise PermissionError(f"sandbox directory {base} must be a directory owned by uid {os.geteuid()} "
                                  "and writable only by it; remove it or pass another base_dir")
        is_root = os.geteuid() == 0
        drop = is_root if cfg.drop_uid is None else cfg.drop_uid
        if drop and not is_root:
            raise PermissionError("drop_uid=True needs the harness to run as root")
        if drop:
            self.uid, self._lock_fd = oslevel.acquire_uid_slot(base / "locks")
            oslevel.kill_uid(self.uid)  # whatever a crashed harness left running as this uid
            oslevel.reap_all(1.0)
        self.isolation["uid"] = self.uid

        shared = oslevel.SharedDirs()
        private = False
        if is_root and cfg.private_mounts and oslevel.unshare(oslevel.CLONE_NEWNS):
            needed = _interpreter_paths()
            try:
                oslevel.private_mounts(needed, shared.dirs_top_level())
                private = os.path.realpath("/tmp") in shared.dirs_top_level()
            except OSError as exc:
                log.warning("private mounts failed (%s); programs share /tmp with the machine", exc)
        self.isolation["filesystem"] = "private-tmp" if private else ("uid-cleanup" if self.uid else "shared")
        self.shared = oslevel.SharedDirs() if self.uid is not None else None

        network = cfg.network
        if network in ("auto", "netns"):
            if oslevel.unshare(oslevel.CLONE_NEWNET | oslevel.CLONE_NEWIPC):
                network, self.isolation["ipc"] = "netns", "ipcns"
            elif oslevel.unshare(oslevel.CLONE_NEWNET):
                network = "netns"
            elif cfg.network == "netns":
                raise OSError("no network namespace can be created here (unshare(CLONE_NEWNET) refused)")
            else:
                network = "socket-blocked"
        if network == "socket-blocked" and not _probe(lambda: oslevel.install_socket_filter() or os._exit(1)):
            log.warning("neither a network namespace nor a seccomp filter is available: programs have network")
            network = "none"
        self.network = network
        self.isolation["network"] = network

        if self.uid is not None:
            uid = self.uid
            if not _probe(lambda: _check_interpreter_reachable(uid)):
                raise PermissionError(
                    f"the interpreter under {sys.prefix} is not readable by the sandbox uid {uid} and no "
                    "private mount namespace could expose it; install Python in a world-readable place, "
                    "allow unshare(CLONE_NEWNS) (e.g. docker --cap-add SYS_ADMIN), or pass drop_uid=False"
                )
        if private:
            self.work_root = Path(os.path.realpath("/tmp"))  # our private tmpfs
        else:
            self.work_root = base / f"slot-{self.uid if self.uid is not None else os.getpid()}"
            shutil.rmtree(self.work_root, ignore_errors=True)
            self.work_root.mkdir(mode=0o711)
        self.workdir = self.work_root / "run"
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.environ.clear()  # the programs' environment: scrubbed by the harness, plus their directory
        os.environ.update(cfg.env, HOME=str(self.workdir), TMPDIR=str(self.workdir), PWD=str(self.workdir))
        with open("/proc/self/status") as f:
            self.vm_mb = next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmSize:"))
        self._ready: _Child | None = None  # fork mode: the next program process, prepared
        gc.collect()
        gc.freeze()  # children never scan or copy the warm objects

    # --- the loop ----------------------------------------------------------------------------

    def serve(self) -> None:
        if self.config.mode == "fork":
            self._ready = self._fork_child(None)
        protocol.send_msg(self.sock, {"t": "ready", "pid": os.getpid(), "uid": self.uid,
                                      "isolation": self.isolation, "vm_mb": self.vm_mb})
        try:
            while True:
                try:
                    msg = protocol.recv_msg(self.sock)
                except protocol.ChannelClosed:
                    break
                if msg.get("t") != "job":
                    break
                try:
                    result = self.run_job(msg)
                except ParentGone:
                    break
                except Exception:  # noqa: BLE001 - our bug: report it as such and keep serving
                    log.exception("worker failed on a job")
                    result = ExecResult(Status.SANDBOX_ERROR, "worker error: " + traceback.format_exc(limit=3))
                protocol.send_msg(self.sock, {"t": "result", **result.to_dict()})
                if self.config.mode == "fork" and self._ready is None:
                    self._ready = self._fork_child(None)  # while the harness reads the result
        finally:
            if self._ready is not None:
                self._ready.close()  # EOF on its job pipe: it exits
            self._kill_everything(None)
            oslevel.reap_all(2.0)

    def _fork_child(self, job: confine.JobSpec | None) -> _Child:
        """Fork a program process; without `job` it prepares itself and waits for one on a pipe."""
        os.mkdir(self.workdir, 0o700)  # the same path every time (jobs run one after another), so
        if self.uid is not None:  # the environment naming it is set once, in _setup, and inherited
            os.chown(self.workdir, self.uid, self.uid)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ch_r, ch_w = os.pipe()
        job_r, job_w = os.pipe() if job is None else (None, None)
        spec = confine.ChildSpec(
            workdir=str(self.workdir), stdout_fd=out_w, stderr_fd=err_w, channel_fd=ch_w,
            worker_pid=os.getpid(), mode=self.config.mode, uid=self.uid,
            seccomp=self.network == "socket-blocked", hide_sys_path=self.config.hide_sys_path,
        )
        pid = os.fork()
        if pid == 0:
            confine.start(spec, job, job_r)  # never returns
        for fd in (out_w, err_w, ch_w, job_r):
            if fd is not None:
                os.close(fd)
        return _Child(pid, out_r, err_r, ch_r, job_w)

    def _give_job(self, job: confine.JobSpec) -> _Child:
        child, self._ready = self._ready, None
        if child is not None:
            try:
                runner._write_all(child.job_w, pickle.dumps(job))
                os.close(child.job_w)
                return child
            except OSError:  # it died while waiting (OOM killer, ...): start afresh
                child.close()
                oslevel.reap_all(1.0)
                shutil.rmtree(self.workdir, ignore_errors=True)
        return self._fork_child(job)

    def run_job(self, msg: dict) -> ExecResult:
        limits = Limits.from_dict(msg["limits"])
        token = os.urandom(16).hex()
        job = confine.JobSpec(msg["program"], token, limits, protocol.decode_files(msg.get("files") or {}))
        started_ns = self.shared.snapshot() if self.shared else 0
        start = time.monotonic()
        child = self._give_job(job)
        pid = child.pid
        out, err, chan = Capture(limits.output_bytes), Capture(limits.output_bytes), Channel(limits.output_bytes, token)
        streams = {child.out_r: out, child.err_r: err, child.ch_r: chan}
        try:
            timed_out, parent_gone = self._supervise(pid, streams, start + limits.wall_s)
            if timed_out or parent_gone:
                self._kill_everything(pid)
            _, status, usage = os.wait4(pid, 0)
            duration = time.monotonic() - start
            if oslevel.has_children():  # something outlived the program: a daemon, a setsid grandchild
                self._kill_everything(pid)
            oslevel.reap_all()
            self._drain(streams)
        finally:
            for fd in streams:
                os.close(fd)
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self.shared is not None and self.uid is not None:
                self.shared.clean(self.uid, started_ns)
                oslevel.clean_sysv_ipc(self.uid)
        if parent_gone:
            raise ParentGone
        returncode = os.waitstatus_to_exitcode(status)
        obs = verdict.Observation(
            limits=limits, done=chan.done, syntax=chan.syntax, exception=chan.exception, setup=chan.setup,
            timed_out=timed_out, returncode=returncode, cpu_s=usage.ru_utime + usage.ru_stime,
            stderr_tail=err.text()[-2000:],
        )
        status_, detail = verdict.decide(obs)
        truncated = [name for name, s in (("stdout", out), ("stderr", err)) if s.truncated]
        if chan.truncated:
            truncated.append("values")
        return ExecResult(
            status=status_, detail=detail, stdout=out.text(), stderr=err.text(), duration_s=duration,
            values=chan.values, isolation=dict(self.isolation), returncode=returncode, truncated=truncated,
        )

    def _supervise(self, pid: int, streams: dict, deadline: float) -> tuple[bool, bool]:
        """Read output until the program exits or the deadline passes: (timed_out, parent_gone)."""
        poller = select.poll()
        for fd in streams:
            poller.register(fd, select.POLLIN)
        try:
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pidfd = None
        poller.register(self.sock, select.POLLIN)
        open_fds = set(streams)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True, False
                wait_ms = remaining * 1000 if pidfd is not None else min(remaining * 1000, 5.0)
                for fd, _ in poller.poll(max(1, int(wait_ms + 0.999))):
                    if fd == pidfd:
                        return False, False
                    if fd == self.sock.fileno():
                        if not self.sock.recv(1, socket.MSG_PEEK):
                            return False, True
                        continue
                    if fd in open_fds:
                        data = os.read(fd, READ_CHUNK)
                        if data:
                            streams[fd].feed(data)
                        else:
                            poller.unregister(fd)
                            open_fds.discard(fd)
                if pidfd is None and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return False, False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _drain(self, streams: dict) -> None:
        """After every writer is dead: read what is left in the pipes (bounded by their size)."""
        for fd, sink in streams.items():
            os.set_blocking(fd, False)
            while True:
                try:
                    data = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    break  # a writer survived (should not happen after the kill): do not wait for it
                if not data:
                    break
                sink.feed(data)

    def _kill_everything(self, pid: int | None) -> None:
        """SIGKILL the program and everything it started, wherever it went."""
        if self.uid is not None:
            oslevel.kill_uid(self.uid)
            return
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        oslevel.kill_descendants()


def _interpreter_paths() -> list[str]:
    paths = {os.path.dirname(os.path.realpath(sys.executable)), sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p))
    paths.add(os.path.dirname(os.path.realpath(confine.RUNNER_PATH)))  # this package, wherever it is checked out
    return sorted(paths)


def _check_interpreter_reachable(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    ok = os.access(sys.executable, os.X_OK) and os.access(confine.RUNNER_PATH, os.R_OK) and all(
        os.access(p, os.R_OK | os.X_OK) for p in _interpreter_paths() if "site-packages" in p or p == sys.prefix
    )
    os._exit(0 if ok else 1)


def _probe(action) -> bool:
    """Run `action` in a throwaway child; True when it exits 0."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def main(sock_fd: int, config: dict) -> None:
    """Entry point in the fork server's child: set up, serve, exit."""
    sock = socket.socket(fileno=sock_fd)
    code = 0
    try:
        worker = Worker(sock, WorkerConfig(**config))
    except Exception as exc:  # noqa: BLE001 - tell the harness why, then die
        log.debug("worker setup failed", exc_info=True)
        try:
            protocol.send_msg(sock, {"t": "failed", "detail": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass
        os._exit(1)
    try:
        worker.serve()
    except BaseException:  # noqa: BLE001
        log.exception("worker crashed")
        code = 1
    os._exit(code)
