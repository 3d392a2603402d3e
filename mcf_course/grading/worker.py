"""Grading workers: each runs nbgrader's own autograde pipeline, one submission at a time, in
a scratch course of its own, with the kernels in its sandbox (``mcf_course.grading.sandbox``).

The worker process is started by the coordinator (``Worker``) and reads, on standard input,
first its settings and then one task per line; it answers each with one ``@@RESULT`` line.
Nothing a worker is told travels in its argv or environment.

nbgrader's pipeline runs with one change (see ``autograde_preprocessors``):
``RecoveringExecute``, nbgrader's Execute with test cells run in the worker, never in the
student's kernel (``mcf_course.grading.runner.TestsInWorker``); a dead kernel fails the cell it
was running and the cells after it, rather than the whole submission; and output is capped as
it arrives (``OutputCap``), whatever its type, so no output can fill the worker's memory or the
autograded notebook.

After a notebook has run and every process of the student has ended, the files its code
wrote in its folder are taken (``take_files``) so that they land in ``autograded/`` as they
do with nbgrader. A failure of the feedback step is reported with the result, never in
place of it: the grades stand.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from mcf_course.grading.claims import end_processes_of
from mcf_course.grading.course import Settings, assignment_notebooks, course_folders, run_converter
from mcf_course.grading.sandbox import Limits, Sandbox, private_disk
from mcf_course.grading.submissions import FILE_LIMIT_MB, FOLDER_LIMIT_MB

RESULT = "@@RESULT "
TEXT_LIMIT = 100_000         # characters of one text output (a stream, text/*, an error)
DATA_LIMIT = 2_000_000       # bytes of one other output (an image, JSON, a widget message)
CELL_LIMIT = 5_000_000       # all outputs of one cell
NOTEBOOK_LIMIT = 20_000_000  # all outputs of one notebook
FILES_LIMIT = 1000           # files taken from the student's folder after a run
CUT = "[output cut by the grader: {}]"


def _error(ename: str, message: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=message,
                                  traceback=[f"{ename}: {message}"])


def _size(value, limit: int) -> int:
    """The size of ``value`` as JSON, roughly; stops counting once past ``limit``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, dict):
            total += 2 + sum(len(str(k)) + 4 for k in item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(item) if isinstance(item, (str, bytes)) else 8
    return total


class OutputCap:
    """Caps outputs as the kernel's messages arrive, before nbclient stores them: a text output
    is cut at TEXT_LIMIT characters, any other output over DATA_LIMIT is replaced by a note,
    and once a cell (or the notebook) has CELL_LIMIT (NOTEBOOK_LIMIT) of output, its further
    outputs are replaced by a note. Errors always stay (grades depend on them), cut to size."""

    def __init__(self):
        self.cells: dict[int, int] = {}    # characters/bytes admitted, by cell
        self.streams: dict[int, int] = {}  # of which stream text
        self.total = 0
        self.noted: set[int] = set()

    def _room(self, cell: int) -> int:
        return max(0, min(CELL_LIMIT - self.cells.get(cell, 0), NOTEBOOK_LIMIT - self.total))

    def _take(self, cell: int, size: int) -> None:
        self.cells[cell] = self.cells.get(cell, 0) + size
        self.total += size

    def _note_once(self, cell: int, what: str) -> str:
        if cell in self.noted:
            return ""
        self.noted.add(cell)
        return "\n" + CUT.format(what) + "\n"

    def admit(self, msg: dict, cell: int) -> bool:
        """Cut ``msg`` down in place; False if it is to be dropped altogether."""
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if kind == "clear_output":
            self.total -= self.cells.pop(cell, 0)
            self.streams.pop(cell, None)
            self.noted.discard(cell)
        elif kind == "stream":
            text = str(content.get("text", ""))
            room = min(self._room(cell), TEXT_LIMIT - self.streams.get(cell, 0))
            if len(text) > room:
                text = text[:room] + self._note_once(cell, f"more than {TEXT_LIMIT:,} characters")
            content["text"] = text
            self._take(cell, len(text))
            self.streams[cell] = self.streams.get(cell, 0) + len(text)
            return bool(text)
        elif kind in ("display_data", "execute_result", "update_display_data"):
            data = content.get("data") or {}
            for mime, value in list(data.items()):
                size = _size(value, DATA_LIMIT)
                if isinstance(value, str) and mime.startswith("text/") and size > TEXT_LIMIT:
                    data[mime] = value[:TEXT_LIMIT] + "\n" + CUT.format(f"more than {TEXT_LIMIT:,} characters")
                elif size > DATA_LIMIT:
                    data[mime] = CUT.format(f"{mime} output of more than {DATA_LIMIT:,} bytes") \
                        if mime.startswith("text/") else None
            for mime in [m for m, v in data.items() if v is None]:
                del data[mime]
                data.setdefault("text/plain", CUT.format(f"{mime} output of more than {DATA_LIMIT:,} bytes"))
            if _size(content.get("metadata") or {}, TEXT_LIMIT) > TEXT_LIMIT:
                content["metadata"] = {}
            size = _size(data, CELL_LIMIT)
            if size > self._room(cell):
                content["data"] = {"text/plain": CUT.format("this cell's or notebook's output is over its limit")}
                content["metadata"] = {}
                size = 100
            self._take(cell, size)
        elif kind == "error":
            content["evalue"] = str(content.get("evalue", ""))[:TEXT_LIMIT]
            lines, kept = content.get("traceback") or [], []
            budget = TEXT_LIMIT
            for line in [str(x) for x in lines][-200:]:
                kept.append(line[:budget])
                budget -= len(kept[-1])
                if budget <= 0:
                    break
            content["traceback"] = kept
        elif kind.startswith("comm"):
            size = _size(content.get("data"), DATA_LIMIT) + sum(len(b) for b in msg.get("buffers") or [])
            return size <= DATA_LIMIT
        return True


def autograde_preprocessors():
    """nbgrader's autograde preprocessors, with Execute replaced by RecoveringExecute."""
    from nbclient.exceptions import DeadKernelError
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from mcf_course.grading.runner import TestsInWorker

    class RecoveringExecute(TestsInWorker):
        """TestsInWorker, except that a dead kernel fails the cell it was running and the
        rest of the notebook, rather than the whole submission, and that output is capped as
        it arrives (``OutputCap``)."""

        running = -1
        cap = OutputCap()

        def process_message(self, msg, cell, cell_index):
            if not self.cap.admit(msg, cell_index):
                return None
            return super().process_message(msg, cell, cell_index)

        def preprocess_cell(self, cell, resources, index):
            self.running = index
            return super().preprocess_cell(cell, resources, index)

        def preprocess(self, nb, resources=None, km=None):
            self.running, self.cap = -1, OutputCap()
            try:
                return super().preprocess(nb, resources, km)
            except DeadKernelError:
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code" or index < self.running:
                        continue
                    message = ("the kernel died while running this cell (os._exit, a crash or "
                               "the memory limit)" if index == self.running
                               else "not run: the kernel died in an earlier cell")
                    cell.outputs.append(_error("DeadKernelError", message))
                return nb, resources

    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    assert defaults[0] is Execute, "nbgrader's autograde pipeline no longer starts with Execute"
    return [RecoveringExecute, *defaults[1:]]


def fill_home(sandbox: Sandbox, submitted: Path, source: Path, released: Path) -> None:
    """What the kernel finds in its working folder, as in nbgrader's autograded folder but for
    the notebooks: the student's other files, then the assignment's own files over them, and
    the released (student) version of the notebooks, never those with hidden tests."""
    home = sandbox.layout.home
    for folder in (submitted, source):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb" \
                    and path.name != "timestamp.txt":
                target = home / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    for notebook in released.glob("*.ipynb"):
        shutil.copy(notebook, home / notebook.name)
    if sandbox.root:
        for path in [home, *home.rglob("*")]:
            os.chown(path, sandbox.uid, sandbox.uid, follow_symlinks=False)


def take_files(home: Path, out: Path) -> str:
    """Copy the files in the student's folder after a run (what nbgrader's autograded folder
    holds: the submitted and assignment files, and whatever the student's code wrote) to
    ``out``. Called only once every process of the student has ended, so nothing changes
    underneath; only regular files, never through a symbolic link, within FILES_LIMIT files
    and the size limits of a submission. Notebooks and ``timestamp.txt`` are nbgrader's own.
    Returns a note on what was left out ('' if nothing)."""
    left_out, count, total = [], 0, 0
    for folder, dirs, files in os.walk(home):  # never follows links
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            relative = path.relative_to(home)
            if path.suffix == ".ipynb" or relative == Path("timestamp.txt"):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                left_out.append(f"{relative} (not a regular file)")
                continue
            with os.fdopen(fd, "rb") as source:
                size = os.fstat(fd).st_size
                if not os.path.stat.S_ISREG(os.fstat(fd).st_mode):
                    left_out.append(f"{relative} (not a regular file)")
                elif count >= FILES_LIMIT or size > FILE_LIMIT_MB * 2**20 \
                        or total + size > FOLDER_LIMIT_MB * 2**20:
                    left_out.append(f"{relative} (over the limit of {FILES_LIMIT} files, "
                                    f"{FILE_LIMIT_MB} MB each, {FOLDER_LIMIT_MB} MB in all)")
                else:
                    target = out / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with target.open("wb") as copy:
                        shutil.copyfileobj(source, copy)
                    count, total = count + 1, total + size
    if not left_out:
        return ""
    shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
    return f"files the code wrote that were not kept: {shown}"


def review_reasons(executed: Path) -> list[str]:
    """What the grader's inspection of the submission's code found (``inspection``)."""
    from mcf_course.grading.feedback import MARK

    reasons = nbformat.read(executed, as_version=4).metadata.get(MARK, {}).get("review", [])
    return [str(r) for r in reasons] if isinstance(reasons, list) else []


class _ErrorLog(logging.Handler):
    """Keeps the error messages nbgrader logs, to say why a submission failed."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage().strip().splitlines()[-1][:300])


def run_worker(options: dict) -> None:
    """Serve tasks from stdin: one JSON line per submission, one result line each."""
    settings = Settings(**{**options["settings"], "course": Path(options["settings"]["course"]),
                           "db_url": "", "workers": 1})
    from mcf_course.grading import provisioner, runner

    home, template, box = Path(options["home"]), Path(options["template"]), Path(options["box"])
    scratch, jupyter_path = home / "scratch", home / "jupyter"
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    provisioner.write_kernelspec(jupyter_path)
    folders = course_folders(settings.course)
    notebooks = assignment_notebooks(settings.course, settings.module)
    limits = Limits(memory_mb=settings.memory_mb, disk_mb=settings.disk_mb,
                    cpu_seconds=settings.notebook_timeout)
    data_dir = Path(options["data_dir"]) if options.get("data_dir") else None
    if os.geteuid() == 0:  # this worker has a mount namespace of its own (see Worker)
        private_disk(box, settings.disk_mb)
    if data_dir:  # the tests, run here, read the datasets the kernels see
        os.environ["MCF_COURSE_DATA"] = str(data_dir)

    def new_sandbox() -> Sandbox:
        return Sandbox(box, options["uid"], limits, data_dir, home)

    provisioner.ACTIVE = new_sandbox()
    errors = _ErrorLog()
    logging.getLogger("traitlets").addHandler(errors)
    print(RESULT + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        result = {"key": task["key"], "ok": True, "error": ""}
        launched = provisioner.LAUNCHED[0]
        try:
            sandbox = provisioner.ACTIVE
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(template, scratch)
            submitted = scratch / folders["submitted"] / task["student"] / settings.module
            shutil.copytree(task["folder"], submitted)
            fill_home(sandbox, submitted, scratch / folders["source"] / settings.module,
                      Path(task["released"]))
            common = dict(course=settings.course, root=scratch,
                          db_url=f"sqlite:///{scratch / 'gradebook.db'}", module=settings.module,
                          student=task["student"])
            oom_before = sandbox.cgroup.oom_kills() if sandbox.cgroup else 0
            runner.TIMINGS.clear()
            started = time.monotonic()
            try:
                run_converter("Autograde", **common,
                              Execute__kernel_name=provisioner.KERNEL_NAME,
                              Execute__timeout=settings.cell_timeout,
                              KernelManager__transport="ipc",
                              KernelManager__ip=str(sandbox.layout.run / "kernel"),
                              TestsInWorker__source_folder=str(scratch / folders["source"] / settings.module),
                              Autograde__autograde_preprocessors=autograde_preprocessors())
            except Exception:
                # nbgrader refused the notebook before any of its code ran (its metadata, a
                # cell whose type was changed): the coordinator records it as nbgrader does.
                result["refused"] = provisioner.LAUNCHED[0] == launched
                raise
            timings = dict(runner.TIMINGS)
            timings["nbgrader bookkeeping"] = time.monotonic() - started - sum(timings.values())
            if sandbox.cgroup and sandbox.cgroup.oom_kills() > oom_before:
                result["memory_limit"] = True
            # Every process of the student ends before anything they produced is read.
            started = time.monotonic()
            if settings.sandbox_per_student:
                sandbox.close()
            else:
                sandbox.reset()
            out = Path(task["result"])
            out.mkdir(parents=True, exist_ok=True)
            result["files_note"] = take_files(sandbox.layout.home, out / "files")
            if settings.sandbox_per_student:
                provisioner.ACTIVE = new_sandbox()  # starts from empty folders
            else:
                sandbox.clear()
            timings["sandbox reset"] = time.monotonic() - started
            autograded = scratch / folders["autograded"] / task["student"] / settings.module
            result["review"] = []
            for name in notebooks:
                if (autograded / f"{name}.ipynb").is_file():
                    shutil.copy(autograded / f"{name}.ipynb", out / f"{name}.ipynb")
                    prefix = f"{name}: " if len(notebooks) > 1 else ""
                    result["review"] += [prefix + r for r in review_reasons(out / f"{name}.ipynb")]
            # Feedback from the scratch gradebook, which holds the same scores the course's
            # gradebook will: this keeps the slow HTML export in the parallel part. If it
            # fails, the grades stand and the coordinator says so.
            started = time.monotonic()
            try:
                run_converter("GenerateFeedback", **common)
                feedback = scratch / folders["feedback"] / task["student"] / settings.module
                for name in notebooks:
                    if (feedback / f"{name}.html").is_file():
                        shutil.copy(feedback / f"{name}.html", out / f"{name}.html")
            except Exception as exc:  # noqa: BLE001
                logged = [m for m in errors.messages if re.match(r"[\w.]+(Error|Exception): ", m)]
                result["feedback_error"] = (logged[-1] if logged else f"{type(exc).__name__}: {str(exc)[:200]}")
            timings["feedback"] = time.monotonic() - started
            result["timings"] = {k: round(v, 4) for k, v in timings.items()}
        except Exception as exc:  # noqa: BLE001 - report, and stay alive for the next task
            logged = " | ".join(errors.messages[-3:])
            result.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:200]}"
                          + (f" ({logged[-400:]})" if logged else ""))
            try:  # nothing of this student's may reach the next one
                provisioner.ACTIVE.close()
            finally:
                provisioner.ACTIVE = new_sandbox()
        errors.messages.clear()
        print(RESULT + json.dumps(result), flush=True)


# --- the coordinator's side ---------------------------------------------------------------

def _die_with_coordinator() -> None:
    """In a worker, before it starts: the kernel kills it when the coordinator ends, however
    it ends, so no worker (nor its sandbox) outlives the run that holds its uid."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Worker:
    """A worker process, seen from the coordinator."""

    def __init__(self, settings: Settings, template: Path, work: Path, boxes: Path, slot: int,
                 uid: int, number: int, data_dir: Path | None):
        self.slot, self.uid = slot, uid
        self.home = work / f"worker-{number}"
        self.home.mkdir(mode=0o700)
        self.log = self.home / "worker.log"
        end_processes_of(uid)  # nothing of an earlier sandbox of this uid survives into this one
        private = {"TMPDIR": str(self.home), "JUPYTER_RUNTIME_DIR": str(self.home / "runtime")}
        command = [sys.executable, "-m", "mcf_course.grading.worker"]
        if os.geteuid() == 0:  # a mount namespace of its own, for the student's folder's disk
            command = ["unshare", "--mount", "--propagation", "private", "--", *command]
        with self.log.open("w") as log:  # its temporary files stay in its home, removed with it
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True, env=dict(os.environ, **private),
                preexec_fn=_die_with_coordinator)
        self.process.stdin.write(json.dumps({
            "settings": settings.for_workers(), "template": str(template), "home": str(self.home),
            "box": str(boxes / f"box-{slot}"), "uid": uid,
            "data_dir": str(data_dir) if data_dir else ""}) + "\n")
        self.process.stdin.flush()
        self.task: dict | None = None
        self.started = 0.0
        self.ready = False

    def wait_ready(self, seconds: float = 180) -> None:
        """Starting the sandbox takes a few seconds; that does not count against a student."""
        if not self.ready:
            result = read_result(self, time.monotonic() + seconds)
            if not result or not result.get("ready"):
                raise RuntimeError("a grading worker could not start its sandbox: "
                                   + (result or {}).get("error", "no answer"))
            self.ready = True

    def send(self, task: dict) -> None:
        self.wait_ready()
        self.task, self.started = task, time.monotonic()
        self.process.stdin.write(json.dumps(task) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        end_processes_of(self.uid)


def read_result(worker: Worker, deadline: float) -> dict | None:
    """Wait for the worker's next result line until ``deadline`` (monotonic seconds)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(worker.process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                result = result_line(worker)
                if result is not None:
                    return result
    return None


def result_line(worker: Worker) -> dict | None:
    line = worker.process.stdout.readline()
    if not line:
        tail = worker.log.read_text(errors="replace").strip().splitlines()[-3:]
        return {"ok": False, "error": "the grading worker stopped unexpectedly: "
                                      + " | ".join(tail)[-400:]}
    return json.loads(line[len(RESULT):]) if line.startswith(RESULT) else None


def execute_all(settings: Settings, template: Path, tasks: list[dict], work: Path, boxes: Path,
                uids: list[int], data_dir: Path | None, progress, on_result=None,
                check=lambda: None) -> dict[str, dict]:
    """Run every task on the workers, each worker taking the next task as soon as it is free.
    ``work``: the run's private folder; ``boxes``: where the sandboxes' folders go; ``uids``:
    the sandbox uids the run holds, one per worker.

    ``on_result(task, result)`` is called for each finished task once the free worker has
    its next task, so recording a result overlaps with grading the next ones. Results are
    keyed by ``task["key"]``. ``check()`` is called between steps; it may raise to stop.
    """
    import selectors

    results: dict[str, dict] = {}
    pending = tasks  # the caller may add tasks (from on_result) while this runs
    spawned = settings.workers
    workers = [Worker(settings, template, work, boxes, slot, uids[slot], slot, data_dir)
               for slot in range(settings.workers)]
    selector = selectors.DefaultSelector()

    def dispatch(worker: Worker) -> None:
        if pending:
            worker.send(pending.pop(0))
            selector.register(worker.process.stdout, selectors.EVENT_READ, worker)

    try:
        while True:
            check()
            for worker in workers:
                if worker.task is None:
                    dispatch(worker)
            busy = [w for w in workers if w.task]
            if not busy:
                break
            wait = min(w.started + settings.notebook_timeout for w in busy) - time.monotonic()
            finished = []
            for key, _ in selector.select(timeout=max(0.0, min(1.0, wait))):
                result = result_line(key.data)
                if result is not None:
                    finished.append((key.data, result))
            now = time.monotonic()
            finished += [(w, {"ok": False, "timed_out": True,
                              "error": f"stopped after the {settings.notebook_timeout} s limit"})
                         for w in busy if now - w.started > settings.notebook_timeout
                         and w not in {f[0] for f in finished}]
            done = []
            for worker, result in finished:
                task, elapsed = worker.task, now - worker.started
                selector.unregister(worker.process.stdout)
                worker.task = None
                result = results[task["key"]] = {**result, "seconds": elapsed}
                progress(task, result, elapsed)
                if not result.get("ok"):
                    worker.kill()  # a fresh worker (and sandbox) for the next student
                    index = workers.index(worker)
                    worker = workers[index] = Worker(settings, template, work, boxes, worker.slot,
                                                     worker.uid, spawned, data_dir)
                    spawned += 1
                dispatch(worker)
                done.append((task, result))
            if on_result:
                for task, result in done:
                    check()
                    on_result(task, result)
    finally:
        for worker in workers:
            worker.kill()
    return results


def main() -> None:
    run_worker(json.loads(sys.stdin.readline()))


if __name__ == "__main__":
    main()
