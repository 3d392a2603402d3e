"""Grade one module for a whole class: in parallel, isolated, with feedback and a report.

    mcf-grade module1                      # the nbgrader submitted/<student>/module1/ layout
    mcf-grade module1 --lms downloads/     # notebooks downloaded from an LMS, id in the name
    python -m mcf_course.classgrade --help

This works on top of nbgrader, not instead of it:

1. nbgrader's own ``autograde`` pipeline runs each submission, in worker processes (one per
   core by default) and in a scratch copy, with its kernel in a sandbox
   (``mcf_course.sandbox``: memory, CPU and file-size limits; no network; read-only files
   outside its folder), a per-cell timeout and a per-notebook wall-clock limit. If the
   kernel dies (``os._exit``, a crash, the memory limit), the cells it ran keep their
   results and the rest count as failed, instead of the whole submission failing.
2. The executed notebooks are then recorded by ``nbgrader autograde --no-execute`` in the
   course's gradebook (SQLite by default, or any ``--db`` URL, e.g. PostgreSQL), exactly as
   nbgrader records its own results; manual grades already there are kept.
3. ``nbgrader generate_feedback`` writes feedback (with hidden tests removed, see
   ``mcf_course.feedback``); a grades CSV and an HTML instructor report are written to
   ``reports/<module>/``.

A submission that cannot be run (not a notebook, empty, missing, timed out) is recorded
as an unanswered notebook, so it scores 0 with the reason given, and the batch goes on.
Exit status: 0 when every student was graded cleanly, 1 when any needs attention.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

RESULT = "@@RESULT "
DEFAULT_ID_PATTERN = r"^(?P<student_id>[A-Za-z0-9.]+)[_-]"


@dataclass
class Settings:
    course: Path
    module: str
    db_url: str
    workers: int
    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 2048
    force: bool = False
    warm_kernels: bool = True


@dataclass
class Outcome:
    """What happened to one student's submission."""

    student: str
    status: str = "graded"  # graded | failed to run | timed out | missing notebook | skipped
    reason: str = ""
    seconds: float = 0.0
    score: float | None = None
    max_score: float | None = None
    scores: dict = field(default_factory=dict)

    @property
    def needs_attention(self) -> bool:
        return self.status not in ("graded", "skipped")


# --- reading the course -------------------------------------------------------------------

@functools.cache
def _load_course_config(course: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if (course / "nbgrader_config.py").is_file():
        return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return Config()


def course_config(course: Path):
    """The course's nbgrader configuration (read once; callers get their own copy to change)."""
    return copy.deepcopy(_load_course_config(course))


@functools.cache
def course_folders(course: Path) -> dict[str, str]:
    config = course_config(course).CourseDirectory
    return {"source": config.get("source_directory", "source"),
            "release": config.get("release_directory", "release"),
            "submitted": config.get("submitted_directory", "submitted"),
            "autograded": config.get("autograded_directory", "autograded"),
            "feedback": config.get("feedback_directory", "feedback")}


def nbgrader(settings: Settings, *args: str, cwd: Path | None = None,
             extra: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run an nbgrader command on the course (this environment's bin/ on PATH for alembic)."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(["nbgrader", *args, *(extra or []),
                           f"--CourseDirectory.db_url={settings.db_url}"],
                          cwd=cwd or settings.course, env=env, capture_output=True, text=True,
                          check=False)


def stage_lms_downloads(settings: Settings, folder: Path, pattern: str) -> list[str]:
    """Copy notebooks named with the student id into submitted/<id>/<module>/<module>.ipynb.
    Returns the names of files whose name did not match (they are left where they are)."""
    submitted = settings.course / course_folders(settings.course)["submitted"]
    unmatched = []
    for path in sorted(folder.iterdir()):
        match = re.search(pattern, path.name)
        if not path.is_file() or path.suffix != ".ipynb" or not match:
            unmatched.append(path.name)
            continue
        target = submitted / match.group("student_id") / settings.module
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / f"{settings.module}.ipynb")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(path.stat().st_mtime))
        (target / "timestamp.txt").write_text(f"{stamp}.000000 UTC")
    return unmatched


