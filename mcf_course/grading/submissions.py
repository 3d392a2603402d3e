"""Finding and preparing what students handed in, before anything of theirs runs.

Every decision here is reported: a file that is not used, a notebook graded under another
name, a cell whose nbgrader marks were removed. Nothing is dropped without a word. Every
name a student chose reaches the instructor through ``printable`` (no terminal escapes).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

DEFAULT_ID_PATTERN = r"^(?P<student_id>[A-Za-z0-9.]+)[_-]"
# A student id becomes a folder name: letters, digits, ".", "_" and "-", not starting with "." or "-".
VALID_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
FILE_LIMIT_MB = 20       # one extra file in a submission folder
FOLDER_LIMIT_MB = 100    # all of a submission's extra files together


def printable(text) -> str:
    """``text`` with every control or invisible formatting character (terminal escape
    sequences, carriage returns, bidirectional overrides, line separators) written as its
    Python escape (``\\x1b``, ``\\u202e``): what a student named a file can then neither
    move the cursor nor clear the screen of a terminal, nor break a CSV row."""
    return "".join(ch if ch == " " or ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


@dataclass(frozen=True)
class Note:
    """A file that was not used, or was used in a way worth saying."""

    file: str
    what: str

    def __str__(self) -> str:
        return printable(f"{self.file}: {self.what}")


def valid_student_id(student: str) -> bool:
    return bool(VALID_ID.fullmatch(student)) and ".." not in student


def stage_lms_downloads(folder: Path, pattern: str, submitted: Path, module: str) -> list[Note]:
    """Copy notebooks named with the student id into ``submitted/<id>/<module>/<module>.ipynb``.

    Where one id has several files (an LMS names a resubmission ``ada_module1 (1).ipynb``), the
    newest by modification time is used. Returns a note for every file, used or not, that an
    instructor should know about; the downloads themselves are left where they are."""
    notes: list[Note] = []
    candidates: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("._"):
            notes.append(Note(path.name, "not used: a macOS resource-fork file, not a notebook"))
            continue
        if not path.is_file() or path.is_symlink():
            notes.append(Note(path.name, "not used: not a regular file"))
            continue
        if path.suffix != ".ipynb":
            notes.append(Note(path.name, "not used: not a notebook (.ipynb)"))
            continue
        match = re.search(pattern, path.name)
        if not match:
            notes.append(Note(path.name, f"not used: no student id in the name (pattern {pattern!r})"))
            continue
        student = match.group("student_id")
        if not valid_student_id(student):
            notes.append(Note(path.name, f"not used: {student!r} is not a valid student id "
                                         "(letters, digits, '.', '_', '-'; not a path)"))
            continue
        candidates.setdefault(student, []).append(path)
    for student, paths in candidates.items():
        newest = max(paths, key=lambda p: (p.stat().st_mtime, p.name))
        for other in paths:
            if other != newest:
                notes.append(Note(other.name, f"not used: {newest.name!r} is a newer file for {student}"))
        if len(paths) > 1:
            notes.append(Note(newest.name, f"used for {student}: the newest of {len(paths)} files"))
        target = submitted / student / module
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(newest, target / f"{module}.ipynb")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(newest.stat().st_mtime))
        (target / "timestamp.txt").write_text(f"{stamp}.000000 UTC")
    return notes


def find_notebooks(folder: Path, names: list[str]) -> tuple[dict[str, Path], str]:
    """The student's file for each of the assignment's notebooks (``names``) that the folder
    holds, and a warning if one was found by a fallback: an assignment of one notebook takes
    the folder's only notebook whatever its name. Notebooks of other names are left out, as
    nbgrader leaves them out."""
    found = {name: folder / f"{name}.ipynb" for name in names
             if (folder / f"{name}.ipynb").is_file() and not (folder / f"{name}.ipynb").is_symlink()}
    if found or len(names) != 1:
        return found, ""
    expected = f"{names[0]}.ipynb"
    others = sorted(p for p in folder.glob("*.ipynb")
                    if not p.name.startswith(".") and p.is_file() and not p.is_symlink())
    if len(others) == 1:
        return {names[0]: others[0]}, f"graded {others[0].name!r} as {expected} (wrong file name)"
    if others:
        return {}, f"no {expected}; several other notebooks: {', '.join(p.name for p in others)}"
    return {}, f"no {expected} in the submission"


def extra_files(folder: Path, ignore: list[str]) -> tuple[list[Path], list[str]]:
    """The files besides notebooks that nbgrader would copy from a submission folder (every
    regular file not matching ``ignore``, in sub-folders too), keeping to the size limits.
    Symbolic links are never followed. Returns the files and a note for each one skipped."""
    files, skipped, total = [], [], 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in ignore):
            continue
        if path.is_symlink():
            skipped.append(f"{relative} (a symbolic link)")
            continue
        if not path.is_file() or path.suffix == ".ipynb" or relative.name == "timestamp.txt":
            continue
        size = path.stat().st_size
        if size > FILE_LIMIT_MB * 2**20 or total + size > FOLDER_LIMIT_MB * 2**20:
            skipped.append(f"{relative} (over the {FILE_LIMIT_MB} MB per file / "
                           f"{FOLDER_LIMIT_MB} MB per submission limit)")
            continue
        total += size
        files.append(path)
    return files, skipped


def copy_submission(folder: Path, notebooks: dict[str, Path], ignore: list[str], out: Path) -> str:
    """Put a submission, as nbgrader would see it, in ``out``: each notebook under its
    assignment name (``<name>.ipynb``), the timestamp, and the extra files. Returns a note on
    files left out ('' if none)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, notebook in notebooks.items():
        shutil.copy(notebook, out / f"{name}.ipynb")
    if (folder / "timestamp.txt").is_file() and not (folder / "timestamp.txt").is_symlink():
        shutil.copy(folder / "timestamp.txt", out / "timestamp.txt")
    files, skipped = extra_files(folder, ignore)
    for path in files:
        target = out / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return f"files not used: {', '.join(skipped)}" if skipped else ""


