"""What a grading run holds on this machine, so that two runs never meet.

- ``CourseLock``: one run per course folder at a time. A second run on the same course stops
  at once with a clear message, before it reads or writes anything.
- ``UidClaim``: the sandbox uids of a run. Each uid is a file in a machine-wide folder
  (``UID_LOCKS``), held with ``flock`` for the run's whole life, so no other run on the
  machine can take it; the kernel drops the lock when the run's process ends, however it
  ends, so the uids of a killed run are free again at once. A run only ever kills processes
  of uids it holds (``end_processes_of`` is called with the uids of its claim, and by its
  workers with the one uid each is given; the workers die with the run).
- ``Scratch``: the run's private folder (the solutions with hidden tests, a gradebook copy,
  the executed notebooks). Readable by the grader alone from the moment it exists: the
  folder itself is closed to others but for the sandboxes' own folders below it, and
  everything else goes under ``private/`` (mode 700). It is removed on every way out
  (``close``, called from ``finally``), and the folders of runs that were killed outright
  (SIGKILL, out of memory) are removed by the next run that starts.

All three rest on ``flock``: a lock lives exactly as long as the process holding it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

UID_BASE = 1_900_000_000   # far above any account's uid
UID_COUNT = 4096           # sandbox uids UID_BASE .. UID_BASE + UID_COUNT - 1
UID_LOCKS = Path("/run/mcf-grade/uids")  # machine-wide (as root); one lock file per uid
COURSE_LOCK = ".mcf-grade.lock"
SCRATCH_PREFIX = "mcf-grade-"
KEPT = "kept"  # marks a scratch folder kept on purpose (MCF_GRADE_KEEP_WORK): never stale
STALE_WITHOUT_LOCK = 600   # seconds: a scratch folder with no lock file older than this is stale


class Busy(RuntimeError):
    """Another run holds what this run needs (the course, or every sandbox uid)."""


def _try_lock(path: Path, note: str = "") -> int | None:
    """An open, exclusively locked descriptor of ``path`` (created 600), or None if another
    process holds it. ``note`` (who holds it) is written into the file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if note:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
    return fd


def _holder() -> str:
    return f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"


class CourseLock:
    def __init__(self, course: Path):
        self.path = course / COURSE_LOCK
        self.fd = _try_lock(self.path, _holder())
        if self.fd is None:
            try:
                who = self.path.read_text(errors="replace").strip()[:100]
            except OSError:
                who = "unknown"
            raise Busy(f"another mcf-grade run is grading this course ({who}); wait until it "
                       f"has finished, then run again (its lock: {self.path})")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class UidClaim:
    """``count`` sandbox uids held by this run until ``release``. Not root: the sandboxes run
    as the grader's own uid, and nothing is claimed."""

    def __init__(self, count: int):
        self.uids: list[int] = []
        self._fds: list[int] = []
        if os.geteuid() != 0:
            self.uids = [os.geteuid()] * count
            return
        UID_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(UID_BASE, UID_BASE + UID_COUNT):
            if len(self._fds) == count:
                break
            fd = _try_lock(UID_LOCKS / str(uid), _holder())
            if fd is not None:
                self._fds.append(fd)
                self.uids.append(uid)
        if len(self._fds) < count:
            self.release()
            raise Busy(f"no free sandbox uids: other grading runs hold all {UID_COUNT} of them")
        for uid in self.uids:  # left by a run that was killed before its sandboxes died
            end_processes_of(uid)

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def processes_of(uid: int) -> list[int]:
    """Pids of live processes whose real uid is ``uid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        found.append(int(status.parent.name))
                    break
                if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                    break
        except (OSError, ValueError):
            continue
    return found


def end_processes_of(uid: int, seconds: float = 10, spare=()) -> None:
    """Kill every process of the sandbox uid ``uid`` (but ``spare``): only ever called for a
    uid this run holds."""
    if os.geteuid() != 0:
        return
    if not UID_BASE <= uid < UID_BASE + UID_COUNT:
        raise RuntimeError(f"refusing to kill processes of uid {uid}: not a sandbox uid")
    kill_until_gone(lambda: [p for p in processes_of(uid) if p not in spare], seconds)


def kill_until_gone(find, seconds: float = 10, kill=None) -> None:
    """Kill the processes ``find()`` lists (SIGKILL to each, or ``kill(pids)``) until it lists
    none, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while (pids := find()) and time.monotonic() < deadline:
        (kill or _sigkill_each)(pids)
        time.sleep(0.02)


def _sigkill_each(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Scratch:
    """The run's scratch folder: ``path`` (mode 711: the sandboxes pass through to
    ``boxes/``), with ``private`` (mode 700) for everything only the grader may read."""

    def __init__(self, base: str):
        remove_stale_scratch(base)
        self.path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=base))  # mode 700
        self._fd = _try_lock(self.path / "lock", _holder())
        self.private = self.path / "private"
        self.private.mkdir(mode=0o700)
        self.boxes = self.path / "boxes"
        self.boxes.mkdir(mode=0o711)
        self.path.chmod(0o711)

    def close(self, keep: bool = False) -> None:
        if keep:
            (self.path / KEPT).touch()
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_stale_scratch(base: str) -> list[Path]:
    """Remove the scratch folders of this user's runs that no longer run (their lock is free)."""
    removed = []
    for folder in Path(base).glob(SCRATCH_PREFIX + "*"):
        try:
            if (not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.geteuid()
                    or (folder / KEPT).exists()):
                continue
            lock = folder / "lock"
            if lock.is_file():
                fd = _try_lock(lock)
                if fd is None:
                    continue  # a live run
                os.close(fd)
            elif time.time() - folder.stat().st_mtime < STALE_WITHOUT_LOCK:
                continue  # just being made, or by an older version: leave it a while
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