def find_submission(folder: Path, module: str) -> tuple[Path | None, str]:
    """The student's notebook for this module, and a warning if it was found by a fallback."""
    expected = folder / f"{module}.ipynb"
    if expected.is_file():
        return expected, ""
    others = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if len(others) == 1:
        return others[0], f"graded {others[0].name!r} as {expected.name} (wrong file name)"
    if others:
        return None, f"no {expected.name}; several other notebooks: {', '.join(p.name for p in others)}"
    return None, f"no {expected.name} in the submission"


def normalize_submission(path: Path, known_ids: set[str], out: Path) -> tuple[Path, str]:
    """Make nbgrader's job possible where a student's edits would make it crash.

    nbgrader stops with an error on a notebook in which a grade id appears twice (a copied
    cell) or that carries grade ids of another assignment (the wrong notebook). Such cells
    lose their nbgrader marks here and run as ordinary cells; nbgrader then restores the
    assignment's own cells from the gradebook as usual. Returns the notebook to grade and a
    note ('' and the original when nothing needed changing)."""
    nb = nbformat.read(path, as_version=4)
    seen, duplicated, foreign = set(), 0, 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid is None:
            continue
        if gid not in known_ids or gid in seen:
            duplicated += gid in seen
            foreign += gid not in known_ids
            del cell.metadata["nbgrader"]
        seen.add(gid)
    if not duplicated and not foreign:
        return path, ""
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    notes = []
    if duplicated:
        notes.append(f"{duplicated} cell(s) repeating a grade id ran as ordinary cells")
    if foreign:
        notes.append(f"{foreign} graded cell(s) not part of this assignment (another module's "
                     "notebook?) ran as ordinary cells")
    return out, "; ".join(notes)


def readable_problem(path: Path) -> str:
    """Why a file cannot be graded as a notebook ('' when it can)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a notebook"
        return f"not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if not isinstance(nb.get("cells"), list):
        return "not a valid notebook (no cells)"
    return ""


# --- the worker: nbgrader's autograde pipeline, one submission at a time -------------------

def _worker_config(settings: Settings, scratch: Path, jupyter_path: Path, added,
                   zygote: Path | None = None):
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    from mcf_course.sandbox import KERNEL_NAME, write_kernelspec

    write_kernelspec(jupyter_path, scratch, settings.memory_mb, settings.notebook_timeout,
                     zygote=zygote)
    config = course_config(settings.course)
    overrides = Config()
    overrides.CourseDirectory.root = str(scratch)
    overrides.CourseDirectory.db_url = f"sqlite:///{scratch / 'gradebook.db'}"
    overrides.Execute.kernel_name = KERNEL_NAME
    overrides.Execute.timeout = settings.cell_timeout
    overrides.KernelManager.transport = "ipc"  # the kernel has no network, only files
    overrides.KernelManager.ip = str(scratch / "kernel")
    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    execute_class, trim_class = added
    overrides.Autograde.autograde_preprocessors = [
        *[execute_class if p is Execute else p for p in defaults[:1]], trim_class, *defaults[1:]]
    config.merge(overrides)
    return config


TRIM_LIMIT = 100_000  # characters in one output


def _worker_preprocessors():
    """The two preprocessors the workers add to nbgrader's autograde pipeline."""
    from nbclient.exceptions import DeadKernelError
    from nbconvert.preprocessors import Preprocessor
    from nbgrader.preprocessors import Execute
    from traitlets import Bool

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

    class RecoveringExecute(Execute):
        """nbgrader's Execute, except that a dead kernel fails the rest of the notebook
        rather than the whole submission (so earlier answers still count)."""

        def preprocess(self, nb, resources=None, km=None):
            try:
                return super().preprocess(nb, resources, km)
            except DeadKernelError:
                died = False
                for cell in nb.cells:
                    if cell.cell_type != "code" or cell.get("execution_count") is not None:
                        continue
                    message = ("the kernel died while running this cell (os._exit, a crash "
                               "or the memory limit)" if not died
                               else "not run: the kernel died in an earlier cell")
                    cell.outputs.append(nbformat.v4.new_output(
                        "error", ename="DeadKernelError", evalue=message,
                        traceback=[f"DeadKernelError: {message}"]))
                    died = True
                return nb, resources

    return RecoveringExecute, TrimOutput


