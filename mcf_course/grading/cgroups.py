"""Limits for a whole sandbox, not per process: the Linux kernel's control groups (cgroups).

Each sandbox gets a cgroup of its own, named after its uid (which only this run holds, see
``mcf_course.grading.claims``), with

- ``memory``: every process of the sandbox together, the files it writes to its in-memory
  ``/tmp``, ``/dev/shm`` and working folder included; past it the kernel's OOM killer ends a
  process of that sandbox, never one of the grader or of another student;
- ``pids``: the number of processes and threads of the sandbox together.

The sandbox's launcher joins the cgroup as root, before it drops to the sandbox uid; every
process started in the sandbox inherits it, and no process inside can leave it (the cgroup
file system is not even mounted there).

Both cgroup versions are supported, with root:

- v2 (unified, ``/sys/fs/cgroup/cgroup.controllers``): a child of the cgroup the grader runs
  in, or of its parent, whichever has the ``memory`` and ``pids`` controllers for its
  children (a root shell or a service with delegated controllers);
- v1 (``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids``): a child of the grader's own
  cgroup in each hierarchy.

Where neither can be used (no root, or no such controllers), ``available`` says why, and
the limits are those ``setrlimit`` gives: memory per process, processes per uid.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mcf_course.grading.claims import kill_until_gone

ROOT = Path("/sys/fs/cgroup")
PREFIX = "mcf-grade-"


def _own_paths() -> dict[str, str]:
    """This process's cgroup in each hierarchy: {"memory": "/a/b", "pids": ..., "": v2 path}."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _v2_parent() -> Path | None:
    """A v2 cgroup under which children get the memory and pids controllers."""
    if not (ROOT / "cgroup.controllers").is_file():
        return None
    own = ROOT / _own_paths().get("", "/").lstrip("/")
    for parent in (own, own.parent):
        if not parent.is_relative_to(ROOT):
            continue
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        missing = [c for c in ("memory", "pids") if c not in enabled]
        if missing:
            try:
                (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
            except OSError:
                continue
        return parent
    return None


def _v1_parents() -> dict[str, Path] | None:
    own = _own_paths()
    parents = {c: ROOT / c / own[c].lstrip("/") for c in ("memory", "pids") if c in own}
    if len(parents) == 2 and all((p / "cgroup.procs").is_file() for p in parents.values()):
        return parents
    return None


def available() -> tuple[str, str]:
    """("v2" or "v1", "") when sandboxes can get cgroups; ("", why not) otherwise."""
    if os.geteuid() != 0:
        return "", "the grader does not run as root"
    try:
        if _v2_parent() is not None:
            return "v2", ""
        if _v1_parents() is not None and os.access(_v1_parents()["memory"], os.W_OK):
            return "v1", ""
    except OSError as exc:
        return "", f"the cgroup file system cannot be used ({exc})"
    return "", "no cgroup with the memory and pids controllers can be made here"


class SandboxCgroup:
    """The cgroup(s) of one sandbox: one folder in v2, one per controller in v1."""

    def __init__(self, name: str, memory_bytes: int, processes: int):
        version, why = available()
        if not version:
            raise RuntimeError(f"no cgroups: {why}")
        self.version = version
        if version == "v2":
            self.folders = [_v2_parent() / (PREFIX + name)]
        else:
            self.folders = [parent / (PREFIX + name) for parent in _v1_parents().values()]
        self.remove()  # one left by a killed run that held the same uid
        for folder in self.folders:
            folder.mkdir()
        if version == "v2":
            (self.folders[0] / "memory.max").write_text(str(memory_bytes))
            (self.folders[0] / "memory.swap.max").exists() and \
                (self.folders[0] / "memory.swap.max").write_text("0")
            (self.folders[0] / "pids.max").write_text(str(processes))
        else:
            memory, pids = self.folders
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():  # no swapping around the limit
                (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (pids / "pids.max").write_text(str(processes))

    @property
    def procs_files(self) -> list[str]:
        """Where the launcher writes its pid to join (see ``sandbox.stage_and_exec``)."""
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def processes(self) -> set[int]:
        found = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def oom_kills(self) -> int:
        """How many processes the kernel ended for reaching the memory limit."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            for line in (self.folders[0] / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def kill(self, seconds: float = 10) -> None:
        """End every process in the cgroup and wait until it is empty."""
        kill_file = self.folders[0] / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():  # the whole cgroup at once
            kill_until_gone(self.processes, seconds, kill=lambda _: kill_file.write_text("1"))
        else:
            kill_until_gone(self.processes, seconds)

    def remove(self) -> None:
        """Kill what is left in it, then remove it."""
        if any(folder.is_dir() for folder in self.folders):
            self.kill()
        for folder in self.folders:
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy for a moment while the last process is reaped
                    time.sleep(0.02)
