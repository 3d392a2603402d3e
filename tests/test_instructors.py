"""The instructor material agrees with the notebooks: points by kind, and the times every page states."""

from __future__ import annotations

import importlib.util
import re

import nbformat
import pytest
from conftest import MODULES, ROOT


def points_by_kind(module: str) -> dict[str, float]:
    """Autograded points of a solution notebook, by the grade-id convention, and its written points."""
    nb = nbformat.read(ROOT / "solutions" / module / f"{module}.ipynb", as_version=4)
    points = {"coding": 0.0, "judgment": 0.0, "written": 0.0}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        if cell.cell_type == "markdown":
            points["written"] += meta["points"]
        else:
            points["judgment" if meta["grade_id"].endswith("_judgment") else "coding"] += meta["points"]
    return points


def table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The rows of the first Markdown table after ``heading``, by their first cell."""
    rows = {}
    for line in text.split(heading, 1)[1].lstrip("\n").splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("where, heading", [("instructors/README.md", "## Points: coding and judgment"),
                                            ("book/instructor-guide.md", "### Points")])
def test_points_tables_match_the_notebooks(where, heading):
    rows = table_rows((ROOT / where).read_text(encoding="utf-8"), heading)
    for module in MODULES:
        points = points_by_kind(module)
        row = rows[module.removeprefix("module")]
        share = round(100 * points["judgment"] / (points["coding"] + points["judgment"]))
        assert (float(row[0]), float(row[1]), row[2]) == (points["coding"], points["judgment"], f"{share}%"), module
        assert float(row[-1]) == points["written"], module


def _time_estimate():
    spec = importlib.util.spec_from_file_location("time_estimate", ROOT / "scripts" / "time_estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def minutes(text: str) -> int:
    """'3 h 45 min', '1 h' or '45 min' in minutes."""
    match = re.fullmatch(r"(?:(\d+) h)?\s*(?:(\d+) min)?", text.strip())
    assert match and any(match.groups()), f"not a duration: {text!r}"
    return 60 * int(match.group(1) or 0) + int(match.group(2) or 0)


@pytest.mark.parametrize("module", MODULES)
def test_every_page_states_the_measured_time(module):
    estimate = _time_estimate().estimate(module)
    n = module.removeprefix("module")
    chapter = (ROOT / "book" / f"{module}.md").read_text(encoding="utf-8")
    reading, exercise = re.search(r"\*\*Estimated time:\*\* reading about ([\w ]+?); exercise about ([\w ]+?),",
                                  chapter).groups()
    intro = nbformat.read(ROOT / "solutions" / module / f"{module}.ipynb", as_version=4).cells[0].source
    notebook_exercise, notebook_reading = re.search(
        r"\*\*Estimated time:\*\* about ([\w ]+?),.*chapter, which takes about ([\w ]+?)\)", intro).groups()
    book_intro = table_rows((ROOT / "book" / "intro.md").read_text(encoding="utf-8"), "## The five modules")
    total = next(row[-1] for key, row in book_intro.items() if key.startswith(f"{n}. "))
    guide = table_rows((ROOT / "book" / "instructor-guide.md").read_text(encoding="utf-8"), "## Timing and schedule")
    stated = {"chapter reading": (reading, estimate["reading"]), "chapter exercise": (exercise, estimate["exercise"]),
              "notebook exercise": (notebook_exercise, estimate["exercise"]),
              "notebook reading": (notebook_reading, estimate["reading"]),
              "introduction's total": (total.removeprefix("about "), estimate["total"]),
              "guide's reading": (guide[n][0].removeprefix("about "), estimate["reading"]),
              "guide's exercise": (guide[n][1].removeprefix("about ").split(",")[0], estimate["exercise"]),
              "guide's total": (guide[n][2].removeprefix("about "), estimate["total"])}
    for where, (text, measured) in stated.items():
        assert abs(minutes(text) - measured) <= 22.5, (
            f"{module}: the {where} says {text}, but scripts/time_estimate.py measures {measured:.0f} min")


@pytest.mark.parametrize("module", MODULES)
def test_model_answers_keep_to_their_tasks_and_say_their_length_truly(module):
    cells = nbformat.read(ROOT / "solutions" / module / f"{module}.ipynb", as_version=4).cells
    for index, cell in enumerate(cells):
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and cell.cell_type == "markdown"):
            continue
        task = cells[index - 1].source
        low, high = (int(n.replace(",", "")) for n in re.search(r"([\d,]+)\s*[–-]\s*([\d,]+) words", task).groups())
        answer = cell.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "").strip()
        label = re.match(r"\*Model (?:answer|memo) \(one of many good ones; about ([\d,]+) words\)\.\*", answer)
        assert label, f"{module}: the model answer should say its length: '(one of many good ones; about N words)'"
        count = len(answer[label.end():].split())
        assert low <= count <= high, f"{module}: the model answer has {count} words; the task asks for {low}-{high}"
        stated = int(label.group(1).replace(",", ""))
        assert abs(stated - count) <= 0.05 * count, (
            f"{module}: the model answer says about {stated} words; it has {count}")


@pytest.mark.parametrize("module", MODULES)
def test_judgment_is_at_least_two_fifths_of_the_autograded_points(module):
    points = points_by_kind(module)
    assert points["judgment"] / (points["coding"] + points["judgment"]) >= 0.4, points