def run_worker(settings: Settings, template: Path, home: Path) -> None:
    """Serve tasks from stdin: one JSON line per submission, one result line each."""
    added = _worker_preprocessors()
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    scratch, jupyter_path = home / "scratch", home / "jupyter"
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    os.environ["MCF_COURSE_DATA"] = str(settings.course / "datasets") \
        if (settings.course / "datasets").is_dir() else os.environ.get("MCF_COURSE_DATA", "")
    zygote = None
    if sys.platform.startswith("linux") and settings.warm_kernels:
        from mcf_course.warmkernel import start_zygote

        zygote = home / "zygote.sock"
        start_zygote(zygote, sys.stderr)
    print(RESULT + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(template, scratch)
        result = {"student": task["student"], "ok": True, "error": ""}
        try:
            folder = scratch / "submitted" / task["student"] / settings.module
            folder.mkdir(parents=True)
            shutil.copy(task["notebook"], folder / f"{settings.module}.ipynb")
            if task.get("timestamp"):
                shutil.copy(task["timestamp"], folder / "timestamp.txt")
            config = _worker_config(settings, scratch, jupyter_path, added, zygote)
            coursedir = CourseDirectory(config=config)
            coursedir.assignment_id, coursedir.student_id = settings.module, task["student"]
            Autograde(coursedir=coursedir, config=config).start()
            folders = course_folders(settings.course)
            executed = (scratch / folders["autograded"] / task["student"] / settings.module
                        / f"{settings.module}.ipynb")
            out = Path(task["result"])
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, out)
            # Feedback from the scratch gradebook, which holds the same scores the course's
            # gradebook will: this keeps the slow HTML export in the parallel part.
            GenerateFeedback(coursedir=coursedir, config=config).start()
            shutil.copy(scratch / folders["feedback"] / task["student"] / settings.module
                        / f"{settings.module}.html", out.with_suffix(".html"))
        except Exception as exc:  # noqa: BLE001 - report, and stay alive for the next task
            result.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        print(RESULT + json.dumps(result), flush=True)


# --- the coordinator ----------------------------------------------------------------------

class Worker:
    def __init__(self, settings: Settings, template: Path, home: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        args = json.dumps({**asdict(settings), "course": str(settings.course),
                           "template": str(template), "home": str(home)})
        self.log = home / "worker.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mcf_course.classgrade", "--worker", args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True)
        self.task: dict | None = None
        self.started = 0.0
        self.ready = False

    def wait_ready(self, seconds: float = 120) -> None:
        """Imports take a few seconds; they do not count against a student's time limit."""
        if not self.ready:
            _read_result(self, time.monotonic() + seconds)
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


def _read_result(worker: Worker, deadline: float) -> dict | None:
    """Wait for the worker's next result line until ``deadline`` (monotonic seconds)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(worker.process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                result = _result_line(worker)
                if result is not None:
                    return result
    return None


def _result_line(worker: Worker) -> dict | None:
    line = worker.process.stdout.readline()
    if not line:
        tail = worker.log.read_text(errors="replace").strip().splitlines()[-3:]
        return {"ok": False, "error": "the grading worker stopped unexpectedly: "
                                      + " | ".join(tail)[-400:]}
    return json.loads(line[len(RESULT):]) if line.startswith(RESULT) else None


def execute_all(settings: Settings, template: Path, tasks: list[dict], work: Path,
                progress, on_result=None) -> dict[str, dict]:
    """Run every task on the workers, each worker taking the next task as soon as it is free.

    ``on_result(task, result)`` is called for each finished task once the free worker has
    its next task, so recording a result overlaps with grading the next ones.
    """
    import selectors

    results: dict[str, dict] = {}
    pending = tasks  # the caller may add tasks (from on_result) while this runs
    workers = [Worker(settings, template, work / f"worker{i}") for i in range(settings.workers)]
    selector = selectors.DefaultSelector()
    spawned = len(workers)

    def dispatch(worker: Worker) -> None:
        if pending:
            worker.send(pending.pop(0))
            selector.register(worker.process.stdout, selectors.EVENT_READ, worker)

    try:
        while True:
            for worker in workers:
                if worker.task is None:
                    dispatch(worker)
            busy = [w for w in workers if w.task]
            if not busy:
                break
            wait = min(w.started + settings.notebook_timeout for w in busy) - time.monotonic()
            finished = []
            for key, _ in selector.select(timeout=max(0.0, min(1.0, wait))):
                result = _result_line(key.data)
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
                result = results[task["student"]] = {**result, "seconds": elapsed}
                progress(task["student"], result, elapsed)
                if not result.get("ok"):
                    worker.kill()  # a fresh worker for the next student
                    index = workers.index(worker)
                    worker = workers[index] = Worker(settings, template, work / f"worker{spawned}")
                    spawned += 1
                dispatch(worker)
                done.append((task, result))
            if on_result:
                for task, result in done:
                    on_result(task, result)
    finally:
        for worker in workers:
            worker.kill()
    return results


def make_template(settings: Settings, work: Path) -> Path:
    """A scratch course with just this module's source, released into its own gradebook."""
    folders = course_folders(settings.course)
    template = work / "template"
    (template / folders["source"]).mkdir(parents=True)
    shutil.copytree(settings.course / folders["source"] / settings.module,
                    template / folders["source"] / settings.module)
    if (settings.course / "nbgrader_config.py").is_file():
        shutil.copy(settings.course / "nbgrader_config.py", template)
    if settings.db_url.startswith("sqlite:///"):  # a copy of the gradebook is exact and quick
        shutil.copy(settings.db_url.removeprefix("sqlite:///"), template / "gradebook.db")
        return template
    local = Settings(**{**asdict(settings), "db_url": f"sqlite:///{template / 'gradebook.db'}"})
    result = nbgrader(local, "generate_assignment", settings.module, "--force", cwd=template,
                      extra=[f"--CourseDirectory.release_directory={work / 'release-template'}"])
    if result.returncode:
        raise RuntimeError(f"could not generate {settings.module}:\n{result.stderr[-2000:]}")
    return template


