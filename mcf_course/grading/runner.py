"""Test cells run in the grader's process, never in the student's kernel (``mcf-grade``).

PrairieLearn's Python grader (``pytest-prairielearn-grader``) keeps the test harness in its
own process and the student's code in another, reached over a socket; this module applies
that model to nbgrader notebooks. ``TestsInWorker`` is nbgrader's ``Execute`` with one
change: a test cell (graded, not a solution) is not sent to the kernel. Instead:

1. A *test namespace* is made for each submission by running the assignment's locked setup
   cells (instructor code: imports, ``checks``, ``load_dataset``; datasets are read once per
   worker) here, in the grader's process.
2. Each test cell runs here, in a copy of that namespace. A name it uses that the namespace
   lacks (found with ``dis``: the cell's ``LOAD_NAME``/``LOAD_GLOBAL`` names, nested code
   included) is fetched from the student's kernel when the test first reads it: a function
   becomes a ``StudentFunction``, which sends its arguments to the kernel as plain data
   (``checks.plain``) and returns ``checks.rebuild`` of the plain result; any other value is
   fetched as plain data and rebuilt here. The kernel side is ``agent``; each request is one
   silent execute request on the connection ``Execute`` already holds, answered in a user
   expression, parsed strictly, size-capped and time-limited.
3. The verdict is this process's own: the test passed if it ran to its end. The cell's
   outputs are written here: what the test printed, and on failure an error output. A mark
   for the feedback goes in the cell's metadata (``feedback.MARK``): for a visible check, its
   message where the message is a constant in the visible source, otherwise the failing line
   and an invitation to run the test in the student's own notebook (a message built from the
   answer could carry data the student's code saw in a hidden test); for a hidden test,
   ``feedback.HIDDEN_FAILURE``. nbgrader's own bookkeeping then grades from those outputs.

So no student object reaches a test, and nothing the student's code does in its kernel
(hooks, transformers, rebinding ``isinstance`` or ``np``, patching pandas) can touch a verdict:
the worst it can do is answer wrongly, which fails its own test. What the student's code
prints while a test calls it is thrown away. Cells other than tests run in the kernel as
before, so answers' outputs and figures land in the autograded notebook. ``inspection``
flags code that tries what this makes pointless (``needs review``).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dis
import functools
import io
import json
import sys
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from mcf_course import checks
from mcf_course.grading.agent import MAX_ANSWER
from mcf_course.grading.feedback import HIDDEN_FAILURE, MARK, hidden_line_range, is_test_cell
from mcf_course.grading.inspection import review

AGENT = "mcf_course.grading.agent"
MAX_REPLY = 2 * MAX_ANSWER + 1000  # the answer's repr may escape characters
MESSAGE_LIMIT = 2_000
BUILTIN_NAMES = frozenset(dir(builtins))
GRACE_SECONDS = 10  # after interrupting a call that took too long
TIMINGS: dict[str, float] = {}  # seconds per phase, summed over notebooks (the worker clears it)


class StudentCodeError(Exception):
    """The student's function raised an error when a test called it. Its message is the
    student's; ``student_error`` makes it also an instance of the builtin exception the
    student's derived from, so that a test can catch the ``ValueError`` a question asks for."""

    def __init__(self, function: str, kind: str, message: str):
        super().__init__(message[:MESSAGE_LIMIT])
        self.function, self.kind = function, kind

    def described(self) -> str:
        return f"{self.function} raised {self.kind}: {self}"[:MESSAGE_LIMIT]


CATCHABLE = {e.__name__: e for e in (ValueError, TypeError, KeyError, IndexError, LookupError,
                                      ZeroDivisionError, ArithmeticError, AttributeError, NotImplementedError,
                                      RuntimeError, OverflowError)}


@functools.cache
def _error_class(builtin: str) -> type:
    base = CATCHABLE.get(builtin)
    if base is None:
        return StudentCodeError
    return type(builtin, (StudentCodeError, base), {"__module__": __name__})


def student_error(function: str, kind: str, message: str, builtin: str = "") -> StudentCodeError:
    return _error_class(builtin)(function, kind, message)


class CallTimedOut(Exception):
    """The student's function did not answer in time (it was interrupted)."""

    def __init__(self, function: str, seconds: float):
        super().__init__(f"{function} did not finish within {seconds:g} s when the test called it")
        self.function = function


