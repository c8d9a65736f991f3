"""The fork server: a clean interpreter, started once, that imports numpy/pandas and forks workers.

The harness starts it with `python -I` (no PYTHON* variables, no user site) and a scrubbed
environment, before or after torch/CUDA: it is a fresh exec, so it inherits no threads, no CUDA
context and no secrets. It must stay single-threaded, because it and its workers fork; BLAS and
Arrow thread pools are switched off through the environment for that reason, and it reports its
thread count so the harness can fall back to spawn mode if a library started a thread anyway.

Control protocol (SOCK_SEQPACKET): {"t": "spawn", "config": {...}} with one socket fd attached
-> fork a worker serving that socket, reply {"t": "spawned", "pid": ...}; {"t": "clean", "uid": N,
"base_dir": ...} -> kill what a killed worker's programs left running as uid N, reply
{"t": "cleaned", "done": bool}. EOF -> exit.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import signal
import socket
import sys
import time

from . import oslevel, worker


def main() -> None:
    """argv (after -c): package dir, control fd, options JSON."""
    ctrl = socket.socket(fileno=int(sys.argv[2]))
    options = json.loads(sys.argv[3])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="sandbox %(name)s: %(message)s")
    warm, errors = [], {}
    for name in options.get("warm_modules", ()):
        try:
            importlib.import_module(name)
            warm.append(name)
        except Exception as exc:  # noqa: BLE001 - a missing numpy only costs speed
            errors[name] = f"{type(exc).__name__}: {exc}"
    gc.collect()
    gc.freeze()
    threads = len(os.listdir("/proc/self/task"))
    signal.signal(signal.SIGCHLD, _reap)  # reap workers as they exit (their CPU time then counts
    # towards the harness's RUSAGE_CHILDREN, which SIG_IGN's automatic reaping would lose)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the harness's business
    ctrl.send(json.dumps({"t": "hello", "pid": os.getpid(), "warm": warm, "errors": errors,
                          "threads": threads}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 1)
        except OSError:
            break
        if not data:
            break
        request = json.loads(data)
        if request.get("t") == "clean":
            for fd in fds:
                os.close(fd)
            cleaned = _clean_uid(int(request["uid"]), request["base_dir"])
            ctrl.send(json.dumps({"t": "cleaned", "done": cleaned}).encode())
            continue
        if request.get("t") != "spawn" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            worker.main(fds[0], request["config"])  # never returns
            os._exit(1)
        os.close(fds[0])
        ctrl.send(json.dumps({"t": "spawned", "pid": pid}).encode())
    _wait_for_workers(5.0)  # so their CPU time (and their programs') is accounted to the harness
    os._exit(0)


def _reap(*_) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _wait_for_workers(timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.01)
        except ChildProcessError:
            return


def _clean_uid(uid: int, base_dir: str) -> bool:
    """Kill every process of a dead worker's uid, once we hold its lock (so no live worker owns it)."""
    try:
        lock_fd = oslevel.lock_uid(os.path.join(base_dir, "locks"), uid, wait_s=3.0)
    except OSError:
        return False
    if lock_fd is None:
        return False  # a new worker owns the uid, and it killed the leftovers when it took it
    try:
        oslevel.kill_uid(uid)
    finally:
        os.close(lock_fd)
    return True
