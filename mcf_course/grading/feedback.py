"""Feedback that cannot carry a hidden test, in any encoding (nbgrader issues #917 and #1363).

nbgrader's feedback is an HTML copy of the autograded notebook: the hidden tests it put back
for grading, and everything the student's code printed, drew or updated *while the hidden
tests ran*. No filter can be sure to catch hidden text there: a student's code can encode it
(zero-width spaces, HTML entities, split outputs, pixels of an image, a display updated
later). So the course's feedback is not made from what ran during grading at all:

- ``KeepSubmittedOutputs`` (first of nbgrader's autograde sanitizers, see
  ``nbgrader_config.py``) keeps each cell's outputs *as the student handed them in*, in the
  cell's metadata, before nbgrader clears them to run the notebook;
- ``FeedbackFromSubmission`` (in ``GenerateFeedback``, so also for ``nbgrader
  generate_feedback``) shows every cell with those outputs, the visible part of each test
  cell, and for each test cell the grader's mark: passed, or why it failed. Under
  ``mcf-grade`` the mark of a failed visible check is its message when that message is a
  constant in the visible source, else the failing line with an invitation to run the test
  in the student's own notebook; a failed hidden test gets ``HIDDEN_FAILURE``, never its
  name or message (see ``runner``). Under plain nbgrader, which cannot tell which check
  failed from outputs a student's code can forge, a failed test cell gets one fixed line.

The scores themselves come from the gradebook, as always. Nothing produced during grading
reaches a student. ``hidden_snippets`` and ``scrub`` remain for the instructor's report.
"""

from __future__ import annotations

import copy
import re

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

BEGIN = "### BEGIN HIDDEN TESTS"
END = "### END HIDDEN TESTS"
SUBMITTED = "mcf_submitted_outputs"  # cell metadata: the outputs as handed in
MARK = "mcf_grade"                    # cell metadata: mcf-grade's verdict on a test cell
HIDDEN_FAILURE = ("A hidden test failed. Hidden tests run your code on other (fictional) data: "
                  "check that it computes the answer from the table it is given, and handles "
                  "the cases the question describes.")
PLAIN_FAILURE = ("This test cell failed. Run it in your own notebook to see which check fails; if "
                 "all its visible checks pass there, a hidden test failed: hidden tests run your code "
                 "on other (fictional) data.")
PASSED = "\u2713 The tests in this cell passed."
NOT_KEPT = "[an output of your notebook, not kept for feedback: {why}]"
REMOVED = "[output removed by the grader: it contained text of a hidden test]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_LINE = re.compile(r"(?:Cell In\s*\[[^\]]*\]|<module>|input-\d+).*?line (\d+)")
SNIPPET_LENGTH = 12  # hidden lines shorter than this ("pass", ")") reveal nothing
TEXT_LIMIT = 100_000  # characters of one kept text output
DATA_LIMIT = 2_000_000  # characters of one kept image (base64)
NOTEBOOK_LIMIT = 20_000_000  # characters of all kept outputs of one notebook


def is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def hidden_line_range(source: str) -> range | None:
    """1-based line numbers of the hidden region (markers included), or None."""
    lines = source.splitlines()
    starts = [i for i, line in enumerate(lines, 1) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines, 1) if line.strip() == END]
    if not starts:
        return None
    return range(starts[0], (ends[-1] if ends else len(lines)) + 1)


def failing_cell_line(traceback: list[str]) -> int | None:
    """The cell line at which an in-kernel error was raised, as IPython's traceback says (plain
    nbgrader; a student's code can forge it, so feedback never relies on it)."""
    numbers = [int(m.group(1)) for frame in traceback for m in [CELL_LINE.search(ANSI.sub("", frame))] if m]
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


def leaks(text: str, snippets: list[str]) -> bool:
    flat = _normal(text)
    return any(snippet in flat for snippet in snippets)


def scrub(text: str, snippets: list[str]) -> str:
    """``text``, or a note in its place if it carries hidden-test text."""
    return REMOVED if leaks(text, snippets) else text


# --- keeping the outputs as handed in ---------------------------------------------------------

def _kept(output: dict, budget: list[int]) -> dict:
    """One output as handed in, within the size limits (a note in its place beyond them)."""
    output = copy.deepcopy(dict(output))
    if output.get("output_type") == "stream":
        text = "".join(output.get("text", "")) if isinstance(output.get("text"), list) else str(output.get("text", ""))
        output["text"] = text[:TEXT_LIMIT] + ("\n[... cut]\n" if len(text) > TEXT_LIMIT else "")
    for mime, value in list(output.get("data", {}).items()):
        value = "".join(value) if isinstance(value, list) else value
        limit = TEXT_LIMIT if mime.startswith("text/") else DATA_LIMIT
        if not isinstance(value, str) or len(value) > limit:
            del output["data"][mime]
        else:
            output["data"][mime] = value
    size = sum(len(str(v)) for v in output.get("data", {}).values()) + len(str(output.get("text", "")))
    budget[0] -= size
    if budget[0] < 0 or (output.get("output_type") in ("display_data", "execute_result") and not output.get("data")):
        return {"output_type": "stream", "name": "stdout", "text": NOT_KEPT.format(why="too large") + "\n"}
    return output


class KeepSubmittedOutputs(Preprocessor):
    """Keep each code cell's outputs as handed in, in its metadata, for the feedback; remove
    any grader marks a submitted notebook carries (only the grader writes those)."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        self.budget = [NOTEBOOK_LIMIT]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        cell.metadata.pop(MARK, None)
        cell.metadata.pop(SUBMITTED, None)
        if cell.cell_type == "code":
            cell.metadata[SUBMITTED] = [_kept(o, self.budget) for o in cell.get("outputs", [])
                                        if isinstance(o, dict)]
        return cell, resources


# --- feedback -------------------------------------------------------------------------------

def _stream(name: str, text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name=name, text=text + "\n")


def mark_outputs(cell) -> list[NotebookNode]:
    """What the student sees under a test cell: the grader's mark, nothing that ran."""
    mark = cell.metadata.get(MARK)
    if isinstance(mark, dict) and isinstance(mark.get("passed"), bool):
        if mark["passed"]:
            return [_stream("stdout", PASSED)]
        return [_stream("stderr", "\u2717 " + str(mark.get("feedback") or PLAIN_FAILURE))]
    meta = cell.metadata.get("nbgrader", {})
    score, points = meta.get("score"), meta.get("points")
    if score is not None and points is not None and float(score) >= float(points):
        return [_stream("stdout", PASSED)]
    if score is None:
        return []
    return [_stream("stderr", "\u2717 " + PLAIN_FAILURE)]


class FeedbackFromSubmission(Preprocessor):
    """Feedback from the notebook as handed in, plus the grader's marks (see the module)."""

    enabled = Bool(True).tag(config=True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.cell_type == "code":
            if is_test_cell(cell):
                cell.outputs = mark_outputs(cell)
            else:
                cell.outputs = [nbformat.from_dict(copy.deepcopy(o)) for o in cell.metadata.get(SUBMITTED, [])
                                if isinstance(o, dict)]
            cell.execution_count = None
            cell.source = without_hidden_region(cell.source)
        cell.metadata.pop(SUBMITTED, None)
        cell.metadata.pop(MARK, None)
        return cell, resources


HideHiddenTests = FeedbackFromSubmission  # the name earlier configurations use
