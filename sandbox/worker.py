"""A worker: a warm copy of the fork server that runs one program at a time and supervises it.

Set up once: subreaper (orphans come back to us), a private uid when root (locked across
processes), a mount namespace (interpreter reachable by that uid, private /tmp and /dev/shm), a
network and IPC namespace, and a seccomp filter its programs inherit. Per job: a fresh directory,
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
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import confine, oslevel, protocol, runner, verdict
from .limits import JUDGE_MESSAGE_MAX, ExecResult, Limits, Status

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
    hidden_paths: tuple[str, ...] = ()  # files/directories unreadable inside (the answer keys)


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
    """The program's value pipe (`__emit__`): JSON lines kept up to `cap` bytes. Program data only:
    nothing here is ever a verdict (docs/sandbox.md, "Verdict integrity")."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buffer = bytearray()
        self.skipping = False  # inside an over-long line
        self.values: list = []
        self.value_bytes = 0
        self.truncated = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > self.cap:  # a value too big to keep
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
        if self.value_bytes + len(line) > self.cap:
            self.truncated = True
            return
        try:
            msg = protocol.json.loads(line)
            if msg["t"] != "v":
                return
        except (ValueError, KeyError, TypeError):
            return  # not a value line (e.g. a forked grandchild interleaving): ignore
        self.values.append(msg.get("v"))
        self.value_bytes += len(line)


DETAIL_KEEP = 8000  # characters of detail text kept per process
_CRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


