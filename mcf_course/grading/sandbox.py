"""The grading sandbox: students' kernels run inside bubblewrap (``bwrap``), the sandboxing
tool Flatpak uses, never in the grader's own process tree.

One sandbox per grading worker. Inside it, the only process at the start is the *parent*
(``mcf_course.grading.parent``): PID 1 of the sandbox, with Python, IPython, ipykernel, numpy,
pandas and matplotlib already imported. For each student the worker asks it, over the
parent's standard input (a pipe that no process in the sandbox holds), for one kernel; the
parent forks it. When the notebook is done the worker asks for a reset: the parent kills
every other process in the sandbox and waits until they are gone, and the worker empties
every folder the sandbox can write before the next student's files go in. A student's code
therefore never meets another student's processes or files, and cannot reach a process with
more rights than its own.

What bubblewrap gives every sandbox (see ``bwrap_command``):

- new user, PID, mount, IPC, UTS, network and (where available) cgroup namespaces; no
  network at all (not even to this machine); further user namespaces disabled;
- an unprivileged uid of its own (when the grader runs as root: a uid from ``UID_BASE`` up
  that no account uses and that this run alone holds, see ``mcf_course.grading.claims``), no
  capabilities, ``no_new_privs``;
- a read-only view of only ``/usr`` (and the ``/bin``, ``/lib`` links), a few files of
  ``/etc``, the Python environment, the ``mcf_course`` package and the datasets. Not the rest
  of ``/etc`` (no ``/etc/shadow``), not ``/root`` or ``/home``, not the course folder, its
  gradebook, its solutions or other students' submissions;
- writable: only the student's folder and the folder of the kernel's sockets (a size-capped
  in-memory file system of the worker's, as root), a private ``/tmp`` and ``/dev/shm``
  (size-capped in-memory file systems of the sandbox's own) and a private ``/dev/mqueue``,
  all emptied between students (the private temporary folder is ``/var/tmp`` instead when the
  Python environment itself lives under ``/tmp``, which a writable ``/tmp`` would hide);
- ``--die-with-parent``: if the worker dies, the sandbox dies with it, and with its PID 1 gone
  the kernel ends every process in it.

Limits: memory and the number of processes of the whole sandbox, with a cgroup of its own
(``mcf_course.grading.cgroups``, as root); and, set before ``bwrap`` starts and inherited by
every process inside, address space, CPU seconds and file size per process, processes per
uid and open files; the wall clock is the worker's notebook timeout.

Running as root is the intended set-up (a grading server or CI). Python environments under
``/root`` or a home folder the sandbox uid cannot enter are made visible with a private bind
mount (``util-linux``'s ``unshare`` and ``mount``) before ``setpriv`` drops to the sandbox
uid. Without root, ``bwrap`` still builds the same namespaces, but the sandbox runs as the
grader's own uid. Without Linux or without ``bwrap`` there is no sandbox, and ``mcf-grade``
refuses to run (see ``require_sandbox``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from mcf_course.grading.claims import end_processes_of, processes_of

INSIDE_HOME = "/home/student"
INSIDE_RUN = "/run/kernel"
INSIDE_DATA = "/srv/datasets"
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap); `python3 course.py test` installs it when run as root")


class SandboxUnavailable(RuntimeError):
    """The machine cannot build the grading sandbox."""


def require_sandbox() -> str:
    """The path of ``bwrap``, or SandboxUnavailable saying what is missing."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(
            "mcf-grade runs students' code only inside a bubblewrap sandbox, which needs Linux. "
            "On this machine, grade with plain `nbgrader autograde` (no sandbox) or use a Linux "
            "server or container.")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not installed: {INSTALL_HINT}.")
    tools = ["unshare", "mount", "setpriv"] if os.geteuid() == 0 else []
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SandboxUnavailable(f"missing util-linux tools: {', '.join(missing)}")
    return bwrap


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048     # the whole sandbox (cgroup), and each process's address space
    disk_mb: int = 256        # each of: the student's folder, /tmp, /dev/shm (in memory: counts in memory_mb)
    cpu_seconds: int = 600
    file_mb: int = 64
    processes: int = 256      # threads count too; a kernel uses about 15
    open_files: int = 1024

    def apply(self, processes: bool = True) -> None:
        """Set these limits on this process (they pass to everything it starts). The process
        limit counts every process of the uid, so it is set only for a uid of the sandbox's own."""
        limits = [(resource.RLIMIT_AS, self.memory_mb * 2**20),
                  (resource.RLIMIT_CPU, self.cpu_seconds),
                  (resource.RLIMIT_FSIZE, self.file_mb * 2**20),
                  (resource.RLIMIT_NOFILE, self.open_files),
                  (resource.RLIMIT_CORE, 0)]
        if processes:
            limits.append((resource.RLIMIT_NPROC, self.processes))
        for which, value in limits:
            resource.setrlimit(which, (value, value))


