"""Recording results in the course's gradebook, and reading them back."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat

from mcf_course.grading.course import Outcome, Settings, course_folders, run_converter


def incomplete_runs(notebook: Path) -> tuple[str, str]:
    """(status, note) for a notebook in which the kernel died; ("graded", "") otherwise."""
    nb = nbformat.read(notebook, as_version=4)
    for number, cell in enumerate(nb.cells, 1):
        where = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}"
        if any(output.get("ename") == "DeadKernelError" for output in cell.get("outputs", [])):
            return "kernel died", f"the kernel died in {where}; the cells after it count as failed"
    return "graded", ""


class Recorder:
    """Records executed notebooks in the course's gradebook, one student at a time, with
    nbgrader's own autograde pipeline minus execution (as `nbgrader autograde --no-execute`
    would), in this process; and puts each student's feedback in place."""

    def __init__(self, settings: Settings, staging: Path):
        self.settings, self.staging = settings, staging

    def _run(self, converter: str, student: str) -> None:
        run_converter(converter, self.settings.course, self.settings.course, self.settings.db_url,
                      self.settings.module, student,
                      CourseDirectory__submitted_directory=str(self.staging),
                      Execute__enabled=False, ClearOutput__enabled=False, BaseConverter__force=True,
                      KeepSubmittedOutputs__enabled=False)  # they were kept when it ran

    def record(self, student: str, notebook: Path, submission: Path | None,
               feedback: Path | None) -> None:
        """Record ``notebook`` (executed) for ``student``; ``submission`` is the folder it came
        from (its timestamp and other files go along, as nbgrader copies them)."""
        module = self.settings.module
        folder = self.staging / student / module
        shutil.rmtree(folder, ignore_errors=True)
        if submission is not None:
            shutil.copytree(submission, folder)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, folder / f"{module}.ipynb")
        self._run("Autograde", student)
        target = self.settings.course / course_folders(self.settings.course)["feedback"] / student / module
        if feedback is not None and feedback.is_file():  # made by the worker, in parallel
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(feedback, target / f"{module}.html")
        else:
            self._run("GenerateFeedback", student)


def already_graded(settings: Settings, students: list[str]) -> set[str]:
    autograded = settings.course / course_folders(settings.course)["autograded"]
    return {s for s in students
            if (autograded / s / settings.module / f"{settings.module}.ipynb").is_file()}


def collect_scores(settings: Settings, outcomes: dict[str, Outcome]) -> None:
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
