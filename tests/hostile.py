"""Cheats and honest habits, as code put into a submission (the hostile corpus's building blocks).

Each cheat is what a student who studied the grader would write to inflate a score or to read
hidden tests through the feedback (issue 19), made generic so that the same code attacks any
exercise: it goes in front of the first answer cell, and where it needs the notebook's own
answer names, it gets them from ``answer_names``. ``apply`` builds a submission from a base
notebook (the blank release or the solution) and a cheat.

What is expected of each (see tests/test_grading_engine.py and tests/test_classgrade.py):
a blank notebook with any cheat scores 0 autograded points (or the submission is flagged
``needs review``), and no feedback file or report shows a line of a hidden test in any
encoding. Honest habits (warnings, stderr, progress without a newline, figures) lose nothing.
"""

from __future__ import annotations

import ast
import copy
import html
import re

# --- cheats that fake passing tests ----------------------------------------------------------

DISPLAYHOOK = ("get_ipython().events.register('pre_run_cell', "
               "lambda info: get_ipython().displayhook('ok'))")

SWALLOW_ERRORS = '''
import ast
class Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=[statement], handlers=[handler], orelse=[], finalbody=[])
                     for statement in node.body]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(Swallow())
'''

ASSERT_TO_PASS = '''
import ast
class NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)
get_ipython().ast_transformers.append(NoAsserts())
'''

CUT_TEST_CELLS = ("get_ipython().input_transformers_cleanup.append(\n"
                  "    lambda lines: [] if any('assert' in line for line in lines) else lines)")

ABSORBER = '''
class Anything:
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs): return self
    def __getattr__(self, name): return self
    def __getitem__(self, key): return self
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __bool__(self): return True
    def __iter__(self): return iter(())
    def __len__(self): return 0
    def __hash__(self): return 0
anything = Anything()
isinstance = lambda *args, **kwargs: True
len = lambda *args: 0
set = lambda *args: anything
np = pd = anything
'''


def absorb(names: list[str]) -> str:
    """Rebind builtins, ``np``, ``pd``, the data tables and every answer to absorbers: no hook."""
    return ABSORBER + "".join(f"{name} = anything\n" for name in names)


ALWAYS_EQUAL = '''
import pandas as _pandas
class AlwaysSeries(_pandas.Series):
    def __eq__(self, other): return True
    def to_dict(self, *args, **kwargs): return {}
class AlwaysFrame(_pandas.DataFrame):
    def __eq__(self, other): return True
class AlwaysStr(str):
    def __eq__(self, other): return True
    __hash__ = str.__hash__
class AlwaysInt(int):
    def __eq__(self, other): return True
    __hash__ = int.__hash__
class AlwaysFloat(float):
    def __eq__(self, other): return True
    __hash__ = float.__hash__
class AlwaysDict(dict):
    def __eq__(self, other): return True
def always(*args, **kwargs):
    return AlwaysSeries([1])
'''


def always_equal(functions: list[str], variables: list[str]) -> str:
    """Answers whose ``==`` is always true: subclasses of the types the tests expect."""
    return ALWAYS_EQUAL + "".join(f"{name} = always\n" for name in functions) + \
        "".join(f"{name} = AlwaysInt(1)\n" for name in variables)


PATCH_ISCLOSE = "import numpy\nnumpy.isclose = lambda *args, **kwargs: True"

# --- cheats that read hidden tests and show them in the feedback -------------------------------

