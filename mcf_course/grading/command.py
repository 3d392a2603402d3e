"""Grade one module for a whole class: in parallel, sandboxed, with feedback and a report.

    mcf-grade module1                      # the nbgrader submitted/<student>/module1/ layout
    mcf-grade module1 --lms downloads/     # notebooks downloaded from an LMS, id in the name
    python -m mcf_course.grading --help

This works on top of nbgrader, not instead of it:

1. nbgrader's own ``autograde`` pipeline runs each submission, in worker processes (one per
   core by default), each with a scratch course of its own and its kernels in a bubblewrap
   sandbox (``mcf_course.grading.sandbox``): no network, an unprivileged uid this run alone
   holds, a read-only view of only what the kernel needs, memory and processes limited for
   the whole sandbox (``mcf_course.grading.cgroups``), and every process of a student ended
   before the next one starts or anything the student produced is read. A per-cell timeout
   and a per-notebook wall-clock limit apply. Test cells run in the worker, never in the
   kernel (``mcf_course.grading.runner``): a test passes only if it ran to its end there. A
   dead kernel fails the cell it was running and the rest. Code that tries to tamper with the
   kernel is flagged (``mcf_course.grading.inspection``): status ``needs review``.
2. The executed notebooks are then recorded in the course's gradebook (SQLite by default, or
   any URL given with ``--db`` or the ``MCF_GRADE_DB`` environment variable, e.g. PostgreSQL)
   by nbgrader's pipeline without execution, exactly as ``nbgrader autograde --no-execute``
   records them; manual grades already there are kept (``mcf_course.grading.record``).
3. Feedback (hidden tests removed, see ``mcf_course.grading.feedback``), a grades CSV and an
   HTML instructor report are written (``reports/<module>/``).

One student never stops the batch: whatever goes wrong while running, recording or writing
feedback for a student becomes that student's status, with the reason, and the run always
ends with its status table, ``grades.csv`` and report. A submission that cannot be run (not
a notebook, empty, missing, timed out) scores 0, with the reason. Two runs never collide
(``mcf_course.grading.claims``): one run per course at a time, sandbox uids no other run
holds, a scratch folder readable by the grader alone and removed on every way out.

Exit status: 0 when every student was graded cleanly, 1 when any needs attention (a kernel
died, a submission needs review, a file could not be run or recorded, feedback failed, the
run was stopped or failed), 2 when the batch could not start (no sandbox on this machine,
another run on the same course).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

from mcf_course.grading.claims import Busy, CourseLock, Scratch, UidClaim
from mcf_course.grading.course import (
    DB_URL_ENV,
    Outcome,
    Settings,
    assignment_notebooks,
    course_folders,
    course_ignore,
    run_converter,
    tool_environment,
)
from mcf_course.grading.record import (
    GradingState,
    Recorder,
    collect_scores,
    incomplete_runs,
    write_grades_csv,
)
from mcf_course.grading.sandbox import SandboxUnavailable, require_sandbox
from mcf_course.grading.submissions import (
    DEFAULT_ID_PATTERN,
    Note,
    copy_submission,
    find_notebooks,
    normalize_submission,
    printable,
    readable_problem,
    stage_lms_downloads,
    valid_student_id,
)
from mcf_course.grading.worker import execute_all

KEEP_WORK_ENV = "MCF_GRADE_KEEP_WORK"  # set to keep the scratch folder, for debugging


class Interrupted(Exception):
    """SIGTERM, SIGHUP or Ctrl-C arrived: stop the batch, clean up, write what is known."""


_STOP: list[str] = []  # the signal that asked the run to stop, once one has


def _interrupt(signum, _frame):
    """Note the request; the run stops at the next safe point (never inside nbgrader, so a
    student's grades are recorded whole or not at all). A second Ctrl-C stops at once."""
    if signum == signal.SIGINT and _STOP:
        raise KeyboardInterrupt
    _STOP.append(signal.Signals(signum).name)


def _stop_if_asked() -> None:
    if _STOP:
        raise Interrupted(_STOP[0])


def make_template(settings: Settings, work: Path) -> Path:
    """A scratch course with just this module's source, released into its own gradebook."""
    folders = course_folders(settings.course)
    template = work / "template"
    template.mkdir(mode=0o700)  # the solutions with hidden tests: the grader's alone
    (template / folders["source"]).mkdir()
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


def _released_folder(settings: Settings, work: Path) -> Path:
    """The folder of the notebooks as handed out (no solutions, no hidden tests): the course's
    release, or one generated in scratch."""
    folders, module = course_folders(settings.course), settings.module
    released = settings.course / folders["release"] / module
    if all((released / f"{name}.ipynb").is_file() for name in assignment_notebooks(settings.course, module)):
        return released
    scratch = work / "release-blank"
    run_converter("GenerateAssignment", settings.course, settings.course,
                  f"sqlite:///{work / 'blank.db'}", module, BaseConverter__force=True,
                  CourseDirectory__release_directory=str(scratch))
    return scratch / module


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
                disk_mb: int = 256, force: bool = False, quiet: bool = False,
                sandbox_per_student: bool = False) -> list[Outcome]:
    """Grade ``module`` for every student who submitted it. See the module docstring.
    Raises ``Busy`` (another run grades this course) or ``SandboxUnavailable`` before it
    touches anything; ``Interrupted`` after writing what it knows, if it was stopped."""
    require_sandbox()
    course = course.resolve()
    settings = Settings(course=course, module=module,
                        db_url=db_url or os.environ.get(DB_URL_ENV) or f"sqlite:///{course / 'gradebook.db'}",
                        workers=workers or os.cpu_count() or 1, cell_timeout=cell_timeout,
                        notebook_timeout=notebook_timeout, memory_mb=memory_mb, disk_mb=disk_mb,
                        force=force, sandbox_per_student=sandbox_per_student)
    say = (lambda *a: None) if quiet else (lambda *a: print(*map(printable, a), file=sys.stderr, flush=True))
    lock = CourseLock(course)
    try:
        return _grade_locked(settings, lms, id_pattern, say, quiet)
    finally:
        lock.release()


