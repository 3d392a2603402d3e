"""Grading workers: each runs nbgrader's own autograde pipeline, one submission at a time, in
a scratch course of its own, with the kernels in its sandbox (``mcf_course.grading.sandbox``).

The worker process is started by the coordinator (``Worker``) and reads, on standard input,
first its settings and then one task per line; it answers each with one ``@@RESULT`` line.
Nothing a worker is told travels in its argv or environment.

nbgrader's pipeline runs with these changes (see ``autograde_preprocessors``):

- ``RecoveringExecute``: nbgrader's Execute with test cells run in the worker, never in the
  student's kernel (``mcf_course.grading.runner.TestsInWorker``), and a dead kernel failing
  the cell it was running and the cells after it, rather than the whole submission.
- ``TrimOutput``: one enormous output is cut (nbgrader's own limit counts lines).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from mcf_course.grading.course import Settings, course_folders, run_converter
from mcf_course.grading.sandbox import UID_BASE, Limits, Sandbox, processes_of

RESULT = "@@RESULT "
TRIM_LIMIT = 100_000  # characters in one output


def _error(ename: str, message: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=message,
                                  traceback=[f"{ename}: {message}"])


def autograde_preprocessors():
    """nbgrader's autograde preprocessors, with Execute replaced and TrimOutput added."""
    from nbclient.exceptions import DeadKernelError
    from nbconvert.preprocessors import Preprocessor
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets import Bool

    from mcf_course.grading.runner import TestsInWorker

    class TrimOutput(Preprocessor):
        """Cut any single output over TRIM_LIMIT characters (nbgrader's LimitOutput counts
        lines, so one enormous line gets through). Scores do not depend on output text."""

        enabled = Bool(True)

        def preprocess_cell(self, cell, resources, index):
            note = "\n... [output cut by the grader]\n"
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and len(output.get("text", "")) > TRIM_LIMIT:
                    output["text"] = output["text"][:TRIM_LIMIT] + note
                for mime, value in output.get("data", {}).items():
                    if isinstance(value, str) and len(value) > TRIM_LIMIT:
                        output["data"][mime] = value[:TRIM_LIMIT] + note
            return cell, resources

    class RecoveringExecute(TestsInWorker):
        """TestsInWorker, except that a dead kernel fails the cell it was running and the
        rest of the notebook, rather than the whole submission."""

        running = -1

        def preprocess_cell(self, cell, resources, index):
            self.running = index
            return super().preprocess_cell(cell, resources, index)

        def preprocess(self, nb, resources=None, km=None):
            self.running = -1
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
    return [RecoveringExecute, TrimOutput, *defaults[1:]]


