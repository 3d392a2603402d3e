"""Which dataset rows each autograded answer depends on (issue #11).

An *answer* is a value (not a function, module or figure) that an answer cell of a solution
notebook (an nbgrader ``solution`` cell) binds and a test cell reads: what the autograder
checks. Helper values that no test reads (a copy of a column, a mask) are not answers. Tests
that call a student's function on the real data inside the test cell are not followed; the
course's tests call functions on fictional data and check the real-data answers through the
values the answer cells bind. An answer *depends on* a row if the notebook, run
with that row removed from the data, gives the answer another value or fails to compute it.
Removing a row also removes the rows of the other loaded datasets that refer to it through
the foreign keys of ``datapackage.json``, so the data stay consistent.

No answer may depend on an *ungradeable* row: low confidence, disputed, or evidence that is
no quotation (``No quote: …``). Rows marked ``fictional`` are practice data and exempt.

The notebook's setup and answer cells (not its test cells) run in this process, in a fresh
namespace for every run, with ``load_dataset`` serving the data without the removed rows.
Removed rows leave gaps in the index, as a filter would, so values that keep the original
row labels stay comparable.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import math
import numbers
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import CodeType, ModuleType
from unittest import mock

import nbformat
import pandas as pd

import mcf_course
from mcf_course import data as course_data

ROOT = Path(__file__).resolve().parents[1]
NO_QUOTE = "No quote:"
Key = tuple[str, ...]
Removal = dict[str, frozenset[Key]]  # dataset name -> primary keys of the rows removed
_load_dataset = course_data.load_dataset  # the real loader, before any run patches it


# ---------------------------------------------------------------------------------------------
# Rows and data


@dataclass(frozen=True)
class Row:
    """One dataset row, with what a reviewer needs to judge it."""

    dataset: str
    key: Key
    confidence: str
    disputed: bool | None  # None: the dataset has no disputed column
    evidence: str
    fictional: bool = False

    @property
    def label(self) -> str:
        return f"{self.dataset} {'/'.join(self.key)}"

    @property
    def problems(self) -> list[str]:
        """Why no autograded answer may depend on this row (empty if it may)."""
        if self.fictional:
            return []
        checks = [("low confidence", self.confidence == "low"), ("disputed", bool(self.disputed)),
                  ("unquoted", self.evidence.strip().startswith(NO_QUOTE))]
        return [problem for problem, found in checks if found]


def _flag(value) -> bool | None:
    return None if value is None or pd.isna(value) else bool(value)


def _as_list(fields) -> list[str]:
    return [fields] if isinstance(fields, str) else list(fields)


class DataSource:
    """The course datasets, each loaded (and checked) once, served with chosen rows removed."""

    def __init__(self, location: str | None = None):
        self.location = location or course_data.data_location()
        self.descriptor = course_data._descriptor(self.location)
        self._frames: dict[str, pd.DataFrame] = {}

    def resource(self, name: str) -> dict:
        return course_data._resource(self.descriptor, name)

    def frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = _load_dataset(name, self.location)
        return self._frames[name]

    def _values(self, name: str, fields: list[str]) -> list[Key]:
        frame = self.frame(name)
        return [tuple(str(v) for v in values) for values in zip(*(frame[f] for f in fields), strict=True)]

    def keys(self, name: str) -> list[Key]:
        return self._values(name, _as_list(self.resource(name)["schema"]["primaryKey"]))

    def rows(self, name: str) -> list[Row]:
        frame = self.frame(name)
        columns = {c: frame[c].tolist() if c in frame else [None] * len(frame)
                   for c in ("confidence", "disputed", "evidence", "fictional")}
        return [Row(name, key, str(columns["confidence"][i] or ""), _flag(columns["disputed"][i]),
                    str(columns["evidence"][i] or ""), bool(_flag(columns["fictional"][i])))
                for i, key in enumerate(self.keys(name))]

    def serve(self, name: str, removed: Removal) -> pd.DataFrame:
        """A fresh copy of dataset ``name`` without the ``removed`` rows."""
        frame, gone = self.frame(name), removed.get(name)
        if not gone:
            return frame.copy()
        return frame.loc[[key not in gone for key in self.keys(name)]].copy()

    def cascade(self, removed: dict[str, Iterable[Key]], datasets: Iterable[str]) -> Removal:
        """``removed`` plus the rows of ``datasets`` that refer, by a foreign key, to a removed row."""
        result = {name: set(keys) for name, keys in removed.items()}
        datasets = list(datasets)
        grew = True
        while grew:
            grew = False
            for name in datasets:
                for foreign in self.resource(name)["schema"].get("foreignKeys", []):
                    target = foreign["reference"]["resource"] or name  # "" refers to the resource itself
                    if not result.get(target):
                        continue
                    targets = self._values(target, _as_list(foreign["reference"]["fields"]))
                    gone = {value for key, value in zip(self.keys(target), targets, strict=True)
                            if key in result[target]}
                    referring = self._values(name, _as_list(foreign["fields"]))
                    for key, value in zip(self.keys(name), referring, strict=True):
                        if value in gone and key not in result.setdefault(name, set()):
                            result[name].add(key)
                            grew = True
        return {name: frozenset(keys) for name, keys in result.items() if keys}


# ---------------------------------------------------------------------------------------------
# Comparing answers


def _missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def same(a, b, rel_tol: float = 1e-9) -> bool:
    """Whether two answer values are equal: pandas objects and NaN included, floats within ``rel_tol``."""
    frames = (pd.DataFrame, pd.Series, pd.Index)
    if isinstance(a, frames) or isinstance(b, frames):
        if type(a) is not type(b):
            return False
        try:
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b, check_dtype=False, check_index_type=False,
                                              check_column_type=False, check_freq=False, rtol=rel_tol)
            elif isinstance(a, pd.Series):
                pd.testing.assert_series_equal(a, b, check_dtype=False, check_index_type=False,
                                               check_freq=False, rtol=rel_tol)
            else:
                pd.testing.assert_index_equal(a, b, exact=False, rtol=rel_tol)
        except (AssertionError, TypeError, ValueError):
            return False
        return True
    if hasattr(a, "__array__") and hasattr(b, "__array__") and hasattr(a, "tolist") and hasattr(b, "tolist"):
        return getattr(a, "shape", None) == getattr(b, "shape", None) and same(a.tolist(), b.tolist(), rel_tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same(x, y, rel_tol) for x, y in zip(a, b, strict=True)))
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b) and (a is None) == (b is None)
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-12)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)


# ---------------------------------------------------------------------------------------------
# Running a solution notebook


@dataclass(frozen=True, order=True)
class Answer:
    """A name bound by an answer cell (``question`` is the cell's grade_id)."""

    question: str
    name: str

    def __str__(self) -> str:
        return f"{self.question} {self.name}"


@dataclass(frozen=True)
class Cell:
    label: str
    is_answer: bool
    code: CodeType


@dataclass
class Run:
    """What one run of a notebook's setup and answer cells gave."""

    values: dict[Answer, object]
    plots: list[Answer]
    errors: dict[str, str]  # cell label -> the exception it raised
    loaded: list[str]  # datasets loaded, in order


class _NoShell:
    """Stands in for IPython's shell: magics compile, but must not run here."""

    def __getattr__(self, name: str) -> Callable:
        def refuse(*args, **kwargs):
            raise RuntimeError(f"IPython's {name} cannot run in the graded-rows check")
        return refuse


def _kind(value) -> str | None:
    """'plot' for matplotlib objects, None for functions, classes and modules, else 'value'."""
    from matplotlib.artist import Artist

    if isinstance(value, Artist):
        return "plot"
    if callable(value) or isinstance(value, ModuleType):
        return None
    return "value"


def _snapshot(value):
    try:
        return copy.deepcopy(value)
    except Exception:  # some objects cannot be copied; compare them as they are
        return value


def _names_read(sources: list[str]) -> set[str]:
    """Names the cells read before they (or an earlier one of them) assign them, roughly."""
    read: set[str] = set()
    stored: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: (n.lineno, n.col_offset))
        for node in names:
            if isinstance(node.ctx, ast.Store):
                stored.add(node.id)
            elif node.id not in stored:
                read.add(node.id)
    return read