def _grade_locked(settings: Settings, lms: Path | None, id_pattern: str, say, quiet: bool) -> list[Outcome]:
    course, module = settings.course, settings.module
    folders = course_folders(course)
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
    outcomes = {s: Outcome(s, status="not graded") for s in students}
    report_dir = course / "reports" / module
    state = GradingState(report_dir / "graded.json")

    _STOP.clear()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    claim = UidClaim(settings.workers)  # Busy if every sandbox uid is taken: nothing written
    scratch, stopped, failure = None, "", ""
    try:
        scratch = Scratch(_scratch_base(say))
        _grade(settings, scratch, claim.uids, students, outcomes, state, say)
    except (Interrupted, KeyboardInterrupt) as stop:
        stopped = str(stop) or "Ctrl-C"
    except Exception as exc:  # noqa: BLE001 - the run reports it and still writes what it knows
        failure = printable(f"{type(exc).__name__}: {str(exc)[:300]}")
        say(f"mcf-grade: the run failed: {failure}")
    finally:
        claim.release()
        if scratch is not None:
            keep = bool(os.environ.get(KEEP_WORK_ENV))
            scratch.close(keep=keep)
            if keep:
                say(f"  (kept the scratch folder {scratch.path}: it holds the solutions, delete it yourself)")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for outcome in outcomes.values():
        if outcome.status == "not graded":
            outcome.reason = (f"the run was stopped ({stopped}) first" if stopped
                              else f"the run failed first: {failure}" if failure else "not run")

    _write_results(settings, outcomes, report_dir, notes, quiet)
    if stopped:
        raise Interrupted(stopped)
    return list(outcomes.values())


def _write_results(settings: Settings, outcomes: dict[str, Outcome], report_dir: Path, notes, quiet: bool) -> None:
    """The status table, grades.csv and the report, whatever happened before."""
    from mcf_course.grading.report import write_report

    try:
        collect_scores(settings, outcomes)
    except Exception as exc:  # noqa: BLE001
        for outcome in outcomes.values():
            outcome.add_reason(f"scores could not be read back from the gradebook ({type(exc).__name__})")
            if outcome.status in ("graded", "skipped"):
                outcome.status = "not recorded"
    write_grades_csv(report_dir / "grades.csv", outcomes.values())
    try:
        write_report(report_dir / "report.html", settings, list(outcomes.values()),
                     settings.course / course_folders(settings.course)["autograded"], notes)
    except Exception as exc:  # noqa: BLE001
        (report_dir / "report.html").write_text(f"<p>The report could not be written: {type(exc).__name__}</p>")
    if not quiet:
        print_summary(list(outcomes.values()), report_dir)


