"""The grading pipeline, proved with real nbgrader commands in a temporary course.

All submissions are placed first and graded by one `nbgrader autograde` run per module,
as an instructor would do for a class.
"""

from __future__ import annotations

import copy
import html
import os
import re
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from conftest import MODULES, ROOT, find_cell, grade_id, with_answers_from

from mcf_course.grading.feedback import failing_cell_line, hidden_line_range, without_hidden_region

# Answer cells left unanswered in the "partial" submission, and the test cells they feed.
PARTIAL_SKIPS = {
    "module1": {"q3_answer": ("q3_tests", "q3_confidence_tests"), "q7_answer": ("q7_tests", "q7_labels_tests")},
    "module2": {"q3_answer": ("q3_tests",), "q5_answer": ("q5_tests",)},
    "module3": {"q6_answer": ("q6_tests",), "q8_answer": ("q8_tests",)},
    "module4": {"q3_answer": ("q3_tests", "q3_second_step_tests"), "q5_answer": ("q5_tests", "q5_refusal_tests")},
    "module5": {"q3_answer": ("q3_tests",), "q8_answer": tuple(f"q8_{x}_judgment" for x in "abcdef")},
}


def skipped_tests(module: str) -> set[str]:
    """The test cells that the partial submission's unanswered cells feed."""
    return {test for tests in PARTIAL_SKIPS[module].values() for test in tests}
# An answer that passes the visible tests by reading the real data instead of its argument:
# the hidden tests must catch it. (module: (answer cell, test cell, code))
HARD_CODED = {
    "module1": ("q1_answer", "q1_tests",
                "def theme_counts(events):\n"
                "    return load_dataset('policy_timeline')['theme'].value_counts()\n"),
    "module2": ("q2_answer", "q2_tests",
                "def theme_year_table(events):\n"
                "    real = load_dataset('policy_timeline')\n"
                "    years = real['date'].str[:4].astype(int)\n"
                "    table = pd.crosstab(years, real['theme'])\n"
                "    return table.reindex(range(years.min(), years.max() + 1), fill_value=0)\n"),
    "module3": ("q1_answer", "q1_tests",
                "def system_layer_counts(elements):\n"
                "    real = load_dataset('architecture_elements')\n"
                "    table = pd.crosstab(real['official_system'], real['analytic_layer'].fillna('judgment call'))\n"
                "    return table.reindex(index=OFFICIAL_SYSTEMS, columns=ANALYTIC_LAYERS + ['judgment call'],\n"
                "                         fill_value=0)\n"),
    "module4": ("q1_answer", "q1_tests",
                "def node_counts(nodes):\n"
                "    real = load_dataset('identifier_nodes')\n"
                "    named = real[(real['entry'] == 'node') & ~real['disputed']]\n"
                "    return named['kind'].value_counts()\n"
                "\n"
                "undisputed = node_counts(nodes)\n"),
    "module5": ("q3_answer", "q3_tests",
                "def unchecked_targets(targets, outcomes):\n"
                "    real_t, real_o = load_dataset('plan_targets'), load_dataset('reported_outcomes')\n"
                "    checked = set(comparable_outcomes(real_t, real_o)['target_id'])\n"
                "    return [t for t in real_t.loc[real_t['target_value'].notna(), 'target_id'] if t not in checked]\n"
                "\n"
                "unchecked = unchecked_targets(targets, outcomes)\n"
                "share_unchecked = len(unchecked) / targets['target_value'].notna().sum()\n"),
}