@dataclass(frozen=True)
class Layout:
    """Where one sandbox's folders are on the host. ``box`` must be reachable by the sandbox
    uid (its parents searchable); everything in it is emptied between students."""

    box: Path

    @property
    def home(self) -> Path:  # the student's folder and the kernel's working directory
        return self.box / "home"

    @property
    def run(self) -> Path:  # the kernel's sockets and connection file
        return self.box / "run"

    @property
    def writable(self) -> tuple[Path, ...]:
        return (self.home, self.run)


def _python_paths() -> list[Path]:
    """Folders the kernel's Python needs: the environment, its base installation, and the
    folder that holds the ``mcf_course`` package (an editable install lives in a clone)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sysconfig.get_paths()["stdlib"]).parent,
             Path(__file__).resolve().parents[2] / "mcf_course"}
    return sorted(p.resolve() for p in paths if p.exists())


def _system_binds() -> list[str]:
    """``/usr`` read-only, and the top-level links (``/bin`` -> ``usr/bin`` ...) as the host has
    them; on a host without merged ``/usr``, those folders are bound read-only instead."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for etc in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "alternatives"):
        args += ["--ro-bind-try", f"/etc/{etc}", f"/etc/{etc}"]
    return args


def searchable_by_others(path: Path) -> bool:
    """Whether an unprivileged uid can reach ``path`` (every folder on the way is o+x)."""
    return all(os.stat(p).st_mode & 0o001 for p in [*reversed(path.parents), path] if p.exists())


def kernel_environment(data_inside: str | None, tmp: str = "/tmp") -> dict[str, str]:
    """The whole environment of a grading kernel: nothing of the grader's own."""
    env = {
        "HOME": INSIDE_HOME, "USER": "student", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "TMPDIR": tmp, "MPLCONFIGDIR": f"{tmp}/matplotlib", "IPYTHONDIR": f"{tmp}/ipython",
        "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter", "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline", "MCF_SANDBOX": "bwrap",
    }
    if data_inside:
        env["MCF_COURSE_DATA"] = data_inside
    return env


def private_disk(box: Path, size_mb: int) -> None:
    """Mount a size-capped in-memory file system on ``box`` (the student's folder and the
    kernel's sockets go in it). Only as root, and only in a worker that has a mount namespace
    of its own (see ``Worker``): the mount ends with the worker."""
    box.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=755,nosuid,nodev",
                    "mcf-grade-box", str(box)], check=True)