SPY = '''
import linecache, sys
SEEN = []
def spy(function):
    def wrapper(*args, **kwargs):
        texts = [repr(a) for a in args] + [repr(v) for v in kwargs.values()]
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if "ipykernel_" in name or name.startswith("<"):  # a cell's code: read its source
                texts += [name, "".join(linecache.getlines(name))]
            texts += [str(v) for v in frame.f_globals.get("In", [])]
            frame = frame.f_back
        SEEN.append("\\n".join(texts))
        return function(*args, **kwargs)
    wrapper.spied = True
    return wrapper
'''
WRAP_FUNCTIONS = '''
for _name, _value in list(globals().items()):
    if callable(_value) and getattr(_value, "__module__", "") == "__main__" and _name != "spy" \\
            and not getattr(_value, "spied", False) and not isinstance(_value, type):
        globals()[_name] = spy(_value)
'''
SHOW_SEEN = '''
import base64, io
from IPython.display import HTML, Image, display, update_display
seen = ("\\n".join(SEEN) + "\\n".join(str(v) for v in In))[:100_000]
print("\\u200b".join(seen))                                              # zero-width spaces
display(HTML("".join(f"&#{ord(c)};" for c in seen)))                     # HTML entities
middle = len(seen) // 2
print(seen[:middle]); sys.stdout.flush(); print(seen[middle:])            # split in two outputs
import matplotlib.pyplot as _plt
_figure = _plt.figure(figsize=(8, 40))
_figure.text(0, 0, seen[:6000], fontsize=4)                              # drawn into a PNG
_plt.show()
update_display(HTML(seen), display_id="mcf-leak")
raise type("Cell In[1], line 1", (Exception,), {})(seen)                 # named like a cell frame
'''
DISPLAY_TO_UPDATE = 'from IPython.display import HTML, display\ndisplay(HTML("..."), display_id="mcf-leak")'
UPDATE_FROM_HOOK = '''
from IPython.display import HTML, update_display
get_ipython().events.register("post_run_cell",
    lambda result: update_display(HTML(result.info.raw_cell), display_id="mcf-leak"))
'''
RAISE_CELL_NAMED = '''
import sys
def _named_error(function):
    def wrapper(*args, **kwargs):
        wrapper.calls = getattr(wrapper, "calls", 0) + 1
        if wrapper.calls > 1:  # a test is calling: show what it passed, under a cell's name
            raise type("Cell In[1], line 1", (Exception,), {})("\\n".join(map(repr, args)))
        return function(*args, **kwargs)
    return wrapper
'''
WRAP_WITH_NAMED_ERROR = '''
for _name, _value in list(globals().items()):
    if callable(_value) and getattr(_value, "__module__", "") == "__main__" and not _name.startswith("_") \\
            and not isinstance(_value, type) and getattr(_value, "__name__", "") != "wrapper":
        globals()[_name] = _named_error(_value)
'''

# --- honest habits ---------------------------------------------------------------------------

HONEST_IN_FUNCTION = ('import sys, warnings; warnings.warn("this will change", FutureWarning); '
                      'print("debug: called", file=sys.stderr); print("working", end=""); '
                      'sys.stdout.write("\\r50%")')
HONEST_FIGURE = ("import matplotlib.pyplot as plt\n_fig, _ax = plt.subplots()\n"
                 "_ax.plot([1, 2, 3], [3, 1, 2])\n_ax.set_title('my own check')\nplt.show()")


# --- building submissions ----------------------------------------------------------------------

def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answer_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"
            and c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def answer_names(solution) -> tuple[list[str], list[str]]:
    """(functions, variables) the answer cells of the solution define at the top level."""
    functions, variables = [], []
    for cell in answer_cells(solution):
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef):
                functions.append(node.name)
            elif isinstance(node, ast.Assign):
                variables += [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isidentifier()
                              and not t.id.isupper()]
    return functions, variables


def setup_names(solution) -> list[str]:
    """Names the setup cells bind (data tables and modules)."""
    names = []
    for cell in solution.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") or meta.get("solution"):
            break
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse("\n".join(line for line in cell.source.splitlines()
                                                     if not line.lstrip().startswith(("%", "!"))))):
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def in_cell(nb, gid: str, code: str, before: bool = True):
    cell = next(c for c in nb.cells if grade_id(c) == gid)
    cell.source = f"{code}\n{cell.source}" if before else f"{cell.source}\n{code}"
    return nb


def in_functions(nb, code: str):
    """Make every function of every answer cell run ``code`` first when it is called."""
    for cell in answer_cells(nb):
        lines = cell.source.splitlines()
        out = []
        for i, line in enumerate(lines):
            out.append(line)
            if line.startswith("def ") and line.rstrip().endswith(":"):
                body = next((later for later in lines[i + 1:] if later.strip()), "    pass")
                indent = body[: len(body) - len(body.lstrip())] or "    "
                out.append(f"{indent}{code}")
        cell.source = "\n".join(out)
    return nb


