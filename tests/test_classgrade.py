"""mcf-grade on a class of hostile and broken submissions (the hostile corpus).

The batch finishes, every student gets the score their notebook deserves with a clear reason,
no student reaches the gradebook, the solutions, a classmate or the grader, and no hidden
test reaches feedback or the report. Scores of honest submissions are checked against
nbgrader's own sequential autograde. Each case names the hole it closes (the numbers are
those of the grading issue: 1 escape, 2 left-behind processes, 3 death in a test, 4 reserved
names, 5 leaks, 6 sabotage, 7 reading, 8 extra files, 9 LMS, 10 exit status).

The corpus uses Module 1; points come from its source notebook.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, autograded_points, find_cell, grade_id, nbgrader, with_answers_from

from mcf_course.grading import grade_class
from mcf_course.grading.command import main
from mcf_course.grading.feedback import hidden_snippets
from mcf_course.grading.sandbox import UID_BASE, processes_of

MODULE = "module1"
SOURCE = nbformat.read(ROOT / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
POINTS = autograded_points(SOURCE)
FULL = sum(POINTS.values())
ANSWERS = [grade_id(c) for c in SOURCE.cells if c.cell_type == "code"
           and c.get("metadata", {}).get("nbgrader", {}).get("solution")]
FIRST = ANSWERS[0]
LAST = [a for a in ANSWERS if "\ndef " in "\n" + find_cell(SOURCE, a).source][-1]  # last one with a function
# The test cells after each answer cell, up to the next answer (a question may have several, each
# with its own points): the first of them, and the points of them all.
_FOLLOWING = {}
for _cell in SOURCE.cells:
    _meta = _cell.get("metadata", {}).get("nbgrader", {})
    if _cell.cell_type == "code" and _meta.get("solution"):
        _current = _FOLLOWING.setdefault(_meta["grade_id"], [])
    elif _cell.cell_type == "code" and _meta.get("grade") and _FOLLOWING:
        _current.append(_meta["grade_id"])
TESTS_OF = {a: tests[0] for a, tests in _FOLLOWING.items()}
POINTS_OF = {a: sum(POINTS[t] for t in tests) for a, tests in _FOLLOWING.items()}
SECRET = "MCF-SECRET-SENTINEL-7f3a"     # in the grader's environment: no kernel may see it
DAEMON = "MCF-LEFT-BEHIND-MARKER-91c2"  # in the command line of left-behind processes


def answer_with(nb, gid, code, before=False):
    """Put ``code`` in front of (or after) the answer cell ``gid``."""
    cell = find_cell(nb, gid)
    cell.source = f"{code}\n{cell.source}" if before else f"{cell.source}\n{code}"
    return nb


def in_function(nb, gid, code):
    """Make the first function defined in answer cell ``gid`` run ``code`` when it is called."""
    cell = find_cell(nb, gid)
    lines = cell.source.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("def "))
    cell.source = "\n".join([*lines[:first + 1], f"    {code}", *lines[first + 1:]])
    return nb


def daemon(code: str) -> str:
    """Cell code that leaves a process running ``code`` behind, detached from the kernel."""
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {code!r}, {DAEMON!r}], start_new_session=True,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")


TAMPER = r"""
import json, os, signal, sys, time
end = time.time() + 90
while time.time() < end:
    for base, dirs, files in os.walk('/'):
        if base.startswith(('/proc', '/sys', '/dev')):
            dirs[:] = []
            continue
        for name in files:
            if name.endswith('.ipynb'):
                path = os.path.join(base, name)
                try:
                    nb = json.load(open(path))
                    for cell in nb['cells']:
                        cell['outputs'] = [o for o in cell.get('outputs', []) if o.get('output_type') != 'error']
                    json.dump(nb, open(path, 'w'))
                except Exception:
                    pass
    for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:
        if pid != os.getpid():
            for sig in (signal.SIGSTOP, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    time.sleep(0.1)
"""
WRITER = r"""
import os, time
end = time.time() + 90
n = 0
while time.time() < end:
    for place in ('.', '/tmp', '/dev/shm', '/run/kernel'):
        try:
            with open(os.path.join(place, f'junk{n % 50}.txt'), 'w') as f:
                f.write('x' * 100000)
        except OSError:
            pass
    n += 1
"""
PROBE = r"""
import glob, json, os
found = {}
def attempt(name, action):
    try:
        found[name] = str(action())[:200]
    except Exception as exc:
        found[name] = f'blocked: {type(exc).__name__}'
attempt('shadow', lambda: open('/etc/shadow').read())
attempt('root', lambda: os.listdir('/root/.ssh') if os.path.exists('/root/.ssh') else sorted(os.listdir('/root')))
attempt('env', lambda: {k: v for k, v in os.environ.items() if 'SECRET' in k or 'SECRET' in v})
for name, path in PATHS.items():
    attempt(name, lambda path=path: open(path, 'rb').read(100))
pids = [p for p in os.listdir('/proc') if p.isdigit()]
found['pids'] = pids
found['uid'] = os.getuid()
for pid in pids:
    attempt(f'cmdline {pid}', lambda pid=pid: open(f'/proc/{pid}/cmdline', 'rb').read())
    attempt(f'environ {pid}', lambda pid=pid: open(f'/proc/{pid}/environ', 'rb').read())
    if int(pid) != os.getpid():
        attempt(f'mem {pid}', lambda pid=pid: open(f'/proc/{pid}/mem', 'rb').read(1))
attempt('sockets', lambda: open('/proc/net/unix').read())
print('PROBE ' + json.dumps(found))
"""
SOCKETS = r"""
import os, socket
reached = []
for base, dirs, files in os.walk('/'):
    if base.startswith(('/proc', '/sys')):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(base, name)
        try:
            if os.path.stat.S_ISSOCK(os.lstat(path).st_mode):
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                reached.append(path)
                s.close()
        except OSError:
            pass
print('REACHED ' + ' '.join(reached))
"""


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


def new_course(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "solutions", folder / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    assert nbgrader(folder, "generate_assignment", MODULE, "--force").returncode == 0
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, listener):
    """A course with one submission per case; returns (course, cases, outcomes)."""
    port, _ = listener
    course = new_course(tmp_path_factory.mktemp("class"))
    solution = nbformat.read(course / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
    blank = nbformat.read(course / "exercises" / MODULE / f"{MODULE}.ipynb", as_version=4)
    other_module = nbformat.read(ROOT / "solutions" / "module2" / "module2.ipynb", as_version=4)
    s = lambda: copy.deepcopy(solution)  # noqa: E731
    b = lambda: copy.deepcopy(blank)  # noqa: E731
    without_first = with_answers_from(solution, blank, {FIRST})
    first_points, last_points = POINTS_OF[FIRST], POINTS_OF[LAST]
    tests_in_order = list(POINTS)  # a dead kernel loses its state: the later tests fail too
    from_last_points = sum(POINTS[t] for t in tests_in_order[tests_in_order.index(TESTS_OF[LAST]):])

    cases = {}  # student: (notebook or raw bytes, file name, expected status, expected score, extra files)

    def case(student, nb, score, status="graded", name=f"{MODULE}.ipynb", files=None):
        cases[student] = (nb, name, status, score, files or {})

    # --- the earlier corpus -----------------------------------------------------------------
    case("good", s(), FULL)
    case("partial", with_answers_from(solution, blank, {ANSWERS[2], LAST}),
         FULL - POINTS_OF[ANSWERS[2]] - last_points)
    case("blank", b(), 0)
    case("infinite-loop", answer_with(s(), FIRST, "while True:\n    pass", before=True), FULL - first_points)
    case("memory-bomb", answer_with(s(), FIRST, "hog = bytearray(8 * 1024**3)", before=True),
         FULL - first_points)
    case("sys-exit", answer_with(s(), FIRST, "import sys\nsys.exit(3)"), FULL)
    case("os-exit", answer_with(s(), ANSWERS[2], "import os\nos._exit(1)", before=True),
         sum(POINTS_OF[a] for a in ANSWERS[:2]), "kernel died")
    case("kernel-crash", answer_with(s(), ANSWERS[4], "import ctypes\nctypes.string_at(0)", before=True),
         sum(POINTS_OF[a] for a in ANSWERS[:4]), "kernel died")
    case("huge-output", answer_with(s(), FIRST, "print('x' * 20_000_000)"), FULL)
    edited = copy.deepcopy(without_first)
    find_cell(edited, TESTS_OF[FIRST]).source = "pass"
    case("edited-test", edited, FULL - first_points)
    deleted = copy.deepcopy(without_first)
    deleted.cells = [c for c in deleted.cells if grade_id(c) != TESTS_OF[FIRST]]
    case("deleted-test", deleted, FULL - first_points)
    retyped = s()
    q1 = find_cell(retyped, FIRST)
    q1.cell_type = "markdown"
    for key in ("outputs", "execution_count"):
        q1.pop(key, None)
    case("changed-cell-type", retyped, FULL)  # nbgrader turns an answer cell back into code
    duplicated = s()
    duplicated.cells.append(copy.deepcopy(find_cell(duplicated, TESTS_OF[FIRST])))
    case("duplicated-grade-id", duplicated, FULL)
    kernel = s()
    kernel.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia", "language": "julia"}
    case("other-kernel", kernel, FULL)
    case("invalid-json", b'{"cells": [', 0, "failed to run")
    case("empty-file", b"", 0, "failed to run")
    case("wrong-file-name", s(), FULL, name="Module1 (1).ipynb")
    case("other-module", other_module, 0)
    case("network", answer_with(s(), FIRST, (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'LEAK')\n"
        "except OSError as exc:\n    print('blocked:', exc)")), FULL)
    case("write-outside", answer_with(s(), FIRST, (
        f"for path in [{str(course / 'PWNED.txt')!r}, {str(course / 'gradebook.db')!r}, "
        "'../../../../escape.txt', '/usr/pwned.txt', '/escape.txt']:\n"
        "    try:\n        open(path, 'a').write('pwned')\n"
        "    except OSError as exc:\n        print('blocked:', exc)")), FULL)
    case("missing-notebook", None, 0, "missing notebook")

    # --- 1: no way out of the sandbox, nothing to reach in it ---------------------------------
    gradebook = course / "gradebook.db"
    case("escape", answer_with(b(), FIRST, SOCKETS + (
        "import sqlite3\n"
        f"for path in [{str(gradebook)!r}, '/gradebook.db', '../gradebook.db']:\n"
        "    try:\n"
        "        db = sqlite3.connect(f'file:{path}?mode=rw', uri=True)\n"
        "        db.execute('update grade set manual_score = max_score')\n"
        "        db.commit()\n"
        "        print('WROTE', path)\n"
        "    except Exception as exc:\n"
        "        print('blocked:', exc)\n"), before=True), 0)
    # --- 2: processes left behind, and signals to everyone -----------------------------------
    case("tamperer", answer_with(b(), FIRST, daemon(TAMPER), before=True), 0)
    case("kill-all", answer_with(s(), FIRST, "import os, signal\nos.kill(-1, signal.SIGKILL)"), FULL)
    case("fork-bomb", answer_with(s(), FIRST, (
        "import os, signal, time\nchildren = []\ntry:\n    while True:\n        pid = os.fork()\n"
        "        if pid == 0:\n            time.sleep(300)\n            os._exit(0)\n        children.append(pid)\n"
        "except OSError as exc:\n    print('refused after', len(children), exc)\n"
        "for pid in children:\n    os.kill(pid, signal.SIGKILL)\n    os.waitpid(pid, 0)")), FULL)
    # --- 3: a kernel that dies inside a test fails that test ---------------------------------
    case("exit-in-test", in_function(answer_with(s(), LAST, (  # dies only when a test calls it
        "import builtins\nbuiltins.IN_TEST = False\nget_ipython().events.register('pre_run_cell', "
        "lambda info: setattr(builtins, 'IN_TEST', 'assert' in info.raw_cell))"), before=True),
        LAST, "import builtins, os; builtins.IN_TEST and os._exit(0)"), FULL - from_last_points, "kernel died")
    case("skip-tests", answer_with(b(), FIRST, (
        "get_ipython().input_transformers_cleanup.append(lambda lines: [])"), before=True), 0,
         "incomplete tests")
    # --- 4: the unanswered run's name is no student's ----------------------------------------
    case("__blank__", answer_with(s(), FIRST, "# answered by the student called __blank__"), FULL)
    case("unanswered", answer_with(s(), FIRST, "# answered by the student called unanswered"), FULL)
    # --- 5: hidden tests do not leak through outputs -----------------------------------------
    case("history-leak", answer_with(s(), LAST, "print('\\n'.join(In))"), FULL)
    case("hook-leak", answer_with(s(), FIRST, (
        "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))"),
        before=True), FULL)
    case("exception-leak", in_function(answer_with(s(), FIRST, (
        "import builtins\n"
        "get_ipython().events.register('pre_run_cell', lambda info: setattr(builtins, 'CELL', info.raw_cell))"),
        before=True), FIRST, "raise ValueError(__import__('builtins').CELL)"), FULL - first_points)
    # --- 6: sabotage of classmates and of the batch -------------------------------------------
    case("signal-everyone", answer_with(s(), FIRST, (
        "import os, signal\nown = {int(t) for t in os.listdir('/proc/self/task')}\n"
        "for pid in range(1, 70000):\n    if pid not in own:\n"
        "        for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT):\n"
        "            try:\n                os.kill(pid, sig)\n            except OSError:\n"
        "                pass")), FULL)
    case("socket-closer", answer_with(s(), FIRST, SOCKETS), FULL)
    case("writer", answer_with(s(), FIRST, daemon(WRITER)), FULL)
    # --- 7: what a kernel can read --------------------------------------------------------------
    paths = {"solutions": str(course / "solutions" / MODULE / f"{MODULE}.ipynb"),
             "gradebook": str(gradebook), "classmate": str(course / "submitted" / "good" / MODULE / f"{MODULE}.ipynb"),
             "course-config": str(course / "nbgrader_config.py")}
    case("probe", answer_with(s(), FIRST, f"PATHS = {paths!r}\n" + PROBE), FULL)
    # --- 8: extra files, as nbgrader copies them ------------------------------------------------
    helper = re.search(r"^def .*?(?=^\S)", find_cell(solution, FIRST).source + "\n.", re.M | re.S).group(0)
    helper = helper.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    first_function = re.search(r"^def (\w+)", helper, re.M).group(1)
    imports = "import numpy as np\nimport pandas as pd\n"
    with_helper = s()
    find_cell(with_helper, FIRST).source = f"from helper import {first_function}"
    case("helper-file", with_helper, FULL, files={"helper.py": imports + helper,
                                                  "data/notes.txt": "kept", "link.txt": Path("/etc/hostname")})

    for student, (nb, name, _, _, files) in cases.items():
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        if isinstance(nb, bytes):
            (folder / name).write_bytes(nb)
        elif nb is not None:
            nbformat.write(nb, folder / name)
        for relative, content in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                (folder / relative).symlink_to(content)
            else:
                (folder / relative).write_text(content)
    os.environ["MCF_TEST_SECRET"] = SECRET
    try:
        outcomes = grade_class(course, MODULE, workers=2, cell_timeout=10, notebook_timeout=240,
                               memory_mb=1024, quiet=True)
    finally:
        del os.environ["MCF_TEST_SECRET"]
    return course, cases, {o.student: o for o in outcomes}


def executed(course: Path, student: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "autograded" / student / MODULE / f"{MODULE}.ipynb", as_version=4)


def printed(course: Path, student: str) -> str:
    """Everything a student's notebook printed (stream outputs), not its source."""
    return "".join(o.get("text", "") for c in executed(course, student).cells
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_every_case_gets_the_score_it_deserves(corpus):
    _, cases, outcomes = corpus
    got = {s: (outcomes[s].status, outcomes[s].score) for s in cases}
    expected = {s: (status, score) for s, (_, _, status, score, _) in cases.items()}
    assert got == expected


def test_each_problem_comes_with_a_reason(corpus):
    _, cases, outcomes = corpus
    reasons = {s: outcomes[s].reason for s in cases}
    assert "not a valid notebook" in reasons["invalid-json"]
    assert "empty" in reasons["empty-file"]
    assert "no module1.ipynb" in reasons["missing-notebook"]
    assert "wrong file name" in reasons["wrong-file-name"]
    for student in ("os-exit", "kernel-crash", "exit-in-test"):
        assert "kernel died" in reasons[student], student
    assert TESTS_OF[LAST] in reasons["exit-in-test"], "the reason names the test the kernel died in"
    assert "did not run to their end" in reasons["skip-tests"]
    assert "link.txt (a symbolic link)" in reasons["helper-file"]
    assert reasons["good"] == ""


def test_no_student_reaches_the_network_or_writes_outside_its_folder(corpus, listener):
    course, _, _ = corpus
    _, received = listener
    assert received == [], "student code reached a server on this machine"
    assert not (course / "PWNED.txt").exists()
    assert not (course.parent / "escape.txt").exists() and not Path("/escape.txt").exists()
    assert not Path("/usr/pwned.txt").exists()
    assert printed(course, "write-outside").count("blocked:") == 5, \
        "every write outside the student's folder fails"


def test_nothing_reaches_the_gradebook_or_another_process(corpus):
    course, _, outcomes = corpus
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("escape", "tamperer", "skip-tests"):
            notebook = gb.find_submission_notebook(MODULE, MODULE, student)
            assert all(g.manual_score is None for g in notebook.grades), student
    escape = printed(course, "escape")
    assert "WROTE" not in escape and escape.count("blocked:") == 3
    reached = re.search(r"REACHED ?(.*)", escape).group(1).split()
    assert all(path.startswith("/run/kernel/") for path in reached), \
        f"a socket other than the kernel's own is reachable: {reached}"
    assert "refused after" in printed(course, "fork-bomb"), "the process limit holds"


def test_no_process_of_a_student_outlives_the_batch(corpus):
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert DAEMON.encode() not in status.read_bytes(), f"a left-behind process survived: {status}"
        except OSError:
            continue
    if os.geteuid() == 0:
        assert not [p for slot in range(4) for p in processes_of(UID_BASE + slot)]


def test_a_kernel_reads_nothing_it_should_not(corpus):
    course, _, _ = corpus
    assert SECRET not in json.dumps(executed(course, "probe"))
    found = json.loads(re.search(r"PROBE (\{.*\})", printed(course, "probe")).group(1))
    for name in ("shadow", "solutions", "gradebook", "classmate", "course-config"):
        assert found[name].startswith("blocked:"), (name, found[name])
    assert found["env"] == "{}"
    assert found["root"] in ("['.pyenv']", "[]") or "blocked" in found["root"], found["root"]
    assert "1" in found["pids"] and len(found["pids"]) <= 3, \
        f"the kernel sees only its sandbox's processes: {found['pids']}"
    assert all(found[k].startswith("blocked:") for k in found if k.startswith("mem ")), \
        "no process's memory is readable"
    if os.geteuid() == 0:
        assert found["uid"] == UID_BASE or found["uid"] == UID_BASE + 1, "an unprivileged uid of its own"
    for pid in found["pids"]:
        assert "--db" not in found.get(f"cmdline {pid}", "")


def test_extra_files_are_copied_as_nbgrader_copies_them(corpus):
    course, _, outcomes = corpus
    assert outcomes["helper-file"].score == FULL
    folder = course / "autograded" / "helper-file" / MODULE
    assert (folder / "helper.py").is_file() and (folder / "data" / "notes.txt").is_file()
    assert not (folder / "link.txt").exists()


def test_feedback_and_report_show_no_hidden_test(corpus):
    course, cases, _ = corpus
    snippets = hidden_snippets(SOURCE.cells)
    assert len(snippets) > 10
    report = (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")
    documents = {"report": report}
    for student in cases:
        feedback = course / "feedback" / student / MODULE / f"{MODULE}.html"
        documents[student] = feedback.read_text(encoding="utf-8")
    import html as html_module

    for name, text in documents.items():
        flat = " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", text)).split())
        leaked = [s for s in snippets if s in flat]
        assert not leaked, f"{name} shows hidden test text: {leaked[:2]}"
    blank_feedback = documents["empty-file"]
    assert "answered by the student called" not in blank_feedback, "the unanswered run is nobody's"


