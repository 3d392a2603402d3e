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
import csv
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
from mcf_course.grading.claims import UID_BASE, UID_COUNT, processes_of
from mcf_course.grading.command import main
from mcf_course.grading.feedback import hidden_snippets

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
BREAK_FEEDBACK = "MCF-BREAK-FEEDBACK-5e1d"  # the corpus course's feedback step fails on it
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[H\r"   # sets the title, clears the screen, moves the cursor
MEMORY_MB, DISK_MB = 1024, 128           # the corpus run's limits per student
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
FILLER = r"""
import os
for label, place in (('tmp', os.environ['TMPDIR']), ('shm', '/dev/shm'), ('home', '.')):
    n = 0
    try:
        while True:  # 32 MB files: one file may not pass 64 MB
            with open(os.path.join(place, f'fill{n}'), 'wb') as f:
                for _ in range(32):
                    f.write(b'x' * 2**20)
            n += 1
    except OSError as exc:
        print('FULL', label, exc.errno, 'after', n)
    for name in os.listdir('.'):
        if name.startswith('fill'):
            os.remove(name)
"""
CHILDREN = r"""
import subprocess, sys, time
hold = "import time; x = b'1' * (400 * 2**20); print('held', flush=True); time.sleep(60)"
children = [subprocess.Popen([sys.executable, '-c', hold], stdout=subprocess.DEVNULL) for _ in range(8)]
time.sleep(6)
print('ALIVE', sum(child.poll() is None for child in children))
for child in children:
    child.kill()
"""
JSON_FLOOD = r"""
from IPython.display import display
for n in range(40):  # 200 MB of JSON, in displays a kernel within its limits can send
    display({'application/json': {'n': n, 'payload': 'x' * 5_000_000}}, raw=True)
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


def new_course(folder: Path, config_extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "solutions", folder / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    with (folder / "nbgrader_config.py").open("a") as config:
        config.write(config_extra)
    assert nbgrader(folder, "generate_assignment", MODULE, "--force").returncode == 0
    return folder


# A feedback step that fails for one notebook: the course's own preprocessor, as an
# instructor might add one, raising on a marker the student wrote.
FAILING_FEEDBACK = f"""

from nbconvert.preprocessors import Preprocessor as _Preprocessor
from traitlets import Bool as _Bool


class FailsOnMarker(_Preprocessor):
    enabled = _Bool(True)

    def preprocess(self, nb, resources):
        if any({BREAK_FEEDBACK!r} in cell.source for cell in nb.cells):
            raise RuntimeError("the course's feedback step failed")
        return nb, resources


c.GenerateFeedback.preprocessors = [*c.GenerateFeedback.preprocessors, FailsOnMarker]
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, listener):
    """A course with one submission per case; returns (course, cases, outcomes)."""
    port, _ = listener
    course = new_course(tmp_path_factory.mktemp("class"), FAILING_FEEDBACK)
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
         sum(POINTS_OF[a] for a in ANSWERS[:4]), "needs review")  # ctypes is flagged; the kernel died too
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
    last_function = re.search(r"^def (\w+)", find_cell(solution, LAST).source, re.M).group(1)
    case("exit-in-test", in_function(s(), LAST, (  # its answer cell calls it once; it dies when a test calls it
        f"import os; {last_function}.calls = getattr({last_function}, 'calls', 0) + 1; "
        f"{last_function}.calls > 1 and os._exit(0)")), FULL - from_last_points, "kernel died")
    case("skip-tests", answer_with(b(), FIRST, (  # tests never run in the kernel: nothing to skip
        "get_ipython().input_transformers_cleanup.append(lambda lines: [])"), before=True), 0, "needs review")
    # --- 4: the unanswered run's name is no student's ----------------------------------------
    case("__blank__", answer_with(s(), FIRST, "# answered by the student called __blank__"), FULL)
    case("unanswered", answer_with(s(), FIRST, "# answered by the student called unanswered"), FULL)
    # --- 5: hidden tests do not leak through outputs -----------------------------------------
    case("history-leak", answer_with(s(), LAST, "print('\\n'.join(In))"), FULL)
    case("hook-leak", answer_with(s(), FIRST, (
        "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))"),
        before=True), FULL, "needs review")
    case("exception-leak", in_function(answer_with(s(), FIRST, (
        "import builtins\n"
        "get_ipython().events.register('pre_run_cell', lambda info: setattr(builtins, 'CELL', info.raw_cell))"),
        before=True), FIRST, "raise ValueError(__import__('builtins').CELL)"), FULL - first_points, "needs review")
    # --- 6: sabotage of classmates and of the batch -------------------------------------------
    case("signal-everyone", answer_with(s(), FIRST, (
        "import os, signal\nown = {int(t) for t in os.listdir('/proc/self/task')}\n"
        "for pid in range(1, 70000):\n    if pid not in own:\n"
        "        for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT):\n"
        "            try:\n                os.kill(pid, sig)\n            except OSError:\n"
        "                pass")), FULL, "needs review")  # it reads /proc
    case("socket-closer", answer_with(s(), FIRST, SOCKETS), FULL)
    case("writer", answer_with(s(), FIRST, daemon(WRITER)), FULL)
    # --- 7: what a kernel can read --------------------------------------------------------------
    paths = {"solutions": str(course / "solutions" / MODULE / f"{MODULE}.ipynb"),
             "gradebook": str(gradebook), "classmate": str(course / "submitted" / "good" / MODULE / f"{MODULE}.ipynb"),
             "course-config": str(course / "nbgrader_config.py")}
    case("probe", answer_with(s(), FIRST, f"PATHS = {paths!r}\n" + PROBE), FULL, "needs review")  # /proc
    # --- 8: extra files, as nbgrader copies them ------------------------------------------------
    helper = re.search(r"^def .*?(?=^\S)", find_cell(solution, FIRST).source + "\n.", re.M | re.S).group(0)
    helper = helper.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    first_function = re.search(r"^def (\w+)", helper, re.M).group(1)
    imports = "import numpy as np\nimport pandas as pd\n"
    with_helper = s()
    find_cell(with_helper, FIRST).source = f"from helper import {first_function}"
    case("helper-file", with_helper, FULL, files={"helper.py": imports + helper,
                                                  "data/notes.txt": "kept", "link.txt": Path("/etc/hostname")})
    case("writes-file", answer_with(s(), FIRST, "open('my-notes.txt', 'w').write('written by the code')"), FULL)
    # --- issue 20: limits per student, not per process; one student never stops the batch ------
    case("tmp-filler", answer_with(s(), FIRST, FILLER), FULL)
    case("memory-children", answer_with(s(), FIRST, CHILDREN), FULL)
    case("json-flood", answer_with(s(), FIRST, JSON_FLOOD), FULL)
    case("feedback-fails", answer_with(s(), FIRST, f"# {BREAK_FEEDBACK}"), FULL, "feedback failed")
    case("escape-names", s(), FULL, files={f"{ESCAPES}evil.txt": Path("/etc/hostname")})
    (course / "submitted" / f"{ESCAPES}mallory" / MODULE).mkdir(parents=True)  # not a valid id

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
                               memory_mb=MEMORY_MB, disk_mb=DISK_MB, quiet=True)
    finally:
        del os.environ["MCF_TEST_SECRET"]
    return course, cases, {o.student: o for o in outcomes}