def normalize_submission(path: Path, known_ids: set[str], out: Path,
                         released: Path | None = None) -> tuple[Path, str]:
    """Make nbgrader's job possible where a student's edits would make it crash.

    nbgrader stops with an error on a notebook in which a grade id appears twice (a copied
    cell) or that carries grade ids of another assignment (the wrong notebook). Such cells
    lose their nbgrader marks here and run as ordinary cells; nbgrader then restores the
    assignment's own cells from the gradebook as usual. nbgrader also stops when a missing
    test cell follows a missing answer cell (it puts a test back after the cell before it,
    and cannot find that one): with ``released`` (the unanswered student version), missing
    cells of the assignment are put back from it, unanswered, after the cell that precedes
    them there. Returns the notebook to grade and a note ('' and the original when nothing
    needed changing)."""
    nb = nbformat.read(path, as_version=4)
    seen, duplicated, foreign = set(), 0, 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid is None:
            continue
        if gid not in known_ids or gid in seen:
            duplicated += gid in seen
            foreign += gid not in known_ids
            del cell.metadata["nbgrader"]
        seen.add(gid)
    restored = _restore_missing_cells(nb, released, seen) if released is not None else 0
    if not duplicated and not foreign and not restored:
        return path, ""
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    notes = []
    if duplicated:
        notes.append(f"{duplicated} cell(s) repeating a grade id ran as ordinary cells")
    if foreign:
        notes.append(f"{foreign} graded cell(s) not part of this assignment (another module's "
                     "notebook?) ran as ordinary cells")
    if restored:
        notes.append(f"{restored} missing cell(s) of the assignment were put back unanswered")
    return out, "; ".join(notes)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _restore_missing_cells(nb, released: Path, present: set[str]) -> int:
    """Put back, from the released notebook, its cells with a grade id that ``nb`` lacks, each
    after the cell that precedes it in the release (or first). Returns how many."""
    count = 0
    previous = None
    for cell in nbformat.read(released, as_version=4).cells:
        gid = _grade_id(cell)
        if gid is None:
            continue
        if gid not in present:
            at = next((i + 1 for i, c in enumerate(nb.cells) if previous is not None and _grade_id(c) == previous), 0)
            restored = nbformat.from_dict(dict(cell))
            restored.id = f"restored-{count}"  # unlike any id the student's notebook may hold
            nb.cells.insert(at, restored)
            present.add(gid)
            count += 1
        previous = gid
    return count


def readable_problem(path: Path) -> str:
    """Why a file cannot be graded as a notebook ('' when it can)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a notebook"
        return f"not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if not isinstance(nb.get("cells"), list):
        return "not a valid notebook (no cells)"
    return ""