# An answer that passes the visible tests (on the real data and the practice data) but is not
# general: only the hidden tests, on other fictional data, can catch it.
NARROW = {
    "module1": ("q1_answer", "q1_tests",
                "def theme_counts(events):\n"
                "    return events['theme'].value_counts(ascending=len(events) < 10)\n"),
    "module2": ("q3_answer", "q3_tests",
                "def release_gaps(events):\n"
                "    both = events.dropna(subset=['written_date', 'release_date'])\n"
                "    gaps = (both['release_date'] - both['written_date']).dt.days.set_axis(both['event_id'])\n"
                "    return gaps[gaps > 0].sort_values(ascending=False)\n"
                "\n"
                "longest_gap_id = release_gaps(events).index[0]\n"),
    "module3": ("q7_answer", "q7_tests",
                "def measure_runs(stats, series):\n"
                "    rows = stats[stats['series'] == series]\n"
                "    period = rows['as_of'].map(pd.Period)\n"
                "    rows = rows.assign(first=period.map(lambda p: p.start_time),\n"
                "                       last=period.map(lambda p: p.end_time))\n"
                "    rows = rows.sort_values(['first', 'last', 'stat_id'])\n"
                "    runs = rows.groupby('measure_kind').agg(\n"
                "        n_rows=('stat_id', 'size'), first_as_of=('as_of', 'first'),\n"
                "        last_as_of=('as_of', 'last'), stat_ids=('stat_id', ', '.join))\n"
                "    runs = runs.reset_index().sort_values(['n_rows', 'measure_kind'], ascending=[False, False])\n"
                "    return runs.reset_index(drop=True)\n"
                "\n"
                "industry_runs = measure_runs(stats, 'industry scale (various measures)')\n"
                "core_growth = growth(stats, 'S35', 'S36')\n"
                "by_id = stats.set_index('stat_id')\n"
                "mixed_multiple = by_id.loc['S36', 'value'] / by_id.loc['S31', 'value']\n"),
    "module4": ("q5_answer", "q5_refusal_tests",  # forgets that both figures must be cumulative totals
                "def per_node(stats, firms_id, nodes_id):\n"
                "    by_id = stats.set_index('stat_id')\n"
                "    firms, nodes = by_id.loc[firms_id], by_id.loc[nodes_id]\n"
                "    if (firms['metric'] not in ('firms served', 'firms connected')\n"
                "            or nodes['metric'] != 'secondary nodes'):\n"
                "        raise ValueError('divide a count of firms by a count of secondary nodes')\n"
                "    if firms['figure'] != 'reported' or nodes['figure'] != 'reported':\n"
                "        raise ValueError('both figures must be reported')\n"
                "    if firms['scope'] != nodes['scope'] or firms['as_of'] != nodes['as_of']:\n"
                "        raise ValueError('the two figures cover different places or dates')\n"
                "    return float(firms['value'] / nodes['value'])\n"
                "\n"
                "per_node_2024 = per_node(stats, 'I22', 'I20')\n"
                "per_node_2021 = per_node(stats, 'I08', 'I07')\n"),
    "module5": ("q6_answer", "q6_none_tests",  # always solves for the decisive evidence, whatever `group` says
                "def flip_weight(indicators, scores, case_id, group='decisive evidence'):\n"
                "    info = indicators.set_index('indicator_id')\n"
                "    rows = scores[scores['case_id'] == case_id]\n"
                "    weight = rows['indicator_id'].map(info['default_weight']).astype(float)\n"
                "    mine = rows['indicator_id'].map(info['group']) == 'decisive evidence'\n"
                "    a, c = (weight * rows['score'])[~mine].sum(), weight[~mine].sum()\n"
                "    b, d = (weight * rows['score'])[mine].sum(), weight[mine].sum()\n"
                "    if np.isclose(b, THRESHOLD * d):\n"
                "        return None\n"
                "    m = (THRESHOLD * c - a) / (b - THRESHOLD * d)\n"
                "    return float(m) if m >= 0 else None\n"
                "\n"
                "practice_flips = {c: flip_weight(practice_indicators, practice_scores, c) for c in 'XYZ'}\n"),
}


