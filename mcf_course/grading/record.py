"""Recording results in the course's gradebook, remembering who was graded cleanly, and
reading the grades back.

Everything is recorded by nbgrader's own autograde pipeline minus execution (as
``nbgrader autograde --no-execute`` would), in this process:

- an executed submission, with the files its code wrote (``Recorder.record``);
- a submission that could not be run (no notebook, not a notebook, timed out, the worker
  failed): its notebooks as handed out, with every autograded test failed (``zero_notebook``),
  so it scores 0, as nbgrader scores a missing notebook;
- a notebook nbgrader itself refuses (its nbgrader metadata broken, a graded cell's type
  changed): nbgrader is run on it as it is (``Recorder.record_refused``), which leaves the
  gradebook as plain ``nbgrader autograde`` leaves it: the submission with its cells
  ungraded, for manual grading.

``GradingState`` remembers, per module, the students graded cleanly and the fingerprint of
what they handed in: a plain rerun skips exactly those, and regrades everyone else (a run
that was killed, a kernel that died, a changed submission).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import nbformat

from mcf_course.grading.course import Outcome, Settings, assignment_notebooks, course_folders, run_converter
from mcf_course.grading.submissions import printable

NOT_RUN = "NotRun"  # the error name in each test cell of a notebook that could not be run


def incomplete_runs(notebooks: list[Path]) -> tuple[str, str]:
    """(status, note) for executed notebooks in which the kernel died; ("graded", "")
    otherwise. (Whether a test ran to its end is the worker's verdict, ``runner``.)"""
    for notebook in notebooks:
        nb = nbformat.read(notebook, as_version=4)
        prefix = f"{notebook.stem}: " if len(notebooks) > 1 else ""
        for number, cell in enumerate(nb.cells, 1):
            where = prefix + (cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}")
            if any(output.get("ename") == "DeadKernelError" for output in cell.get("outputs", [])):
                return "kernel died", f"the kernel died in {where}; the cells after it count as failed"
    return "graded", ""


def zero_notebook(released: Path, why: str) -> nbformat.NotebookNode:
    """The notebook as handed out, with an error in every autograded test cell: recorded by
    nbgrader, it scores 0 (an unchanged answer cell scores 0 too, as in nbgrader)."""
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.outputs = [nbformat.v4.new_output("error", ename=NOT_RUN, evalue=why,
                                                   traceback=[f"{NOT_RUN}: {why}"])]
    return nb


class Recorder:
    """Records submissions in the course's gradebook, one student at a time, and puts each
    student's feedback in place."""

    def __init__(self, settings: Settings, staging: Path, released: Path):
        self.settings, self.staging, self.released = settings, staging, released
        self.notebooks = assignment_notebooks(settings.course, settings.module)

    def _run(self, converter: str, student: str) -> None:
        run_converter(converter, self.settings.course, self.settings.course, self.settings.db_url,
                      self.settings.module, student,
                      CourseDirectory__submitted_directory=str(self.staging),
                      Execute__enabled=False, ClearOutput__enabled=False, BaseConverter__force=True,
                      KeepSubmittedOutputs__enabled=False)  # they were kept when it ran

    def _stage(self, student: str, submission: Path | None) -> Path:
        folder = self.staging / student / self.settings.module
        shutil.rmtree(folder, ignore_errors=True)
        if submission is not None:
            shutil.copytree(submission, folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def record(self, student: str, result: Path | None, submission: Path | None,
               why_not_run: str = "") -> None:
        """Record the executed notebooks in ``result`` (with the files the code wrote, in
        ``result/files``) for ``student``; ``submission`` is the folder they came from (its
        timestamp and other files go along, as nbgrader copies them). With no executed
        notebook at all, every notebook is recorded as not run (``zero_notebook``)."""
        folder = self._stage(student, submission)
        executed = [name for name in self.notebooks if result and (result / f"{name}.ipynb").is_file()]
        if result is not None and (result / "files").is_dir():
            shutil.copytree(result / "files", folder, dirs_exist_ok=True)
        for name in self.notebooks:
            target = folder / f"{name}.ipynb"
            target.unlink(missing_ok=True)
            if name in executed:
                shutil.copy(result / f"{name}.ipynb", target)
            elif not executed:  # nbgrader scores a missing notebook 0 only beside others
                nbformat.write(zero_notebook(self.released / f"{name}.ipynb", why_not_run), target)
        self._run("Autograde", student)

    def feedback(self, student: str, result: Path | None) -> None:
        """Put the student's feedback in place: the worker's, or made here (nbgrader's
        ``generate_feedback``) for a submission no worker ran."""
        folders = course_folders(self.settings.course)
        target = self.settings.course / folders["feedback"] / student / self.settings.module
        executed = [name for name in self.notebooks if result and (result / f"{name}.ipynb").is_file()]
        made = [name for name in executed if (result / f"{name}.html").is_file()]  # by the worker
        if made and len(made) == len(executed):
            target.mkdir(parents=True, exist_ok=True)
            for name in made:
                shutil.copy(result / f"{name}.html", target / f"{name}.html")
        else:
            self._run("GenerateFeedback", student)

    def record_refused(self, student: str, submission: Path) -> str:
        """Run nbgrader (without execution) on a submission it refuses, which leaves it in the
        gradebook as plain nbgrader leaves it; returns nbgrader's error."""
        self._stage(student, submission)
        try:
            self._run("Autograde", student)
        except Exception as exc:  # noqa: BLE001 - the expected outcome
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        return ""


def fingerprint(folder: Path) -> str:
    """What a student handed in, for telling whether it changed: the notebooks and timestamp."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.ipynb")) + [folder / "timestamp.txt"]:
        if path.is_file() and not path.is_symlink():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class GradingState:
    """``reports/<module>/graded.json``: the students whose last grading ended cleanly, with
    the fingerprint of their submission. Written after each student, atomically, so a run
    killed at any point leaves a true account."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.clean: dict[str, str] = json.loads(path.read_text())["graded cleanly"]
        except (OSError, ValueError, KeyError, TypeError):
            self.clean = {}

    def is_clean(self, student: str, folder: Path) -> bool:
        return self.clean.get(student) == fingerprint(folder)

    def update(self, student: str, folder: Path | None, clean: bool) -> None:
        if clean and folder is not None:
            self.clean[student] = fingerprint(folder)
        else:
            self.clean.pop(student, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"graded cleanly": self.clean}, indent=1, sort_keys=True))
        os.replace(partial, self.path)


def collect_scores(settings: Settings, outcomes: dict[str, Outcome]) -> None:
    """Read back the scores of the students this run recorded or skipped (anyone else's
    gradebook entry may be from an earlier run, and is not shown as this run's)."""
    from nbgrader.api import Gradebook, MissingEntry

    several = len(assignment_notebooks(settings.course, settings.module)) > 1
    with Gradebook(settings.db_url) as gb:
        for student, outcome in outcomes.items():
            if not (outcome.recorded or outcome.status == "skipped"):
                continue
            try:
                submission = gb.find_submission(settings.module, student)
            except MissingEntry:
                continue
            outcome.scores = {(f"{nb.name}/{g.name}" if several else g.name): g.score
                              for nb in submission.notebooks for g in nb.grades}
            outcome.score, outcome.max_score = submission.score, submission.max_score


def write_grades_csv(path: Path, outcomes) -> None:
    outcomes = sorted(outcomes, key=lambda o: o.student)
    cells = sorted({g for o in outcomes for g in o.scores})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "status", "score", "max_score", *cells, "reason"])
        for o in outcomes:
            writer.writerow([printable(o.student), o.status, o.score, o.max_score,
                             *[o.scores.get(c, "") for c in cells], printable(o.reason)])