def grade_class(course: Path, module: str, *, db_url: str | None = None, workers: int | None = None,
                lms: Path | None = None, id_pattern: str = DEFAULT_ID_PATTERN,
                cell_timeout: int = 60, notebook_timeout: int = 600, memory_mb: int = 2048,
                force: bool = False, quiet: bool = False) -> list[Outcome]:
    """Grade ``module`` for every student who submitted it. See the module docstring."""
    course = course.resolve()
    settings = Settings(course=course, module=module,
                        db_url=db_url or f"sqlite:///{course / 'gradebook.db'}",
                        workers=workers or os.cpu_count() or 1, cell_timeout=cell_timeout,
                        notebook_timeout=notebook_timeout, memory_mb=memory_mb, force=force)
    folders = course_folders(course)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    unmatched = stage_lms_downloads(settings, lms, id_pattern) if lms else []
    for name in unmatched:
        say(f"  ignored {name!r}: no student id in the file name (pattern {id_pattern!r})")

    submitted = course / folders["submitted"]
    students = sorted(p.parent.name for p in submitted.glob(f"*/{module}") if p.is_dir())
    outcomes = {s: Outcome(s) for s in students}
    if not students:
        say(f"No submissions of {module} in {submitted}.")
        return []
    already = _already_graded(settings, students) if not force else set()

    with tempfile.TemporaryDirectory(prefix="mcf-grade-") as tmp:
        work = Path(tmp)
        _ensure_assignment_in_gradebook(settings, work)
        template = make_template(settings, work)
        blank = _released_notebook(settings, template)
        source = course / folders["source"] / module / f"{module}.ipynb"
        known_ids = {c.metadata["nbgrader"]["grade_id"]
                     for c in nbformat.read(source, as_version=4).cells
                     if "grade_id" in c.get("metadata", {}).get("nbgrader", {})}
        tasks, stand_ins = [], {}
        for student in students:
            if student in already:
                outcomes[student].status, outcomes[student].reason = "skipped", "already graded (use --force)"
                continue
            folder = submitted / student / module
            notebook, warning = find_submission(folder, module)
            problem = "" if notebook is None else readable_problem(notebook)
            if notebook is None or problem:
                outcomes[student].status = "missing notebook" if notebook is None else "failed to run"
                outcomes[student].reason = (warning if notebook is None else problem) + \
                    "; recorded as unanswered (0)"
                stand_ins[student] = blank
                continue
            notebook, note = normalize_submission(notebook, known_ids,
                                                  work / "normalized" / student / f"{module}.ipynb")
            outcomes[student].reason = "; ".join(filter(None, [warning, note]))
            timestamp = folder / "timestamp.txt"
            tasks.append({"student": student, "notebook": str(notebook),
                          "timestamp": str(timestamp) if timestamp.is_file() else "",
                          "result": str(work / "executed" / student / f"{module}.ipynb")})
        # The unanswered notebook is run once, for anyone whose own notebook cannot be used.
        blank_task = {"student": "__blank__", "notebook": str(blank), "timestamp": "",
                      "result": str(work / "executed" / "__blank__" / f"{module}.ipynb")}
        if stand_ins:
            tasks.insert(0, blank_task)

        done = [0]

        def progress(student, result, elapsed):
            mark = "ok" if result.get("ok") else ("TIMED OUT" if result.get("timed_out") else "FAILED")
            if student != "__blank__":
                done[0] += 1
                say(f"[{done[0]:>3}/{len(outcomes)}] {student:<20} {mark:<9} {elapsed:5.1f} s")

        recorder = Recorder(settings, work / "staging")
        blank_executed = work / "executed" / "__blank__" / f"{module}.ipynb"

        def on_result(task, result):
            """Record a finished submission in the gradebook while the workers go on."""
            student = task["student"]
            if student == "__blank__":
                return
            outcome, executed = outcomes[student], Path(task["result"])
            outcome.seconds = result["seconds"]
            if not result.get("ok"):
                outcome.status = "timed out" if result.get("timed_out") else "failed to run"
                outcome.reason = f"{result['error']}; recorded as unanswered (0)"
                stand_ins[student] = blank
                if blank_task not in tasks:
                    tasks.append(blank_task)  # the workers' queue: run it before they finish
                return
            recorder.record(student, executed, task["timestamp"],
                            feedback=executed.with_suffix(".html"))
            died = kernel_death(executed)
            if died:
                outcome.reason = "; ".join(filter(None, [outcome.reason, died]))

        say(f"Grading {len(outcomes) - len(stand_ins)} submission(s) of {module} "
            f"on {settings.workers} worker(s) ...")
        results = execute_all(settings, template, tasks, work, progress, on_result) if tasks else {}
        if stand_ins and not blank_executed.is_file():
            raise RuntimeError(f"the unanswered notebook itself could not be run: {results.get('__blank__')}")
        for student in stand_ins:
            recorder.record(student, blank_executed, "", feedback=None)

    _collect_scores(settings, outcomes)
    report_dir = course / "reports" / module
    write_grades_csv(report_dir / "grades.csv", outcomes.values())
    from mcf_course.grading_report import write_report

    write_report(report_dir / "report.html", settings, list(outcomes.values()),
                 course / folders["autograded"])
    if not quiet:
        print_summary(list(outcomes.values()), report_dir)
    return list(outcomes.values())