class UnreadableAnswer(Exception):
    """What came back from the kernel is not an answer this protocol allows."""


class NotInNotebook(NameError):
    """A name the test uses that the student's notebook does not define."""


# --- the kernel, seen from here --------------------------------------------------------------

def parse_answer(reply) -> dict:
    """The agent's answer in an execute reply, read as untrusted data."""
    try:
        content = reply["content"]
        if content["status"] != "ok":
            raise UnreadableAnswer(f"the kernel refused the request ({str(content.get('ename'))[:80]})")
        answer = content["user_expressions"]["answer"]
        if answer["status"] != "ok":
            raise UnreadableAnswer(f"the kernel could not answer ({str(answer.get('ename'))[:80]}: "
                                   f"{str(answer.get('evalue'))[:200]})")
        text = answer["data"]["text/plain"]
        if type(text) is not str or len(text) > MAX_REPLY:
            raise UnreadableAnswer("the kernel's answer is not text of an allowed size")
        literal = ast.literal_eval(text)
        if type(literal) is not str:
            raise UnreadableAnswer("the kernel's answer is not a string")
        data = json.loads(literal)
        if type(data) is not dict:
            raise UnreadableAnswer("the kernel's answer is not a JSON object")
        return data
    except UnreadableAnswer:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed answer is just unreadable
        raise UnreadableAnswer(f"the kernel's answer could not be read ({type(exc).__name__})") from None