class VerdictReader:
    """Datagrams on the worker's verdict socket, attributed by the kernel's sender credentials.

    Only the program's main process (`pid`) reports its kind, and only its first `K` record
    counts; `P<pid>` (after the kind) names the judge process, whose `R` gets the judge's code
    and input and whose first `J` / `K` record is the judge's verdict. Records from any other
    process (a child, a fresh interpreter the program started, another machine user) are dropped.
    """

    def __init__(self, sock: socket.socket, pid: int, judge_message: bytes | None) -> None:
        self.sock, self.pid, self.judge_message = sock, pid, judge_message
        self.kind: str | None = None
        self.detail = ""
        self.judge_pid: int | None = None
        self.judge_sent = False
        self.judge_kind: str | None = None
        self.judge_detail = ""
        self.early: dict[int, list] = {}  # records of processes not (yet) announced: the judge's
        # first record can arrive before its parent's announcement (two processes, one queue)

    def read(self) -> None:
        """Everything queued on the socket now (non-blocking)."""
        while True:
            try:
                data, ancdata, _, address = self.sock.recvmsg(65536, socket.CMSG_SPACE(_CRED.size))
            except (BlockingIOError, InterruptedError):
                return
            sender = None
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(cdata) >= _CRED.size:
                    sender = _CRED.unpack(cdata[:_CRED.size])[0]
            if sender is not None and data:
                self._record(sender, data, address)

    def _record(self, sender: int, data: bytes, address) -> None:
        tag, body = data[:1], data[1:]
        if sender == self.pid:
            if self.kind is None:
                if tag == b"K":
                    self.kind = body.decode("ascii", "replace")
            elif tag == b"D" and len(self.detail) < DETAIL_KEEP:
                self.detail += body.decode("utf-8", "replace")[: DETAIL_KEEP - len(self.detail)]
            elif tag == b"P" and self.judge_pid is None and self.judge_message is not None and body.isdigit():
                pid = int(body)
                if pid > 1 and pid != self.pid:
                    self.judge_pid = pid
                    for early_data, early_address in self.early.pop(pid, ()):
                        self._record(pid, early_data, early_address)
                    self.early.clear()
        elif self.judge_pid is None:
            if self.judge_message is not None and (sender in self.early or len(self.early) < 64):
                queue = self.early.setdefault(sender, [])
                if len(queue) < 8:
                    queue.append((data, address))
        elif sender == self.judge_pid:
            if tag == b"R" and not self.judge_sent and address:
                self.judge_sent = True
                try:
                    self.sock.sendto(self.judge_message, address)
                except OSError as exc:
                    self.judge_kind, self.judge_detail = "K", f"the judge's input could not be sent: {exc}"
            elif tag in (b"J", b"K") and self.judge_kind is None:
                self.judge_kind = data.decode("ascii", "replace")
            elif tag == b"D" and self.judge_kind is not None and len(self.judge_detail) < runner.JUDGE_DETAIL_MAX:
                self.judge_detail += body.decode("utf-8", "replace")

    def judge_result(self) -> dict:
        passed = self.judge_kind == "J1"
        try:
            detail = _encodable(protocol.json.loads(self.judge_detail)) if self.judge_detail else None
        except (ValueError, RecursionError):
            detail = {"text": self.judge_detail}
        if self.judge_kind is None:
            if self.kind is None:
                why = "the program did not end (no judge ran)"
            elif self.judge_pid is None:
                why = f"no judge ran: the program's process ended without starting it ({self.kind})"
            else:
                why = "the judge gave no verdict (killed, or past the wall-clock limit)"
            detail = {"judge_error": why}
        elif self.judge_kind.startswith("K"):
            detail = {"judge_error": self.judge_detail or f"the judge process reported {self.judge_kind[1:]}"}
        return {"passed": passed, "detail": detail}


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
        host_sockets = oslevel.unix_socket_paths()  # read in the host's network namespace
        if is_root and cfg.private_mounts and oslevel.unshare(oslevel.CLONE_NEWNS):
            needed = _interpreter_paths()
            try:
                oslevel.private_mounts(needed, shared.dirs_top_level())
                private = os.path.realpath("/tmp") in shared.dirs_top_level()
                self.isolation["host_sockets"] = oslevel.hide_run_dirs(host_sockets)
                self.isolation["hidden"] = oslevel.hide_paths(cfg.hidden_paths)
            except OSError as exc:
                log.warning("private mounts failed (%s); programs share /tmp with the machine", exc)
        self.isolation["filesystem"] = "private-tmp" if private else ("uid-cleanup" if self.uid else "shared")
        self.shared = oslevel.SharedDirs() if self.uid is not None else None

        network = cfg.network
        self.ipc_per_program = False
        if network in ("auto", "netns"):
            if oslevel.unshare(oslevel.CLONE_NEWNET | oslevel.CLONE_NEWIPC):
                network, self.isolation["ipc"] = "netns", "ipcns"
                self.ipc_per_program = is_root and _probe(lambda: oslevel.unshare(oslevel.CLONE_NEWIPC)
                                                          or os._exit(1))
                if self.ipc_per_program:
                    self.isolation["ipc"] = "ipcns-per-program"
            elif oslevel.unshare(oslevel.CLONE_NEWNET):
                network = "netns"
            elif cfg.network == "netns":
                raise OSError("no network namespace can be created here (unshare(CLONE_NEWNET) refused)")
            else:
                network = "socket-blocked"
        oslevel.prepare_filters()
        if not _probe(lambda: oslevel.install_filter() or os._exit(1)):
            raise OSError("seccomp filters cannot be installed here (prctl(PR_SET_SECCOMP) refused); the sandbox "
                          "needs them to refuse kernel keyrings and ptrace to programs")
        if network == "socket-blocked" and not _probe(lambda: oslevel.install_socket_filter() or os._exit(1)):
            log.warning("neither a network namespace nor a seccomp filter is available: programs have network")
            network = "none"
        self.network = network
        self.isolation["network"] = network
        self.isolation["seccomp"] = "keyrings,ptrace,memfd,io_uring"
        # The verdict socket: abstract (no file), in our network namespace; every datagram carries
        # its sender's pid from the kernel (SO_PASSCRED).
        self.verdict_address = f"\0codegen-sandbox-verdict-{os.getpid()}-{os.urandom(8).hex()}"
        self.verdict_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.verdict_sock.bind(self.verdict_address)
        self.verdict_sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.verdict_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.verdict_sock.setblocking(False)
        if cfg.mode == "fork":  # every program process forked from here inherits it, unarmed
            runner.install_hook(self.verdict_address, JUDGE_MESSAGE_MAX)

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
        # The seccomp filter, once, here: every program process inherits it (and so does all it
        # starts), and nothing this worker does needs what it refuses.
        oslevel.install_filter(block_sockets=network == "socket-blocked")
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
                try:
                    protocol.send_msg(self.sock, {"t": "result", **result.to_dict()})
                except OSError:  # the harness is gone (killed): nothing to report to, nothing to say
                    break
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
            verdict_address=self.verdict_address, ipc_namespace=self.ipc_per_program,
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
        judge = msg.get("judge")
        judge_message = None
        if judge is not None:
            judge_message = protocol.json.dumps({"code": judge, "input": msg.get("judge_input")},
                                                ensure_ascii=False).encode("utf-8", "surrogatepass")
        job = confine.JobSpec(msg["program"], limits, protocol.decode_files(msg.get("files") or {}),
                              profile=msg.get("profile"), judged=judge is not None)
        self._drop_stale_datagrams()
        started_ns = self.shared.snapshot() if self.shared else 0
        start = time.monotonic()
        child = self._give_job(job)
        pid = child.pid
        out, err, chan = Capture(limits.output_bytes), Capture(limits.output_bytes), Channel(limits.output_bytes)
        reader = VerdictReader(self.verdict_sock, pid, judge_message)
        streams = {child.out_r: out, child.err_r: err, child.ch_r: chan}
        try:
            timed_out, parent_gone = self._supervise(pid, streams, reader, start + limits.wall_s)
            if timed_out or parent_gone:
                self._kill_everything(pid)
            _, status, usage = os.wait4(pid, 0)
            duration = time.monotonic() - start
            if oslevel.has_children():  # something outlived the program: a daemon, a setsid grandchild
                self._kill_everything(pid)
            oslevel.reap_all()
            self._drain(streams)
            reader.read()
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
            limits=limits, kind=reader.kind, detail=reader.detail, timed_out=timed_out and reader.kind is None,
            returncode=returncode, cpu_s=usage.ru_utime + usage.ru_stime, stderr_tail=err.text()[-2000:],
        )
        status_, detail = verdict.decide(obs)
        truncated = [name for name, s in (("stdout", out), ("stderr", err)) if s.truncated]
        if chan.truncated:
            truncated.append("values")
        return ExecResult(
            status=status_, detail=detail, stdout=out.text(), stderr=err.text(), duration_s=duration,
            values=chan.values, isolation=dict(self.isolation), returncode=returncode, truncated=truncated,
            judge=reader.judge_result() if judge is not None else None,
        )

    def _drop_stale_datagrams(self) -> None:
        """Whatever a previous program's leftovers sent after its verdict: never read as this one's."""
        while True:
            try:
                self.verdict_sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return

    def _supervise(self, pid: int, streams: dict, reader: VerdictReader, deadline: float) -> tuple[bool, bool]:
        """Read output and verdict records until the program (and its judge, if any) has ended or
        the deadline passes: (timed_out, parent_gone)."""
        poller = select.poll()
        for fd in streams:
            poller.register(fd, select.POLLIN)
        vfd = self.verdict_sock.fileno()
        poller.register(vfd, select.POLLIN)
        pidfds: dict[int, int] = {}  # pidfd -> pid, for the main process and then the judge

        def watch(target: int) -> bool:
            try:
                fd = os.pidfd_open(target)
            except (AttributeError, OSError):
                return False
            pidfds[fd] = target
            poller.register(fd, select.POLLIN)
            return True

        polling_only = not watch(pid)
        poller.register(self.sock, select.POLLIN)
        open_fds = set(streams)
        waiting_for = pid
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True, False
                wait_ms = remaining * 1000 if not polling_only else min(remaining * 1000, 5.0)
                ended = False
                for fd, _ in poller.poll(max(1, int(wait_ms + 0.999))):
                    if fd in pidfds:
                        ended = ended or pidfds[fd] == waiting_for
                    elif fd == vfd:
                        reader.read()
                    elif fd == self.sock.fileno():
                        if not self.sock.recv(1, socket.MSG_PEEK):
                            return False, True
                    elif fd in open_fds:
                        data = os.read(fd, READ_CHUNK)
                        if data:
                            streams[fd].feed(data)
                        else:
                            poller.unregister(fd)
                            open_fds.discard(fd)
                if polling_only and not ended:
                    ended = _exited(waiting_for)
                if not ended:
                    continue
                reader.read()  # what the process sent before it ended
                if waiting_for == pid and reader.judge_pid is not None:
                    waiting_for = reader.judge_pid  # the program ended; its judge runs on (until it exits)
                    if not watch(waiting_for):
                        polling_only = True
                    if polling_only and _exited(waiting_for):
                        reader.read()
                        return False, False
                    continue
                return False, False
        finally:
            for fd in pidfds:
                os.close(fd)

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


def _encodable(value, depth: int = 0):
    """`value` with every lone surrogate in its strings written as `\\udcxx` text (any record
    that holds it can then be written as UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth > 50:
        return None
    if isinstance(value, list):
        return [_encodable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_encodable(k, depth + 1): _encodable(v, depth + 1) for k, v in value.items()}
    return value


def _exited(pid: int) -> bool:
    """Without pidfds: has `pid` (a child or an adopted descendant) ended? (Zombies count.)"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:][:1] in (b"Z", b"X")
    except OSError:
        return True


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
    except (OSError, protocol.ChannelClosed, ParentGone):
        pass  # the harness went away (e.g. it was killed): exit quietly, its programs are killed
    except BaseException as exc:  # noqa: BLE001 - one line, never a traceback on the harness's stderr
        try:
            log.error("sandbox worker %d stopped: %s: %s", os.getpid(), type(exc).__name__, exc)
        except BaseException:  # noqa: BLE001
            pass
        code = 1
    os._exit(code)
