"""Feedback that never shows a hidden test (nbgrader issues #917 and #1363).

nbgrader's feedback is an HTML copy of the autograded notebook, so by default it shows the
hidden tests it put back for grading, and the tracebacks of those that failed. The
preprocessor here, which ``nbgrader_config.py`` adds to ``GenerateFeedback``, removes both:

- the hidden region of every test cell is cut from its source, as in the student version;
- in such a cell, an error raised from the hidden region loses its traceback and message,
  and is replaced by a short note; an error from a visible test keeps only its type and
  message (the assertion text a student can act on), never source lines, which could
  include hidden ones shown as context.
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
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_LINE = re.compile(r"(?:Cell In\s*\[[^\]]*\]|<module>|input-\d+).*?line (\d+)")


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


class HideHiddenTests(Preprocessor):
    """Strip hidden tests, and what their failures reveal, from a notebook before feedback."""

    enabled = Bool(True).tag(config=True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        hidden = hidden_line_range(cell.source) if cell.cell_type == "code" else None
        if hidden is None:
            return cell, resources
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            line = failing_cell_line(output.get("traceback", []))
            if line is None or line in hidden:
                output["evalue"] = ""
                output["traceback"] = [f"{output.get('ename', 'Error')}: {HIDDEN_FAILURE}"]
            else:
                message = ANSI.sub("", str(output.get("evalue", "")))
                output["traceback"] = [f"{output.get('ename', 'Error')}: {message}"]
        cell.source = without_hidden_region(cell.source)
        return cell, resources