def _ensure_assignment_in_gradebook(settings: Settings, work: Path) -> None:
    """nbgrader records grades only for an assignment it has generated into the gradebook.
    If that has not been done, do it now, releasing into a scratch folder so the course's own
    release folder is left alone."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(settings.db_url) as gb:
        try:
            if gb.find_assignment(settings.module).notebooks:
                return
        except MissingEntry:
            pass
    result = nbgrader(settings, "generate_assignment", settings.module, "--force",
                      f"--CourseDirectory.release_directory={work / 'release-scratch'}")
    if result.returncode:
        raise RuntimeError(f"could not add {settings.module} to the gradebook:\n{result.stderr[-2000:]}")


def _released_notebook(settings: Settings, template: Path) -> Path:
    """The unanswered student version: the course's release, or one generated in scratch."""
    folders, module = course_folders(settings.course), settings.module
    released = settings.course / folders["release"] / module / f"{module}.ipynb"
    if released.is_file():
        return released
    scratch = template.parent / "release-blank"
    result = nbgrader(settings, "generate_assignment", module, "--force", "--no-db",
                      extra=[f"--CourseDirectory.release_directory={scratch}"])
    if result.returncode:
        raise RuntimeError(f"could not make the unanswered notebook:\n{result.stderr[-2000:]}")
    return scratch / module / f"{module}.ipynb"


def kernel_death(notebook: Path) -> str:
    """A note saying where the kernel died, if it did ('' otherwise)."""
    nb = nbformat.read(notebook, as_version=4)
    for number, cell in enumerate(nb.cells, 1):
        for output in cell.get("outputs", []):
            if output.get("ename") == "DeadKernelError":
                where = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}"
                return f"the kernel died in {where}; the cells after it count as failed"
    return ""