def sandbox_processes() -> list[int]:
    """Live processes of the first sandbox uids (those a test's runs hold)."""
    return [p for uid in range(UID_BASE, UID_BASE + 8) for p in processes_of(uid)]


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
    assert "input_transformers_cleanup" in reasons["skip-tests"], "the review says what was seen"
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
        assert not sandbox_processes()


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
        assert UID_BASE <= found["uid"] < UID_BASE + UID_COUNT, "an unprivileged uid of its own"
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
        if student != "feedback-fails":
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

    def figures(notebook: Path) -> int:
        nb = nbformat.read(notebook, as_version=4)
        return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))

    ours = figures(course / "autograded" / "good" / MODULE / f"{MODULE}.ipynb")
    assert ours > 0 and ours == figures(copy_root / "autograded" / "good" / MODULE / f"{MODULE}.ipynb"), \
        "figures are part of the autograded notebook, as with nbgrader"
    # Feedback is the notebook as handed in (issue 19): its figures are the student's own, not
    # those drawn while grading (test_grading_engine checks that a figure handed in is shown).
    handed_in = figures(course / "submitted" / "good" / MODULE / f"{MODULE}.ipynb")
    shown = (course / "feedback" / "good" / MODULE / f"{MODULE}.html").read_text().count("data:image/png")
    assert shown == handed_in, "the feedback shows the figures handed in, and none drawn while grading"