def _grade(settings: Settings, scratch: Scratch, uids: list[int], students: list[str],
           outcomes: dict[str, Outcome], state: GradingState, say) -> None:
    course, module = settings.course, settings.module
    folders = course_folders(course)
    work = scratch.private
    for name in ("staging", "incoming", "executed", "normalized"):
        (work / name).mkdir(mode=0o700)
    _ensure_assignment_in_gradebook(settings, work)
    template = make_template(settings, work)
    released = _released_folder(settings, work)
    names = assignment_notebooks(course, module)
    source = course / folders["source"] / module
    known_ids = {name: {c.metadata["nbgrader"]["grade_id"]
                        for c in nbformat.read(source / f"{name}.ipynb", as_version=4).cells
                        if "grade_id" in c.get("metadata", {}).get("nbgrader", {})} for name in names}
    ignore = course_ignore(course)
    recorder = Recorder(settings, work / "staging", released)

    def finish(student: str, folder: Path | None, record, result: Path | None = None, feedback=True) -> None:
        """Record one student, and put their feedback in place; whatever fails becomes their
        status. Then remember whether their grading ended cleanly."""
        outcome = outcomes[student]
        try:
            record()
            outcome.recorded = True
        except Exception as exc:  # noqa: BLE001
            outcome.status = "not recorded"
            outcome.add_reason(f"could not be recorded in the gradebook ({type(exc).__name__}: {str(exc)[:200]})")
        if outcome.recorded and feedback:
            try:
                recorder.feedback(student, result)
            except Exception as exc:  # noqa: BLE001
                if outcome.status == "graded":
                    outcome.status = "feedback failed"
                outcome.add_reason(f"no feedback ({type(exc).__name__}: {str(exc)[:200]})")
        state.update(student, folder, clean=outcome.status == "graded")

    tasks, zeros = [], []
    for number, student in enumerate(students):
        outcome = outcomes[student]
        folder = course / folders["submitted"] / student / module
        if not settings.force and state.is_clean(student, folder):
            outcome.status, outcome.reason = "skipped", "graded cleanly before (use --force to grade again)"
            continue
        found, warning = find_notebooks(folder, names)
        problems = {name: readable_problem(path) for name, path in found.items()}
        problems = {name: problem for name, problem in problems.items() if problem}
        found = {name: path for name, path in found.items() if name not in problems}
        if not found:
            outcome.status = "failed to run" if problems else "missing notebook"
            why = "; ".join([warning] * bool(warning) + [f"{n}.ipynb: {p}" if len(names) > 1 else p
                                                         for n, p in problems.items()])
            outcome.reason = f"{why}; scored 0"
            zeros.append((student, folder, why))
            continue
        for name, path in found.items():
            normalized = work / "normalized" / student / f"{name}.ipynb"
            found[name], note = normalize_submission(path, known_ids[name], normalized,
                                                       released=released / f"{name}.ipynb")
            outcome.add_reason(note)
        outcome.add_reason(warning, *[f"{n}.ipynb: {p}; scored 0" for n, p in problems.items()],
                           *[f"no {n}.ipynb in the submission; scored 0 (as nbgrader does)"
                             for n in names if n not in found and n not in problems])
        incoming = work / "incoming" / str(number)
        outcome.add_reason(copy_submission(folder, found, ignore, incoming))
        tasks.append({"key": f"student-{number}", "student": student, "folder": str(incoming),
                      "submitted": str(folder), "released": str(released),
                      "result": str(work / "executed" / str(number))})
    done, total = [0], len(tasks)

    def progress(task, result, elapsed):
        mark = "ok" if result.get("ok") else ("TIMED OUT" if result.get("timed_out") else "FAILED")
        done[0] += 1
        say(f"[{done[0]:>3}/{total}] {task['student']:<20} {mark:<9} {elapsed:5.1f} s")

    def on_result(task, result):
        """Record a finished submission in the gradebook while the workers go on."""
        student, outcome = task["student"], outcomes[task["student"]]
        out, incoming, folder = Path(task["result"]), Path(task["folder"]), Path(task["submitted"])
        outcome.seconds = result["seconds"]
        if not result.get("ok") and result.get("refused"):
            outcome.status = "not autograded"

            def refused():
                error = recorder.record_refused(student, incoming) or result["error"]
                outcome.add_reason(f"nbgrader could not grade this notebook ({error}); its cells "
                                   "are left for manual grading, as plain nbgrader leaves them")
            finish(student, folder, refused, feedback=False)
            return
        if not result.get("ok"):
            outcome.status = "timed out" if result.get("timed_out") else "failed to run"
            outcome.add_reason(f"{result['error']}; scored 0")
            finish(student, folder, lambda: recorder.record(student, None, None, result["error"]))
            return
        outcome.status = "graded"

        def record():
            started = time.monotonic()
            recorder.record(student, out, incoming)
            outcome.timings = {**result.get("timings", {}), "recording": time.monotonic() - started}
            status, note = incomplete_runs(sorted(out.glob("*.ipynb")))
            review = "; ".join(result.get("review", []))
            outcome.status = "needs review" if review else status
            outcome.add_reason(note, review and f"needs review: {review}", result.get("files_note", ""))
            if result.get("memory_limit"):
                outcome.add_reason("the sandbox reached its memory limit: the kernel ended one of its processes")
        if result.get("feedback_error"):
            outcome.add_reason(f"no feedback ({result['feedback_error']})")
        finish(student, folder, record, out, feedback=not result.get("feedback_error"))
        if result.get("feedback_error") and outcome.status == "graded":
            outcome.status = "feedback failed"
            state.update(student, folder, clean=False)

    say(f"Grading {len(tasks)} submission(s) of {module} on {settings.workers} worker(s), each "
        f"in a bubblewrap sandbox ({_limits_note(settings)}) ...")
    if tasks:
        execute_all(settings, template, tasks, work, scratch.boxes, uids, _data_dir(course), progress,
                    on_result, check=_stop_if_asked)
    for student, folder, why in zeros:
        _stop_if_asked()
        finish(student, folder, lambda student=student, why=why: recorder.record(student, None, None, why))


