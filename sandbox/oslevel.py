"""Linux primitives the sandbox is built from: namespaces, seccomp, uid slots, killing and cleanup.

Everything here acts from outside the program (docs/design.md §3): the kernel enforces it, so nothing the
program does to its own interpreter (`importlib.reload(os)`, `posix.fork`, a bare `except:`)
can undo it. Each function degrades gracefully and says so, because CI containers often forbid
namespaces; the caller records which mechanism was in force in `ExecResult.isolation`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import platform
import pwd
import shutil
import signal
import stat
import struct
import time
from pathlib import Path

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

UID_BASE = 60000  # worker k runs its programs as uid UID_BASE + k (skipping uids in /etc/passwd)
UID_SLOTS = 4096


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> bool:
    """Move the calling process into new namespaces; False when the kernel or container forbids it."""
    try:
        _check(_libc.unshare(ctypes.c_int(flags)), "unshare")
        return True
    except OSError as exc:
        log.debug("unshare(%#x) not allowed: %s", flags, exc)
        return False


def prctl(option: int, arg: int = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl({option})")


def become_subreaper() -> None:
    """Orphaned descendants (e.g. a `setsid` grandchild) are re-parented to us, not to init."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


# --- a private view of the filesystem (mount namespace) -------------------------------------------

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC = 8


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def private_mounts(needed: list[str], shared: list[str], tmpfs_size: str = "512m") -> list[str]:
    """In a new mount namespace (already unshared, as root): make `needed` reachable, `shared` private.

    `needed` are the interpreter's directories (prefix, site-packages). If one lies under a
    directory others may not enter (e.g. /root, mode 700), that directory is covered with a small
    tmpfs holding only bind mounts of the needed children, so an unprivileged uid can import
    modules while the rest of it (tokens, keys, caches) stays invisible. Every world-writable
    directory in `shared` (/tmp, /dev/shm, ...) gets a private tmpfs, so nothing a program writes
    there reaches the machine. Returns the directories so covered.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount here propagates to the host
    covered: list[str] = []
    for _ in range(16):  # each round opens one more blocked directory level
        blocked: dict[str, set[str]] = {}
        for path in needed:
            parts = Path(path).parts
            for depth in range(1, len(parts) - 1):
                parent = os.path.join(*parts[: depth + 1])
                try:
                    mode = os.stat(parent).st_mode
                except OSError:
                    break
                if not mode & stat.S_IXOTH:
                    blocked.setdefault(parent, set()).add(parts[depth + 1])
                    break
        if not blocked:
            break
        for parent, children in blocked.items():
            handles = {child: os.open(os.path.join(parent, child), os.O_PATH | os.O_CLOEXEC) for child in children}
            st = os.stat(parent)
            mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=755,size=1m,uid={st.st_uid},gid={st.st_gid}")
            for child, fd in handles.items():
                target = os.path.join(parent, child)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.mkdir(target, 0o755)
                else:
                    open(target, "wb").close()
                mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
                os.close(fd)
            covered.append(parent)
    for path in shared:
        # Needed directories inside a shared one (a checkout or venv under /tmp) stay reachable:
        # bound back, read-only, into the private tmpfs at the same path.
        inside = sorted({p for p in needed if _is_within(p, path) and os.path.realpath(p) != os.path.realpath(path)
                         and os.path.isdir(p)})
        inside = [p for p in inside if not any(q != p and _is_within(p, q) for q in inside)]
        handles = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in inside}
        # noexec: a program cannot map a shared library it wrote (native code behind the audit hook)
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={tmpfs_size}")
        for target, fd in handles.items():
            os.makedirs(target, 0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
            os.close(fd)
    return covered


RUN_DIRS = ("/run", "/var/run")  # where daemons put their sockets


def unix_socket_paths() -> list[str]:
    """Filesystem paths of the unix sockets bound in this network namespace (/proc/net/unix)."""
    try:
        lines = Path("/proc/net/unix").read_text(errors="replace").splitlines()[1:]
    except OSError:
        return []
    paths = set()
    for line in lines:
        cols = line.split()
        if len(cols) >= 8 and cols[-1].startswith("/"):
            paths.add(cols[-1])
    return sorted(paths)


def hide_run_dirs(host_sockets: list[str], scratch: tuple[str, ...] = ()) -> list[str]:
    """In our mount namespace: an empty tmpfs over /run (and /var/run), and /dev/null over every
    other unix socket a host process had bound, so no program reaches a host daemon through a
    socket file. Returns what was covered. (A socket bound later, outside /run, stays reachable:
    docs/sandbox.md.)"""
    covered: list[str] = []
    for path in RUN_DIRS:
        real = os.path.realpath(path)
        if real in covered or not os.path.isdir(real):
            continue
        mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
        mount(None, real, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
        covered.append(real)
    for path in host_sockets:
        real = os.path.realpath(path)
        if any(_is_within(real, d) for d in covered) or any(_is_within(real, d) for d in scratch):
            continue
        try:
            if not stat.S_ISSOCK(os.lstat(real).st_mode):
                continue
            mount("/dev/null", real, None, MS_BIND)
            covered.append(real)
        except OSError:
            continue
    return covered


def hide_paths(paths) -> list[str]:
    """In our mount namespace: each existing path made unreadable (a directory gets an empty
    read-only tmpfs over it, a file /dev/null). For answer keys: dataset files and caches."""
    hidden: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4k")
            mount(None, real, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4k")
        else:
            mount("/dev/null", real, None, MS_BIND)
        hidden.append(real)
    return hidden


def _is_within(path: str, parent: str) -> bool:
    path, parent = os.path.realpath(path), os.path.realpath(parent)
    return path == parent or path.startswith(parent.rstrip("/") + "/")


# --- seccomp: the network fallback when no network namespace can be made --------------------

# arch, and the syscall numbers the filter names (x86_64 / aarch64 tables of the kernel)
_AUDIT_ARCH = {
    "x86_64": (0xC000003E, {"socket": 41, "ptrace": 101, "add_key": 248, "request_key": 249, "keyctl": 250,
                            "process_vm_readv": 310, "process_vm_writev": 311, "memfd_create": 319,
                            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                            "pidfd_getfd": 438}),
    "aarch64": (0xC00000B7, {"socket": 198, "ptrace": 117, "add_key": 217, "request_key": 218, "keyctl": 219,
                             "process_vm_readv": 270, "process_vm_writev": 271, "memfd_create": 279,
                             "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                             "pidfd_getfd": 438}),
}
# Refused for every program: kernel keyrings (a key outlives the program, and the uid's user
# keyring outlives the harness), another process's memory or fds (ptrace, process_vm_*,
# pidfd_getfd), executable anonymous files (memfd_create: native code with no file on a noexec
# mount), io_uring (it acts behind the filter's back).
DENIED_SYSCALLS = ("add_key", "request_key", "keyctl", "ptrace", "process_vm_readv", "process_vm_writev",
                   "pidfd_getfd", "memfd_create", "io_uring_setup", "io_uring_enter", "io_uring_register")


def install_filter(block_sockets: bool = False) -> bool:
    """Seccomp filter for a program process (inherited by all it starts): the `DENIED_SYSCALLS`
    fail with EPERM, and with `block_sockets` socket() fails with EACCES for every family but
    AF_UNIX (the network fallback when no network namespace can be made).

    Returns False on an architecture we have no syscall numbers for (docs/sandbox.md says what
    is then missing).
    """
    fprog = _FILTERS.get(block_sockets)
    if fprog is None:
        fprog = _build_filter(block_sockets)
        if fprog is None:
            return False
        _FILTERS[block_sockets] = fprog
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.byref(fprog[0]), ctypes.c_ulong(0), ctypes.c_ulong(0)), "seccomp")
    return True


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_FILTERS: dict = {}  # built once per process (the worker), installed in every program process


def prepare_filters() -> None:
    """Build both filters now, so that a forked program process only installs one."""
    for block_sockets in (False, True):
        if block_sockets not in _FILTERS:
            built = _build_filter(block_sockets)
            if built is not None:
                _FILTERS[block_sockets] = built


def _build_filter(block_sockets: bool):
    spec = _AUDIT_ARCH.get(platform.machine())
    if spec is None:
        return None
    arch, numbers = spec
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow = 0x7FFF0000  # SECCOMP_RET_ALLOW
    eperm, eacces = 0x00050000 | errno.EPERM, 0x00050000 | errno.EACCES  # SECCOMP_RET_ERRNO
    program = [
        (ld, 0, 0, 4),  # A = seccomp_data.arch
        (jeq, 1, 0, arch),  # native arch: go on; foreign ABI (int 0x80, compat): deny
        (ret, 0, 0, eperm),
        (ld, 0, 0, 0),  # A = seccomp_data.nr
        (jge, 0, 1, 0x40000000),  # x32 syscall numbers: deny
        (ret, 0, 0, eperm),
    ]
    for name in DENIED_SYSCALLS:
        program += [(jeq, 0, 1, numbers[name]), (ret, 0, 0, eperm)]
    if block_sockets:
        program += [
            (jeq, 1, 0, numbers["socket"]),
            (ret, 0, 0, allow),
            (ld, 0, 0, 16),  # A = low 32 bits of args[0]: the address family
            (jeq, 0, 1, 1),  # AF_UNIX (local pipes between the program's own processes) is fine
            (ret, 0, 0, allow),
            (ret, 0, 0, eacces),
        ]
    else:
        program.append((ret, 0, 0, allow))
    raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    return _SockFprog(len(program), ctypes.addressof(buf)), buf  # (keep the buffer alive)


def install_socket_filter() -> bool:
    """The network fallback alone (see `install_filter`)."""
    return install_filter(block_sockets=True)


# --- uid slots ------------------------------------------------------------------------------

def acquire_uid_slot(lock_dir: Path) -> tuple[int, int]:
    """Lock a free unprivileged uid for one worker: returns (uid, lock fd). Held until the fd closes.

    The lock (flock) spans processes, so two harnesses on one machine (e.g. torchrun ranks) never
    share a uid, and a crashed worker's uid is freed by the kernel.
    """
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for uid in range(UID_BASE, UID_BASE + UID_SLOTS):
        try:
            pwd.getpwuid(uid)
            continue  # a real account: never run programs (or kill processes) as it
        except KeyError:
            pass
        fd = lock_uid(lock_dir, uid)
        if fd is not None:
            return uid, fd
    raise RuntimeError(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are in use; close other harnesses")


def lock_uid(lock_dir: Path | str, uid: int, wait_s: float = 0.0) -> int | None:
    """The lock fd for `uid`, or None if another process still holds it after `wait_s`."""
    fd = os.open(os.path.join(lock_dir, f"uid-{uid}.lock"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)


# --- killing everything a program started ------------------------------------------------------

def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, however it detached (setsid, double fork, new group).

    A helper drops to `uid` and calls kill(-1, SIGKILL): the kernel walks the whole process list
    under the tasklist lock, so no process of that uid can fork its way past the walk.
    """
    pid = os.fork()
    if pid == 0:  # the helper: never returns to Python code of the worker
        code = 0
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        except BaseException:  # noqa: BLE001 - nothing may escape a forked helper
            code = 1
        os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # in the fork server, its SIGCHLD handler may have reaped the helper
        return
    if os.waitstatus_to_exitcode(status) != 0:
        log.warning("the helper that kills uid %d processes failed (status %#x)", uid, status)