def test_gradebook_is_consistent_and_outputs_are_written(corpus):
    course, cases, outcomes = corpus
    from nbgrader.api import Gradebook

    graded_cells = sum(1 for c in SOURCE.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in cases:
            nb = gb.find_submission_notebook(MODULE, MODULE, student)
            assert len(nb.grades) == graded_cells, student
            assert (course / "feedback" / student / MODULE / f"{MODULE}.html").is_file() \
                == (student != "feedback-fails"), student
    report = (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")
    assert "Score distribution" in report and "Most common failing tests" in report
    rows = (course / "reports" / MODULE / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(cases) + 1 and rows[0].startswith("student,status,score")


def test_limits_hold_for_the_whole_sandbox(corpus):
    course, _, outcomes = corpus
    filled = printed(course, "tmp-filler")
    for place in ("tmp", "shm", "home"):  # ENOSPC: each place is full at its size
        files = int(re.search(rf"FULL {place} 28 after (\d+)", filled).group(1))
        assert files * 32 <= DISK_MB, (place, files)
    alive = int(re.search(r"ALIVE (\d+)", printed(course, "memory-children")).group(1))
    assert alive * 400 < MEMORY_MB, f"{alive} children of 400 MB each outlived a {MEMORY_MB} MB limit"
    assert "memory limit" in outcomes["memory-children"].reason
    flood = course / "autograded" / "json-flood" / MODULE / f"{MODULE}.ipynb"
    assert flood.stat().st_size < 5_000_000
    assert "output cut by the grader" in flood.read_text()


def test_files_the_code_writes_land_in_autograded(corpus):
    course, _, _ = corpus
    folder = course / "autograded" / "writes-file" / MODULE
    assert (folder / "my-notes.txt").read_text() == "written by the code"
    assert not list((course / "autograded" / "tmp-filler" / MODULE).glob("fill*"))


def test_a_failing_feedback_step_costs_only_that_feedback(corpus):
    course, _, outcomes = corpus
    outcome = outcomes["feedback-fails"]
    assert (outcome.status, outcome.score) == ("feedback failed", FULL) and outcome.needs_attention
    assert "no feedback" in outcome.reason and "feedback step failed" in outcome.reason
    assert not (course / "feedback" / "feedback-fails").exists()


def test_no_control_character_reaches_the_csv_or_the_report(corpus):
    course, _, outcomes = corpus
    assert outcomes["escape-names"].status == "graded"
    for name in ("grades.csv", "report.html"):
        text = (course / "reports" / MODULE / name).read_text(encoding="utf-8")
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text.replace("\r\n", ""), name
        assert "\\x1b]0;owned\\x07\\x1b[2J\\x1b[H\\revil.txt" in text, "the file is named, escaped"
    assert "\\rmallory/</td><td>not graded: not a valid student id" in \
        (course / "reports" / MODULE / "report.html").read_text(encoding="utf-8")


def test_huge_output_is_trimmed(corpus):
    course, _, _ = corpus
    size = (course / "autograded" / "huge-output" / MODULE / f"{MODULE}.ipynb").stat().st_size
    assert size < 5_000_000


def test_a_plain_rerun_grades_again_only_who_did_not_end_cleanly(corpus):
    """Students graded cleanly are skipped; the others (a dead kernel, a file that is not a
    notebook, failed feedback) are graded again, to the same result; manual grades stay."""
    course, cases, outcomes = corpus
    from nbgrader.api import Gradebook

    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade = gb.find_grade("written_translation", MODULE, MODULE, "os-exit")
        grade.manual_score = 4
        gb.db.commit()
    again = {o.student: o for o in grade_class(course, MODULE, workers=2, cell_timeout=10, notebook_timeout=240,
                                               memory_mb=MEMORY_MB, disk_mb=DISK_MB, quiet=True)}
    assert again.keys() == outcomes.keys()

    def auto(scores):
        return {g: v for g, v in scores.items() if g != "written_translation"}

    for student, outcome in again.items():
        before = outcomes[student]
        assert (outcome.status == "skipped") == (before.status == "graded"), student
        assert outcome.status in ("skipped", before.status), student
        assert auto(outcome.scores) == auto(before.scores), student
    assert again["os-exit"].status == "kernel died"
    with Gradebook(db) as gb:
        assert gb.find_grade("written_translation", MODULE, MODULE, "os-exit").manual_score == 4


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


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_ends_the_batch_cleanly(tmp_path, stop):
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
    process.send_signal(stop)
    process.wait(timeout=120)
    reader.join(timeout=10)
    rest = "".join(lines)
    assert process.returncode == 1, rest
    assert f"stopped by {stop.name}" in rest
    assert os.listdir(scratch) == [], "the scratch folder (solutions, gradebook copy) is removed"
    scratch.rmdir()
    rows = (course / "reports" / MODULE / "grades.csv").read_text().splitlines()
    assert len(rows) == 7 and any(",not graded," in r for r in rows)
    time.sleep(1)
    if os.geteuid() == 0:
        assert not sandbox_processes(), "no sandbox survives"


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

    def tmpfs_at(command, target):
        return [command[i - 1] for i in range(2, len(command) - 1)
                if command[i] == "--tmpfs" and command[i + 1] == target and command[i - 2] == "--size"]

    def env(command):
        return {command[i + 1]: command[i + 2] for i in range(len(command) - 2) if command[i] == "--setenv"}

    layout = Layout(Path("/srv/box"))
    usual = bwrap_command("bwrap", layout, {Path("/opt/venv"): Path("/opt/venv")}, data=False, disk_mb=8)
    assert tmpfs_at(usual, "/tmp") == [str(8 * 2**20)] and env(usual)["TMPDIR"] == "/tmp", \
        "a private, size-capped /tmp"
    assert bound_at(usual, "/tmp") == []
    under_tmp = bwrap_command("bwrap", layout, {Path("/tmp/clone/.venv"): Path("/tmp/clone/.venv")}, data=False)
    assert tmpfs_at(under_tmp, "/tmp") == [], "a writable /tmp would cover the environment"
    assert tmpfs_at(under_tmp, "/var/tmp") == [str(256 * 2**20)]
    assert env(under_tmp)["TMPDIR"] == "/var/tmp" and env(under_tmp)["MPLCONFIGDIR"].startswith("/var/tmp/")


# --- issue 20: nothing carries over, runs that cannot collide, a rerun after a killed run ------

ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
IPC_SETUP = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
rt = ctypes.CDLL('librt.so.1', use_errno=True)
RINGS = ((-3, 'session key ring'), (-4, 'user key ring'), (-5, 'user session key ring'))
PATHS = (os.environ['TMPDIR'] + '/mcf-left-behind', '/dev/shm/mcf-left-behind', 'mcf-left-behind')
"""
IPC_LEAVE = IPC_SETUP + f"""
left = {{}}
for ring, name in RINGS:
    left[name] = libc.syscall({ADD_KEY}, b'user', b'mcf-left-behind', b'secret', 6, ring) > 0
queue = rt.mq_open(b'/mcf-left-behind', os.O_CREAT | os.O_WRONLY, 0o600, None)
left['message queue'] = queue >= 0 and rt.mq_send(queue, b'secret', 6, 0) == 0
left['System V memory'] = libc.shmget(0x4d4346, 4096, 0o1000 | 0o600) >= 0
for path in PATHS:
    open(path, 'w').write('secret')
    left[path] = True
print('LEFT', sorted(k for k, v in left.items() if v))
"""
IPC_FIND = IPC_SETUP + f"""
found = {{}}
for ring, name in RINGS:
    found[name] = libc.syscall({KEYCTL}, 10, ring, b'user', b'mcf-left-behind', 0) > 0
found['message queue'] = rt.mq_open(b'/mcf-left-behind', os.O_RDONLY, 0, None) >= 0
found['System V memory'] = libc.shmget(0x4d4346, 0, 0) >= 0
for path in PATHS:
    found[path] = os.path.exists(path)
print('CARRIED', sorted(k for k, v in found.items() if v))
"""


def test_nothing_carries_over_between_students_in_one_sandbox(tmp_path, capsys):
    """One worker, so one sandbox: the first student leaves IPC objects, key ring keys and
    files behind; the next finds none. The run's terminal output stays free of escapes."""
    course = new_course(tmp_path / "ipc")
    submissions = {"ipc-1-leaves": answer_with(copy.deepcopy(SOURCE), FIRST, IPC_LEAVE),
                   "ipc-2-looks": answer_with(copy.deepcopy(SOURCE), FIRST, IPC_FIND)}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{MODULE}.ipynb")
    (course / "submitted" / "ipc-2-looks" / MODULE / f"{ESCAPES}.txt").symlink_to("/etc/hostname")
    (course / "submitted" / f"{ESCAPES}x" / MODULE).mkdir(parents=True)
    # exit 1: both probes use ctypes, so both are flagged for review (issue 19), and graded
    assert main([MODULE, "--course", str(course), "--workers", "1"]) == 1
    terminal = capsys.readouterr()
    with open(course / "reports" / MODULE / "grades.csv", newline="") as handle:
        statuses = {row["student"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses["ipc-1-leaves"] == statuses["ipc-2-looks"] == "needs review", statuses
    left = re.search(r"LEFT (\[.*\])", printed(course, "ipc-1-leaves")).group(1)
    assert len(eval(left)) == 8, f"the first student could not leave everything behind: {left}"
    assert re.search(r"CARRIED (\[.*\])", printed(course, "ipc-2-looks")).group(1) == "[]"
    assert "\x1b" not in terminal.out + terminal.err and "\x07" not in terminal.out + terminal.err
    assert "\\x1b]0;owned" in terminal.out and "\\x1b]0;owned" in terminal.err


def class_of_three(course: Path) -> dict[str, float]:
    """Submit a complete, a partial and an unanswered notebook; return the scores they earn."""
    blank = nbformat.read(course / "exercises" / MODULE / f"{MODULE}.ipynb", as_version=4)
    partial = with_answers_from(SOURCE, blank, {LAST})
    for student, nb in {"ada": SOURCE, "bob": partial, "cy": blank}.items():
        folder = course / "submitted" / student / MODULE
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{MODULE}.ipynb")
    return {"ada": FULL, "bob": FULL - POINTS_OF[LAST], "cy": 0}


def gradebook_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(MODULE)}


def start_run(course: Path, scratch: Path, *args: str):
    """mcf-grade in a process of its own; returns it and the lines of its standard error."""
    env = dict(os.environ, TMPDIR=str(scratch), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    process = subprocess.Popen([sys.executable, "-m", "mcf_course.grading", MODULE, "--course", str(course),
                                *args], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in process.stderr], daemon=True).start()
    return process, lines


def wait_for(lines: list[str], pattern: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not any(re.search(pattern, line) for line in lines):
        assert time.monotonic() < deadline, f"no {pattern!r} in: {''.join(lines)[-2000:]}"
        time.sleep(0.1)


def scratch_base(tmp_path: Path) -> Path:
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # a TMPDIR the sandboxes can pass through
    base.chmod(0o711)
    return base


def exposed(base: Path) -> list[Path]:
    """Files below ``base`` that another (unprivileged) account could read."""
    found = []
    for folder, _dirs, files in os.walk(base):
        try:  # the run goes on meanwhile: what it removed is not exposed
            reachable = all(os.stat(p).st_mode & 0o001 for p in [Path(folder), *Path(folder).parents]
                            if p.is_relative_to(base))
            found += [Path(folder, name) for name in files
                      if reachable and os.lstat(Path(folder, name)).st_mode & 0o004]
        except FileNotFoundError:
            continue
    return found


def test_two_runs_on_one_machine_never_collide(tmp_path, capsys):
    """While one run grades a course: its scratch is the grader's alone, a second run on the
    same course refuses, and a run on another course grades correctly beside it."""
    one, two = new_course(tmp_path / "one"), new_course(tmp_path / "two")
    expected = class_of_three(one)
    class_of_three(two)
    base = scratch_base(tmp_path)
    first, lines = start_run(one, base, "--workers", "1")
    wait_for(lines, r"\[\s*1/3\]")
    scratch = next(base.glob("mcf-grade-*"))
    assert (scratch / "private" / "template").is_dir() and exposed(base) == [], \
        "nothing in the scratch folder (the solutions, the gradebook copy) is readable by others"
    assert stat_mode(scratch / "private") == 0o700 and stat_mode(scratch / "private" / "template") == 0o700
    assert main([MODULE, "--course", str(one), "--workers", "1"]) == 2
    assert "another mcf-grade run is grading this course" in capsys.readouterr().err
    beside = {o.student: (o.status, o.score) for o in grade_class(two, MODULE, workers=1, quiet=True)}
    assert first.wait(timeout=300) == 0, "".join(lines)[-2000:]
    assert beside == {s: ("graded", score) for s, score in expected.items()}
    assert gradebook_scores(one) == expected and gradebook_scores(two) == expected
    assert list(base.iterdir()) == []
    base.rmdir()


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def test_a_plain_rerun_after_a_killed_run_regrades_what_did_not_end_cleanly(tmp_path, monkeypatch):
    course = new_course(tmp_path / "killed")
    expected = class_of_three(course)
    base = scratch_base(tmp_path)
    run, lines = start_run(course, base, "--workers", "2")
    wait_for(lines, r"\[\s*1/3\]")
    run.kill()  # SIGKILL: no clean-up of its own
    run.wait()
    time.sleep(2)
    assert list(base.glob("mcf-grade-*")), "the killed run left its scratch folder"
    if os.geteuid() == 0:
        assert not sandbox_processes(), "the workers and sandboxes died with their run"
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    outcomes = {o.student: o for o in grade_class(course, MODULE, workers=2, quiet=True)}
    assert {s: o.score for s, o in outcomes.items()} == expected
    assert {o.status for o in outcomes.values()} <= {"graded", "skipped"}
    assert gradebook_scores(course) == expected
    assert list(base.iterdir()) == [], "the stale scratch folder is removed at the next start"
    forced = {o.student: (o.status, o.score) for o in grade_class(course, MODULE, workers=2, force=True,
                                                                  sandbox_per_student=True, quiet=True)}
    assert forced == {s: ("graded", score) for s, score in expected.items()}, \
        "--force grades everyone again (here with a new sandbox for each student)"
    base.rmdir()