def _limits_note(settings: Settings) -> str:
    from mcf_course.grading.cgroups import available
    from mcf_course.grading.sandbox import Limits

    version, why = available()
    if version:
        return f"{settings.memory_mb} MB and {Limits().processes} processes per student, cgroup {version}"
    return f"no cgroups ({why}): {settings.memory_mb} MB per process"


def print_summary(outcomes: list[Outcome], report_dir: Path) -> None:
    counts = Counter(o.status for o in outcomes)
    print(f"\n{'student':<20} {'status':<17} {'score':>11}  reason")
    for o in sorted(outcomes, key=lambda o: o.student):
        score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
        print(printable(f"{o.student:<20} {o.status:<17} {score:>11}  {o.reason}"))
    print("\n" + ", ".join(f"{n} {status}" for status, n in counts.most_common()))
    print(printable(f"Grades: {report_dir / 'grades.csv'}"))
    print(printable(f"Report: {report_dir / 'report.html'}"))


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
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="memory limit of each student's sandbox, all its processes together")
    parser.add_argument("--disk-mb", type=int, default=256,
                        help="size of each writable place in a sandbox: the student's folder, /tmp, /dev/shm")
    parser.add_argument("--sandbox-per-student", action="store_true",
                        help="start a new sandbox for every student instead of one per worker "
                             "(stronger isolation, about a third slower)")
    parser.add_argument("--force", action="store_true",
                        help="grade again the students whose last grading ended cleanly")
    args = parser.parse_args(argv)
    try:
        outcomes = grade_class(args.course, args.module, db_url=args.db, workers=args.workers,
                               lms=args.lms, id_pattern=args.id_pattern, cell_timeout=args.cell_timeout,
                               notebook_timeout=args.notebook_timeout, memory_mb=args.memory_mb,
                               disk_mb=args.disk_mb, force=args.force,
                               sandbox_per_student=args.sandbox_per_student)
    except (SandboxUnavailable, Busy) as exc:
        print(f"mcf-grade: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"mcf-grade: stopped by {exc}; grades recorded so far are kept, the rest are "
              "marked 'not graded'", file=sys.stderr)
        return 1
    return 1 if not outcomes or any(o.needs_attention for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
