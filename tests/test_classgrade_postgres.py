"""mcf-grade with the gradebook on a real PostgreSQL server, which this test starts itself
(Debian's postgresql package; `python3 course.py test` installs it where it can)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, autograded_points, with_answers_from

from mcf_course.grading import grade_class

MODULE = "module1"


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    assert candidates, ("PostgreSQL is not installed: `apt-get install postgresql` "
                        "(python3 course.py test does this when run as root)")
    return candidates[-1].parent


@pytest.fixture(scope="module")
def postgres():
    """Start a throwaway PostgreSQL server on a Unix socket; yield a database URL."""
    bindir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="mcf-pg-", dir="/tmp"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user = {}
    if os.geteuid() == 0:  # the server refuses to run as root
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)

        def as_user_postgres():
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        as_user = {"preexec_fn": as_user_postgres}
    env = dict(os.environ, LC_ALL="C.UTF-8")
    subprocess.run([bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True, env=env, **as_user)
    subprocess.run([bindir / "pg_ctl", "-D", data, "-w", "-l", root / "server.log", "-o",
                    f"-k {sock} -c listen_addresses='' -p 5439", "start"], check=True,
                   capture_output=True, env=env, **as_user)
    try:
        subprocess.run([bindir / "createdb", "-h", sock, "-p", "5439", "-U", "postgres",
                        "gradebook"], check=True, capture_output=True, env=env)
        yield f"postgresql+psycopg2://postgres@/gradebook?host={sock}&port=5439"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, env=env, **as_user)
        shutil.rmtree(root, ignore_errors=True)


def test_grades_land_in_postgresql_and_match_sqlite(postgres, tmp_path):
    courses = {}
    for name in ("pg", "sqlite"):
        course = tmp_path / name
        course.mkdir()
        shutil.copytree(ROOT / "solutions", course / "solutions")
        shutil.copy(ROOT / "nbgrader_config.py", course)
        solution = nbformat.read(course / "solutions" / MODULE / f"{MODULE}.ipynb", as_version=4)
        blank = nbformat.read(ROOT / "exercises" / MODULE / f"{MODULE}.ipynb", as_version=4)
        for student, nb in {"good": solution, "blank": blank,
                            "partial": with_answers_from(solution, blank, {"q3_answer"})}.items():
            folder = course / "submitted" / student / MODULE
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{MODULE}.ipynb")
        (course / "submitted" / "broken" / MODULE).mkdir(parents=True)
        (course / "submitted" / "broken" / MODULE / f"{MODULE}.ipynb").write_text("{")
        courses[name] = course

    points = autograded_points(solution)
    q3_points = sum(p for gid, p in points.items() if gid.startswith("q3_"))  # every test cell of Question 3
    full, partial = sum(points.values()), sum(points.values()) - q3_points
    in_pg = {o.student: o for o in grade_class(courses["pg"], MODULE, db_url=postgres,
                                               workers=2, quiet=True)}
    in_sqlite = {o.student: o for o in grade_class(courses["sqlite"], MODULE, workers=2,
                                                   quiet=True)}
    assert {s: o.scores for s, o in in_pg.items()} == {s: o.scores for s, o in in_sqlite.items()}
    assert {s: o.score for s, o in in_pg.items()} == {"good": full, "blank": 0,
                                                      "partial": partial, "broken": 0}
    assert not (courses["pg"] / "gradebook.db").exists(), "nothing should go to a SQLite file"

    from nbgrader.api import Gradebook

    with Gradebook(postgres) as gb:  # read back from the server itself
        students = {s.student.id for s in gb.assignment_submissions(MODULE)}
        assert students == {"good", "blank", "partial", "broken"}
        assert gb.find_submission_notebook(MODULE, MODULE, "good").score == full
