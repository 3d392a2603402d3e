"""mcf-grade on a class with hostile and broken submissions: the batch finishes, every
student gets the score their notebook deserves with a clear reason, and the gradebook stays
consistent. Scores are checked against nbgrader's own sequential autograde.

The corpus uses Module 1. Points there: q1 2, q2 3, q3 3, q4 2, q5 2, q6 2, q7 2 (16 in all).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import threading

import nbformat
import pytest
from conftest import ROOT, find_cell, grade_id, nbgrader, with_answers_from

from mcf_course.classgrade import grade_class

MODULE = "module1"
FULL = 16


def answer_with(nb, gid, code, before=False):
    """Put ``code`` in front of (or after) the answer cell ``gid``."""
    cell = find_cell(nb, gid)
    cell.source = f"{code}\n{cell.source}" if before else f"{cell.source}\n{code}"
    return nb


@pytest.fixture(scope="module")
def listener():
    """A real TCP server on this machine's loopback, which no student code should reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    received, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, listener):
    """A course with one submission per case; returns (course, cases, nbgrader's own run)."""
    port, _ = listener
    course = tmp_path_factory.mktemp("class")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    assert nbgrader(course, "generate_assignment", MODULE, "--force").returncode == 0
    solution = nbformat.read(course / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    blank = nbformat.read(course / "exercises" / MODULE / f"{MODULE}.ipynb", as_version=4)
    other_module = nbformat.read(ROOT / "solutions" / "module2" / "module2.ipynb", as_version=4) \
        if (ROOT / "solutions" / "module2").is_dir() else blank
    s = lambda: copy.deepcopy(solution)  # noqa: E731
    without_q1 = with_answers_from(solution, blank, {"q1_answer"})

    cases = {}  # student: (notebook or raw bytes, file name, expected status, expected score)

    def case(student, nb, score, status="graded", name=f"{MODULE}.ipynb"):
        cases[student] = (nb, name, status, score)

    case("good", s(), FULL)
    case("partial", with_answers_from(solution, blank, {"q3_answer", "q7_answer"}), FULL - 5)
    case("blank", copy.deepcopy(blank), 0)
    case("infinite-loop", answer_with(s(), "q1_answer", "while True:\n    pass", before=True), FULL - 2)
    case("memory-bomb", answer_with(s(), "q1_answer", "hog = bytearray(8 * 1024**3)", before=True),
         FULL - 2)
    case("sys-exit", answer_with(s(), "q1_answer", "import sys\nsys.exit(3)"), FULL)
    case("os-exit", answer_with(s(), "q3_answer", "import os\nos._exit(1)", before=True), 5)
    case("kernel-crash", answer_with(s(), "q5_answer", "import ctypes\nctypes.string_at(0)",
                                     before=True), 10)
    case("huge-output", answer_with(s(), "q1_answer", "print('x' * 20_000_000)"), FULL)
    edited = copy.deepcopy(without_q1)
    find_cell(edited, "q1_tests").source = "pass"
    case("edited-test", edited, FULL - 2)
    deleted = copy.deepcopy(without_q1)
    deleted.cells = [c for c in deleted.cells if grade_id(c) != "q1_tests"]
    case("deleted-test", deleted, FULL - 2)
    no_answer = s()
    no_answer.cells = [c for c in no_answer.cells if grade_id(c) != "q2_answer"]
    case("deleted-answer", no_answer, FULL - 3 - 2)  # Q6 uses Q2's function too
    retyped = s()
    q1 = find_cell(retyped, "q1_answer")
    q1.cell_type = "markdown"
    for key in ("outputs", "execution_count"):
        q1.pop(key, None)
    case("changed-cell-type", retyped, FULL)  # nbgrader turns an answer cell back into code
    duplicated = s()
    duplicated.cells.append(copy.deepcopy(find_cell(duplicated, "q1_tests")))
    case("duplicated-grade-id", duplicated, FULL)
    kernel = s()
    kernel.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia", "language": "julia"}
    case("other-kernel", kernel, FULL)
    case("invalid-json", b'{"cells": [', 0, "failed to run")
    case("empty-file", b"", 0, "failed to run")
    case("wrong-file-name", s(), FULL, name="Module1 (1).ipynb")
    case("other-module", copy.deepcopy(other_module), 0)
    case("network", answer_with(s(), "q1_answer", (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'LEAK')\n"
        "except OSError as exc:\n    print('blocked:', exc)")), FULL)
    target = course / "PWNED.txt"
    case("write-outside", answer_with(s(), "q1_answer", (
        f"for path in [{str(target)!r}, {str(course / 'gradebook.db')!r}, '../../../../escape.txt']:\n"
        "    try:\n        open(path, 'a').write('pwned')\n"
        "    except OSError as exc:\n        print('blocked:', exc)")), FULL)
    case("missing-notebook", None, 0, "missing notebook")

    for student, (nb, name, _, _) in cases.items():
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        if isinstance(nb, bytes):
            (folder / name).write_bytes(nb)
        elif nb is not None:
            nbformat.write(nb, folder / name)
    gradebook_before = (course / "gradebook.db").stat().st_size
    outcomes = grade_class(course, MODULE, workers=2, cell_timeout=10, notebook_timeout=240,
                           memory_mb=1024, quiet=True)
    return course, cases, {o.student: o for o in outcomes}, gradebook_before