class Recorder:
    """Records executed notebooks in the course's gradebook, one student at a time, with
    nbgrader's own autograde pipeline minus execution (as `nbgrader autograde --no-execute`
    would), in this process; and puts each student's feedback in place."""

    def __init__(self, settings: Settings, staging: Path):
        import logging

        from traitlets.config import Config

        logging.getLogger("traitlets").setLevel(logging.WARNING)
        self.settings, self.staging = settings, staging
        self.config = course_config(settings.course)
        overrides = Config()
        overrides.CourseDirectory.root = str(settings.course)
        overrides.CourseDirectory.db_url = settings.db_url
        overrides.CourseDirectory.submitted_directory = str(staging)
        overrides.Execute.enabled = False
        overrides.ClearOutput.enabled = False
        overrides.BaseConverter.force = True
        self.config.merge(overrides)

    def _coursedir(self, student: str):
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        coursedir.assignment_id, coursedir.student_id = self.settings.module, student
        return coursedir

    def record(self, student: str, notebook: Path, timestamp: str, feedback: Path | None) -> None:
        from nbgrader.converters import Autograde, GenerateFeedback

        module = self.settings.module
        folder = self.staging / student / module
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, folder / f"{module}.ipynb")
        if timestamp:
            shutil.copy(timestamp, folder / "timestamp.txt")
        Autograde(coursedir=self._coursedir(student), config=self.config).start()
        target = self.settings.course / course_folders(self.settings.course)["feedback"] / student / module
        if feedback is not None and feedback.is_file():  # made by the worker, in parallel
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(feedback, target / f"{module}.html")
        else:
            GenerateFeedback(coursedir=self._coursedir(student), config=self.config).start()


def _already_graded(settings: Settings, students: list[str]) -> set[str]:
    autograded = settings.course / course_folders(settings.course)["autograded"]
    return {s for s in students
            if (autograded / s / settings.module / f"{settings.module}.ipynb").is_file()}


def _collect_scores(settings: Settings, outcomes: dict[str, Outcome]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(settings.db_url) as gb:
        for student, outcome in outcomes.items():
            try:
                notebook = gb.find_submission_notebook(settings.module, settings.module, student)
            except MissingEntry:
                continue
            outcome.scores = {g.name: g.score for g in notebook.grades}
            outcome.score, outcome.max_score = notebook.score, notebook.max_score


def write_grades_csv(path: Path, outcomes) -> None:
    outcomes = sorted(outcomes, key=lambda o: o.student)
    cells = sorted({g for o in outcomes for g in o.scores})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "status", "score", "max_score", *cells, "reason"])
        for o in outcomes:
            writer.writerow([o.student, o.status, o.score, o.max_score,
                             *[o.scores.get(c, "") for c in cells], o.reason])


def print_summary(outcomes: list[Outcome], report_dir: Path) -> None:
    counts = Counter(o.status for o in outcomes)
    print(f"\n{'student':<20} {'status':<17} {'score':>11}  reason")
    for o in sorted(outcomes, key=lambda o: o.student):
        score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
        print(f"{o.student:<20} {o.status:<17} {score:>11}  {o.reason}")
    print("\n" + ", ".join(f"{n} {status}" for status, n in counts.most_common()))
    print(f"Grades: {report_dir / 'grades.csv'}\nReport: {report_dir / 'report.html'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        options = json.loads(argv[1])
        template, home = Path(options.pop("template")), Path(options.pop("home"))
        options["course"] = Path(options["course"])
        run_worker(Settings(**options), template, home)
        return 0
    parser = argparse.ArgumentParser(prog="mcf-grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the assignment to grade, e.g. module1")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: here)")
    parser.add_argument("--db", help="gradebook URL (default: sqlite:///<course>/gradebook.db)")
    parser.add_argument("--workers", type=int, help="parallel workers (default: one per core)")
    parser.add_argument("--lms", type=Path, help="folder of notebooks downloaded from an LMS")
    parser.add_argument("--id-pattern", default=DEFAULT_ID_PATTERN,
                        help="regex with a (?P<student_id>...) group, matched in LMS file names")
    parser.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument("--notebook-timeout", type=int, default=600, help="seconds per notebook")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory limit per kernel")
    parser.add_argument("--force", action="store_true", help="regrade students already graded")
    args = parser.parse_args(argv)
    outcomes = grade_class(args.course, args.module, db_url=args.db, workers=args.workers,
                           lms=args.lms, id_pattern=args.id_pattern, cell_timeout=args.cell_timeout,
                           notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb,
                           force=args.force)
    return 1 if not outcomes or any(o.needs_attention for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
