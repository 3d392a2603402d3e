#!/usr/bin/env python3
"""Set up and run the course from a fresh machine that has only Python 3.11+.

    python3 course.py book      build the book into _build/html  (the main job)
    python3 course.py test      run the whole test suite (includes a full book build; installs
                                what the tests start for real -- PostgreSQL, bubblewrap, Chromium -- with
                                apt-get when run as root and missing)
    python3 course.py release   regenerate exercises/ from solutions/ with nbgrader, and the
                                notebook versions of the book's pages (book/*.ipynb)

Each command first makes (or reuses) the virtual environment .venv with the pinned
requirements and the course's helper package, then runs inside it. Extra arguments after
`test` go to pytest, e.g. `python3 course.py test -k datasets`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".course-env-stamp"
BOOK_BUILD = ["jupyter-book", "build", ".", "-W", "-n", "--keep-going"]


def run(*command: str | Path) -> None:
    """Run a command inside the environment; stop with its exit code if it fails."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               VIRTUAL_ENV=str(VENV), PYTHONNOUSERSITE="1")
    result = subprocess.run([str(c) for c in command], cwd=ROOT, env=env, check=False)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_environment() -> None:
    """Create .venv and install what requirements.txt and pyproject.toml ask for, once."""
    if sys.version_info < (3, 11):  # noqa: UP036 - course.py may be run by an older python3
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256(
        b"".join((ROOT / name).read_bytes() for name in ("requirements.txt", "pyproject.toml"))
    ).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("Setting up the course environment in .venv (first run takes a few minutes) ...")
    venv.EnvBuilder(with_pip=True, clear=not PYTHON.exists()).create(VENV)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-r", "requirements.txt", "-e", ".")
    STAMP.write_text(wanted)


# What the test suite starts for real, and the Debian package that provides it.
TEST_SERVICES = {
    "postgresql": ("PostgreSQL, for the gradebook test",
                   lambda: bool(list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))),
    "bubblewrap": ("bubblewrap, the grading sandbox", lambda: bool(shutil.which("bwrap"))),
    "chromium": ("Chromium, for the browser test of the book", lambda: bool(shutil.which("chromium"))),
}


def ensure_test_services() -> None:
    """Install with apt-get (as root, on Debian or Ubuntu) what the test suite needs and lacks;
    elsewhere say what to install. The tests fail, not skip, when something is missing."""
    missing = [name for name, (_, present) in TEST_SERVICES.items() if not present()]
    if not missing:
        return
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"Installing for the tests (apt-get): {', '.join(missing)} ...")
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    else:
        for name in missing:
            print(f"Note: the tests need {TEST_SERVICES[name][0]} (Debian/Ubuntu: sudo apt-get "
                  f"install {name}); they will fail without it.")


def book_notebook_pages() -> list[Path]:
    """Book pages with code (a kernelspec), which are also published as notebooks."""
    return sorted(p for p in (ROOT / "book").glob("*.md") if "kernelspec:" in p.read_text(encoding="utf-8"))


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"book", "test", "release"}:
        sys.exit(__doc__)
    ensure_environment()
    command, extra = argv[0], argv[1:]
    if command == "book":
        run(*BOOK_BUILD, *extra)
        print(f"\nThe book is in {ROOT / '_build' / 'html'}; open index.html in a browser.")
    elif command == "test":
        ensure_test_services()
        run(PYTHON, "-m", "pytest", *extra)
    elif command == "release":
        for module in sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()):
            run("nbgrader", "generate_assignment", module, "--force", "--no-db")
        for page in book_notebook_pages():  # what the launch buttons open
            update = ["--update"] if page.with_suffix(".ipynb").exists() else []  # keeps the cell ids
            run("jupytext", "--quiet", *update, "--to", "notebook", page.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