class Kernel:
    """Requests to the agent in the student's kernel, over ``client``'s connection."""

    def __init__(self, client, timeout: float):
        self.client, self.timeout = client, timeout

    def ask(self, request: dict, function: str = "") -> dict:
        return run_sync(self._ask)(request, function)

    async def _ask(self, request: dict, function: str) -> dict:
        kc = self.client.kc
        expression = f"__import__({AGENT!r}, fromlist=['handle']).handle({json.dumps(request)!r})"
        msg_id = await ensure_async(kc.execute("", silent=True, store_history=False, allow_stdin=False,
                                               stop_on_error=False, user_expressions={"answer": expression}))
        deadline, interrupted = time.monotonic() + self.timeout, False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    raise CallTimedOut(function or "the kernel", self.timeout)
                await ensure_async(self.client.km.interrupt_kernel())
                deadline, interrupted = time.monotonic() + GRACE_SECONDS, True
                continue
            try:
                reply = await ensure_async(kc.shell_channel.get_msg(timeout=min(1.0, left)))
            except Empty:
                if not await ensure_async(kc.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                continue
            if _parent(reply) == msg_id:
                break
        await self._drain(msg_id)
        if interrupted:
            raise CallTimedOut(function or "the kernel", self.timeout)
        return parse_answer(reply)

    async def _drain(self, msg_id: str, seconds: float = 2.0) -> None:
        """Read (and drop) what the request printed, up to its end: it is never recorded."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.client.kc.iopub_channel.get_msg(timeout=left))
            except Empty:
                return
            if _parent(msg) == msg_id and msg.get("msg_type") == "status" \
                    and msg.get("content", {}).get("execution_state") == "idle":
                return

    def fetch(self, name: str):
        """The value of ``name`` in the notebook, as this process may use it."""
        answer = self.ask({"op": "lookup", "name": name}, name)
        if answer.get("function") is True:
            return StudentFunction(self, name)
        return _value(answer, name)


def _parent(msg) -> str | None:
    try:
        return msg["parent_header"].get("msg_id")
    except (AttributeError, KeyError, TypeError):
        return None


def _value(answer: dict, name: str):
    if "value" in answer:
        try:
            return checks.rebuild(answer["value"])
        except Exception:  # noqa: BLE001 - not plain data
            raise UnreadableAnswer(f"the answer of {name} is not plain data") from None
    if answer.get("missing") is True:
        raise NotInNotebook(f"name {name!r} is not defined in the notebook", name=name)
    if "raised" in answer and type(answer["raised"]) is list and len(answer["raised"]) == 3:
        kind, message, builtin = answer["raised"]
        raise student_error(name, str(kind)[:100], str(message), str(builtin))
    if "unreadable" in answer:
        raise checks.AnswerTypeError(str(answer["unreadable"])[:MESSAGE_LIMIT])
    raise UnreadableAnswer(f"the kernel's answer about {name} is not one this grader knows")


class StudentFunction:
    """A function of the student's notebook, called in the kernel with plain data."""

    def __init__(self, kernel: Kernel, name: str):
        self._kernel, self._name = kernel, name

    def __call__(self, *args, **kwargs):
        what = f"an argument the test passes to {self._name}"
        request = {"op": "call", "name": self._name, "args": [checks.plain(a, what) for a in args],
                   "kwargs": {str(k): checks.plain(v, what) for k, v in kwargs.items()}}
        return _value(self._kernel.ask(request, self._name), self._name)

    def __repr__(self) -> str:
        return f"<the notebook's function {self._name}>"


# --- running a test here --------------------------------------------------------------------

def transform(source: str) -> str:
    """A cell's source as IPython would run it (``%magic`` lines become calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def names_loaded(code: types.CodeType) -> set[str]:
    """Every name ``code`` (or code nested in it) looks up as a global or module-level name."""
    names = {i.argval for i in dis.get_instructions(code)
             if i.opname in ("LOAD_NAME", "LOAD_GLOBAL", "LOAD_FROM_DICT_OR_GLOBALS")}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= names_loaded(constant)
    return names


class _Scope(dict):
    """A test's namespace: the setup names, then the notebook's names it asks for, fetched
    on first use (a dict subclass, so that ``__missing__`` serves the test's lookups)."""

    def __init__(self, base: dict, wanted: set[str], fetch):
        super().__init__(base)
        self._wanted, self._fetch = wanted, fetch

    def __missing__(self, name):
        if name not in self._wanted:
            raise KeyError(name)  # then Python looks in the builtins
        value = self[name] = self._fetch(name)
        return value


@contextlib.contextmanager
def _contained(printed: io.StringIO):
    """Run trusted cell code here without letting it change this process's output streams
    or warning settings (``checks.show_warnings_on_stdout`` changes both)."""
    saved = sys.stdout, sys.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.stdout, sys.stderr = printed, io.StringIO()
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


@dataclass
class Verdict:
    passed: bool
    printed: str = ""           # what the test printed
    error: tuple = ()           # (name, message, where) for the autograded notebook
    feedback: str = ""          # what the student is told, when it failed
    hidden: bool = False        # it failed in the hidden region
    kernel_died: bool = False


def _constant_text(node) -> str | None:
    """The text of an assert message written as a constant (no value of the test's in it)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(v.value for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_text(node.left), _constant_text(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _statement_at(tree: ast.AST, line: int) -> ast.stmt | None:
    """The innermost statement spanning ``line``."""
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if found is None or (node.end_lineno - node.lineno) <= (found.end_lineno - found.lineno):
                found = node
    return found


def _failing_line(exc: BaseException, filename: str) -> tuple[int | None, bool]:
    """The line of the test cell's own frame the error passed through, and whether the error
    was raised right there (not in a function the line called)."""
    line, here, tb = None, False, exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        ours = code.co_filename == filename and code.co_name == "<module>"
        if ours and line is None:
            line = tb.tb_lineno
        here = ours
        tb = tb.tb_next
    return line, here


def judge(exc: Exception, text: str, filename: str) -> Verdict:
    """The verdict on a test that raised ``exc``, with what the student may be told."""
    name = type(exc).__name__
    full = exc.described() if isinstance(exc, StudentCodeError) else f"{exc}"[:MESSAGE_LIMIT]
    line, here = _failing_line(exc, filename)
    hidden = hidden_line_range(text)
    statement = _statement_at(ast.parse(text), line) if line else None
    where = f"(test cell, line {line})" if line else ""
    if line is None:
        return Verdict(False, error=(name, full, where), feedback="The grader could not run this test.")
    if hidden is not None and (line in hidden or (statement is not None and statement.lineno in hidden)):
        return Verdict(False, error=(name, full, where), feedback=HIDDEN_FAILURE, hidden=True)
    shown = " ".join((ast.get_source_segment(text, statement) or "").split())[:300] if statement else ""
    yours = "Run this test cell in your own notebook to see"
    if isinstance(exc, NotInNotebook):
        told = (f"`{exc.name}` is not defined in your notebook: define it as the question asks and run "
                "its cell, then this test cell.")
    elif isinstance(exc, StudentCodeError):
        told = f"Your code raised an error when this check called `{exc.function}`: {shown}. {yours} the error."
    elif isinstance(exc, CallTimedOut):
        told = f"Your code did not finish in time when this check called `{exc.function}`: {shown}."
    elif isinstance(exc, UnreadableAnswer):
        told = f"The grader could not read your kernel's answer to this check: {shown}. {yours} why."
    elif isinstance(exc, AssertionError) and here and isinstance(statement, ast.Assert):
        message = _constant_text(statement.msg) if statement.msg is not None else None
        told = message if message else f"This check failed: {shown}." + (
            f" {yours} its message." if statement.msg is not None else "")
    else:
        told = f"This check failed: {shown}. {yours} the details."
    return Verdict(False, error=(name, full, where), feedback=told)


def run_test(source: str, label: str, setup: dict, kernel: Kernel) -> Verdict:
    """Run one test cell here, reaching the notebook's names through ``kernel``."""
    text, filename = transform(source), f"<test {label}>"
    code = compile(text, filename, "exec")
    scope = _Scope(setup, names_loaded(code) - set(setup) - BUILTIN_NAMES, kernel.fetch)
    printed = io.StringIO()
    try:
        with _contained(printed):
            exec(code, scope)  # noqa: S102 - the instructor's test, in the grader's namespace
    except DeadKernelError:
        return Verdict(False, printed.getvalue(), ("DeadKernelError", "the kernel died while the test ran", ""),
                       "The kernel stopped while this test called your code (it crashed or was killed).",
                       kernel_died=True)
    except Exception as exc:  # noqa: BLE001 - every failure of a test is its verdict
        verdict = judge(exc, text, filename)
        verdict.printed = printed.getvalue()
        return verdict
    return Verdict(True, printed.getvalue())


# --- the test namespace -------------------------------------------------------------------------

_DATASETS: dict = {}


@contextlib.contextmanager
def _datasets_read_once():
    """While setup cells run here, ``load_dataset`` reads each dataset once per process."""
    import mcf_course
    import mcf_course.data

    original = mcf_course.data.load_dataset

    @functools.wraps(original)
    def load_dataset(name: str, location: str | None = None):
        key = (name, location or mcf_course.data.data_location())
        if key not in _DATASETS:
            _DATASETS[key] = original(name, location)
        return _DATASETS[key].copy(deep=True)

    mcf_course.load_dataset = mcf_course.data.load_dataset = load_dataset
    try:
        yield
    finally:
        mcf_course.load_dataset = mcf_course.data.load_dataset = original


class _NoShell:
    """``get_ipython()`` for setup cells run here: magics do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def setup_namespace(cells: list[tuple[str, str]]) -> dict:
    """Run the setup cells (label, source) here, in a namespace of their own."""
    namespace = {"__name__": "__main__", "get_ipython": _NoShell}
    printed = io.StringIO()
    with _datasets_read_once():
        for label, source in cells:
            try:
                with _contained(printed):
                    exec(compile(transform(source), f"<setup {label}>", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise RuntimeError(f"the setup cell {label} failed in the grader: "
                                   f"{type(exc).__name__}: {exc}") from exc
    namespace.pop("get_ipython")
    return namespace


@dataclass
class Plan:
    """What the grader takes from the assignment's source notebook (never the student's)."""

    setup: list          # (grade id, source) of the setup cells
    tests: dict          # grade id -> source of each test cell
    locked: set          # grade ids of every locked cell


@functools.lru_cache(maxsize=8)
def _plan_of(path: Path, modified: float) -> Plan:
    return plan(nbformat.read(path, as_version=4))


def plan(source: nbformat.NotebookNode) -> Plan:
    cells = source.cells
    meta = [c.get("metadata", {}).get("nbgrader", {}) for c in cells]
    first = next((i for i, m in enumerate(meta) if m.get("grade") or m.get("solution")), len(cells))
    setup = [(meta[i].get("grade_id", f"cell {i + 1}"), cells[i].source) for i in range(first)
             if cells[i].cell_type == "code" and meta[i].get("locked")]
    tests = {meta[i]["grade_id"]: c.source for i, c in enumerate(cells) if is_test_cell(c)}
    locked = {m["grade_id"] for m in meta if m.get("locked") and "grade_id" in m}
    return Plan(setup, tests, locked)


class QuickReadyClient(AsyncKernelClient):
    """A kernel client that is ready as soon as the kernel has answered on the shell channel and
    IOPub has carried that request's end (jupyter_client's own waits until IOPub has been
    silent for 0.2 s, and 0.2 s more whenever the first answer's IOPub messages were missed)."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (60 if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await ensure_async(self.shell_channel.get_msg(timeout=0.5))
            except Empty:
                reply = None
            if reply is not None and reply.get("msg_type") == "kernel_info_reply":
                asked, end = _parent(reply), time.monotonic() + 0.05
                while (left := end - time.monotonic()) > 0:
                    try:
                        msg = await ensure_async(self.iopub_channel.get_msg(timeout=left))
                    except Empty:
                        break
                    if _parent(msg) == asked and msg.get("msg_type") == "status" \
                            and msg.get("content", {}).get("execution_state") == "idle":
                        self._handle_kernel_info_reply(reply)
                        return
            if not await ensure_async(self._async_is_alive()):
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def test_outputs(verdict: Verdict) -> list:
    outputs = []
    if verdict.printed:
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text=verdict.printed))
    if not verdict.passed:
        name, message, where = verdict.error
        outputs.append(nbformat.v4.new_output("error", ename=name, evalue=message,
                                              traceback=[f"{name}: {message}", *([where] if where else [])]))
    return outputs


