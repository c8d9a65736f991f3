"""The first thing a freshly forked program process does: confine itself, then run the program.

Runs in the worker's forked child, in two halves. `_prepare`, still with the worker's privileges
and before the job is known: own session (so the worker can kill the group), stdin from
/dev/null and stdout/stderr/channel on fixed fds (all else closed), default signal handlers, the
the program's directory as cwd (the seccomp filter is the worker's, inherited).
`_finish`, once the job is known: an unprivileged uid, the parent-death signal, the job's files,
rlimits (address space, CPU, file size, open files, processes, core=0). The environment is the
worker's, which the worker scrubbed once. Then either `runner.execute` in this warm interpreter
(fork mode) or an `execve` of a fresh `python -I runner.py` that inherits all of the above
(spawn mode).

In fork mode the worker forks the next child ahead of time: it runs `_prepare` (the costly part
of a fork: page faults, fd and signal set-up) while the previous program is still running, then
blocks, still as the worker's uid, until the job arrives on its job pipe. A waiting child never
runs as the program uid, so a running program cannot signal or trace its successor.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import socket
import sys
from dataclasses import dataclass, field

from . import oslevel, runner
from .limits import JUDGE_MESSAGE_MAX, Limits

SETUP_FAILED_EXIT = 70  # exit status when confinement itself failed (verdict: sandbox_error)
RUNNER_PATH = os.path.abspath(runner.__file__)
MB = 1 << 20


@dataclass
class ChildSpec:
    """What a child needs before its job is known (fixed per worker, but for the fds)."""

    workdir: str
    stdout_fd: int
    stderr_fd: int
    channel_fd: int
    worker_pid: int
    mode: str = "fork"  # or "spawn"
    uid: int | None = None  # None: keep the worker's uid (not root, or dropping was disabled)
    seccomp: bool = False  # the worker's seccomp filter blocks sockets (no network namespace)
    hide_sys_path: tuple[str, ...] = ()  # our own package's directory: not the program's business
    verdict_address: str = ""  # the worker's abstract unix datagram socket (runner.py)
    ipc_namespace: bool = False  # a fresh IPC namespace per program (SysV IPC, POSIX message queues)


@dataclass
class JobSpec:
    program: str
    limits: Limits
    files: dict[str, bytes] = field(default_factory=dict)
    profile: dict | None = None
    judged: bool = False


def start(spec: ChildSpec, job: JobSpec | None = None, job_fd: int | None = None) -> None:
    """Never returns: runs the program or exits with SETUP_FAILED_EXIT after reporting why.

    With `job` None, the job is read (pickled, from the worker) from `job_fd` after `_prepare`.
    """
    channel = spec.channel_fd
    verdict = -1
    try:
        channel, verdict = _prepare(spec, keep_fd=job_fd)
        if spec.mode == "fork":
            sys.path[:] = ["", *(p for p in sys.path if p and p not in spec.hide_sys_path)]
            sys.argv = [""]
            runner.prepare(channel)  # fresh sys.std*, random state, __main__, __emit__
        if job is None:
            with os.fdopen(job_fd, "rb") as f:
                data = f.read()
            if not data:
                os._exit(0)  # the worker is gone or discarded us before giving a job
            job = pickle.loads(data)
        _finish(spec, job)
        if spec.mode == "spawn":
            _exec_fresh_interpreter(spec, job, channel, verdict)
        runner.execute(job.program, channel, verdict, spec.verdict_address, job.profile, job.judged)
    except BaseException as exc:  # noqa: BLE001 - report, never fall back into the worker's code
        try:  # no program code has run yet: this process's records are still ours
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.sendto(b"Ksetup", spec.verdict_address)
            sock.sendto(b"D" + f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace")[:4000],
                        spec.verdict_address)
        except BaseException:  # noqa: BLE001
            pass
    os._exit(SETUP_FAILED_EXIT)


def _prepare(spec: ChildSpec, keep_fd: int | None) -> tuple[int, int]:
    os.setsid()
    if spec.ipc_namespace:
        # SysV IPC and POSIX message queues of this program die with it (nothing reaches the next)
        if not oslevel.unshare(oslevel.CLONE_NEWIPC):
            raise OSError("unshare(CLONE_NEWIPC) failed for a program process")
    oslevel.prctl(oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)  # while waiting for the job, too
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    channel = min(1000, soft_nofile - 3)  # high, out of the way of the program's own fds
    verdict = channel + 1
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(spec.stdout_fd, 1)
    os.dup2(spec.stderr_fd, 2)
    os.dup2(spec.channel_fd, channel)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # unconnected: every send names the
    os.dup2(sender.fileno(), verdict, inheritable=False)  # address, so the audit hook sees it
    sender.close()
    keep = sorted({channel, verdict, *(() if keep_fd is None else (keep_fd,))})
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, soft_nofile)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.chdir(spec.workdir)
    return channel, verdict


def _finish(spec: ChildSpec, job: JobSpec) -> None:
    if spec.uid is not None:
        os.setgroups([])
        os.setresgid(spec.uid, spec.uid, spec.uid)
        os.setresuid(spec.uid, spec.uid, spec.uid)
    oslevel.prctl(oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)  # again: the uid change cleared it
    # Non-dumpable: no other process of the program (a fresh interpreter it starts) may open this
    # one's /proc/PID/mem (docs/sandbox.md, "Verdict integrity"); the uid change already did it.
    oslevel.prctl(oslevel.PR_SET_DUMPABLE, 0)
    if os.getppid() != spec.worker_pid:
        os._exit(SETUP_FAILED_EXIT)  # the worker died before we got here
    os.umask(0o077)
    for name, content in job.files.items():
        path = os.path.join(spec.workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    _set_limits(job.limits, nproc=spec.uid is not None)


def _set_limits(limits: Limits, nproc: bool) -> None:
    def cap(which: int, value: int) -> None:
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, limits.memory_mb * MB)
    cpu = limits.effective_cpu_s
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard_cpu == resource.RLIM_INFINITY or hard_cpu > cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second later
    cap(resource.RLIMIT_FSIZE, limits.file_size_mb * MB)
    cap(resource.RLIMIT_NOFILE, limits.open_files)
    cap(resource.RLIMIT_CORE, 0)
    if nproc:  # counts every process and thread of the uid: only meaningful with a private uid
        cap(resource.RLIMIT_NPROC, limits.max_processes)


def _exec_fresh_interpreter(spec: ChildSpec, job: JobSpec, channel: int, verdict: int) -> None:
    """Spawn mode: the program's spec travels in a pipe, everything else is inherited by execve."""
    data = json.dumps({"program": job.program, "channel_fd": channel, "verdict_fd": verdict,
                       "address": spec.verdict_address, "profile": job.profile, "judged": job.judged,
                       "judge_limit": JUDGE_MESSAGE_MAX}).encode("utf-8", "surrogatepass")
    path = os.path.join(spec.workdir, ".sandbox-spec")  # (memfd_create is refused by the filter)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    runner._write_all(fd, data)
    os.unlink(path)
    os.lseek(fd, 0, os.SEEK_SET)
    memfd = fd
    os.set_inheritable(memfd, True)
    os.set_inheritable(channel, True)
    os.set_inheritable(verdict, True)
    os.execve(sys.executable, [sys.executable, "-I", RUNNER_PATH, str(memfd)], dict(os.environ))