def fill_home(sandbox: Sandbox, submitted: Path, source: Path, released: Path, module: str) -> None:
    """What the kernel finds in its working folder, as in nbgrader's autograded folder but for
    the notebooks: the student's other files, then the assignment's own files over them, and
    the released (student) version of the notebook, never the one with hidden tests."""
    home = sandbox.layout.home
    for folder in (submitted, source):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb" \
                    and path.name != "timestamp.txt":
                target = home / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    shutil.copy(released, home / f"{module}.ipynb")
    if sandbox.root:
        for path in [home, *home.rglob("*")]:
            os.chown(path, sandbox.uid, sandbox.uid, follow_symlinks=False)


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

    home, template = Path(options["home"]), Path(options["template"])
    scratch, jupyter_path = home / "scratch", home / "jupyter"
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    provisioner.write_kernelspec(jupyter_path)
    folders = course_folders(settings.course)
    limits = Limits(memory_mb=settings.memory_mb, cpu_seconds=settings.notebook_timeout)
    data_dir = Path(options["data_dir"]) if options.get("data_dir") else None
    if data_dir:  # the tests, run here, read the datasets the kernels see
        os.environ["MCF_COURSE_DATA"] = str(data_dir)

    def new_sandbox() -> Sandbox:
        return Sandbox(Path(options["box"]), options["slot"], limits, data_dir, home)

    provisioner.ACTIVE = new_sandbox()
    errors = _ErrorLog()
    logging.getLogger("traitlets").addHandler(errors)
    print(RESULT + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        result = {"key": task["key"], "ok": True, "error": ""}
        try:
            sandbox = provisioner.ACTIVE
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(template, scratch)
            submitted = scratch / folders["submitted"] / task["student"] / settings.module
            shutil.copytree(task["folder"], submitted)
            fill_home(sandbox, submitted, scratch / folders["source"] / settings.module,
                      Path(task["released"]), settings.module)
            common = dict(course=settings.course, root=scratch,
                          db_url=f"sqlite:///{scratch / 'gradebook.db'}", module=settings.module,
                          student=task["student"])
            source = scratch / folders["source"] / settings.module
            started = time.monotonic()
            run_converter("Autograde", **common,
                          Execute__kernel_name=provisioner.KERNEL_NAME,
                          Execute__timeout=settings.cell_timeout,
                          KernelManager__transport="ipc",
                          KernelManager__ip=str(sandbox.layout.run / "kernel"),
                          TestsInWorker__source_folder=str(source),
                          Autograde__autograde_preprocessors=autograde_preprocessors())
            timings = dict(runner.TIMINGS)
            timings["nbgrader bookkeeping"] = time.monotonic() - started - sum(timings.values())
            # Every process of the student ends before anything they produced is read.
            started = time.monotonic()
            if settings.sandbox_per_student:
                sandbox.close()
                provisioner.ACTIVE = new_sandbox()
            else:
                sandbox.reset()
            timings["sandbox reset"] = time.monotonic() - started
            executed = (scratch / folders["autograded"] / task["student"] / settings.module
                        / f"{settings.module}.ipynb")
            out = Path(task["result"])
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, out)
            result["review"] = review_reasons(executed)
            # Feedback from the scratch gradebook, which holds the same scores the course's
            # gradebook will: this keeps the slow HTML export in the parallel part.
            started = time.monotonic()
            run_converter("GenerateFeedback", **common)
            shutil.copy(scratch / folders["feedback"] / task["student"] / settings.module
                        / f"{settings.module}.html", out.with_suffix(".html"))
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

class Worker:
    """A worker process, seen from the coordinator."""

    def __init__(self, settings: Settings, template: Path, work: Path, slot: int, number: int,
                 data_dir: Path | None):
        self.slot = slot
        self.home = work / f"worker-{number}"
        self.home.mkdir(mode=0o700)
        self.log = self.home / "worker.log"
        end_slot(slot)  # nothing of an earlier sandbox on this slot may survive into this one
        private = {"TMPDIR": str(self.home), "JUPYTER_RUNTIME_DIR": str(self.home / "runtime")}
        with self.log.open("w") as log:  # its temporary files stay in its home, removed with it
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mcf_course.grading.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
                env=dict(os.environ, **private))
        self.process.stdin.write(json.dumps({
            "settings": settings.for_workers(), "template": str(template), "home": str(self.home),
            "box": str(work / "boxes" / f"box-{slot}"), "slot": slot,
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
        end_slot(self.slot)


def end_slot(slot: int, seconds: float = 10) -> None:
    """Kill every process of a sandbox slot's uid (as root; the sandbox dies with its worker,
    this makes sure of it before the slot is used again)."""
    if os.geteuid() != 0:
        return
    deadline = time.monotonic() + seconds
    while (pids := processes_of(UID_BASE + slot)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


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


def execute_all(settings: Settings, template: Path, tasks: list[dict], work: Path,
                data_dir: Path | None, progress, on_result=None, check=lambda: None) -> dict[str, dict]:
    """Run every task on the workers, each worker taking the next task as soon as it is free.

    ``on_result(task, result)`` is called for each finished task once the free worker has
    its next task, so recording a result overlaps with grading the next ones. Results are
    keyed by ``task["key"]``. ``check()`` is called between steps; it may raise to stop.
    """
    import selectors

    results: dict[str, dict] = {}
    pending = tasks  # the caller may add tasks (from on_result) while this runs
    (work / "boxes").mkdir(mode=0o711, exist_ok=True)
    spawned = settings.workers
    workers = [Worker(settings, template, work, slot, slot, data_dir) for slot in range(settings.workers)]
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
                    worker = workers[index] = Worker(settings, template, work, worker.slot,
                                                     spawned, data_dir)
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