def test_every_case_gets_the_score_it_deserves(corpus):
    _, cases, outcomes, _ = corpus
    got = {s: (outcomes[s].status, outcomes[s].score) for s in cases}
    expected = {s: (status, score) for s, (_, _, status, score) in cases.items()}
    assert got == expected


def test_each_problem_comes_with_a_reason(corpus):
    _, cases, outcomes, _ = corpus
    reasons = {s: outcomes[s].reason for s in cases}
    assert "not a valid notebook" in reasons["invalid-json"]
    assert "empty" in reasons["empty-file"]
    assert "no module1.ipynb" in reasons["missing-notebook"]
    assert "wrong file name" in reasons["wrong-file-name"]
    assert "kernel died" in reasons["os-exit"] and "kernel died" in reasons["kernel-crash"]
    assert reasons["good"] == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="the network and file-system sandbox needs root "
                    "(CI and grading servers run as root; see the grading page)")
def test_sandbox_blocked_network_and_writes(corpus, listener):
    course, _, _, _ = corpus
    _, received = listener
    assert received == [], "student code reached a server on this machine"
    assert not (course / "PWNED.txt").exists()
    assert not (course.parent / "escape.txt").exists()
    autograded = course / "autograded"
    nb = nbformat.read(autograded / "write-outside" / MODULE / f"{MODULE}.ipynb", as_version=4)
    text = json.dumps(nb)
    assert "blocked:" in text and "Read-only file system" in text


