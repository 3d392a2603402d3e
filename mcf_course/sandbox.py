"""Start a Jupyter kernel with limits, for running students' code during grading.

Used as a kernel's launcher (see ``write_kernelspec``):

    python -m mcf_course.sandbox --memory-mb 2048 --cpu-seconds 600 --workdir DIR -- \
        python -m ipykernel_launcher -f {connection_file}

Before it becomes the kernel, it applies what the machine allows:

- memory: an address-space limit (``RLIMIT_AS``), so a memory bomb fails with MemoryError or
  kills only this kernel; CPU-time and file-size limits too;
- no network (Linux): a new network namespace with only its own loopback, so no other
  machine and no service on this one can be reached;
- no writing outside its folder (Linux, as root): a new mount namespace in which every
  file system is read-only except ``--workdir``, and the kernel runs with no capabilities,
  so it cannot undo that. Talking to the grader goes through socket files in ``--workdir``.

Without root, only the limits (and the network namespace, where unprivileged user
namespaces are allowed) apply. What this does NOT protect against is written up in the
instructor guide: it is not a container.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import resource
import socket
import struct
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
KERNEL_NAME = "mcf-sandbox"
_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> bool:
    return _libc.unshare(flags) == 0


def _mount(source: str | None, target: str, flags: int) -> bool:
    return _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) == 0


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _read_only_except(workdir: Path) -> None:
    """In this (new) mount namespace: every mount read-only, except ``workdir``."""
    _mount(None, "/", MS_REC | MS_PRIVATE)
    _mount(str(workdir), str(workdir), MS_BIND | MS_REC)
    mount_points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in mount_points:
        point = point.replace("\\040", " ")
        if point == str(workdir) or point.startswith(str(workdir) + "/"):
            continue
        _mount(None, point, MS_REMOUNT | MS_BIND | MS_RDONLY)  # some (e.g. /proc) refuse: fine


def isolate(workdir: Path) -> list[str]:
    """Apply network and file-system isolation; return what was applied."""
    if not sys.platform.startswith("linux"):
        return []
    if os.geteuid() == 0 and _unshare(CLONE_NEWNS | CLONE_NEWNET):
        _loopback_up()
        _read_only_except(workdir)
        return ["network", "read-only file system"]
    uid, gid = os.geteuid(), os.getegid()
    if _unshare(CLONE_NEWUSER | CLONE_NEWNET):
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        return ["network"]
    return []


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Keep uid 0 but give up every capability, for good (also across exec): such a process
    cannot remount file systems writable, or leave its namespaces."""
    pr_capbset_drop, pr_set_no_new_privs = 24, 38
    for capability in range(64):
        _libc.prctl(pr_capbset_drop, capability, 0, 0, 0)
    none = (_CapData * 2)()
    if _libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), none) != 0:
        raise OSError(ctypes.get_errno(), "could not drop capabilities")
    _libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0)


def limit_resources(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 2**20, file_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--cpu-seconds", type=int, default=600)
    parser.add_argument("--file-mb", type=int, default=64)
    parser.add_argument("--workdir", type=Path, required=True)
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    workdir = args.workdir.resolve()
    applied = isolate(workdir)
    limit_resources(args.memory_mb, args.cpu_seconds, args.file_mb)
    os.environ.update(MCF_SANDBOX=",".join(applied) or "limits only", TMPDIR=str(workdir),
                      MPLCONFIGDIR=str(workdir / ".matplotlib"), HOME=str(workdir))
    if "read-only file system" in applied:
        drop_capabilities()  # so it cannot remount the file systems writable again
    os.execvp(command[0], command)


def write_kernelspec(folder: Path, workdir: Path, memory_mb: int, cpu_seconds: int,
                     zygote: Path | None = None) -> Path:
    """Write a kernelspec named ``mcf-sandbox`` under ``folder/kernels`` (put ``folder`` on
    JUPYTER_PATH) whose kernels start through this launcher, or, given the socket of a
    running zygote, as warm forks of it (``mcf_course.warmkernel``)."""
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    limits = ["--memory-mb", str(memory_mb), "--cpu-seconds", str(cpu_seconds),
              "--workdir", str(workdir)]
    if zygote is not None:
        argv = [sys.executable, "-m", "mcf_course.warmkernel", "shim", str(zygote), *limits,
                "--", "-f", "{connection_file}"]
    else:
        argv = [sys.executable, "-m", "mcf_course.sandbox", *limits, "--",
                sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python"}))
    return spec


if __name__ == "__main__":
    main()