class TestsInWorker(Execute):
    """nbgrader's Execute, with test cells run in this process (see the module). The worker
    sets ``source_folder`` to the assignment's source folder (the notebooks with hidden tests)."""

    source_folder = Unicode("", help="the assignment's folder of source notebooks").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        started = time.monotonic()
        notebook = (resources or {}).get("nbgrader", {}).get("notebook")
        if not self.source_folder or not notebook:
            raise ValueError("TestsInWorker needs the assignment's source folder and the notebook's name")
        path = Path(self.source_folder) / f"{notebook}.ipynb"
        self._plan = _plan_of(path, path.stat().st_mtime)
        for cell in nb.cells:
            cell.metadata.pop(MARK, None)
        self._setup = setup_namespace(self._plan.setup)
        editable = [(_grade_id(c) or f"cell {i + 1}", c.source) for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and _grade_id(c) not in self._plan.locked]
        protected = {k: v for k, v in self._setup.items() if not k.startswith("__")}
        nb.metadata[MARK] = {"review": review(editable, protected)}
        TIMINGS["tests"] = TIMINGS.get("tests", 0) + time.monotonic() - started
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.client_factory = QuickReadyClient
        return km

    async def async_start_new_kernel(self, **kwargs):
        started = time.monotonic()
        try:
            return await super().async_start_new_kernel(**kwargs)
        finally:
            TIMINGS["kernel start"] = TIMINGS.get("kernel start", 0) + time.monotonic() - started

    async def async_start_new_kernel_client(self):
        started = time.monotonic()
        try:
            return await super().async_start_new_kernel_client()
        finally:
            TIMINGS["kernel ready"] = TIMINGS.get("kernel ready", 0) + time.monotonic() - started

    start_new_kernel = run_sync(async_start_new_kernel)
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess_cell(self, cell, resources, index):
        started = time.monotonic()
        gid = _grade_id(cell)
        if cell.cell_type != "code" or gid not in self._plan.tests:
            try:
                return super().preprocess_cell(cell, resources, index)
            finally:
                TIMINGS["execution"] = TIMINGS.get("execution", 0) + time.monotonic() - started
        source = self._plan.tests[gid]
        if not cell.source.endswith(source):  # (nbgrader's note on a test cell it put back stays)
            cell.source = source
        verdict = run_test(source, gid, self._setup, Kernel(self, self.timeout or 60))
        cell.outputs, cell.execution_count = test_outputs(verdict), None
        cell.metadata[MARK] = {"passed": verdict.passed, "hidden": verdict.hidden, "feedback": verdict.feedback}
        TIMINGS["tests"] = TIMINGS.get("tests", 0) + time.monotonic() - started
        if verdict.kernel_died:
            raise DeadKernelError("Kernel died")
        return cell, resources
