"""Grade one module for a whole class: in parallel, sandboxed, with feedback and a report.

    mcf-grade module1                      # the nbgrader submitted/<student>/module1/ layout
    mcf-grade module1 --lms downloads/     # notebooks downloaded from an LMS, id in the name
    python -m mcf_course.grading --help

This works on top of nbgrader, not instead of it:

1. nbgrader's own ``autograde`` pipeline runs each submission, in worker processes (one per
   core by default), each with a scratch course of its own and its kernels in a bubblewrap
   sandbox (``mcf_course.grading.sandbox``): no network, an unprivileged uid, a read-only
   view of only what the kernel needs, limits, and every process of a student ended before
   the next one starts or anything the student produced is read. A per-cell timeout and a
   per-notebook wall-clock limit apply. A dead kernel fails the cell it was running and the
   rest; a test cell passes only if it ran to its end.
2. The executed notebooks are then recorded in the course's gradebook (SQLite by default, or
   any URL given with ``--db`` or the ``MCF_GRADE_DB`` environment variable, e.g. PostgreSQL)
   by nbgrader's pipeline without execution, exactly as ``nbgrader autograde --no-execute``
   records them; manual grades already there are kept.
3. Feedback (hidden tests removed, see ``mcf_course.grading.feedback``), a grades CSV and an
   HTML instructor report are written (``reports/<module>/``).

A submission that cannot be run (not a notebook, empty, missing, timed out) is recorded as
the unanswered notebook, so it scores 0 with the reason given, and the batch goes on.
Exit status: 0 when every student was graded cleanly, 1 when any needs attention (a kernel
died, a test did not finish, a file could not be run), 2 when the batch could not run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

import nbformat

from mcf_course.grading.course import (
    DB_URL_ENV,
    Outcome,
    Settings,
    course_folders,
    course_ignore,
    run_converter,
    tool_environment,
)
from mcf_course.grading.record import (
    Recorder,
    already_graded,
    collect_scores,
    incomplete_runs,
    write_grades_csv,
)
from mcf_course.grading.sandbox import SandboxUnavailable, require_sandbox
from mcf_course.grading.submissions import (
    DEFAULT_ID_PATTERN,
    Note,
    copy_submission,
    find_submission,
    normalize_submission,
    readable_problem,
    stage_lms_downloads,
    valid_student_id,
)
from mcf_course.grading.worker import execute_all

KEEP_WORK_ENV = "MCF_GRADE_KEEP_WORK"  # set to keep the scratch folder, for debugging
UNANSWERED = "unanswered"  # the task key (and scratch id) of the unanswered notebook's run


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: stop the batch, clean up, write what is known."""


_STOP: list[str] = []  # the signal that asked the run to stop, once one has


def _interrupt(signum, _frame):
    """Note the request; the run stops at the next safe point (never inside nbgrader, so a
    student's grades are recorded whole or not at all)."""
    _STOP.append(signal.Signals(signum).name)


def _stop_if_asked() -> None:
    if _STOP:
        raise Interrupted(_STOP[0])


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
    run_converter("GenerateAssignment", settings.course, template,
                  f"sqlite:///{template / 'gradebook.db'}", settings.module,
                  BaseConverter__force=True,
                  CourseDirectory__release_directory=str(work / "release-template"))
    return template


def _ensure_assignment_in_gradebook(settings: Settings, work: Path) -> None:
    """nbgrader records grades only for an assignment it has generated into the gradebook.
    If that has not been done, do it now, releasing into a scratch folder so the course's own
    release folder is left alone."""
    from nbgrader.api import Gradebook, MissingEntry

    os.environ["PATH"] = tool_environment()["PATH"]  # a new gradebook runs alembic
    with Gradebook(settings.db_url) as gb:
        try:
            if gb.find_assignment(settings.module).notebooks:
                return
        except MissingEntry:
            pass
    run_converter("GenerateAssignment", settings.course, settings.course, settings.db_url,
                  settings.module, BaseConverter__force=True,
                  CourseDirectory__release_directory=str(work / "release-scratch"))


def _released_notebook(settings: Settings, work: Path) -> Path:
    """The unanswered student version: the course's release, or one generated in scratch."""
    folders, module = course_folders(settings.course), settings.module
    released = settings.course / folders["release"] / module / f"{module}.ipynb"
    if released.is_file():
        return released
    scratch = work / "release-blank"
    run_converter("GenerateAssignment", settings.course, settings.course,
                  f"sqlite:///{work / 'blank.db'}", module, BaseConverter__force=True,
                  CourseDirectory__release_directory=str(scratch))
    return scratch / module / f"{module}.ipynb"


def _scratch_base(say) -> str:
    """Where the run's scratch folder goes: the temporary folder, if the sandboxes' uids can
    pass through it to their own folders (a private TMPDIR, mode 700, blocks them)."""
    from mcf_course.grading.sandbox import searchable_by_others

    base = tempfile.gettempdir()
    if os.geteuid() != 0 or searchable_by_others(Path(base)):
        return base
    for fallback in ("/tmp", "/var/tmp"):
        if searchable_by_others(Path(fallback)):
            say(f"  (scratch folder in {fallback}: the sandboxes cannot pass through {base})")
            return fallback
    raise SandboxUnavailable(f"no temporary folder the sandboxes can reach: {base} is closed to other users")


