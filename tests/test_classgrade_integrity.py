"""mcf-grade against students who fake passing tests or read hidden tests (issue 19), and
against honest students whose code warns, prints and draws: Modules 1 and 4, in the sandbox.

Every cheat of tests/hostile.py, on the blank release (to fake points) or on a correct notebook
(to read hidden tests): a blank notebook with a cheat scores 0 autograded points, code that
tampers with the kernel is flagged ``needs review`` with the reason, and no feedback file or
report shows a line of a hidden test in any encoding (text normalised: zero-width characters
out, HTML entities decoded, whitespace ignored), nor an image the student did not hand in.
"""

from __future__ import annotations

import copy
import csv
import shutil

import hostile
import nbformat
import pytest
from conftest import ROOT, autograded_points, nbgrader

from mcf_course.grading import grade_class

MODULES = ["module1", "module4"]
FLAGGED = ["displayhook", "swallow-errors", "assert-to-pass", "cut-test-cells", "absorbers",
           "patched-isclose", "update-display-leak", "frame-spy-leak", "cell-named-exception"]


@pytest.fixture(scope="module", params=MODULES)
def graded(request, tmp_path_factory):
    module = request.param
    course = tmp_path_factory.mktemp(module)
    shutil.copytree(ROOT / "solutions" / module, course / "solutions" / module)
    shutil.copytree(ROOT / "datasets", course / "datasets")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    assert nbgrader(course, "generate_assignment", module, "--force").returncode == 0
    source = nbformat.read(course / "solutions" / module / f"{module}.ipynb", as_version=4)
    blank = nbformat.read(course / "exercises" / module / f"{module}.ipynb", as_version=4)
    solution = hostile.answered(blank, source)
    honest = hostile.run_before_handing_in(hostile.honest(solution), course)
    cases = {"good": solution, "blank": blank, "honest": honest}
    for name, (base, make) in hostile.cheats(source).items():
        cases[name] = make(copy.deepcopy(solution if base == "solution" else blank))
    for student, nb in cases.items():
        folder = course / "submitted" / student / module
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{module}.ipynb")
    outcomes = {o.student: o for o in grade_class(course, module, workers=2, quiet=True)}
    return module, course, source, cases, outcomes


def auto(outcome, source) -> float:
    points = autograded_points(source)
    return sum(outcome.scores.get(g) or 0 for g in points)


def test_honest_students_get_every_autograded_point_and_no_flag(graded):
    module, _, source, _, outcomes = graded
    full = sum(autograded_points(source).values())
    for student in ("good", "honest"):
        assert (outcomes[student].status, auto(outcomes[student], source)) == ("graded", full), \
            (student, outcomes[student].reason, outcomes[student].scores)
    assert auto(outcomes["blank"], source) == 0


def test_a_blank_notebook_with_any_cheat_scores_nothing(graded):
    _, _, source, cases, outcomes = graded
    for name, (base, _) in hostile.cheats(source).items():
        if base == "blank":
            assert auto(outcomes[name], source) == 0, (name, outcomes[name].scores)


def test_tampering_is_flagged_for_review_with_the_reason(graded):
    module, course, _, _, outcomes = graded
    for name in FLAGGED:
        assert outcomes[name].status == "needs review", (name, outcomes[name].status, outcomes[name].reason)
        assert "needs review:" in outcomes[name].reason
    rows = {r["student"]: r for r in csv.DictReader((course / "reports" / module / "grades.csv").open())}
    assert rows["displayhook"]["status"] == "needs review" and "events" in rows["displayhook"]["reason"]
    report = (course / "reports" / module / "report.html").read_text(encoding="utf-8")
    assert "needs review" in report


def test_reading_hidden_tests_gains_nothing_but_the_answers_points(graded):
    _, _, source, _, outcomes = graded
    full = sum(autograded_points(source).values())
    assert auto(outcomes["update-display-leak"], source) == full
    assert auto(outcomes["frame-spy-leak"], source) == full


def test_no_feedback_or_report_shows_a_hidden_line_or_an_image_not_handed_in(graded):
    module, course, source, cases, _ = graded
    snippets = hostile.secret_lines(source)
    assert len(snippets) > 10
    report = (course / "reports" / module / "report.html").read_text(encoding="utf-8")
    assert not hostile.leaked_lines(report, snippets)
    for student, nb in cases.items():
        page = (course / "feedback" / student / module / f"{module}.html").read_text(encoding="utf-8")
        assert not hostile.leaked_lines(page, snippets), (student, hostile.leaked_lines(page, snippets)[:2])
        assert hostile.images_in_html(page) <= hostile.images_in_notebook(nb), student
    honest_page = (course / "feedback" / "honest" / module / f"{module}.html").read_text(encoding="utf-8")
    assert hostile.images_in_notebook(cases["honest"]) <= hostile.images_in_html(honest_page), \
        "the student's own figure is shown"
