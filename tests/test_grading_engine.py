"""The grading engine on a small exercise of its own: tests run in the grader, never in the kernel.

The exercise (tests/fixtures/grading/contract.ipynb) follows the course's rules for tests. Its
submissions are graded twice: by nbgrader's Autograde with ``TestsInWorker`` (the engine of
``mcf-grade``, here with an ordinary local kernel, so no sandbox and no lock are needed), and
by plain ``nbgrader autograde`` with the course's configuration. The Module 1 and 4 corpus in a
sandbox is tests/test_classgrade.py.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, nbgrader
from hostile import (
    answer_cells,
    answered,
    cheats,
    grade_id,
    honest,
    images_in_html,
    images_in_notebook,
    leaked_lines,
    run_before_handing_in,
    secret_lines,
)

from mcf_course.grading import runner
from mcf_course.grading.feedback import HIDDEN_FAILURE, MARK

MODULE = "contract"
FIXTURE = ROOT / "tests" / "fixtures" / "grading" / f"{MODULE}.ipynb"
SOURCE = nbformat.read(FIXTURE, as_version=4)
POINTS = {grade_id(c): c.metadata["nbgrader"]["points"] for c in SOURCE.cells
          if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
FULL = sum(POINTS.values())


def with_answer(nb, gid: str, source: str):
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if grade_id(c) == gid).source = source
    return nb


def executed(nb):
    return run_before_handing_in(nb, ROOT)


def submissions(solution, blank) -> dict[str, tuple[nbformat.NotebookNode, str]]:
    """student -> (notebook, what it is)."""
    cases = {"good": (solution, "the solution"), "blank": (blank, "the release, unanswered")}
    cases["unsorted"] = (with_answer(solution, "q1_answer", "def stage_counts(terms):\n"
                                     "    return terms['stage'].value_counts().sort_values()"),
                         "a visible check with a message made from the answer fails")
    cases["untitled"] = (with_answer(solution, "q3_answer", "import matplotlib.pyplot as plt\n"
                                     "def plot_counts(counts):\n    fig, ax = plt.subplots()\n"
                                     "    ax.bar([str(i) for i in counts.index], list(counts))\n    return fig"),
                         "a visible check with a constant message fails")
    cases["narrow"] = (with_answer(solution, "q1_answer", "import pandas as pd\ndef stage_counts(terms):\n"
                                   "    return pd.Series({'a': 2, 'b': 1})"),
                       "right on the practice data only: a hidden test fails")
    cases["honest"] = (executed(honest(solution)), "warnings, stderr, progress prints and a figure")
    for name, (base, make) in cheats(solution).items():
        cases[name] = (make(copy.deepcopy(solution if base == "solution" else blank)), f"{base} + {name}")
    return cases


PLAIN = ["good", "blank", "honest", "narrow", "displayhook", "swallow-errors", "frame-spy-leak"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One course per grader; every submission graded by each; feedback generated."""
    base = tmp_path_factory.mktemp("engine")
    (base / "solutions" / MODULE).mkdir(parents=True)
    shutil.copy(FIXTURE, base / "solutions" / MODULE / f"{MODULE}.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", base)
    assert nbgrader(base, "generate_assignment", MODULE, "--force").returncode == 0
    source = nbformat.read(base / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    blank = nbformat.read(base / "exercises" / MODULE / f"{MODULE}.ipynb", as_version=4)
    cases = submissions(answered(blank, source), blank)
    courses = {}
    for grader in ("mcf-grade", "nbgrader"):
        course = tmp_path_factory.mktemp(grader)
        shutil.copytree(base, course, dirs_exist_ok=True)
        for student, (nb, _) in cases.items():
            if grader == "nbgrader" and student not in PLAIN:
                continue
            folder = course / "submitted" / student / MODULE
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{MODULE}.ipynb")
        courses[grader] = course
    os.environ.setdefault("MCF_COURSE_DATA", str(ROOT / "datasets"))
    from nbgrader.converters import Autograde

    from mcf_course.grading.course import run_converter

    course = courses["mcf-grade"]
    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    runner.TIMINGS.clear()  # the phases add up over the notebooks until cleared, as the worker does
    run_converter("Autograde", course, course, f"sqlite:///{course / 'gradebook.db'}", MODULE,
                  Autograde__autograde_preprocessors=[runner.TestsInWorker, *defaults[1:]],
                  TestsInWorker__source_folder=str(course / "solutions" / MODULE))
    timings = dict(runner.TIMINGS)  # summed over every submission of this run
    plain = courses["nbgrader"]
    result = nbgrader(plain, "autograde", MODULE)
    assert result.returncode == 0, result.stderr[-2000:]
    for course in courses.values():
        result = nbgrader(course, "generate_feedback", MODULE)
        assert result.returncode == 0, result.stderr[-2000:]
    return courses, cases, timings


def scores(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {g.name: g.score for g in gb.find_submission_notebook(MODULE, MODULE, student).grades}


def autograded(course: Path, student: str):
    return nbformat.read(course / "autograded" / student / MODULE / f"{MODULE}.ipynb", as_version=4)


def feedback(course: Path, student: str) -> str:
    return (course / "feedback" / student / MODULE / f"{MODULE}.html").read_text(encoding="utf-8")


def review(course: Path, student: str) -> list[str]:
    return autograded(course, student).metadata.get(MARK, {}).get("review", [])


def total(course, student) -> float:
    return sum(scores(course, student).values())


def test_honest_work_gets_every_point_under_both_graders(graded):
    courses, _, _ = graded
    for course in courses.values():
        for student in ("good", "honest"):
            assert scores(course, student) == POINTS, (course.name, student)
        assert total(course, "blank") == 0
    assert review(courses["mcf-grade"], "honest") == [], "warnings, stderr and figures are not flagged"


@pytest.mark.parametrize("cheat", ["displayhook", "swallow-errors", "assert-to-pass", "cut-test-cells",
                                   "absorbers", "always-equal", "patched-isclose"])
def test_no_cheat_in_the_kernel_earns_a_point_and_tampering_is_flagged(graded, cheat):
    courses, cases, _ = graded
    course = courses["mcf-grade"]
    assert total(course, cheat) == 0, scores(course, cheat)
    if cheat != "always-equal":  # subclasses that lie about == are refused, and tamper with nothing
        assert review(course, cheat), f"{cheat} should be flagged for review"


def test_plain_nbgrader_closes_what_it_can(graded):
    """Under plain nbgrader the tests share the student's kernel: a result shown before a test
    no longer counts as partial credit, but a kernel rewritten to swallow errors still fakes
    passing tests (the grading page says so)."""
    courses, _, _ = graded
    plain = courses["nbgrader"]
    assert total(plain, "displayhook") == 0
    assert total(plain, "swallow-errors") == FULL  # the stated weakness of plain nbgrader


def test_leaking_cheats_keep_only_the_points_their_answers_earn(graded):
    courses, _, _ = graded
    course = courses["mcf-grade"]
    assert scores(course, "update-display-leak") == POINTS
    assert scores(course, "frame-spy-leak") == POINTS
    for student in ("update-display-leak", "frame-spy-leak", "cell-named-exception"):
        assert review(course, student), student
    assert total(course, "cell-named-exception") < FULL


def test_no_feedback_shows_a_hidden_line_or_an_image_it_did_not_hand_in(graded):
    courses, cases, _ = graded
    snippets = secret_lines(SOURCE)
    assert len(snippets) >= 5
    for course in courses.values():
        for student, (nb, _) in cases.items():
            if course == courses["nbgrader"] and student not in PLAIN:
                continue
            page = feedback(course, student)
            assert not leaked_lines(page, snippets), (course.name, student, leaked_lines(page, snippets)[:2])
            assert "hidden-message-never-shown" not in page
            assert images_in_html(page) <= images_in_notebook(nb), (course.name, student)
    spied = autograded(courses["nbgrader"], "frame-spy-leak")
    shown = "".join(str(o) for c in spied.cells for o in c.get("outputs", []))
    assert leaked_lines(shown, snippets), "the spy did read hidden tests under plain nbgrader (it works)"


def test_feedback_keeps_the_students_own_outputs_and_figures(graded):
    courses, cases, _ = graded
    for course in courses.values():
        page = feedback(course, "honest")
        assert images_in_notebook(cases["honest"][0]) and \
            images_in_notebook(cases["honest"][0]) <= images_in_html(page), "the figure handed in is shown"


def test_feedback_says_why_a_test_failed_without_data_from_the_answer(graded):
    courses, _, _ = graded
    course = courses["mcf-grade"]
    untitled = feedback(course, "untitled")
    assert "give the chart a title" in untitled, "a constant message is shown"
    unsorted = feedback(course, "unsorted")
    assert "This check failed" in unsorted and "Run this test cell in your own notebook" in unsorted
    assert "got [" not in unsorted, "a message made from the answer is not shown"
    narrow = feedback(course, "narrow")
    assert HIDDEN_FAILURE[:40] in narrow
    assert "A hidden test failed" not in feedback(course, "good")
    plain = feedback(courses["nbgrader"], "narrow")
    assert "This test cell failed" in plain and "a hidden test failed" in plain


def test_test_cells_never_reach_the_kernel(graded):
    """The kernel's history holds the notebook's own cells only: no test was ever sent to it."""
    courses, cases, _ = graded
    spied = autograded(courses["mcf-grade"], "frame-spy-leak")
    shown = "".join(str(o) for c in spied.cells for o in c.get("outputs", []))
    assert not leaked_lines(shown, secret_lines(SOURCE)), "no hidden line reached the kernel"
    assert "checks.answer(stage_counts(practice)" not in shown, "nor a visible test"
    assert "zeta-hidden-stage" in shown, "the spy saw the data a hidden test passed to it (as data only)"


def test_report_and_marks_of_a_hidden_failure_say_only_that(graded):
    courses, _, _ = graded
    from mcf_course.grading.report import failing_tests

    course = courses["mcf-grade"]
    path = course / "autograded" / "narrow" / MODULE / f"{MODULE}.ipynb"
    assert failing_tests(path) == [("q1_tests", "a hidden test")]
    named = course / "autograded" / "cell-named-exception" / MODULE / f"{MODULE}.ipynb"
    for _, what in failing_tests(named):
        assert "Cell In" not in what and "zeta" not in what


def test_names_a_test_uses_are_found_in_nested_code():
    code = compile("x = f(data)\ndef g():\n    return [h(v) for v in values]\nassert isinstance(x, int)",
                   "<t>", "exec")
    assert {"f", "data", "h", "values", "isinstance"} <= runner.names_loaded(code)
    assert "v" not in runner.names_loaded(code)


@pytest.mark.parametrize("reply", [
    None, {}, {"content": {"status": "error", "ename": "X"}},
    {"content": {"status": "ok", "user_expressions": {"answer": {"status": "ok", "data": {"text/plain": "42"}}}}},
    {"content": {"status": "ok", "user_expressions": {"answer": {"status": "ok",
                                                                 "data": {"text/plain": "'not json'"}}}}},
    {"content": {"status": "ok", "user_expressions": {"answer": {"status": "ok",
                                                                 "data": {"text/plain": "(" * 500 + "'x'"}}}}},
    {"content": {"status": "ok", "user_expressions": {"answer": {"status": "ok",
                                                                 "data": {"text/plain": "'" + "[" * 100000 + "'"}}}}},
])
def test_a_malformed_answer_from_the_kernel_is_refused_clearly(reply):
    with pytest.raises(runner.UnreadableAnswer):
        runner.parse_answer(reply)


def test_a_well_formed_answer_is_rebuilt_by_the_grader():
    import json

    import pandas as pd

    from mcf_course import checks

    text = json.dumps({"value": checks.plain(pd.Series([3, 1], index=["a", "b"]))})
    reply = {"content": {"status": "ok", "user_expressions": {"answer": {"status": "ok",
                                                                         "data": {"text/plain": repr(text)}}}}}
    value = runner._value(runner.parse_answer(reply), "f")
    assert type(value) is pd.Series and value.to_dict() == {"a": 3, "b": 1}
    for answer, error in [({"missing": True}, NameError), ({"raised": ["E", "bad", "ValueError"]}, ValueError),
                          ({"raised": ["E", "bad", "SystemExit"]}, runner.StudentCodeError),
                          ({"raised": ["ValueError", "bad"]}, runner.UnreadableAnswer),
                          ({"unreadable": "holds a Liar"}, AssertionError),
                          ({"value": {"$": "nope"}}, runner.UnreadableAnswer),
                          ({"other": 1}, runner.UnreadableAnswer)]:
        with pytest.raises(error):
            runner._value(answer, "f")


def test_the_grader_tells_where_each_phase_spends_its_time(graded):
    _, _, timings = graded
    assert {"tests", "kernel start", "kernel ready", "execution"} <= set(timings)
    assert all(t > 0 for t in timings.values())


def test_answer_cells_are_what_the_inspection_reads():
    assert [grade_id(c) for c in answer_cells(SOURCE)] == ["q1_answer", "q2_answer", "q3_answer", "q4_answer"]


HONEST_CODE = '''
import pandas as pd
import numpy as np
from matplotlib import pyplot as plt
%matplotlib inline
def share(events, theme=None):
    total = sum(len(x) for x in events["theme"])
    events = events[events["theme"] == theme]
    return total
events["year"] = events["date"].str[:4]
import sys, warnings
sys.stdout.write("\\r50%")
print("working", end="", file=sys.stderr)
warnings.warn("later", FutureWarning)
%time share(events)
from IPython.display import display, HTML, Markdown
display(HTML("<b>done</b>"))
stacked = pd.DataFrame({"a": [1]}).stack()
pd.options.display.max_rows = 20
plt.rcParams["figure.figsize"] = (8, 4)
'''


def test_honest_code_is_not_flagged():
    import numpy as np
    import pandas as pd

    from mcf_course import checks
    from mcf_course.grading.inspection import review

    protected = {"np": np, "pd": pd, "checks": checks, "events": pd.DataFrame()}
    assert review([("q1_answer", HONEST_CODE)], protected) == []


@pytest.mark.parametrize("code, seen", [
    ("get_ipython().events.register('pre_run_cell', print)", "get_ipython().events"),
    ("ip = get_ipython()\nip.ast_transformers.append(t)", "ip.ast_transformers"),
    ("get_ipython().input_transformers_cleanup.append(f)", "input_transformers_cleanup"),
    ("get_ipython().set_custom_exc((Exception,), f)", "set_custom_exc"),
    ("import sys\nsys.displayhook = print", "sys.displayhook"),
    ("from IPython.display import update_display", "update_display"),
    ("display('x', display_id='leak')", "display_id"),
    ("import sys\ndef f():\n    return sys._getframe(1).f_back", "sys._getframe"),
    ("import inspect", "inspect"),
    ("import gc\ngc.get_objects()", "gc"),
    ("import sys\nsys.settrace(f)", "sys.settrace"),
    ("isinstance = lambda *a: True", "isinstance"),
    ("def len(x):\n    return 0", "len"),
    ("def f():\n    global set\n    set = list", "set"),
    ("np = None", "`np`"),
    ("import numpy as pd", "`pd`"),
    ("events = None", "`events`"),
    ("checks.answer = lambda *a, **k: a[0]", "checks.answer"),
    ("import numpy\nnumpy.isclose = f", "numpy.isclose"),
    ("setattr(np, 'isclose', f)", "np.isclose"),
    ("exec('x = 1')", "exec"),
    ("eval(text)", "eval"),
    ("code = compile(text, 'f', 'exec')", "compile"),
    ("getattr(obj, name)", "computed attribute"),
    ("globals()['len'] = 3", "globals()"),
    ("import ctypes", "ctypes"),
    ("open('/proc/self/mem', 'rb')", "/proc"),
    ("%load_ext something", "%load_ext"),
    ("%%time\nget_ipython().events.register('x', f)", "get_ipython().events"),
    ("from numpy import *", "import *"),
    ("().__class__.__base__.__subclasses__()", "__subclasses__"),
])
def test_tampering_is_seen_and_said(code, seen):
    import numpy as np
    import pandas as pd

    from mcf_course import checks
    from mcf_course.grading.inspection import review

    protected = {"np": np, "pd": pd, "checks": checks, "events": pd.DataFrame()}
    reasons = review([("q1_answer", code)], protected)
    assert reasons and any(seen in r for r in reasons), reasons
    assert all("q1_answer line" in r for r in reasons)
