"""No autograded answer depends on a low-confidence, disputed or unquoted row (issue #11).

For each solution notebook: one run without every such row (and the rows that refer to them),
and every answer must come out as on the full data. `python scripts/graded_rows.py` lists,
per answer, every row it depends on. The tests after the first check that mechanism on a
small made-up notebook and dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import mcf_course
from mcf_course import data as course_data
from mcf_course.graded_rows import Answer, DataSource, Notebook, analyse, check, format_text, same, solution_notebooks

NOTEBOOKS = solution_notebooks(ROOT)


@pytest.fixture(scope="module")
def course_data_source() -> DataSource:
    return DataSource(str(ROOT / "datasets"))


@pytest.mark.parametrize("module", list(NOTEBOOKS))
def test_no_answer_depends_on_an_ungradeable_row(module, course_data_source):
    violations = check(Notebook(NOTEBOOKS[module], course_data_source))
    if violations:
        pytest.fail(f"{module}: these autograded answers change when the low-confidence, disputed and unquoted rows "
                    "are removed, so they depend on rows a reviewer cannot vouch for (run `python "
                    f"scripts/graded_rows.py {module}` for every row each answer depends on):\n  "
                    + "\n  ".join(map(str, violations)), pytrace=False)


# ---------------------------------------------------------------------------------------------
# The mechanism, on made-up data: things A-F (C low, D disputed, E unquoted, F fictional and low)
# and notes N1 -> A, N2 -> C.

QUOTE = "“made-up words of a made-up source”"
THINGS = [("A", 10, "high", "false", QUOTE, "false"), ("B", 20, "high", "false", QUOTE, "false"),
          ("C", 5, "low", "false", QUOTE, "false"), ("D", 7, "high", "true", QUOTE, "false"),
          ("E", 3, "medium", "false", "No quote: the source is a print edition not online", "false"),
          ("F", 1, "low", "false", QUOTE, "true")]
NOTES = [("N1", "A", "high", QUOTE), ("N2", "C", "high", QUOTE)]


def _field(name: str, kind: str = "string") -> dict:
    extra = {"trueValues": ["true"], "falseValues": ["false"]} if kind == "boolean" else {}
    return {"name": name, "type": kind, **extra}


def _write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    lines = [",".join(header)] + [",".join(map(str, row)) + ",https://example.org/source" for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def made_up_data(tmp_path) -> DataSource:
    folder = tmp_path / "datasets"
    folder.mkdir()
    things = ["thing_id", "value", "confidence", "disputed", "evidence", "fictional", "source_url"]
    notes = ["note_id", "thing_id", "confidence", "evidence", "source_url"]
    kinds = {"value": "number", "disputed": "boolean", "fictional": "boolean"}
    descriptor = {"name": "made-up", "resources": [
        {"name": "things", "path": "things.csv",
         "schema": {"primaryKey": ["thing_id"], "fields": [_field(n, kinds.get(n, "string")) for n in things]}},
        {"name": "notes", "path": "notes.csv",
         "schema": {"primaryKey": ["note_id"], "fields": [_field(n) for n in notes],
                    "foreignKeys": [{"fields": ["thing_id"],
                                     "reference": {"resource": "things", "fields": ["thing_id"]}}]}}]}
    (folder / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    _write_csv(folder / "things.csv", things, THINGS)
    _write_csv(folder / "notes.csv", notes, NOTES)
    return DataSource(str(folder))


SETUP = """\
import importlib.util
if importlib.util.find_spec("mcf_course") is None:
    %pip install --quiet mcf-course
