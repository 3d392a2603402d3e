"""What the course's ``nbgrader_config.py`` adds to plain ``nbgrader autograde``.

Plain nbgrader runs the tests in the student's kernel, where the student's code can change
anything; ``mcf-grade`` does not (see ``runner``). For instructors who grade with plain
nbgrader, these preprocessors (right after ``Execute``) close what can be closed from
outside the kernel:

- ``ResultsAreNotGrades``: nbgrader takes the first ``execute_result`` of a test cell as
  partial credit (any non-number counts as full) before it looks at the error after it, so
  a hook that displays ``'ok'`` before each cell earned full marks. A test cell's results
  become plain displays: a test cell earns its points only by raising no error.
- ``StderrIsOutput``: nbgrader fails a test cell that wrote anything to stderr, so an
  honest warning from a correct function (a pandas deprecation, ``warnings.warn``) cost its
  points. In test cells stderr counts as ordinary output; an exception still fails the test
  (it is an error output). The setup cells' ``checks.show_warnings_on_stdout()`` does the same
  inside the kernel, for the student's Validate button too.

What stays open under plain nbgrader (the grading page says so): code that rewrites the
kernel (an AST transformer wrapping every statement in try/except, rebinding ``isinstance``)
can still fake passing tests. Feedback is safe either way (``feedback``).
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from mcf_course.grading.feedback import is_test_cell


class ResultsAreNotGrades(Preprocessor):
    """In test cells, turn each execute_result into a display (no partial credit from it)."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["output_type"] = "display_data"
                    output.pop("execution_count", None)
        return cell, resources


class StderrIsOutput(Preprocessor):
    """In test cells, show stderr as stdout (a warning is not a failure; an error still is)."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def autograde_preprocessors(defaults: list) -> list:
    """nbgrader's autograde preprocessors with these two right after Execute."""
    return [defaults[0], ResultsAreNotGrades, StderrIsOutput, *defaults[1:]]