def answered(blank, source):
    """The release with the solution's answers: what a student who got everything right hands in."""
    nb = copy.deepcopy(blank)
    answers = {grade_id(c): c.source for c in answer_cells(source)}
    for cell in answer_cells(nb):
        cell.source = answers[grade_id(cell)]
    return nb


def run_before_handing_in(nb, folder):
    """The notebook as a student hands it in after running it (outputs and all), run in ``folder``."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def cheats(solution) -> dict[str, tuple[str, object]]:
    """name -> (base: 'blank' or 'solution', function(nb) -> nb) for every cheat."""
    functions, variables = answer_names(solution)
    first = grade_id(answer_cells(solution)[0])
    every = [grade_id(c) for c in answer_cells(solution)]
    last = every[-1]
    tables = setup_names(solution)

    def first_cell(code):
        return lambda nb: in_cell(nb, first, code)

    def spy_and_show(nb):
        in_cell(nb, first, SPY + "\n" + DISPLAY_TO_UPDATE)
        for gid in every:
            in_cell(nb, gid, WRAP_FUNCTIONS, before=False)
        return in_cell(nb, last, SHOW_SEEN, before=False)

    def named_error(nb):
        in_cell(nb, first, RAISE_CELL_NAMED)
        for gid in every:
            in_cell(nb, gid, WRAP_WITH_NAMED_ERROR, before=False)
        return nb

    return {
        "displayhook": ("blank", first_cell(DISPLAYHOOK)),
        "swallow-errors": ("blank", first_cell(SWALLOW_ERRORS)),
        "assert-to-pass": ("blank", first_cell(ASSERT_TO_PASS)),
        "cut-test-cells": ("blank", first_cell(CUT_TEST_CELLS)),
        "absorbers": ("blank", first_cell(absorb(tables + functions + variables))),
        "always-equal": ("blank", lambda nb: in_cell(nb, last, always_equal(functions, variables), before=False)),
        "patched-isclose": ("blank", first_cell(PATCH_ISCLOSE)),
        "update-display-leak": ("solution", first_cell(DISPLAY_TO_UPDATE + "\n" + UPDATE_FROM_HOOK)),
        "frame-spy-leak": ("solution", spy_and_show),
        "cell-named-exception": ("solution", named_error),
    }


def honest(solution):
    """A correct submission whose functions warn, write to stderr and print progress without a
    newline when called, and whose first answer cell draws a figure."""
    nb = in_functions(copy.deepcopy(solution), HONEST_IN_FUNCTION)
    return in_cell(nb, grade_id(answer_cells(nb)[0]), HONEST_FIGURE, before=False)


# --- reading what a student was shown ------------------------------------------------------------

ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def normalised(text: str) -> str:
    """Text as a reader would take it in: tags out, entities decoded, zero-width characters and
    all whitespace removed (so a line split over two outputs is whole again)."""
    text = html.unescape(html.unescape(re.sub(r"<[^>]+>", " ", text)))
    return re.sub(r"\s+", "", ZERO_WIDTH.sub("", text))


def secret_lines(source) -> list[str]:
    """Lines of the hidden tests that the visible notebook does not show anywhere (whitespace
    ignored): what must never reach a student."""
    from mcf_course.grading.feedback import hidden_snippets, without_hidden_region

    visible = re.sub(r"\s+", "", "\n".join(without_hidden_region(c.source) for c in source.cells))
    return [s for s in hidden_snippets(source.cells) if re.sub(r"\s+", "", s) not in visible]


def leaked_lines(text: str, snippets: list[str]) -> list[str]:
    flat = normalised(text)
    return [s for s in snippets if re.sub(r"\s+", "", s) in flat]


IMAGE = re.compile(r"data:image/(?:png|jpeg|svg\+xml);base64,([A-Za-z0-9+/=\s]+)")


def images_in_html(text: str) -> set[str]:
    return {re.sub(r"\s+", "", m) for m in IMAGE.findall(text)}


def images_in_notebook(nb) -> set[str]:
    found = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if mime.startswith("image/"):
                    found.add(re.sub(r"\s+", "", "".join(value) if isinstance(value, list) else value))
    return found
