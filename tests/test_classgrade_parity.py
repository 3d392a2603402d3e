"""mcf-grade and plain nbgrader on nbgrader's own test notebooks, side by side.

The submissions are the fixtures the installed nbgrader ships for its own tests
(``nbgrader/tests/apps/files`` and ``nbgrader/tests/preprocessors/files``), in assignments
with several notebooks and names of their own, as nbgrader's tests use them. Both graders
grade a copy of the same course; every grade cell must score the same, every submission
must be in the gradebook with the same cells left for manual grading, and the files the
students' code writes must land in ``autograded/`` with both. Where mcf-grade says more
than nbgrader (the status of a notebook nbgrader refuses), the test checks that too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbgrader
import pytest
from conftest import nbgrader as run_nbgrader

from mcf_course.grading import grade_class

FIXTURES = Path(nbgrader.__file__).parent / "tests"
APPS, PRE = FIXTURES / "apps" / "files", FIXTURES / "preprocessors" / "files"
UNCHANGED, CHANGED = APPS / "submitted-unchanged.ipynb", APPS / "submitted-changed.ipynb"

ASSIGNMENTS = {
    # two notebooks, neither named after the assignment
    "ps1": {"source": {"p1": UNCHANGED, "p2": UNCHANGED},
            "students": {
                "foo": {"p1.ipynb": UNCHANGED, "p2.ipynb": CHANGED},
                "bar": {"p1.ipynb": CHANGED},  # p2 missing: nbgrader scores it 0
                "spam": {"p1.ipynb": APPS / "submitted-cheat-attempt.ipynb",
                         "p2.ipynb": APPS / "submitted-cheat-attempt-alternative.ipynb"},
                "eggs": {"p1.ipynb": APPS / "submitted-grade-cell-changed.ipynb",
                         "p2.ipynb": APPS / "submitted-locked-cell-changed.ipynb"},
                "copies": {"p1.ipynb": CHANGED, "p1 copy.ipynb": UNCHANGED, "p2.ipynb": UNCHANGED},
                # invalid notebooks (a cell's type changed): nbgrader refuses them
                "gradetype": {"p1.ipynb": PRE / "submitted-grade-cell-type-changed.ipynb",
                              "p2.ipynb": UNCHANGED},
                "answertype": {"p1.ipynb": PRE / "submitted-answer-cell-type-changed.ipynb"},
            }},
    # a notebook that writes a file, and one that checks NBGRADER_EXECUTION
    "ps2": {"source": {"effects": APPS / "side-effects.ipynb",
                       "validating": APPS / "validating-environment-variable.ipynb"},
            "students": {"foo": {"effects.ipynb": APPS / "side-effects.ipynb",
                                 "validating.ipynb": APPS / "validating-environment-variable.ipynb"}}},
}
REFUSED = {"gradetype", "answertype"}


def make_course(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.Execute.timeout = 30\n")
    for assignment, spec in ASSIGNMENTS.items():
        (root / "source" / assignment).mkdir(parents=True)
        for name, path in spec["source"].items():
            shutil.copy(path, root / "source" / assignment / f"{name}.ipynb")
        result = run_nbgrader(root, "generate_assignment", assignment, "--force")
        assert result.returncode == 0, result.stderr[-2000:]
        for student, files in spec["students"].items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            for name, path in files.items():
                shutil.copy(path, folder / name)
    return root


def gradebook(root: Path, assignment: str) -> dict:
    """Every grade of every submission: (student, notebook, cell) -> (score, needs manual grade)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {(s.student.id, nb.name, g.name): (g.score, g.needs_manual_grade)
                for s in gb.assignment_submissions(assignment) for nb in s.notebooks for g in nb.grades}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = make_course(tmp_path_factory.mktemp("parity") / "base")
    plain, ours = base.parent / "nbgrader", base.parent / "mcf-grade"
    shutil.copytree(base, plain)
    shutil.copytree(base, ours)
    outcomes = {}
    for assignment in ASSIGNMENTS:
        run_nbgrader(plain, "autograde", assignment)  # exits 1: it refuses two notebooks
        outcomes[assignment] = {o.student: o for o in grade_class(ours, assignment, workers=2, quiet=True)}
    return plain, ours, outcomes


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_every_grade_matches_plain_nbgrader(graded, assignment):
    plain, ours, _ = graded
    expected, got = gradebook(plain, assignment), gradebook(ours, assignment)
    assert len(expected) > 0
    assert got == expected


def test_the_students_files_land_in_autograded_as_with_nbgrader(graded):
    plain, ours, _ = graded
    for root in (plain, ours):
        assert (root / "autograded" / "foo" / "ps2" / "side-effect.txt").read_text() == "a side effect"
        assert not (root / "submitted" / "foo" / "ps2" / "side-effect.txt").exists()
    assert gradebook(ours, "ps2")[("foo", "validating", "cell-bfbdf1784663b6b6")] == (0, False), \
        "the kernel runs with NBGRADER_EXECUTION=autograde, as nbgrader's do"


def test_notebooks_nbgrader_refuses_are_flagged_truthfully(graded):
    _, _, outcomes = graded
    for student in REFUSED:
        outcome = outcomes["ps1"][student]
        assert outcome.status == "not autograded" and outcome.needs_attention, student
        assert "left for manual grading" in outcome.reason and outcome.score == 0, outcome.reason
    clean = {s: o.status for s, o in outcomes["ps1"].items() if s not in REFUSED | {"spam"}}
    assert set(clean.values()) == {"graded"}, clean
    # nbgrader's own cheat attempts patch IPython's showtraceback: graded as nbgrader grades
    # them (above), and flagged for review (issue 19)
    cheat = outcomes["ps1"]["spam"]
    assert cheat.status == "needs review" and "showtraceback" in cheat.reason, (cheat.status, cheat.reason)
    assert "no p2.ipynb in the submission" in outcomes["ps1"]["bar"].reason
