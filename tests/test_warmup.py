"""The optional warm-up notebook: ungraded, generated like the exercises, runs, and is easy to find."""

from __future__ import annotations

import shutil

import nbformat
from conftest import ROOT, nbgrader

SOURCE = ROOT / "solutions" / "warmup" / "warmup.ipynb"
RELEASED = ROOT / "exercises" / "warmup" / "warmup.ipynb"


def test_warm_up_is_generated_by_nbgrader_and_grades_nothing(tmp_path):
    shutil.copytree(ROOT / "solutions" / "warmup", tmp_path / "solutions" / "warmup")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    result = nbgrader(tmp_path, "generate_assignment", "warmup", "--force", "--no-db")
    assert result.returncode == 0, result.stderr
    made = (tmp_path / "exercises" / "warmup" / "warmup.ipynb").read_bytes()
    assert made == RELEASED.read_bytes(), "exercises/warmup drifted: run `python3 course.py release`"
    released = nbformat.read(RELEASED, as_version=4)
    assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in released.cells), "the warm-up is ungraded"
    assert "BEGIN SOLUTION" not in RELEASED.read_text(encoding="utf-8")
    stubs = [c for c in released.cells if c.cell_type == "code" and "raise NotImplementedError(" in c.source]
    assert len(stubs) == 6  # one answer per step


def test_worked_warm_up_runs_and_every_self_check_matches():
    from nbclient import NotebookClient

    nb = nbformat.read(SOURCE, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(SOURCE.parent)}}).execute()  # raises on any error
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count("matches the course's answer") == 5
    assert "bars add up to every event" in printed


def test_warm_up_is_linked_from_the_introduction_and_the_exercises_page():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    exercises = (ROOT / "book" / "exercises.md").read_text(encoding="utf-8")
    assert "downloads/warmup-student.ipynb" in intro and "downloads/warmup-student.ipynb" in exercises
    assert "downloads/warmup-solution.ipynb" in exercises