def _data_dir(course: Path) -> Path | None:
    """The datasets folder the kernels see: the course's own, or the one the package finds."""
    if (course / "datasets" / "datapackage.json").is_file():
        return course / "datasets"
    from mcf_course.data import data_location

    location = data_location(course)
    return Path(location) if "://" not in location else None


def grade_class(course: Path, module: str, *, db_url: str | None = None, workers: int | None = None,
                lms: Path | None = None, id_pattern: str = DEFAULT_ID_PATTERN,
                cell_timeout: int = 60, notebook_timeout: int = 600, memory_mb: int = 2048,
                force: bool = False, quiet: bool = False,
                sandbox_per_student: bool = False) -> list[Outcome]:
    """Grade ``module`` for every student who submitted it. See the module docstring."""
    require_sandbox()
    course = course.resolve()
    settings = Settings(course=course, module=module,
                        db_url=db_url or os.environ.get(DB_URL_ENV) or f"sqlite:///{course / 'gradebook.db'}",
                        workers=workers or os.cpu_count() or 1, cell_timeout=cell_timeout,
                        notebook_timeout=notebook_timeout, memory_mb=memory_mb, force=force,
                        sandbox_per_student=sandbox_per_student)
    folders = course_folders(course)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    submitted = course / folders["submitted"]
    notes: list[Note] = stage_lms_downloads(lms, id_pattern, submitted, module) if lms else []

    students = []
    for folder in sorted(submitted.glob(f"*/{module}")):
        if folder.is_dir() and not folder.is_symlink():
            if valid_student_id(folder.parent.name):
                students.append(folder.parent.name)
            else:
                notes.append(Note(f"{folder.parent.name}/", "not graded: not a valid student id"))
    for note in notes:
        say(f"  {note}")
    if not students:
        say(f"No submissions of {module} in {submitted}.")
        return []
    outcomes = {s: Outcome(s) for s in students}
    already = already_graded(settings, students) if not force else set()

    _STOP.clear()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    work = Path(tempfile.mkdtemp(prefix="mcf-grade-", dir=_scratch_base(say)))
    work.chmod(0o711)  # the sandboxes reach their own folders below it, nothing else
    interrupted = ""
    try:
        _grade(settings, work, students, outcomes, already, say)
    except (Interrupted, KeyboardInterrupt) as stop:
        interrupted = str(stop) or "interrupted"
        for outcome in outcomes.values():
            if outcome.status == "graded" and outcome.score is None and not outcome.seconds:
                outcome.status, outcome.reason = "not graded", f"the run was stopped ({interrupted})"
    finally:
        if os.environ.get(KEEP_WORK_ENV):
            say(f"  (kept the scratch folder {work}: it holds the solutions, delete it yourself)")
        else:
            shutil.rmtree(work, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    collect_scores(settings, outcomes)
    report_dir = course / "reports" / module
    write_grades_csv(report_dir / "grades.csv", outcomes.values())
    from mcf_course.grading.report import write_report

    write_report(report_dir / "report.html", settings, list(outcomes.values()),
                 course / folders["autograded"], notes)
    if not quiet:
        print_summary(list(outcomes.values()), report_dir)
    if interrupted:
        raise Interrupted(interrupted)
    return list(outcomes.values())


def _grade(settings: Settings, work: Path, students: list[str], outcomes: dict[str, Outcome],
           already: set[str], say) -> None:
    course, module = settings.course, settings.module
    folders = course_folders(course)
    for name in ("staging", "incoming", "executed", "normalized"):
        (work / name).mkdir(mode=0o700)
    _ensure_assignment_in_gradebook(settings, work)
    template = make_template(settings, work)
    blank = _released_notebook(settings, work)
    source = course / folders["source"] / module / f"{module}.ipynb"
    known_ids = {c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(source, as_version=4).cells
                 if "grade_id" in c.get("metadata", {}).get("nbgrader", {})}
    ignore = course_ignore(course)

    def task(key: str, student: str, folder: Path) -> dict:
        return {"key": key, "student": student, "folder": str(folder), "released": str(blank),
                "result": str(work / "executed" / key / f"{module}.ipynb")}

    tasks, stand_ins = [], {}
    for number, student in enumerate(students):
        outcome = outcomes[student]
        if student in already:
            outcome.status, outcome.reason = "skipped", "already graded (use --force)"
            continue
        folder = course / folders["submitted"] / student / module
        notebook, warning = find_submission(folder, module)
        problem = "" if notebook is None else readable_problem(notebook)
        if notebook is None or problem:
            outcome.status = "missing notebook" if notebook is None else "failed to run"
            outcome.reason = (warning if notebook is None else problem) + "; recorded as unanswered (0)"
            stand_ins[student] = blank
            continue
        notebook, note = normalize_submission(notebook, known_ids, work / "normalized" / student / f"{module}.ipynb",
                                              released=blank)
        incoming = work / "incoming" / str(number)
        left_out = copy_submission(folder, notebook, module, ignore, incoming)
        outcome.reason = "; ".join(filter(None, [warning, note, left_out]))
        tasks.append(task(f"student-{number}", student, incoming))
    # The unanswered notebook is run once, for anyone whose own notebook cannot be used. Its
    # task key is not a student id, so no student's name can collide with it.
    unanswered_folder = work / "incoming" / UNANSWERED
    copy_submission(blank.parent, blank, module, ignore, unanswered_folder)
    blank_task = task(UNANSWERED, UNANSWERED, unanswered_folder)
    if stand_ins:
        tasks.insert(0, blank_task)
    students_of = {t["key"]: t["student"] for t in tasks}
    done = [0]

    def progress(task, result, elapsed):
        if task["key"] == UNANSWERED:
            return
        mark = "ok" if result.get("ok") else ("TIMED OUT" if result.get("timed_out") else "FAILED")
        done[0] += 1
        say(f"[{done[0]:>3}/{len(outcomes)}] {task['student']:<20} {mark:<9} {elapsed:5.1f} s")

    recorder = Recorder(settings, work / "staging")
    blank_executed = Path(blank_task["result"])

    def on_result(task, result):
        """Record a finished submission in the gradebook while the workers go on."""
        if task["key"] == UNANSWERED:
            return
        student = students_of[task["key"]]
        outcome, executed = outcomes[student], Path(task["result"])
        outcome.seconds = result["seconds"]
        if not result.get("ok"):
            outcome.status = "timed out" if result.get("timed_out") else "failed to run"
            outcome.reason = f"{result['error']}; recorded as unanswered (0)"
            stand_ins[student] = blank
            if blank_task not in tasks and not blank_executed.is_file():
                tasks.append(blank_task)  # the workers' queue: run it before they finish
            return
        recorder.record(student, executed, Path(task["folder"]), feedback=executed.with_suffix(".html"))
        status, note = incomplete_runs(executed)
        outcome.status = status
        outcome.reason = "; ".join(filter(None, [outcome.reason, note]))

    say(f"Grading {len(tasks) - bool(stand_ins)} submission(s) of {module} on {settings.workers} "
        f"worker(s), each kernel in a bubblewrap sandbox ...")
    results = execute_all(settings, template, tasks, work, _data_dir(course), progress, on_result,
                          check=_stop_if_asked) if tasks else {}
    _stop_if_asked()
    if stand_ins and not blank_executed.is_file():
        raise RuntimeError(f"the unanswered notebook itself could not be run: {results.get(UNANSWERED)}")
    for student in stand_ins:
        _stop_if_asked()
        recorder.record(student, blank_executed, None, feedback=None)


def print_summary(outcomes: list[Outcome], report_dir: Path) -> None:
    counts = Counter(o.status for o in outcomes)
    print(f"\n{'student':<20} {'status':<17} {'score':>11}  reason")
    for o in sorted(outcomes, key=lambda o: o.student):
        score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
        print(f"{o.student:<20} {o.status:<17} {score:>11}  {o.reason}")
    print("\n" + ", ".join(f"{n} {status}" for status, n in counts.most_common()))
    print(f"Grades: {report_dir / 'grades.csv'}\nReport: {report_dir / 'report.html'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcf-grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the assignment to grade, e.g. module1")
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: here)")
    parser.add_argument("--db", help="gradebook URL (default: $MCF_GRADE_DB, else "
                                     "sqlite:///<course>/gradebook.db); prefer the environment "
                                     "variable for a URL with a password")
    parser.add_argument("--workers", type=int, help="parallel workers (default: one per core)")
    parser.add_argument("--lms", type=Path, help="folder of notebooks downloaded from an LMS")
    parser.add_argument("--id-pattern", default=DEFAULT_ID_PATTERN,
                        help="regex with a (?P<student_id>...) group, matched in LMS file names")
    parser.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument("--notebook-timeout", type=int, default=600, help="seconds per notebook")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory limit per kernel process")
    parser.add_argument("--sandbox-per-student", action="store_true",
                        help="start a new sandbox for every student instead of one per worker "
                             "(stronger isolation, about a third slower)")
    parser.add_argument("--force", action="store_true", help="regrade students already graded")
    args = parser.parse_args(argv)
    try:
        outcomes = grade_class(args.course, args.module, db_url=args.db, workers=args.workers,
                               lms=args.lms, id_pattern=args.id_pattern, cell_timeout=args.cell_timeout,
                               notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb,
                               force=args.force, sandbox_per_student=args.sandbox_per_student)
    except (SandboxUnavailable, RuntimeError) as exc:
        print(f"mcf-grade: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"mcf-grade: stopped by {exc}; grades recorded so far are kept, the rest are "
              "marked 'not graded'", file=sys.stderr)
        return 1
    return 1 if not outcomes or any(o.needs_attention for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