import matplotlib.pyplot as plt
from mcf_course import load_dataset
things = load_dataset("things")
notes = load_dataset("notes")
"""
ANSWERS = {
    "q1_answer": 'def total(table):\n    return table["value"].sum()\n\n\nall_total = total(things)\n',
    "q2_answer": ('b_value = things.set_index("thing_id").loc["B", "value"]\n'
                  'a_and_b = things.loc[things["thing_id"].isin(["A", "B"]), "value"].tolist()\n'
                  "fig, ax = plt.subplots()\nax.plot([1, 2])\n"),
    "q3_answer": 'n_notes_on_a = int((notes["thing_id"] == "A").sum())\n',
    "q4_answer": 'fictional_value = things.set_index("thing_id").loc["F", "value"]\n',
    "q5_answer": 'helper_total = total(things)\nshown = 1\n',  # no test reads helper_total: not an answer
}
READ_BY_TESTS = {"q1_answer": ["all_total"], "q2_answer": ["b_value", "a_and_b"], "q3_answer": ["n_notes_on_a"],
                 "q4_answer": ["fictional_value"], "q5_answer": ["shown"]}


def _made_up_notebook(folder: Path, questions: list[str]) -> Path:
    def cell(source: str, grade_id: str, solution: bool, grade: bool):
        meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
                "solution": solution, **({"points": 1} if grade else {})}
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})

    cells = [cell(SETUP, "setup_data", False, False)]
    for question in questions:
        cells.append(cell(ANSWERS[question], question, True, False))
        checks = "".join(f"print({name})\n" for name in READ_BY_TESTS[question])
        cells.append(cell(f'raise AssertionError("test cells must not run")\n{checks}',
                          question.replace("answer", "tests"), False, True))
    path = folder / "made_up" / "made_up.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_an_answer_that_uses_ungradeable_rows_is_a_violation(made_up_data, tmp_path):
    notebook = Notebook(_made_up_notebook(tmp_path, list(ANSWERS)), made_up_data)
    assert notebook.full.errors == {}, "the test cells must be left out and the magic compiled"
    violations = check(notebook)
    assert [v.answer for v in violations] == [Answer("q1_answer", "all_total")]
    assert {row.label for row in violations[0].rows} == {"things C", "things D", "things E"}, (
        "each of C (low), D (disputed) and E (unquoted) changes the total on its own; F is fictional")
    message = str(violations[0])
    assert all(part in message for part in ["made_up", "all_total", "things C (low confidence)",
                                            "things D (disputed)", "things E (unquoted)"])


def test_answers_that_use_only_gradeable_rows_pass(made_up_data, tmp_path):
    notebook = Notebook(_made_up_notebook(tmp_path, ["q2_answer", "q3_answer", "q4_answer"]), made_up_data)
    assert check(notebook) == []
    assert course_data.load_dataset.__module__ == "mcf_course.data" and "load_dataset" not in vars(mcf_course), (
        "the real load_dataset must be back in place after the runs")


def test_a_value_no_test_reads_is_not_an_answer(made_up_data, tmp_path):
    notebook = Notebook(_made_up_notebook(tmp_path, ["q1_answer", "q5_answer"]), made_up_data)
    assert [v.answer for v in check(notebook)] == [Answer("q1_answer", "all_total")], (
        "helper_total uses the low row C too, but no test reads it, so only all_total is a violation")
    assert Answer("q5_answer", "helper_total") not in notebook.answers
    assert Answer("q5_answer", "shown") in notebook.answers


def test_per_row_ablation_finds_exactly_the_dependent_rows(made_up_data, tmp_path):
    notebook = Notebook(_made_up_notebook(tmp_path, list(ANSWERS)), made_up_data)
    report = analyse(notebook)
    depends = {answer.name: {dep.row.label for dep in deps} for answer, deps in report.dependencies.items()}
    assert depends == {
        "all_total": {"things A", "things B", "things C", "things D", "things E", "things F"},
        "b_value": {"things B"},
        "a_and_b": {"things A", "things B"},
        "n_notes_on_a": {"things A", "notes N1"},  # removing thing A removes note N1, which refers to it
        "fictional_value": {"things F"},
        "shown": set(),  # a constant depends on no row (helper_total, read by no test, is not an answer)
    }
    by_row = {dep.row.label: dep for dep in report.dependencies[Answer("q3_answer", "n_notes_on_a")]}
    assert by_row["things A"].cascade == ("notes N1",)
    assert report.dependencies[Answer("q2_answer", "b_value")][0].how.startswith("raises KeyError")
    assert {a.name for a in notebook.full.plots} == {"fig", "ax"}, "figures are skipped, not compared"
    assert [(v.answer.name, v.rows[0].label) for v in report.violations] == [
        ("all_total", "things C"), ("all_total", "things D"), ("all_total", "things E")]
    text = format_text([report])
    assert "VIOLATIONS (3)" in text and "q2_answer fig: a plot" in text


def test_cascade_follows_foreign_keys(made_up_data):
    removal = made_up_data.cascade({"things": {("C",)}}, ["things", "notes"])
    assert removal == {"things": frozenset({("C",)}), "notes": frozenset({("N2",)})}
    assert made_up_data.cascade({"things": {("C",)}}, ["things"]) == {"things": frozenset({("C",)})}
    served = made_up_data.serve("notes", removal)
    assert list(served["note_id"]) == ["N1"] and list(served.index) == [0]


def test_same_compares_answer_values():
    frame = pd.DataFrame({"x": [1.0, np.nan], "y": ["a", None]})
    assert same(frame, frame.copy()) and not same(frame, frame.iloc[:1])
    assert same(pd.Series([1, 2], dtype="Int64"), pd.Series([1, 2], dtype="int64"))
    assert not same(pd.Series([1, 2], index=["a", "b"]), pd.Series([1, 2], index=["a", "c"]))
    assert same(float("nan"), np.nan) and same(pd.NA, np.nan) and not same(None, np.nan)
    assert same(0.1 + 0.2, 0.3) and not same(0.3, 0.31) and same(np.int64(3), 3)
    assert same({"a": (1, [2.0, np.nan])}, {"a": (1, [2.0, np.nan])}) and not same({"a": 1}, {"b": 1})
    assert not same((1, 2), [1, 2]) and not same("T001", "T002") and same({"x", "y"}, {"y", "x"})
    assert same(np.array([1.0, np.nan]), np.array([1.0, np.nan])) and not same(np.array([1]), np.array([1, 2]))
