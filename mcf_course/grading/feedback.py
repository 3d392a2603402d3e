"""Feedback that never shows a hidden test (nbgrader issues #917 and #1363).

nbgrader's feedback is an HTML copy of the autograded notebook, so by default it shows the
hidden tests it put back for grading, the tracebacks of those that failed, and whatever the
student's code printed while they ran. ``HideHiddenTests``, which ``nbgrader_config.py`` adds
to ``GenerateFeedback`` (so it also applies to ``nbgrader generate_feedback``), removes:

- the hidden region of every test cell, from its source, as in the student version;
- in a cell with hidden tests, every output but errors (tests print nothing; anything
  printed there came from the student's code while the hidden tests called it), and of an
  error only its type and message, and only if it was raised from a visible line;
- in every cell, any output that contains a line of any hidden test (a student's code can
  print the notebook's history, hook into each cell's source, or put it in an exception).

The report (``mcf_course.grading.report``) uses the same scrubbing. What it cannot catch is
hidden text a student's code has *encoded* (reversed, base64) before printing it; since the
solutions are public in this open course, hidden tests only stop accidental peeking.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

BEGIN = "### BEGIN HIDDEN TESTS"
END = "### END HIDDEN TESTS"
HIDDEN_FAILURE = ("A hidden test failed. Hidden tests run your code on other (fictional) data: "
                  "check that it computes the answer from the table it is given, and handles "
                  "the cases the question describes.")
REMOVED = "[output removed by the grader: it contained text of a hidden test]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_LINE = re.compile(r"(?:Cell In\s*\[[^\]]*\]|<module>|input-\d+).*?line (\d+)")
SNIPPET_LENGTH = 12  # hidden lines shorter than this ("pass", ")") reveal nothing


def hidden_line_range(source: str) -> range | None:
    """1-based line numbers of the hidden region (markers included), or None."""
    lines = source.splitlines()
    starts = [i for i, line in enumerate(lines, 1) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines, 1) if line.strip() == END]
    if not starts:
        return None
    return range(starts[0], (ends[-1] if ends else len(lines)) + 1)


def failing_cell_line(traceback: list[str]) -> int | None:
    """The line of the cell at which the error was raised (the cell's frame, not a callee's)."""
    numbers = [int(m.group(1)) for frame in traceback
               for m in [CELL_LINE.search(ANSI.sub("", frame))] if m]
    return numbers[0] if numbers else None


def without_hidden_region(source: str) -> str:
    hidden = hidden_line_range(source)
    if hidden is None:
        return source
    return "\n".join(line for i, line in enumerate(source.splitlines(), 1) if i not in hidden)


def _normal(text: str) -> str:
    return " ".join(ANSI.sub("", text).split())


def hidden_snippets(cells) -> list[str]:
    """Every hidden-test line worth hiding, whitespace-normalised, from the given cells: lines of
    the hidden regions that do not also stand, for all to see, elsewhere in the notebook."""
    snippets, visible = {BEGIN, END}, set()
    for cell in cells:
        source = cell.get("source", "")
        hidden = hidden_line_range(source) if cell.get("cell_type") == "code" else None
        for number, line in enumerate(source.splitlines(), 1):
            (snippets if hidden is not None and number in hidden else visible).add(_normal(line))
    return sorted(s for s in snippets - visible if len(s) >= SNIPPET_LENGTH)


def output_text(output) -> str:
    """All the text in one output: stream text, every text-like data field, error message
    and traceback."""
    parts = [output.get("text", ""), str(output.get("ename", "")), str(output.get("evalue", "")),
             *output.get("traceback", [])]
    for value in output.get("data", {}).values():
        parts.append(value if isinstance(value, str) else "")
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def leaks(text: str, snippets: list[str]) -> bool:
    flat = _normal(text)
    return any(snippet in flat for snippet in snippets)


def scrub(text: str, snippets: list[str]) -> str:
    """``text``, or a note in its place if it carries hidden-test text."""
    return REMOVED if leaks(text, snippets) else text


class HideHiddenTests(Preprocessor):
    """Strip hidden tests, and whatever reveals them, from a notebook before feedback."""

    enabled = Bool(True).tag(config=True)  # nbconvert preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        self.snippets = hidden_snippets(nb.cells)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.cell_type != "code":
            return cell, resources
        hidden = hidden_line_range(cell.source)
        outputs = []
        for output in cell.get("outputs", []):
            if hidden is not None:
                if output.get("output_type") != "error":
                    continue
                line = failing_cell_line(output.get("traceback", []))
                if line is None or line in hidden:
                    output["evalue"] = ""
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {HIDDEN_FAILURE}"]
                else:
                    message = ANSI.sub("", str(output.get("evalue", "")))
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {message}"]
            if leaks(output_text(output), self.snippets):
                output = NotebookNode(output_type="stream", name="stdout", text=REMOVED + "\n")
            outputs.append(output)
        cell.outputs = outputs
        cell.source = without_hidden_region(cell.source)
        return cell, resources
