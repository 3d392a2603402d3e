"""The course being graded: its nbgrader configuration, folders, and the settings of a run."""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

DB_URL_ENV = "MCF_GRADE_DB"  # a gradebook URL with a password can come from here, not argv


@dataclass
class Settings:
    course: Path
    module: str
    db_url: str
    workers: int
    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 2048  # all processes of one student's sandbox together
    disk_mb: int = 256     # each writable place of a sandbox (in memory, so within memory_mb)
    force: bool = False
    sandbox_per_student: bool = False  # a new sandbox for every student (slower, see grading page)

    def for_workers(self) -> dict:
        """What a worker process needs to know: never the gradebook URL (it may hold a
        password) and nothing else it does not use."""
        return {"course": str(self.course), "module": self.module, "cell_timeout": self.cell_timeout,
                "notebook_timeout": self.notebook_timeout, "memory_mb": self.memory_mb,
                "disk_mb": self.disk_mb, "sandbox_per_student": self.sandbox_per_student}


@dataclass
class Outcome:
    """What happened to one student's submission."""

    student: str
    # graded | needs review (inspection found tampering) | skipped (graded cleanly before)
    # | kernel died | failed to run | timed out | missing notebook | not autograded (nbgrader
    # refused the notebook) | feedback failed | not recorded | not graded (the run stopped first)
    status: str = "graded"
    reason: str = ""
    seconds: float = 0.0
    score: float | None = None
    max_score: float | None = None
    scores: dict = field(default_factory=dict)
    recorded: bool = False  # this run wrote the student's grades to the gradebook
    timings: dict = field(default_factory=dict)  # seconds per phase (worker's and recording)

    @property
    def needs_attention(self) -> bool:
        return self.status not in ("graded", "skipped")

    def add_reason(self, *notes: str) -> None:
        self.reason = "; ".join(filter(None, [self.reason, *notes]))


@functools.cache
def _load_course_config(course: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if (course / "nbgrader_config.py").is_file():
        return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return Config()


def course_config(course: Path):
    """The course's nbgrader configuration (read once; callers get their own copy to change)."""
    return copy.deepcopy(_load_course_config(course))


@functools.cache
def course_folders(course: Path) -> dict[str, str]:
    config = course_config(course).CourseDirectory
    return {"source": config.get("source_directory", "source"),
            "release": config.get("release_directory", "release"),
            "submitted": config.get("submitted_directory", "submitted"),
            "autograded": config.get("autograded_directory", "autograded"),
            "feedback": config.get("feedback_directory", "feedback")}


def assignment_notebooks(course: Path, module: str) -> list[str]:
    """The names (without .ipynb) of the assignment's notebooks, as nbgrader finds them: every
    notebook at the top of its source folder."""
    source = course / course_folders(course)["source"] / module
    return sorted(p.stem for p in source.glob("*.ipynb") if p.is_file())


def course_ignore(course: Path) -> list[str]:
    """File patterns nbgrader leaves out of an assignment (``CourseDirectory.ignore``)."""
    from nbgrader.coursedir import CourseDirectory

    configured = course_config(course).CourseDirectory.get("ignore")
    return list(configured if configured is not None else CourseDirectory.class_traits()["ignore"].default())


def tool_environment() -> dict[str, str]:
    """This process's environment with its Python environment's bin/ first on PATH
    (nbgrader shells out to alembic, which lives there)."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))


def run_converter(converter: str, course: Path, root: Path, db_url: str, module: str,
                  student: str | None = None, **overrides) -> None:
    """Run one of nbgrader's converters (``GenerateAssignment``, ``Autograde``,
    ``GenerateFeedback``) in this process, as its command would, on the course folder
    ``root`` with the gradebook ``db_url``. Keyword arguments set ``Section.option`` values,
    e.g. ``CourseDirectory__release_directory="..."``. In-process, so the gradebook URL (which
    may carry a password) never appears in a process list."""
    from nbgrader import converters
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    logging.getLogger("traitlets").setLevel(logging.WARNING)
    os.environ["PATH"] = tool_environment()["PATH"]
    config = course_config(course)
    extra = Config()
    extra.CourseDirectory.root = str(root)
    extra.CourseDirectory.db_url = db_url
    for key, value in overrides.items():
        section, option = key.split("__")
        extra[section][option] = value
    config.merge(extra)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = module
    if student is not None:
        coursedir.student_id = student
    app = getattr(converters, converter)(coursedir=coursedir, config=config)
    app.start()
