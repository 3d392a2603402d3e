"""The class report's coding and judgment subtotals, per student and per question (issue #17)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mcf_course.grading.course import Outcome
from mcf_course.grading.report import coding_and_judgment


def test_subtotals_follow_the_grade_id_convention(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    # nbgrader's gradebook shells out to alembic, which lives beside this Python
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.add_assignment("module9")
        gb.add_notebook("module9", "module9")
        for name, points, kind in [("q1_tests", 2, "code"), ("q1_order_tests", 1, "code"), ("q2_1_judgment", 1, "code"),
                                   ("q2_2_judgment", 1, "code"), ("written_memo", 5, "markdown")]:
            gb.add_grade_cell(name, "module9", "module9", max_score=points, cell_type=kind)
    outcomes = [Outcome("ada", scores={"q1_tests": 2, "q1_order_tests": 0, "q2_1_judgment": 1, "q2_2_judgment": 0,
                                       "written_memo": 4}),
                Outcome("bo", scores={"q1_tests": 0, "q1_order_tests": 1, "q2_1_judgment": 1, "q2_2_judgment": 1})]
    section = coding_and_judgment(db_url, "module9", outcomes)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))
    assert "ada 2 / 3 1 / 2" in text and "bo 1 / 3 2 / 2" in text  # written answers are not counted
    assert "q1 coding 3 1.50" in text and "q2 judgment 2 1.50" in text
    assert "written" not in text.split("class mean")[1]
    assert coding_and_judgment(db_url, "module8", outcomes) == ""  # no such assignment: no section
