"""Warm grading kernels: fork each student's kernel from a process that has already loaded
Python, IPython, ipykernel and the course's libraries (numpy, pandas, matplotlib).

Starting a kernel and importing pandas and matplotlib is most of the cost of grading one
notebook. A *zygote* per grading worker pays it once; every kernel is then a fresh fork of
it, isolated exactly as ``mcf_course.sandbox`` isolates an ordinary kernel (limits, no
network, read-only files outside the scratch folder, no capabilities). Nothing a student's
code does can reach the zygote or another student's kernel: each fork is a separate
process with its own copy of memory. What differs from a cold start is only that the
libraries are already imported, and the random generators are reseeded after the fork so
that kernels do not share random state.

Pieces, all Linux-only:

- ``python -m mcf_course.warmkernel zygote SOCKET``: preload, then serve fork requests;
- ``python -m mcf_course.warmkernel shim SOCKET --workdir DIR ... -- <kernel args>``: what
  Jupyter starts as "the kernel". It asks the zygote for a fork, then stands in for it:
  it forwards signals (interrupts) and exits when the kernel does. The kernel exits if
  the shim disappears, so killing the shim kills the kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PRELOAD = ["numpy", "pandas", "matplotlib", "matplotlib.pyplot", "mcf_course.data",
           "mcf_course.plotting", "ipykernel.kernelapp", "ipywidgets"]
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        data += chunk
    return json.loads(data)


# --- zygote -------------------------------------------------------------------------------

def zygote(socket_path: Path) -> None:
    os.environ["MPLBACKEND"] = INLINE_BACKEND  # as ipykernel sets it, before pyplot loads
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped automatically
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if socket_path.exists():
        socket_path.unlink()
    server.bind(str(socket_path))
    server.listen(8)
    print("ready", flush=True)
    parent = os.getppid()
    server.settimeout(1.0)
    while os.getppid() == parent:  # stop when the grading worker is gone
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(None)
            request = _receive(conn)
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                _become_kernel(request)  # never returns
            _send(conn, {"pid": pid})


def _become_kernel(request: dict) -> None:
    """In the forked child: isolate, then run the kernel; exit when it ends."""
    try:
        os.setsid()
        log = os.open(Path(request["workdir"], ".kernel-log.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd in (1, 2):  # not the zygote's pipes
            os.dup2(log, fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        from mcf_course.sandbox import drop_capabilities, isolate, limit_resources

        workdir = Path(request["workdir"])
        applied = isolate(workdir)
        if "read-only file system" in applied:
            drop_capabilities()
        limit_resources(request["memory_mb"], request["cpu_seconds"], request["file_mb"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.update(MCF_SANDBOX=",".join(applied) or "limits only", TMPDIR=str(workdir),
                          MPLCONFIGDIR=str(workdir / ".matplotlib"), HOME=str(workdir),
                          MPLBACKEND=INLINE_BACKEND)
        import random

        import numpy

        random.seed()
        numpy.random.seed()
        shim = request["shim_pid"]

        def watch_shim():
            while True:
                try:
                    os.kill(shim, 0)
                except ProcessLookupError:
                    os._exit(1)
                time.sleep(0.5)

        threading.Thread(target=watch_shim, daemon=True).start()
        sys.argv = ["ipykernel_launcher", *request["kernel_args"]]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=request["kernel_args"])
    except BaseException:  # noqa: BLE001 - leave a note for the grader's log, then go
        import traceback

        try:
            Path(request["workdir"], ".kernel-error.txt").write_text(traceback.format_exc())
        except OSError:
            pass
    finally:
        os._exit(0)


# --- shim ---------------------------------------------------------------------------------

def shim(socket_path: Path, kernel_args: list[str], workdir: Path, memory_mb: int,
         cpu_seconds: int, file_mb: int) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(socket_path))
        _send(conn, {"kernel_args": kernel_args, "cwd": os.getcwd(), "env": dict(os.environ),
                     "workdir": str(workdir), "memory_mb": memory_mb, "cpu_seconds": cpu_seconds,
                     "file_mb": file_mb, "shim_pid": os.getpid()})
        child = _receive(conn)["pid"]
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, _frame: _forward(child, signum))
    parent = os.getppid()
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return 0
        if os.getppid() != parent:  # the grader is gone: take the kernel with us
            _forward(child, signal.SIGKILL)
            return 1
        time.sleep(0.05)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def start_zygote(socket_path: Path, log) -> subprocess.Popen:
    """Start a zygote next to this process and wait until it serves."""
    process = subprocess.Popen([sys.executable, "-m", "mcf_course.warmkernel", "zygote",
                                str(socket_path)], stdout=subprocess.PIPE, stderr=log, text=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the warm-kernel zygote did not start; see the worker log")
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=["zygote", "shim"])
    parser.add_argument("socket", type=Path)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--cpu-seconds", type=int, default=600)
    parser.add_argument("--file-mb", type=int, default=64)
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, kernel_args = parser.parse_args(argv[:split]), argv[split + 1:]
    if args.role == "zygote":
        zygote(args.socket)
        return 0
    return shim(args.socket, kernel_args, args.workdir.resolve(), args.memory_mb,
                args.cpu_seconds, args.file_mb)


if __name__ == "__main__":
    sys.exit(main())