@contextlib.contextmanager
def _sandbox(loader: Callable, folder: Path):
    """Serve ``loader`` as load_dataset, silence output and warnings, run in ``folder``, close figures."""
    import matplotlib.pyplot as plt

    with (mock.patch.object(course_data, "load_dataset", loader),
          mock.patch.object(mcf_course, "load_dataset", loader, create=True),
          contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()),
          warnings.catch_warnings(), contextlib.chdir(folder)):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            plt.close("all")


class NotebookError(RuntimeError):
    """The solution notebook does not run on the full data, so nothing can be compared."""


class Notebook:
    """A solution notebook that can be run with rows removed from the data."""

    def __init__(self, path: Path | str, source: DataSource | None = None):
        import matplotlib
        from IPython.core.inputtransformer2 import TransformerManager

        matplotlib.use("Agg")
        self.path = Path(path).resolve()
        self.module = self.path.stem
        self.source = source or DataSource()
        self.cells: list[Cell] = []
        tests: list[str] = []
        transform = TransformerManager().transform_cell
        for index, cell in enumerate(nbformat.read(self.path, as_version=4).cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            code = transform(cell.source)
            if meta.get("grade") and not meta.get("solution"):  # an autograder test cell
                tests.append(code)
                continue
            label = meta.get("grade_id") or f"cell {index}"
            code = compile(code, f"<{self.module} {label}>", "exec")
            self.cells.append(Cell(label, bool(meta.get("solution")), code))
        self.read_by_tests = _names_read(tests)
        self.runs = 0
        self._row_runs: dict[Row, tuple[tuple[str, ...], dict[Answer, str]]] = {}

    def run(self, removed: Removal | None = None) -> Run:
        """Run the setup and answer cells once, in a fresh namespace, without the ``removed`` rows."""
        removed = removed or {}
        result = Run({}, [], {}, [])

        def load_dataset(name: str, location: str | None = None) -> pd.DataFrame:
            if name not in result.loaded:
                result.loaded.append(name)
            return self.source.serve(name, removed)

        namespace: dict = {"__name__": "__main__", "display": lambda *a, **k: None, "get_ipython": _NoShell}
        self.runs += 1
        with _sandbox(load_dataset, self.path.parent):
            for cell in self.cells:
                before = dict(namespace)
                try:
                    exec(cell.code, namespace)
                except (Exception, SystemExit) as error:
                    result.errors[cell.label] = f"{type(error).__name__}: {error}"
                if not cell.is_answer:
                    continue
                for name, value in namespace.items():
                    if name.startswith("__") or (name in before and before[name] is value):
                        continue
                    kind = _kind(value)
                    if kind == "value":
                        result.values[Answer(cell.label, name)] = _snapshot(value)
                    elif kind == "plot":
                        result.plots.append(Answer(cell.label, name))
        return result

    @cached_property
    def full(self) -> Run:
        """The run on the full data (raises NotebookError if a cell fails)."""
        run = self.run()
        if run.errors:
            raise NotebookError(f"{self.path} fails on the full data: "
                                + "; ".join(f"{cell}: {error}" for cell, error in run.errors.items()))
        return run

    @cached_property
    def unstable(self) -> set[Answer]:
        """Answers that differ between two runs on the full data: they cannot be compared."""
        again = self.run()
        return {a for a, v in self.full.values.items() if a not in again.values or not same(v, again.values[a])}

    @property
    def answers(self) -> list[Answer]:
        """The values the tests check, that two full-data runs agree on."""
        return sorted(a for a in self.full.values if a.name in self.read_by_tests and a not in self.unstable)

    @property
    def questions(self) -> list[str]:
        return [cell.label for cell in self.cells if cell.is_answer]

    def changes(self, run: Run) -> dict[Answer, str]:
        """The answers that ``run`` gives differently from the full-data run, with how."""
        found = {}
        for answer in self.answers:
            if answer.question in run.errors:
                found[answer] = "raises " + run.errors[answer.question]
            elif answer not in run.values:
                found[answer] = "is not set"
            elif not same(self.full.values[answer], run.values[answer]):
                found[answer] = "changes"
        return found

    def without(self, rows: Iterable[Row]) -> tuple[Removal, dict[Answer, str]]:
        """Remove ``rows`` (and the rows referring to them), run, and return the removal and the changes."""
        wanted: dict[str, set[Key]] = {}
        for row in rows:
            wanted.setdefault(row.dataset, set()).add(row.key)
        removal = self.source.cascade(wanted, self.full.loaded)
        return removal, self.changes(self.run(removal))

    def rows(self) -> list[Row]:
        """Every row of the datasets the notebook loads."""
        return [row for name in self.full.loaded for row in self.source.rows(name)]

    def without_row(self, row: Row) -> tuple[tuple[str, ...], dict[Answer, str]]:
        """Remove one row: the rows removed with it through foreign keys, and the changes (cached)."""
        if row not in self._row_runs:
            removal, changed = self.without([row])
            cascade = tuple(f"{name} {'/'.join(key)}" for name, keys in sorted(removal.items())
                            for key in sorted(keys) if (name, key) != (row.dataset, row.key))
            self._row_runs[row] = cascade, changed
        return self._row_runs[row]


# ---------------------------------------------------------------------------------------------
# Dependencies and violations


@dataclass(frozen=True)
class Dependency:
    row: Row
    how: str  # "changes", "raises …", "is not set"
    cascade: tuple[str, ...] = ()  # labels of the rows removed with it through foreign keys


@dataclass(frozen=True)
class Violation:
    """An answer that depends on ungradeable rows."""

    module: str
    answer: Answer
    rows: tuple[Row, ...]
    how: str
    together: bool = False  # no single one of the rows changes the answer; all of them together do
    cascade: tuple[str, ...] = ()

    def __str__(self) -> str:
        rows = "; ".join(f"{row.label} ({', '.join(row.problems)})" for row in self.rows)
        notes = [f"removed with it through foreign keys: {', '.join(self.cascade)}"] if self.cascade else []
        notes += ["only all of these rows together"] if self.together else []
        extra = f" [{'; '.join(notes)}]" if notes else ""
        return f"{self.module} {self.answer}: {self.how} without {rows}{extra}"


def ungradeable_rows(notebook: Notebook) -> list[Row]:
    return [row for row in notebook.rows() if row.problems]


def check(notebook: Notebook) -> list[Violation]:
    """Fast check: one run without every ungradeable row; each changed answer is a violation,
    explained by the rows that change it on their own (or, failing that, by all of them)."""
    bad = ungradeable_rows(notebook)
    if not bad:
        return []
    _, changed = notebook.without(bad)
    violations = []
    for answer, how in sorted(changed.items()):
        alone = [row for row in bad if answer in notebook.without_row(row)[1]]
        labels = {row.label for row in bad}
        cascade = sorted({label for row in alone for label in notebook.without_row(row)[0] if label not in labels})
        violations.append(Violation(notebook.module, answer, tuple(alone or bad), how, not alone, tuple(cascade)))
    return violations


@dataclass
class ModuleReport:
    """Every answer of one module with the rows it depends on, and the violations."""

    notebook: Notebook
    dependencies: dict[Answer, list[Dependency]]
    violations: list[Violation]
    seconds: float
    error: str | None = None

    @property
    def module(self) -> str:
        return self.notebook.module


def analyse(notebook: Notebook, progress: Callable[[str], None] | None = None) -> ModuleReport:
    """Remove each row of the loaded datasets in turn and record which answers it changes."""
    start = time.perf_counter()
    try:
        rows = notebook.rows()
    except NotebookError as error:
        return ModuleReport(notebook, {}, [], time.perf_counter() - start, str(error))
    dependencies: dict[Answer, list[Dependency]] = {answer: [] for answer in notebook.answers}
    violations = []
    for number, row in enumerate(rows, start=1):
        if progress and number % 20 == 1:
            progress(f"{notebook.module}: row {number} of {len(rows)}")
        cascade, changed = notebook.without_row(row)
        for answer, how in changed.items():
            dependencies[answer].append(Dependency(row, how, cascade))
            if row.problems:
                violations.append(Violation(notebook.module, answer, (row,), how, cascade=cascade))
    flagged = {v.answer for v in violations}
    violations += [v for v in check(notebook) if v.answer not in flagged]
    return ModuleReport(notebook, dependencies, sorted(violations, key=lambda v: v.answer),
                        time.perf_counter() - start)


def solution_notebooks(root: Path = ROOT) -> dict[str, Path]:
    """solutions/<module>/<module>.ipynb, by module name in natural order (module10 after module9)."""
    found = {p.parent.name: p for p in (root / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name}

    def natural(name: str) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    return {name: found[name] for name in sorted(found, key=natural)}


# ---------------------------------------------------------------------------------------------
# Reports


def _shorten(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _disputed(row: Row) -> str:
    return "-" if row.disputed is None else ("yes" if row.disputed else "no")


def _bare_questions(report: ModuleReport) -> list[str]:
    nb = report.notebook
    with_values = {a.question for a in nb.full.values} | {a.question for a in nb.full.plots}
    return [q for q in nb.questions if q not in with_values]


def _summary(report: ModuleReport) -> str:
    nb = report.notebook
    loaded = ", ".join(f"{name} ({len(nb.source.frame(name))} rows)" for name in nb.full.loaded)
    return f"ablated {loaded}; {nb.runs} runs in {report.seconds:.1f} s"


def format_text(reports: list[ModuleReport]) -> str:
    """The report for a terminal."""
    lines = []
    for report in reports:
        nb = report.notebook
        lines.append(f"== {report.module} ({nb.path.relative_to(ROOT) if nb.path.is_relative_to(ROOT) else nb.path})")
        if report.error:
            lines += [f"  CANNOT CHECK: {report.error}", ""]
            continue
        lines.append(f"  {_summary(report)}")
        for question in _bare_questions(report):
            lines.append(f"  {question}: binds no answer value (only functions or displayed output); "
                         "checked by its tests only")
        for answer in nb.full.plots:
            lines.append(f"  {answer}: a plot, not compared; checked by its tests only")
        for answer in sorted(nb.unstable):
            lines.append(f"  {answer}: differs between two runs on the full data; cannot be compared")
        for answer, deps in report.dependencies.items():
            count = f"{len(deps)} row{'s' if len(deps) != 1 else ''}" if deps else "no row"
            lines.append(f"  {answer}: depends on {count}")
            for dep in deps:
                row = dep.row
                flag = f"  << {', '.join(row.problems).upper()}" if row.problems else ""
                how = "" if dep.how == "changes" else f" ({_shorten(dep.how, 60)})"
                cascade = f" [with {', '.join(dep.cascade)}]" if dep.cascade else ""
                lines.append(f"      {row.dataset:<22} {'/'.join(row.key):<8} {row.confidence:<6} "
                             f"{_disputed(row):<3}  {_shorten(row.evidence, 60)}{how}{cascade}{flag}")
        lines.append("")
    lines.append("Answers are the values answer cells bind and test cells read; helper values are left out.")
    violations = [v for r in reports for v in r.violations]
    errors = [r for r in reports if r.error]
    lines.append(f"VIOLATIONS ({len(violations)}): answers that depend on low-confidence, disputed or unquoted rows"
                 if violations else "No violations: no answer checked depends on a low-confidence, disputed or "
                 "unquoted row.")
    lines += [f"  {v}" for v in violations]
    lines += [f"  {r.module}: CANNOT CHECK ({r.error})" for r in errors]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(reports: list[ModuleReport]) -> str:
    """The report as Markdown, one table per answer, for a reviewer."""
    out = ["# Rows the autograded answers depend on", "",
           "Generated by `scripts/graded_rows.py`. An answer depends on a row if removing the row (and the rows "
           "that refer to it) changes the answer or makes its cell fail. Plots are not compared; their tests check "
           "them. *Not read by the test cells*: no test cell reads the name before setting it (the tests recompute "
           "it, or it is a helper); it still counts as an answer.", ""]
    for report in reports:
        nb = report.notebook
        out += [f"## {report.module}", ""]
        if report.error:
            out += [f"**Cannot check:** {_cell(report.error)}", ""]
            continue
        out += [_summary(report) + ".", ""]
        notes = [f"- `{q}` binds no answer value; checked by its tests only." for q in _bare_questions(report)]
        notes += [f"- `{a.question}` `{a.name}` is a plot; checked by its tests only." for a in nb.full.plots]
        notes += [f"- `{a.question}` `{a.name}` differs between runs; not compared." for a in sorted(nb.unstable)]
        out += notes + ([""] if notes else [])
        for answer, deps in report.dependencies.items():
            out += [f"### `{answer.question}` `{answer.name}`", ""]
            if not deps:
                out += ["Depends on no row.", ""]
                continue
            out += ["| dataset | key | confidence | disputed | evidence | problem, note |", "|---|---|---|---|---|---|"]
            for dep in deps:
                row = dep.row
                problem = ", ".join(row.problems) + (f" ({dep.how})" if dep.how != "changes" else "")
                if dep.cascade:
                    problem += f" [with {', '.join(dep.cascade)}]"
                out.append(f"| {row.dataset} | {'/'.join(row.key)} | {row.confidence} | {_disputed(row)} | "
                           f"{_cell(_shorten(row.evidence, 100))} | {_cell(problem.strip())} |")
            out.append("")
    violations = [v for r in reports for v in r.violations]
    out += ["## Violations", ""] + ([f"- {_cell(str(v))}" for v in violations] or ["None."]) + [""]
    return "\n".join(out)
