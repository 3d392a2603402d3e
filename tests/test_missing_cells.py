"""A submission without some of the assignment's cells is still graded, question by question.

nbgrader puts a missing test cell back after the cell before it, and stops with an error when
that cell is missing too (a student who deleted a whole question, or handed in another module's
notebook). ``normalize_submission`` puts such cells back, unanswered, from the released notebook.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from conftest import ROOT, autograded_points, grade_id, nbgrader

from mcf_course.grading.submissions import normalize_submission

MODULE = "module1"
QUESTION = ("q10_answer", "q10_1_judgment", "q10_2_judgment")  # a whole question: its answer and its tests


def test_a_deleted_question_costs_its_points_only(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / MODULE, course / "solutions" / MODULE)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    assert nbgrader(course, "generate_assignment", MODULE, "--force").returncode == 0
    source = nbformat.read(ROOT / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    known = {grade_id(c) for c in source.cells if grade_id(c)}
    released = ROOT / "exercises" / MODULE / f"{MODULE}.ipynb"
    without = nbformat.read(ROOT / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    without.cells = [c for c in without.cells if grade_id(c) not in QUESTION]
    other_module = ROOT / "solutions" / "module2" / "module2.ipynb"
    nbformat.write(without, tmp_path / "without.ipynb")
    for student, handed_in in (("without-question", tmp_path / "without.ipynb"), ("other-module", other_module)):
        graded, note = normalize_submission(handed_in, known, tmp_path / student / f"{MODULE}.ipynb", released=released)
        assert "put back unanswered" in note
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        shutil.copy(graded, folder / f"{MODULE}.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-28 10:00:00.000000 UTC")
    result = nbgrader(course, "autograde", MODULE, "--force")
    assert result.returncode == 0, result.stderr[-2000:]

    from nbgrader.api import Gradebook

    points = autograded_points(source)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: {g.name: g.score for g in gb.find_submission_notebook(MODULE, MODULE, s).grades}
                  for s in ("without-question", "other-module")}
    assert {g: scores["without-question"][g] for g in points} == {
        g: 0 if g in QUESTION else p for g, p in points.items()}
    assert sum(scores["other-module"][g] for g in points) == 0


def test_a_complete_notebook_is_left_as_it_is(tmp_path):
    path = ROOT / "solutions" / MODULE / f"{MODULE}.ipynb"
    known = {grade_id(c) for c in nbformat.read(path, as_version=4).cells if grade_id(c)}
    released = ROOT / "exercises" / MODULE / f"{MODULE}.ipynb"
    assert normalize_submission(path, known, tmp_path / "out.ipynb", released=released) == (path, "")
    assert not Path(tmp_path / "out.ipynb").exists()