def graded_cells(nb):
    """grade_id -> points of every graded cell, and the subset that is autograded code."""
    graded = {grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    auto = {g: p for g, p in graded.items() if find_cell(nb, g).cell_type == "code"}
    return graded, auto


def break_tests(nb, test_ids, how):
    """A student's attempt to game the tests: replace them with `pass`, or delete them."""
    nb = copy.deepcopy(nb)
    if how == "edit":
        for cell in nb.cells:
            if grade_id(cell) in test_ids:
                cell.source = "pass  # tests removed by the student"
    else:
        nb.cells = [c for c in nb.cells if grade_id(c) not in test_ids]
    return nb


@pytest.fixture(scope="session")
def graded(course):
    """Submit one notebook per scenario for every module, then autograde each module once."""
    for module in MODULES:
        source, released = course.source(module), course.released(module)
        skips = PARTIAL_SKIPS[module]
        _, auto = graded_cells(source)
        all_answers = [grade_id(c) for c in source.cells
                       if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
        partial = with_answers_from(source, released, skips)
        hard_coded = copy.deepcopy(source)
        answer, _, code = HARD_CODED[module]
        find_cell(hard_coded, answer).source = code
        narrow = copy.deepcopy(source)
        answer, _, code = NARROW[module]
        find_cell(narrow, answer).source = code
        submissions = {
            "solution": source,
            "unchanged": released,
            "partial": partial,
            "hard-coded": hard_coded,
            "narrow": narrow,
            "partial-tests-edited": break_tests(partial, skipped_tests(module), "edit"),
            "partial-tests-deleted": break_tests(partial, skipped_tests(module), "delete"),
            "blank-tests-edited": break_tests(released, set(auto), "edit"),
            "blank-tests-deleted": break_tests(released, set(auto), "delete"),
        }
        assert set(all_answers) >= set(skips), "PARTIAL_SKIPS names answer cells that do not exist"
        for student, nb in submissions.items():
            course.submit(student, module, nb)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # each module its own gradebook
        results = dict(zip(MODULES, pool.map(course.autograde, MODULES), strict=True))
    for module, result in results.items():
        assert result.returncode == 0, f"nbgrader autograde {module} failed:\n{result.stdout}\n{result.stderr}"
    return course


@pytest.mark.parametrize("module", MODULES)
def test_solution_gets_full_marks(graded, module):
    _, auto = graded_cells(graded.source(module))
    scores = graded.scores(module, "solution")
    assert {g: scores[g] for g in auto} == auto


@pytest.mark.parametrize("module", MODULES)
def test_unchanged_release_gets_zero_and_grades_cleanly(graded, module):
    graded_ids, auto = graded_cells(graded.source(module))
    scores = graded.scores(module, "unchanged")
    assert set(scores) == set(graded_ids), "every graded cell should have a grade"
    assert {g: scores[g] for g in auto} == dict.fromkeys(auto, 0)
    autograded_nb = nbformat.read(
        graded.root / "autograded" / "unchanged" / module / f"{module}.ipynb", as_version=4)
    errors = {o.ename for c in autograded_nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"}
    # The tests fail because answers are missing, not because grading itself broke.
    assert errors <= {"NotImplementedError", "NameError", "AssertionError"}, errors


@pytest.mark.parametrize("module", MODULES)
def test_partial_submission_gets_exactly_its_points(graded, module):
    _, auto = graded_cells(graded.source(module))
    skipped = skipped_tests(module)
    expected = {g: (0 if g in skipped else p) for g, p in auto.items()}
    scores = graded.scores(module, "partial")
    assert {g: scores[g] for g in auto} == expected
    assert 0 < sum(expected.values()) < sum(auto.values())


@pytest.mark.parametrize("module", MODULES)
def test_hidden_tests_catch_a_hard_coded_answer(graded, module):
    _, tests, _ = HARD_CODED[module]
    _, auto = graded_cells(graded.source(module))
    scores = graded.scores(module, "hard-coded")
    assert scores[tests] == 0
    assert {g: scores[g] for g in auto if g != tests} == {g: p for g, p in auto.items() if g != tests}


@pytest.mark.parametrize("module", MODULES)
def test_only_hidden_tests_catch_an_answer_that_is_not_general(graded, module):
    _, tests, _ = NARROW[module]
    scores = graded.scores(module, "narrow")
    assert scores[tests] == 0
    executed = nbformat.read(graded.root / "autograded" / "narrow" / module / f"{module}.ipynb", as_version=4)
    cell = find_cell(executed, tests)
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    line = failing_cell_line(error.traceback)
    assert line in hidden_line_range(cell.source), "the visible tests pass: only a hidden test fails"


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("how", ["edited", "deleted"])
def test_tampering_with_test_cells_gains_nothing(graded, module, how):
    _, auto = graded_cells(graded.source(module))
    honest = graded.scores(module, "partial")
    assert {g: graded.scores(module, f"partial-tests-{how}")[g] for g in auto} == \
        {g: honest[g] for g in auto}
    blank = graded.scores(module, f"blank-tests-{how}")
    assert {g: blank[g] for g in auto} == dict.fromkeys(auto, 0)


@pytest.mark.parametrize("module", MODULES)
def test_exercises_are_exactly_what_nbgrader_generates(course, module):
    made = (course.root / "exercises" / module / f"{module}.ipynb").read_bytes()
    committed = (ROOT / "exercises" / module / f"{module}.ipynb").read_bytes()
    assert committed == made, (
        f"exercises/{module} has drifted from solutions/{module}: "
        "run `python3 course.py release` and commit the result")


@pytest.mark.parametrize("module", MODULES)
def test_release_leaks_no_solution_or_hidden_test(module):
    text = (ROOT / "exercises" / module / f"{module}.ipynb").read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "Model answer",
                   "fictional ="):
        assert marker not in text, f"the student notebook contains {marker!r}"


@pytest.mark.parametrize("module", MODULES)
def test_cell_metadata_is_valid(module):
    nb = nbformat.read(ROOT / "solutions" / module / f"{module}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    meta = {grade_id(c): (c, c.metadata["nbgrader"]) for c in nb.cells if grade_id(c)}
    graded_ids, auto = graded_cells(nb)
    for gid, (cell, m) in meta.items():
        if m.get("grade"):
            assert m.get("points", 0) > 0, f"{gid} is graded but has no points"
        if m.get("grade") and not m.get("solution"):
            assert m.get("locked"), f"test cell {gid} must be locked"
            assert cell.cell_type == "code", f"test cell {gid} should be code"
        if m.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, f"answer cell {gid} has no solution block"
    assert len(auto) >= 6, "each module needs at least 6 autograded questions"
    assert len(graded_ids) - len(auto) >= 1, "each module needs a manually graded written answer"
    for gid in auto:
        source = find_cell(nb, gid).source
        assert "BEGIN HIDDEN TESTS" in source, f"{gid} has no hidden tests"
        visible = source.split("### BEGIN HIDDEN TESTS")[0]
        assert "assert" in visible and ", " in visible, f"{gid} needs visible tests with messages"


def test_nbgrader_config_sets_the_course_layout():
    from traitlets.config.loader import PyFileConfigLoader

    c = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert c.CourseDirectory.source_directory == "solutions"
    assert c.CourseDirectory.release_directory == "exercises"
    assert c.OverwriteCells.add_missing_cells is True
    assert c.Execute.kernel_name == "python3"
    assert 10 <= c.Execute.timeout <= 300


@pytest.mark.parametrize("module", MODULES)
def test_feedback_shows_no_hidden_test(graded, module):
    result = graded.nbgrader("generate_feedback", module, module=module)
    assert result.returncode == 0, result.stderr
    source = graded.source(module)
    hidden_lines = set()
    for cell in source.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            region = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            hidden_lines |= {line.strip() for line in region.splitlines() if len(line.strip()) > 12}
    # A line that also stands outside the hidden regions (practice data, or the answer code a
    # student wrote the same way) is no secret.
    visible = "\n".join(without_hidden_region(c.source) for c in source.cells)
    hidden_lines = {line for line in hidden_lines if line not in visible}
    assert hidden_lines
    for student in ("partial", "unchanged", "solution", "hard-coded", "narrow"):
        html_path = graded.root / "feedback" / student / module / f"{module}.html"
        text = html.unescape(re.sub(r"<[^>]+>", "", html_path.read_text(encoding="utf-8")))
        assert "HIDDEN TESTS" not in text
        leaked = [line for line in hidden_lines if line in text]
        assert not leaked, f"{student}'s feedback shows hidden test lines: {leaked[:3]}"
    narrow_html = graded.root / "feedback" / "narrow" / module / f"{module}.html"
    narrow = html.unescape(narrow_html.read_text(encoding="utf-8"))
    assert "This test cell failed" in narrow, "a failed test is reported, without details"
