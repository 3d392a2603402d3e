"""The instructor report of a grading round: one self-contained HTML page.

It shows the score distribution, the pass rate of each autograded question, the failing
tests most common across the class (hidden tests are counted, never quoted; any text that
carries a hidden test's lines is scrubbed, as in the feedback), every student's status, and
every submitted file that was not used, with the reason.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

from mcf_course.grading.feedback import (  # noqa: E402
    HIDDEN_FAILURE,
    MARK,
    hidden_snippets,
    is_test_cell,
    scrub,
)
from mcf_course.grading.submissions import printable  # noqa: E402
from mcf_course.plotting import OKABE_ITO, use_course_style  # noqa: E402


def failing_tests(notebook_path: Path) -> list[tuple[str, str]]:
    """(test cell grade id, what failed) for each failing test cell of an autograded notebook,
    as the student's feedback says it (``mcf-grade``'s mark): a hidden test is counted as such,
    a visible check by its constant message or its line, never by text made while grading."""
    nb = nbformat.read(notebook_path, as_version=4)
    snippets = hidden_snippets(nb.cells)
    failures = []
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        mark = cell.metadata.get(MARK)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if isinstance(mark, dict) and mark.get("passed") is False:
            what = "a hidden test" if mark.get("hidden") else str(mark.get("feedback", ""))[:200]
        elif errors and not isinstance(mark, dict):
            what = "not run: the kernel died" if errors[-1].get("ename") == "DeadKernelError" else "failed"
        else:
            continue
        failures.append((cell.metadata["nbgrader"]["grade_id"], scrub(what, snippets)))
    return failures


def coding_and_judgment(db_url: str, module: str, graded: list) -> str:
    """An HTML section: coding and judgment points for each student and each question.

    A question's kind follows the course's grade-id convention (the test contract, rule 8): an
    autograded test cell whose grade_id ends with ``_judgment`` is judgment, any other
    autograded cell is coding; a question is the grade_id's first part (``q8_1_judgment`` is
    ``q8``). Written answers, graded by hand, are left out. Empty if the gradebook has no cells."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(db_url) as gb:
            cells = {c.name: float(c.max_score) for c in gb.find_notebook(module, module).grade_cells
                     if c.cell_type == "code"}
    except MissingEntry:
        return ""
    kinds = {name: "judgment" if name.endswith("_judgment") else "coding" for name in cells}
    if not cells or not graded:
        return ""

    def total(scores: dict, kind: str) -> float:
        return sum(scores.get(name) or 0 for name in cells if kinds[name] == kind)

    maxima = {kind: sum(p for name, p in cells.items() if kinds[name] == kind) for kind in ("coding", "judgment")}
    students = "\n".join(
        f"<tr><td>{html.escape(o.student)}</td>"
        + "".join(f"<td>{total(o.scores, kind):g} / {maxima[kind]:g}</td>" for kind in ("coding", "judgment"))
        + "</tr>" for o in sorted(graded, key=lambda o: o.student))
    questions: dict[str, list[str]] = {}
    for name in cells:
        questions.setdefault(name.split("_")[0], []).append(name)
    rows = []
    for question, names in sorted(questions.items(), key=lambda item: (len(item[0]), item[0])):
        points = sum(cells[n] for n in names)
        mean = sum(sum(o.scores.get(n) or 0 for n in names) for o in graded) / len(graded)
        kind = "/".join(sorted({kinds[n] for n in names}))
        rows.append(f"<tr><td>{html.escape(question)}</td><td>{kind}</td><td>{points:g}</td><td>{mean:.2f}</td></tr>")
    return f"""<h2>Coding and judgment</h2>
<p>Autograded points by kind: judgment items (grade ids ending <code>_judgment</code>) weigh evidence;
the rest is code. Written answers are not included.</p>
<table><tr><th>student</th><th>coding</th><th>judgment</th></tr>
{students}</table>
<table><tr><th>question</th><th>kind</th><th>points</th><th>class mean</th></tr>
{"".join(rows)}</table>"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(path: Path, settings, outcomes: list, autograded: Path, notes=()) -> None:
    use_course_style()
    graded = [o for o in outcomes if o.score is not None]
    cells = sorted({g for o in graded for g in o.scores})
    auto_cells = [g for g in cells if g.endswith(("_tests", "_judgment"))] or cells
    failures: Counter = Counter()
    from mcf_course.grading.course import assignment_notebooks

    names = assignment_notebooks(settings.course, settings.module)
    for o in graded:
        for name in names:
            notebook = autograded / o.student / settings.module / f"{name}.ipynb"
            if notebook.is_file():
                failures.update(failing_tests(notebook))

    figures = []
    if graded:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist([o.score for o in graded], bins=10, color=OKABE_ITO["blue"], edgecolor="white")
        ax.set(xlabel=f"Score (out of {graded[0].max_score:g}; written answers count once graded)",
               ylabel="Students",
               title="Score distribution")
        figures.append(("Score distribution", "A histogram of total scores across the class.",
                        _png(fig)))
        maxima = {g: max(o.scores.get(g) or 0 for o in graded) for g in auto_cells}
        rates = [sum(1 for o in graded if (o.scores.get(g) or 0) >= maxima[g] > 0) / len(graded)
                 for g in auto_cells]
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(auto_cells) + 1))
        ax.barh(auto_cells, rates, color=OKABE_ITO["orange"])
        ax.set(xlim=(0, 1), xlabel="Share of students with full marks", title="Pass rate by question")
        ax.invert_yaxis()
        figures.append(("Pass rate by question",
                        "A horizontal bar per autograded question: the share of students with full "
                        "marks on it.", _png(fig)))

    def text(value) -> str:
        return html.escape(printable(value))

    rows = "\n".join(
        f"<tr><td>{text(o.student)}</td><td>{text(o.status)}</td>"
        f"<td>{'' if o.score is None else f'{o.score:g} / {o.max_score:g}'}</td>"
        f"<td>{text(o.reason)}</td></tr>" for o in sorted(outcomes, key=lambda o: o.student))
    common = "\n".join(
        f"<tr><td>{n}</td><td>{html.escape(cell)}</td><td>{html.escape(what)}</td></tr>"
        for (cell, what), n in failures.most_common(15))
    images = "\n".join(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
                       f"<figcaption>{html.escape(title)}</figcaption></figure>"
                       for title, alt, data in figures)
    attention = sum(1 for o in outcomes if o.needs_attention)
    unused = "\n".join(f"<tr><td>{text(n.file)}</td><td>{text(n.what)}</td></tr>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Grading report: {html.escape(settings.module)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}
figure{{display:inline-block;margin:0 1rem 1rem 0}}</style></head><body>
<h1>Grading report: {html.escape(settings.module)}</h1>
<p>{len(outcomes)} submissions; {len(graded)} scored; {attention} need attention.
Hidden tests are counted below but never quoted (students see: “{html.escape(HIDDEN_FAILURE[:40])}…”).</p>
{images}
{coding_and_judgment(settings.db_url, settings.module, graded)}
<h2>Most common failing tests</h2>
<table><tr><th>students</th><th>test cell</th><th>what failed</th></tr>
{common or '<tr><td colspan="3">No failing tests.</td></tr>'}</table>
<h2>Files from the LMS folder</h2>
<table><tr><th>file</th><th>what happened</th></tr>
{unused or '<tr><td colspan="2">Every file was used as it was.</td></tr>'}</table>
<h2>Students</h2>
<table><tr><th>student</th><th>status</th><th>score</th><th>reason</th></tr>
{rows}</table>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
