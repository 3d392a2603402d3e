"""PID 1 of a grading sandbox: imports the libraries once, then forks one kernel per request.

This runs only inside the sandbox that ``mcf_course.grading.sandbox`` builds. It takes requests,
one JSON line each, from its standard input, a pipe from the grading worker that no other
process in the sandbox holds (each kernel's copy is closed the moment it is forked), and
answers on its standard output:

    {"op": "kernel", "connection_file": PATH, "env": {...}} -> {"pid": N}   fork a kernel
    {"op": "signal", "pid": N, "signal": S}   -> {"signalled": N}  (interrupt or kill it)
    {"op": "reset"}                           -> {"clean": true}   every other process ended,
                                                                  the sandbox's IPC emptied
    events: {"ready": true} once; {"exited": N, "status": S} when a kernel ends.

Each kernel is set up as a freshly started ipykernel would be: the variables nbgrader gives
its kernels (``KERNEL_ENV``), matplotlib's inline backend wired to its shell (so figures are
part of the notebook), and a session key ring of its own.

Nothing carries over from one student to the next (``_reset``): every process but this one
is killed, then /tmp, /dev/shm and /dev/mqueue (POSIX message queues) are emptied, System V
IPC objects removed and the uid's key rings cleared.

Kernels cannot harm it: as PID 1 of its namespace it receives no signal it has no handler
for (so not SIGKILL or SIGSTOP from inside), it ignores SIGINT, and it is not dumpable, so
processes of the same uid cannot read or write its memory (ptrace, /proc/1/mem). It never
reads anything a kernel can write.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time

PRELOAD = ["numpy", "pandas", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
           "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipywidgets", "mcf_course.data",
           "mcf_course.plotting"]
PR_SET_DUMPABLE = 4
KERNEL_LOG = "/run/kernel/kernel.log"
KERNEL_ENV = {"NBGRADER_EXECUTION"}  # the only variables a kernel request may set
EMPTIED = ["/dev/shm", "/dev/mqueue"]  # and the temporary folder, $TMPDIR
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR, KEYCTL_GET_PERSISTENT = 1, 7, 22
KEY_SPEC_PROCESS, KEY_SPEC_SESSION, KEY_SPEC_USER, KEY_SPEC_USER_SESSION = -2, -3, -4, -5


def _emit(message: dict) -> None:
    os.write(1, json.dumps(message).encode() + b"\n")


def _set_dumpable(flag: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)


def _keyctl(*args: int) -> int:
    """The keyctl system call (-1 where it is not available)."""
    if SYS_KEYCTL is None:
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(SYS_KEYCTL, *[ctypes.c_long(a) for a in args])


def _empty(folder: str) -> None:
    """Remove everything in ``folder`` (not the folder), whatever its modes; never follows a
    symbolic link."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
                _empty(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _wire_matplotlib(shell) -> None:
    """What importing matplotlib's inline backend does in a fresh kernel; here it was imported
    before any kernel existed, so it is done for each new one."""
    import matplotlib
    from IPython.core.pylabtools import activate_matplotlib
    from matplotlib_inline.backend_inline import configure_inline_support

    backend = matplotlib.get_backend()
    activate_matplotlib(backend)
    configure_inline_support(shell, backend)


def _become_kernel(connection_file: str, env: dict) -> None:
    """In the forked child: drop everything of the parent's, then run ipykernel. Never returns."""
    try:
        os.setsid()
        log = os.open(KERNEL_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the parent's pipe is fds 0 and 1: gone
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _set_dumpable(1)
        try:  # at the memory limit, the kernel ends a kernel (or its children) before PID 1
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("500")
        except OSError:
            pass
        _keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)  # a new, empty session key ring
        os.environ.update({k: str(v) for k, v in env.items() if k in KERNEL_ENV})
        os.chdir(os.environ["HOME"])
        import random

        import numpy

        random.seed()
        numpy.random.seed()
        sys.argv = ["ipykernel_launcher", "-f", connection_file]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", connection_file])
        _wire_matplotlib(app.shell)
        app.start()
    except BaseException:  # noqa: BLE001 - leave the reason in the kernel log, then go
        import traceback

        traceback.print_exc()
    finally:
        os._exit(0)


def _reap(kernels: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in kernels:
            kernels.discard(pid)
            _emit({"exited": pid, "status": os.waitstatus_to_exitcode(status)})


def _others() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != 1]


def _reset(kernels: set[int]) -> dict:
    """End every process but this one (kill(-1) spares only PID 1), and wait until they are."""
    deadline = time.monotonic() + 10
    while _others() and time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.02)
        _reap(kernels)
    subprocess.run(["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)  # System V shared memory, semaphores, queues left behind
    for folder in [os.environ.get("TMPDIR", "/tmp"), *EMPTIED]:
        _empty(folder)
    persistent = _keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS)
    for ring in (KEY_SPEC_USER, KEY_SPEC_USER_SESSION, KEY_SPEC_SESSION,
                 *([persistent] if persistent > 0 else [])):
        _keyctl(KEYCTL_CLEAR, ring)
    _reap(kernels)
    remaining = _others()
    return {"clean": not remaining, "remaining": remaining}


def _handle(request: dict, kernels: set[int]) -> dict:
    op = request.get("op")
    if op == "kernel":
        pid = os.fork()
        if pid == 0:
            _become_kernel(str(request["connection_file"]), dict(request.get("env") or {}))
        kernels.add(pid)
        return {"pid": pid}
    if op == "signal":
        pid = int(request["pid"])
        if pid in kernels:
            try:
                os.kill(pid, int(request["signal"]))
            except ProcessLookupError:
                pass
        return {"signalled": pid}
    if op == "reset":
        return _reset(kernels)
    return {"error": f"unknown request {op!r}"}


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_dumpable(0)
    for name in PRELOAD:
        importlib.import_module(name)
    _emit({"ready": True})
    kernels: set[int] = set()
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], 0.1)
        _reap(kernels)
        if not readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:  # the worker is gone: so is the sandbox
            _reset(kernels)
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            _emit(_handle(json.loads(line), kernels))


if __name__ == "__main__":
    main()