def bwrap_command(bwrap: str, layout: Layout, staged: dict[Path, Path], data: bool,
                  disk_mb: int = 256) -> list[str]:
    """The ``bwrap`` argument list for one sandbox, its parent process as PID 1.

    ``staged`` maps each read-only folder the sandbox sees to the host path it is bound from
    (the same path unless it had to be staged, see ``stage_and_exec``); with ``data``, one of
    them is the datasets folder at ``INSIDE_DATA``."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--as-pid-1", "--clearenv", "--hostname", "grading-sandbox",
            *_system_binds()]
    for inside, source in staged.items():
        args += ["--ro-bind", str(source), str(inside)]
    # A writable /tmp bound over an environment that lives in /tmp would hide it.
    tmp = "/var/tmp" if any(Path(inside).is_relative_to("/tmp") for inside in staged) else "/tmp"
    size = str(disk_mb * 2**20)
    args += ["--proc", "/proc", "--dev", "/dev", "--mqueue", "/dev/mqueue",
             "--bind", str(layout.home), INSIDE_HOME, "--bind", str(layout.run), INSIDE_RUN,
             "--size", size, "--tmpfs", tmp, "--size", size, "--tmpfs", "/dev/shm",
             "--remount-ro", "/", "--chdir", INSIDE_HOME]
    for name, value in kernel_environment(INSIDE_DATA if data else None, tmp).items():
        args += ["--setenv", name, value]
    return [*args, "--", sys.executable, "-m", "mcf_course.grading.parent"]


def stage_and_exec(plan: dict) -> None:
    """Run inside ``unshare --mount`` as root: join the sandbox's cgroups, bind every folder
    the sandbox uid cannot reach onto a reachable staging point (visible only in this private
    mount namespace), set the limits, drop to the sandbox uid with no capabilities, and
    become ``bwrap``."""
    for procs in plan["cgroups"]:
        Path(procs).write_text(str(os.getpid()))
    for source, point in plan["stage"]:
        Path(point).mkdir(parents=True, exist_ok=True)
        for command in (["mount", "--bind", source, point],
                        ["mount", "-o", "remount,bind,ro", point]):
            subprocess.run(command, check=True)
    Limits(**plan["limits"]).apply()
    uid = str(plan["uid"])
    os.execvp("setpriv", ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                          "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                          *plan["bwrap"]])


class Sandbox:
    """One bubblewrap sandbox and the pre-loaded parent inside it, seen from the worker."""

    def __init__(self, box: Path, uid: int, limits: Limits, data_dir: Path | None, private: Path):
        """``box``: the sandbox's folders (reachable by its uid); ``uid``: a sandbox uid this
        run holds; ``private``: a folder of the worker's that the sandbox never sees (its log
        and launch plan go there)."""
        from mcf_course.grading.cgroups import SandboxCgroup, available

        bwrap = require_sandbox()
        self.layout, self.limits, self.log_path = Layout(box), limits, private / "sandbox.log"
        self.root = os.geteuid() == 0
        self.uid = uid if self.root else os.geteuid()
        self.cgroup = SandboxCgroup(str(self.uid), limits.memory_mb * 2**20, limits.processes) \
            if self.root and available()[0] else None
        self.exited: dict[int, int] = {}
        self._pending, self._replies = b"", []
        box.mkdir(parents=True, exist_ok=True)
        self.clear()
        staged, stage = {}, []
        for inside, path in [(p, p) for p in _python_paths()] + (
                [(Path(INSIDE_DATA), data_dir.resolve())] if data_dir else []):
            if self.root and not searchable_by_others(path):
                point = box.parent / f".stage-{box.name}" / str(len(stage))
                stage.append((str(path), str(point)))
                staged[inside] = point
            else:
                staged[inside] = path
        command = bwrap_command(bwrap, self.layout, staged, data=data_dir is not None,
                                disk_mb=limits.disk_mb)
        with self.log_path.open("ab") as log_file:
            if self.root:
                plan = {"stage": stage, "limits": limits.__dict__, "uid": self.uid, "bwrap": command,
                        "cgroups": self.cgroup.procs_files if self.cgroup else []}
                plan_file = private / "sandbox-plan.json"
                plan_file.write_text(json.dumps(plan))
                plan_file.chmod(0o600)
                launcher = ["unshare", "--mount", "--propagation", "private", "--",
                            sys.executable, "-m", "mcf_course.grading.sandbox", "stage", str(plan_file)]
                preexec = None
            else:
                launcher = command
                preexec = lambda: limits.apply(processes=False)  # noqa: E731
            self.process = subprocess.Popen(launcher, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=log_file, preexec_fn=preexec, start_new_session=True)
        if self._read(120).get("ready") is not True:
            raise RuntimeError(f"the grading sandbox did not start: {self.log_tail()}")

    # --- talking to the parent -----------------------------------------------------------

    def _send(self, message: dict) -> None:
        os.write(self.process.stdin.fileno(), json.dumps(message).encode() + b"\n")

    def _lines(self, timeout: float) -> list[dict]:
        """Messages the parent has written, waiting up to ``timeout`` for the first."""
        import select

        fd = self.process.stdout.fileno()
        if b"\n" not in self._pending and select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the grading sandbox stopped: {self.log_tail()}")
            self._pending += chunk
            while select.select([fd], [], [], 0)[0] and (chunk := os.read(fd, 65536)):
                self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        return [json.loads(line) for line in lines]

    def _read(self, seconds: float) -> dict:
        """The parent's next reply; kernel exits reported on the way are recorded."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the grading sandbox did not answer: {self.log_tail()}")
            self._replies += [m for m in self._lines(left) if not self._record_exit(m)]
            if self._replies:
                return self._replies.pop(0)

    def _record_exit(self, message: dict) -> bool:
        if "exited" in message:
            self.exited[message["exited"]] = message["status"]
            return True
        return False

    def exit_status(self, pid: int) -> int | None:
        """The exit status of kernel ``pid``, or None while it runs (never waits)."""
        if pid not in self.exited and self.process.poll() is None:
            try:
                self._replies += [m for m in self._lines(0) if not self._record_exit(m)]
            except RuntimeError:
                pass
        if self.process.poll() is not None:  # the whole sandbox is gone
            return self.exited.setdefault(pid, -9)
        return self.exited.get(pid)

    def start_kernel(self, env: dict[str, str] | None = None) -> int:
        """Fork a kernel for the connection file in ``run/connection.json``; its pid inside.
        ``env``: variables to add to the kernel's environment (``NBGRADER_EXECUTION``)."""
        self._send({"op": "kernel", "connection_file": f"{INSIDE_RUN}/connection.json",
                    "env": env or {}})
        reply = self._read(60)
        if "pid" not in reply:
            raise RuntimeError(f"the sandbox could not start a kernel: {reply}")
        return reply["pid"]

    def signal(self, pid: int, signum: int) -> None:
        self._send({"op": "signal", "pid": pid, "signal": int(signum)})
        self._read(10)

    def reset(self) -> None:
        """End every process in the sandbox but its parent, which then empties the sandbox's
        own /tmp, /dev/shm, message queues, System V IPC and key rings. The worker empties the
        student's folder (``clear``) once it has taken what it needs from it."""
        self._send({"op": "reset"})
        reply = self._read(60)
        if reply.get("clean") is not True:
            raise RuntimeError(f"the sandbox could not end every student process: {reply}")
        self.exited.clear()
        self.kill_strays()

    # --- the host side -------------------------------------------------------------------

    def clear(self) -> None:
        """Empty (or make) the writable folders, owned by the sandbox uid and closed to others.
        Their contents go, never the folders themselves: the sandbox holds them mounted."""
        for folder in self.layout.writable:
            folder.mkdir(parents=True, exist_ok=True)
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
            folder.chmod(0o700)
            if self.root:
                os.chown(folder, self.uid, self.uid)
        self.layout.box.chmod(0o755)

    def kill_strays(self) -> list[int]:
        """Kill any process of the sandbox uid other than the sandbox itself (there should be
        none: the PID namespace holds them all). Returns what was found."""
        if not self.root:
            return []
        own = self.sandbox_pids()
        strays = [pid for pid in processes_of(self.uid) if pid not in own]
        if strays:
            end_processes_of(self.uid, spare=own)
        return strays

    def sandbox_pids(self) -> set[int]:
        """Host pids of bwrap and of the parent it started (the sandbox itself)."""
        return {self.process.pid} | {pid for pid in processes_of(self.uid)
                                     if parent_pid(pid) == self.process.pid}

    def close(self) -> None:
        """Stop the sandbox and every process in it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        if self.cgroup:
            self.cgroup.remove()
        if self.root:
            end_processes_of(self.uid)

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-4:])[-600:]


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stage"]:
        stage_and_exec(json.loads(Path(argv[1]).read_text()))
    else:
        sys.exit("usage: python -m mcf_course.grading.sandbox stage PLAN.json (used by Sandbox)")


if __name__ == "__main__":
    main()
