"""How long each module takes a student, counted from the work itself (issue #17).

    python scripts/time_estimate.py            # a table, per module and for the course
    python scripts/time_estimate.py --json     # the same as JSON (the test of the stated times uses it)

The method, for a student who has done the warm-up (loading, filtering, grouping, merging and
plotting with pandas) and knows basic Python:

- **Reading** the chapter: its words (prose and tables, not code) at 150 words a minute, plus
  3 minutes for each "Check yourself" (try it, then read the answer), 2 for each figure and 5
  for each interactive explorer.
- **Coding questions**: the question's words at 150 a minute, plus 2 minutes for each step of
  the model answer (each call and each subscript, such as ``merge(...)``, ``["date"]``,
  ``.sort_values(...)``: a step is one thing to look up, write and check), plus 4 minutes for
  each graded test cell (run it, read the message, fix one mistake).
- **Judgment items**: their words at 100 a minute (careful reading of every option), plus 1.5
  minutes to decide each item.
- **Written answers**: the middle of the asked length at 10 words a minute (plan, draft, cite
  the rows, revise).

The figures are estimates for planning, not limits. They were checked against the parts of the
work they count, not against timed students; an instructor who times a class should prefer that.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
READING_WPM, CAREFUL_WPM, WRITING_WPM = 150, 100, 10
MINUTES_PER_STEP, MINUTES_PER_TEST_CELL, MINUTES_PER_JUDGMENT = 2, 4, 1.5
MINUTES_PER_CHECK, MINUTES_PER_FIGURE, MINUTES_PER_EXPLORER = 3, 2, 5


def words(text: str) -> int:
    """Words of Markdown text, leaving out code, directives' options and link targets."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"^:\w[\w-]*:.*$", " ", text, flags=re.M)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    latin = len(re.findall(r"[A-Za-z0-9][\w'’.-]*", text))
    chinese = len(re.findall(r"[\u3400-\u9fff]", text)) // 2  # about two characters a word
    return latin + chinese


def reading_minutes(page: Path) -> float:
    text = page.read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[-1] if text.startswith("---") else text
    checks = body.count("{admonition} Check yourself")
    figures = len(re.findall(r"^\s*name: fig-", body, flags=re.M))
    explorers = len(re.findall(r"explorer\(", body))
    return (words(body) / READING_WPM + checks * MINUTES_PER_CHECK + figures * MINUTES_PER_FIGURE
            + explorers * MINUTES_PER_EXPLORER)


def solution_steps(source: str) -> int:
    """Calls and subscripts in the model answer (the code between the solution markers)."""
    steps = 0
    for block in re.findall(r"### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION", source, flags=re.S):
        tree = ast.parse(textwrap.dedent(block))
        steps += sum(isinstance(node, ast.Call | ast.Subscript) for node in ast.walk(tree))
    return steps


def asked_words(text: str) -> float:
    """The middle of a length such as '250–400 words' or '1,000–1,500 words'."""
    low, high = re.search(r"([\d,]+)\s*[–-]\s*([\d,]+) words", text).groups()
    return (int(low.replace(",", "")) + int(high.replace(",", ""))) / 2


def exercise_minutes(notebook: Path) -> dict[str, float]:
    """Minutes for the coding questions, the judgment items and the written answer."""
    cells = nbformat.read(notebook, as_version=4).cells
    parts = {"coding": 0.0, "judgment": 0.0, "written": 0.0}
    question = []  # the cells of the current question
    for cell in [*cells, None]:
        if cell is None or (cell.cell_type == "markdown" and cell.source.startswith("## Question")):
            if question:
                text = question[0].source
                grade_ids = [c.metadata.get("nbgrader", {}).get("grade_id", "") for c in question]
                judgments = [g for g in grade_ids if g.endswith("_judgment")]
                tests = [g for g, c in zip(grade_ids, question, strict=True)
                         if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
                if judgments:
                    parts["judgment"] += words(text) / CAREFUL_WPM + len(judgments) * MINUTES_PER_JUDGMENT
                elif tests:
                    steps = sum(solution_steps(c.source) for c in question
                                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code")
                    parts["coding"] += (words(text) / READING_WPM + steps * MINUTES_PER_STEP
                                        + len(tests) * MINUTES_PER_TEST_CELL)
                else:
                    parts["written"] += words(text) / READING_WPM + asked_words(text) / WRITING_WPM
            question = []
        if cell is not None and (question or (cell.cell_type == "markdown" and cell.source.startswith("## Question"))):
            question.append(cell)
    return parts


def estimate(module: str) -> dict[str, float]:
    reading = reading_minutes(ROOT / "book" / f"{module}.md")
    parts = exercise_minutes(ROOT / "solutions" / module / f"{module}.ipynb")
    exercise = sum(parts.values())
    return {"reading": reading, **parts, "exercise": exercise, "total": reading + exercise}


def rounded(minutes: float, step: int = 15) -> int:
    return int(step * round(minutes / step))


def duration(minutes: float) -> str:
    """Minutes as the course states them, to the quarter hour: '45 min', '1 h', '3 h 45 min'."""
    hours, rest = divmod(max(rounded(minutes), 15), 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


def stated(module: str) -> dict[str, str]:
    """The times a module's pages state: reading, exercise (with the written answer) and both."""
    e = estimate(module)
    return {"reading": duration(e["reading"]), "exercise": duration(e["exercise"]),
            "total": duration(rounded(e["reading"]) + rounded(e["exercise"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modules = sorted(p.name for p in (ROOT / "solutions").glob("module*") if p.is_dir())
    result = {m: estimate(m) for m in modules}
    if args.json:
        print(json.dumps({m: {**e, "stated": stated(m)} for m, e in result.items()}, indent=1))
        return
    print(f"{'module':8} {'reading':>8} {'coding':>7} {'judgment':>9} {'written':>8} {'exercise':>9} {'total':>7}")
    for module, e in result.items():
        print(f"{module:8} {e['reading']:8.0f} {e['coding']:7.0f} {e['judgment']:9.0f} {e['written']:8.0f} "
              f"{e['exercise']:9.0f} {e['total']:7.0f}   stated: {stated(module)}")
    total = sum(e["total"] for e in result.values())
    print(f"course: {total / 60:.1f} hours (minutes above; the warm-up notebook adds about 2 hours)")


if __name__ == "__main__":
    main()