def descendants(root: int) -> set[int]:
    """All live descendants of `root`, from one scan of /proc."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields_after_comm = data[data.rindex(b")") + 2:].split()
        parent[int(entry.name)] = int(fields_after_comm[1])
    children: dict[int, list[int]] = {}
    for child, ppid in parent.items():
        children.setdefault(ppid, []).append(child)
    found: set[int] = set()
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def kill_descendants() -> None:
    """Without a private uid: stop every descendant of this (subreaper) process, then kill them all.

    Stopping first means a fork bomb cannot outgrow the scan: a stopped process forks no more.
    """
    me = os.getpid()
    stopped: set[int] = set()
    for _ in range(1000):
        fresh = descendants(me) - stopped
        if not fresh:
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= fresh
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def has_children() -> bool:
    """True while any child (running or zombie) remains; orphaned descendants count, as we reap them."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return True
    except ChildProcessError:
        return False


def reap_all(timeout_s: float = 5.0) -> bool:
    """Reap every child; True when none is left within the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


# --- state a program may leave outside its directory -----------------------------------------------

_SHARED_CANDIDATES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue")


class SharedDirs:
    """World-writable directories (/tmp, /dev/shm, ...) and what a program's uid left in them.

    A program running as its own uid can create files only in world-writable places; after each
    run we delete whatever that uid owns there. A directory whose mtime and ctime did not move
    (and moved well before the run began, since timestamps are coarse) is not rescanned.
    """

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        dirs: dict[str, None] = {}
        self.top: list[str] = []
        for path in (*_SHARED_CANDIDATES, *extra):
            real = os.path.realpath(path)
            if _world_writable(real) and real not in dirs:
                self.top.append(real)
                dirs[real] = None
                for sub in _subdirs(real):  # e.g. /tmp/.X11-unix (mode 1777)
                    if _world_writable(sub):
                        dirs[sub] = None
        self.dirs = list(dirs)
        self._stamps: dict[str, tuple[int, int]] = {}

    def dirs_top_level(self) -> list[str]:
        return list(self.top)

    def snapshot(self) -> int:
        self._stamps = {d: _stamp(d) for d in self.dirs}
        return time.time_ns()

    def clean(self, uid: int, started_ns: int) -> list[str]:
        """Delete what `uid` created in the shared directories; return the paths removed."""
        removed: list[str] = []
        for d in self.dirs:
            before = self._stamps.get(d)
            if before is not None and before == _stamp(d) and before[0] < started_ns - 50_000_000:
                continue
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_uid != uid:
                    continue
                removed.append(entry.path)
                try:
                    if stat.S_ISDIR(st.st_mode):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                except OSError as exc:
                    log.warning("could not remove %s left by a sandboxed program: %s", entry.path, exc)
        return removed


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_ctime_ns
    except OSError:
        return (0, 0)


def _world_writable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IWOTH)


def _subdirs(path: str) -> list[str]:
    try:
        return [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


_IPC_RMID = 0


def clean_sysv_ipc(uid: int) -> int:
    """Remove SysV shared memory, message queues and semaphores owned or created by `uid`."""
    removed = 0
    for kind, remove in (("shm", _libc.shmctl), ("msg", _libc.msgctl), ("sem", _libc.semctl)):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if len(lines) < 2:
            continue
        header = lines[0].split()
        id_col, uid_col, cuid_col = 1, header.index("uid"), header.index("cuid")
        for line in lines[1:]:
            cols = line.split()
            if int(cols[uid_col]) == uid or int(cols[cuid_col]) == uid:
                ident = int(cols[id_col])
                if kind == "sem":
                    remove(ctypes.c_int(ident), ctypes.c_int(0), ctypes.c_int(_IPC_RMID))
                else:
                    remove(ctypes.c_int(ident), ctypes.c_int(_IPC_RMID), ctypes.c_void_p(None))
                removed += 1
    return removed