def test_gradebook_matches_nbgraders_own_sequential_autograde(corpus, tmp_path):
    """Well-behaved submissions: nbgrader autograde in a copy gives the very same scores."""
    course, cases, outcomes = corpus
    copy_root = tmp_path / "sequential"
    copy_root.mkdir()
    for name in ("solutions", "exercises"):
        shutil.copytree(course / name, copy_root / name)
    shutil.copy(course / "nbgrader_config.py", copy_root)
    assert nbgrader(copy_root, "generate_assignment", MODULE, "--force").returncode == 0
    # (nbgrader itself stops with an error on the duplicated-grade-id and other-module cases)
    students = ["good", "partial", "blank", "edited-test", "deleted-test", "other-kernel",
                "sys-exit", "changed-cell-type", "helper-file", "__blank__"]
    for student in students:
        shutil.copytree(course / "submitted" / student, copy_root / "submitted" / student, symlinks=True)
    result = nbgrader(copy_root, "autograde", MODULE)
    assert result.returncode == 0, result.stderr[-2000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{copy_root / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook(MODULE, MODULE, student)
            assert {g.name: g.score for g in nb.grades} == outcomes[student].scores, student


def test_gradebook_is_consistent_and_outputs_are_written(corpus):
    course, cases, outcomes = corpus
    from nbgrader.api import Gradebook

    graded_cells = sum(1 for c in SOURCE.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in cases:
            nb = gb.find_submission_notebook(MODULE, MODULE, student)
            assert len(nb.grades) == graded_cells, student
            assert (course / "feedback" / student / MODULE / f"{MODULE}.html").is_file(), student
    report = (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")
    assert "Score distribution" in report and "Most common failing tests" in report
    rows = (course / "reports" / MODULE / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(cases) + 1 and rows[0].startswith("student,status,score")


def test_huge_output_is_trimmed(corpus):
    course, _, _ = corpus
    size = (course / "autograded" / "huge-output" / MODULE / f"{MODULE}.ipynb").stat().st_size
    assert size < 5_000_000


def test_rerun_keeps_manual_grades_and_changes_nothing(corpus):
    course, cases, outcomes = corpus
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
    for student in ("good", "partial", "blank", "os-exit", "invalid-json", "escape"):
        assert forced[student].scores.keys() == outcomes[student].scores.keys()
        auto = {g: v for g, v in forced[student].scores.items() if g != "written_translation"}
        assert auto == {g: v for g, v in outcomes[student].scores.items() if g != "written_translation"}
    with Gradebook(db) as gb:
        assert gb.find_grade("written_translation", MODULE, MODULE, "good").manual_score == 4


def test_notebook_wall_clock_limit(tmp_path):
    course = new_course(tmp_path / "slow")
    slow = answer_with(copy.deepcopy(SOURCE), FIRST, "import time\ntime.sleep(60)", before=True)
    folder = course / "submitted" / "sleeper" / MODULE
    folder.mkdir(parents=True)
    nbformat.write(slow, folder / f"{MODULE}.ipynb")
    (outcome,) = grade_class(course, MODULE, workers=1, cell_timeout=120, notebook_timeout=20,
                             quiet=True)
    assert (outcome.status, outcome.score) == ("timed out", 0)
    assert "20 s" in outcome.reason


def test_lms_downloads_newest_file_per_student_and_every_file_accounted_for(tmp_path):
    course = new_course(tmp_path / "lms")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    solution, blank = ROOT / "solutions" / MODULE / f"{MODULE}.ipynb", course / "exercises" / MODULE / f"{MODULE}.ipynb"
    shutil.copy(blank, downloads / "ada_module1.ipynb")
    shutil.copy(solution, downloads / "ada_module1 (1).ipynb")  # the later resubmission
    os.utime(downloads / "ada_module1.ipynb", (1_700_000_000, 1_700_000_000))
    os.utime(downloads / "ada_module1 (1).ipynb", (1_700_000_900, 1_700_000_900))
    shutil.copy(blank, downloads / "bob-late.ipynb")
    shutil.copy(solution, downloads / "._bob_module1.ipynb")  # a macOS resource fork
    shutil.copy(solution, downloads / ".._module1.ipynb")     # a path, not an id
    (downloads / "README.txt").write_text("not a submission")
    outcomes = {o.student: o for o in grade_class(course, MODULE, lms=downloads, workers=2, quiet=True)}
    assert {s: o.score for s, o in outcomes.items()} == {"ada": FULL, "bob": 0}
    assert (downloads / "ada_module1.ipynb").is_file(), "the downloads are left in place"
    assert sorted(os.listdir(course / "submitted")) == ["ada", "bob"]
    assert not (course / "module1" / f"{MODULE}.ipynb").exists(), "a path-like id writes nowhere"
    report = (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")
    for name, why in [("ada_module1.ipynb", "is a newer file for ada"),
                      ("ada_module1 (1).ipynb", "the newest of 2 files"),
                      ("._bob_module1.ipynb", "resource-fork"), (".._module1.ipynb", "not a valid student id"),
                      ("README.txt", "not a notebook")]:
        assert name in report and why in report, name


def test_exit_status_says_when_something_needs_attention(tmp_path, capsys, monkeypatch):
    course = new_course(tmp_path / "status")
    private = tmp_path / "private-tmp"  # mode 700 under pytest's own 700 folder
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # the run still finds a usable place
    for student, nb in {"ok": SOURCE, "dies": answer_with(copy.deepcopy(SOURCE), LAST,
                                                          "import os\nos._exit(0)", before=True)}.items():
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{MODULE}.ipynb")
    assert main([MODULE, "--course", str(course), "--workers", "1"]) == 1, "a kernel died: attention"
    shutil.rmtree(course / "submitted" / "dies")
    assert main([MODULE, "--course", str(course), "--workers", "1", "--force"]) == 0
    assert "kernel died" in capsys.readouterr().out


def test_sigterm_ends_the_batch_cleanly(tmp_path):
    course = new_course(tmp_path / "term")
    for n in range(6):
        folder = course / "submitted" / f"s{n}" / MODULE
        folder.mkdir(parents=True)
        nbformat.write(SOURCE, folder / f"{MODULE}.ipynb")
    scratch = Path(tempfile.mkdtemp(dir="/tmp"))  # a TMPDIR the sandboxes can pass through
    scratch.chmod(0o711)
    env = dict(os.environ, TMPDIR=str(scratch), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    process = subprocess.Popen([sys.executable, "-m", "mcf_course.grading", MODULE, "--course", str(course),
                                "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(line) for line in process.stderr], daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any(re.match(r"\[\s*1/", line) for line in lines) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    reader.join(timeout=10)
    rest = "".join(lines)
    assert process.returncode == 1, rest
    assert "stopped by SIGTERM" in rest
    assert os.listdir(scratch) == [], "the scratch folder (solutions, gradebook copy) is removed"
    scratch.rmdir()
    rows = (course / "reports" / MODULE / "grades.csv").read_text().splitlines()
    assert len(rows) == 7 and any(",not graded," in r for r in rows)
    time.sleep(1)
    if os.geteuid() == 0:
        assert not [p for slot in range(2) for p in processes_of(UID_BASE + slot)], "no sandbox survives"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox exists only on Linux")
def test_the_sandbox_tool_is_installed():
    """On Linux the suite needs bubblewrap: `python3 course.py test` installs it as root."""
    assert shutil.which("bwrap"), "bubblewrap is missing: apt-get install bubblewrap"


def test_without_bubblewrap_mcf_grade_refuses_with_a_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    assert main([MODULE, "--course", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "bubblewrap" in message and "apt-get install bubblewrap" in message


def test_an_environment_under_tmp_is_not_hidden_by_the_private_tmp():
    """A clone (and its .venv) under /tmp: the writable temporary folder must not be bound over
    it, or no kernel starts ("bwrap: execvp .../.venv/bin/python: No such file or directory")."""
    from mcf_course.grading.sandbox import Layout, bwrap_command

    def bound_at(command, target):
        return [command[i + 1] for i in range(len(command) - 2)
                if command[i] == "--bind" and command[i + 2] == target]

    def env(command):
        return {command[i + 1]: command[i + 2] for i in range(len(command) - 2) if command[i] == "--setenv"}

    layout = Layout(Path("/srv/box"))
    usual = bwrap_command("bwrap", layout, {Path("/opt/venv"): Path("/opt/venv")}, data=False)
    assert bound_at(usual, "/tmp") == [str(layout.tmp)] and env(usual)["TMPDIR"] == "/tmp"
    under_tmp = bwrap_command("bwrap", layout, {Path("/tmp/clone/.venv"): Path("/tmp/clone/.venv")}, data=False)
    assert bound_at(under_tmp, "/tmp") == [], "a writable /tmp would cover the environment"
    assert bound_at(under_tmp, "/var/tmp") == [str(layout.tmp)]
    assert env(under_tmp)["TMPDIR"] == "/var/tmp" and env(under_tmp)["MPLCONFIGDIR"].startswith("/var/tmp/")
