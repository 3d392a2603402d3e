"""Shared fixtures: the repository layout and a real nbgrader course in a temporary folder."""

from __future__ import annotations

import copy
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")  # the tests draw figures with no display
ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.name for p in (ROOT / "solutions").glob("module*") if p.is_dir())  # graded modules; not the warm-up


@pytest.fixture(scope="session")
def course_dataset():
    """``course_dataset(name)``: a copy of one of the course's datasets, read and validated once
    per test session."""
    from mcf_course import load_dataset

    loaded = {}

    def load(name: str):
        if name not in loaded:
            loaded[name] = load_dataset(name, str(ROOT / "datasets"))
        return loaded[name].copy()

    return load


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test drew (if it drew any), so that they do not pile up."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a real nbgrader command in ``course``, with this environment's bin/ on PATH
    (nbgrader shells out to alembic)."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(["nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, check=False)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def autograded_points(nb) -> dict[str, float]:
    """Points of each autograded test cell of a notebook, by grade_id."""
    return {grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells
            if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def find_cell(nb, gid: str):
    return next(c for c in nb.cells if grade_id(c) == gid)


@dataclass
class Course:
    """A temporary nbgrader course made from this repository's solutions/ and config."""

    root: Path
    submissions: dict[str, dict[str, nbformat.NotebookNode]] = field(default_factory=dict)

    def source(self, module: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "solutions" / module / f"{module}.ipynb", as_version=4)

    def released(self, module: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / "exercises" / module / f"{module}.ipynb", as_version=4)

    def submit(self, student: str, module: str, nb: nbformat.NotebookNode) -> None:
        folder = self.root / "submitted" / student / module
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{module}.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-28 10:00:00.000000 UTC")

    def db_url(self, module: str) -> str:
        """The module's own gradebook: a copy of the one ``generate_assignment`` filled, so that
        modules can be autograded side by side (SQLite takes one writer at a time)."""
        path = self.root / f"gradebook-{module}.db"
        if not path.exists():
            shutil.copy(self.root / "gradebook.db", path)
        return f"sqlite:///{path}"

    def nbgrader(self, *args: str, module: str | None = None) -> subprocess.CompletedProcess:
        """An nbgrader command in this course; with ``module``, on that module's gradebook."""
        return nbgrader(self.root, *args, *([f"--CourseDirectory.db_url={self.db_url(module)}"] if module else []))

    def autograde(self, module: str) -> subprocess.CompletedProcess:
        return self.nbgrader("autograde", module, "--force", module=module)

    def scores(self, module: str, student: str) -> dict[str, float]:
        """Autograded score of every graded cell of one submission, by grade id."""
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url(module)) as gb:
            submission = gb.find_submission_notebook(module, module, student)
            return {g.name: g.score for g in submission.grades}


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Course:
    """Generate every module's release into a fresh course folder, as an instructor would."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for module in MODULES:
        result = nbgrader(root, "generate_assignment", module, "--force")
        assert result.returncode == 0, result.stderr
    return Course(root)


def with_answers_from(target, donor, grade_ids):
    """A copy of ``target`` whose cells with the given grade ids come from ``donor``."""
    nb = copy.deepcopy(target)
    for i, cell in enumerate(nb.cells):
        if grade_id(cell) in grade_ids:
            nb.cells[i] = copy.deepcopy(find_cell(donor, grade_id(cell)))
    return nb


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, with every host but this machine blocked (one for the
    session: Playwright's sync API runs one at a time)."""
    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install chromium (course.py test does it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The book, built once per test run with zero warnings allowed. While working on the
    tests only, MCF_BUILT_BOOK=<folder of a finished build's html> reuses that build."""
    if os.environ.get("MCF_BUILT_BOOK"):
        return Path(os.environ["MCF_BUILT_BOOK"])
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going",
                             "--path-output", str(out)], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL):", line)]
    assert result.returncode == 0 and not warnings, "book build failed:\n" + "\n".join(warnings or [log[-3000:]])
    return out / "_build" / "html"


class BookAndData(http.server.SimpleHTTPRequestHandler):
    """The built book, and the course's datasets/ under /datasets/ (for the URL data path)."""

    def translate_path(self, path):
        if urlparse(path).path.startswith("/datasets/"):
            return str(ROOT / urlparse(path).path.lstrip("/"))
        return super().translate_path(path)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(built_book):
    """The built book served by a real HTTP server on localhost: (its URL, its folder)."""
    handler = functools.partial(BookAndData, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/", built_book
    server.shutdown()
