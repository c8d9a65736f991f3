"""The first thing a freshly forked program process does: confine itself, then run the program.

Runs in the worker's forked child, still with the worker's privileges, and in this order:
own session (so the worker can kill the group), stdin from /dev/null and stdout/stderr/channel on
fixed fds (all else closed), default signal handlers, the seccomp socket filter when there is no
network namespace, the program's directory as cwd, an unprivileged uid, the parent-death signal,
the job's files, rlimits (address space, CPU, file size, open files, processes, core=0), and a
scrubbed environment. Then either `runner.execute` in this warm interpreter (fork mode) or an
`execve` of a fresh `python -I runner.py` that inherits all of the above (spawn mode).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from dataclasses import dataclass, field

from . import oslevel, runner
from .limits import Limits

SETUP_FAILED_EXIT = 70  # exit status when confinement itself failed (verdict: sandbox_error)
RUNNER_PATH = os.path.abspath(runner.__file__)
MB = 1 << 20


@dataclass
class ChildSpec:
    program: str
    token: str
    limits: Limits
    workdir: str
    stdout_fd: int
    stderr_fd: int
    channel_fd: int
    worker_pid: int
    mode: str = "fork"  # or "spawn"
    uid: int | None = None  # None: keep the worker's uid (not root, or dropping was disabled)
    seccomp: bool = False  # install the socket filter (no network namespace available)
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] | None = None  # None: keep the (already scrubbed) environment of the worker
    hide_sys_path: tuple[str, ...] = ()  # our own package's directory: not the program's business


def start(spec: ChildSpec) -> None:
    """Never returns: runs the program or exits with SETUP_FAILED_EXIT after reporting why."""
    channel = spec.channel_fd
    try:
        channel = _confine(spec)
        if spec.mode == "spawn":
            _exec_fresh_interpreter(spec, channel)
        sys.path[:] = ["", *(p for p in sys.path if p and p not in spec.hide_sys_path)]
        sys.argv = [""]
        runner.execute(spec.program, spec.token, channel)
    except BaseException as exc:  # noqa: BLE001 - report, never fall back into the worker's code
        try:
            message = json.dumps({"t": "setup", "detail": f"{type(exc).__name__}: {exc}"}) + "\n"
            os.write(channel, message.encode())
        except BaseException:  # noqa: BLE001
            pass
    os._exit(SETUP_FAILED_EXIT)


def _confine(spec: ChildSpec) -> int:
    os.setsid()
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    channel = min(1000, soft_nofile - 2)  # high, out of the way of the program's own fds
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(spec.stdout_fd, 1)
    os.dup2(spec.stderr_fd, 2)
    os.dup2(spec.channel_fd, channel)
    os.closerange(3, channel)
    os.closerange(channel + 1, soft_nofile)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])

    if spec.seccomp:
        oslevel.install_socket_filter()
    os.chdir(spec.workdir)
    if spec.uid is not None:
        os.setgroups([])
        os.setresgid(spec.uid, spec.uid, spec.uid)
        os.setresuid(spec.uid, spec.uid, spec.uid)
    oslevel.prctl(oslevel.PR_SET_PDEATHSIG, signal.SIGKILL)  # set after the uid change, which clears it
    if os.getppid() != spec.worker_pid:
        os._exit(SETUP_FAILED_EXIT)  # the worker died between fork and here
    os.umask(0o077)
    for name, content in spec.files.items():
        path = os.path.join(spec.workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    _set_limits(spec.limits, nproc=spec.uid is not None)
    if spec.env is not None:
        os.environ.clear()
        os.environ.update(spec.env)
    return channel


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


def _exec_fresh_interpreter(spec: ChildSpec, channel: int) -> None:
    """Spawn mode: the program's spec travels in a memfd, everything else is inherited by execve."""
    data = json.dumps({"program": spec.program, "token": spec.token, "channel_fd": channel}).encode()
    memfd = os.memfd_create("sandbox-spec", 0)  # close-on-exec unset: the new interpreter reads it
    os.write(memfd, data)
    os.lseek(memfd, 0, os.SEEK_SET)
    os.set_inheritable(channel, True)
    os.execve(sys.executable, [sys.executable, "-I", RUNNER_PATH, str(memfd)], dict(os.environ))