def test_gradebook_matches_nbgraders_own_sequential_autograde(corpus, tmp_path):
    """Well-behaved submissions: nbgrader autograde in a copy gives the very same scores."""
    course, cases, outcomes, _ = corpus
    copy_root = tmp_path / "sequential"
    copy_root.mkdir()
    for name in ("solutions", "exercises"):
        shutil.copytree(course / name, copy_root / name)
    shutil.copy(course / "nbgrader_config.py", copy_root)
    assert nbgrader(copy_root, "generate_assignment", MODULE, "--force").returncode == 0
    # (nbgrader itself stops with an error on the duplicated-grade-id and other-module cases)
    students = ["good", "partial", "blank", "edited-test", "deleted-test", "deleted-answer",
                "other-kernel", "sys-exit", "changed-cell-type"]
    for student in students:
        shutil.copytree(course / "submitted" / student, copy_root / "submitted" / student)
    result = nbgrader(copy_root, "autograde", MODULE)
    assert result.returncode == 0, result.stderr[-2000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{copy_root / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook(MODULE, MODULE, student)
            assert {g.name: g.score for g in nb.grades} == outcomes[student].scores, student


def test_gradebook_is_consistent_and_outputs_are_written(corpus):
    course, cases, outcomes, _ = corpus
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in cases:
            nb = gb.find_submission_notebook(MODULE, MODULE, student)
            assert len(nb.grades) == 8, student  # 7 autograded cells and the written answer
            feedback = course / "feedback" / student / MODULE / f"{MODULE}.html"
            text = feedback.read_text(encoding="utf-8")
            assert "HIDDEN TESTS" not in text and "fictional =" not in text, student
    report = (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")
    assert "Score distribution" in report and "Most common failing tests" in report
    assert "BEGIN HIDDEN" not in report and "fictional" not in report
    rows = (course / "reports" / MODULE / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(cases) + 1 and rows[0].startswith("student,status,score")


def test_huge_output_is_trimmed(corpus):
    course, _, _, _ = corpus
    size = (course / "autograded" / "huge-output" / MODULE / f"{MODULE}.ipynb").stat().st_size
    assert size < 5_000_000


def test_rerun_keeps_manual_grades_and_changes_nothing(corpus):
    course, cases, outcomes, _ = corpus
    from nbgrader.api import Gradebook

    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade = gb.find_grade("written_translation", MODULE, MODULE, "good")
        grade.manual_score = 4
        gb.db.commit()
    again = {o.student: o for o in grade_class(course, MODULE, workers=2, quiet=True)}
    assert all(o.status == "skipped" for s, o in again.items() if s in outcomes
               and outcomes[s].status == "graded")
    forced = {o.student: o for o in grade_class(course, MODULE, workers=2, cell_timeout=10,
                                                memory_mb=1024, force=True, quiet=True,
                                                notebook_timeout=240)}
    for student in ("good", "partial", "blank", "os-exit", "invalid-json"):
        assert forced[student].scores.keys() == outcomes[student].scores.keys()
        auto = {g: v for g, v in forced[student].scores.items() if g != "written_translation"}
        assert auto == {g: v for g, v in outcomes[student].scores.items() if g != "written_translation"}
    with Gradebook(db) as gb:
        assert gb.find_grade("written_translation", MODULE, MODULE, "good").manual_score == 4


def test_notebook_wall_clock_limit(tmp_path):
    course = tmp_path / "slow"
    course.mkdir()
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    solution = nbformat.read(course / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    slow = answer_with(solution, "q1_answer", "import time\ntime.sleep(60)", before=True)
    folder = course / "submitted" / "sleeper" / MODULE
    folder.mkdir(parents=True)
    nbformat.write(slow, folder / f"{MODULE}.ipynb")
    (outcome,) = grade_class(course, MODULE, workers=1, cell_timeout=120, notebook_timeout=20,
                             quiet=True)
    assert (outcome.status, outcome.score) == ("timed out", 0)
    assert "20 s" in outcome.reason


def test_lms_downloads_are_matched_by_student_id(tmp_path):
    course = tmp_path / "lms"
    course.mkdir()
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shutil.copy(ROOT / "solutions" / MODULE / f"{MODULE}.ipynb", downloads / "ada_module1.ipynb")
    shutil.copy(ROOT / "exercises" / MODULE / f"{MODULE}.ipynb", downloads / "bob-late.ipynb")
    (downloads / "README.txt").write_text("not a submission")
    outcomes = {o.student: o for o in grade_class(course, MODULE, lms=downloads, workers=2,
                                                    quiet=True)}
    assert {s: o.score for s, o in outcomes.items()} == {"ada": FULL, "bob": 0}
    assert (downloads / "ada_module1.ipynb").is_file(), "the downloads are left in place"
    assert os.listdir(course / "submitted") and (course / "feedback" / "ada").is_dir()

