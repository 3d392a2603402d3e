"""What a submission's code does that the grader cannot rule out: reasons for ``needs review``.

``mcf-grade`` runs the tests in its own process, so nothing a student's code does in its
kernel can change a verdict (see ``runner``). Code that *tries* to is still worth an
instructor's look, and so is code that could shape what the grader reads from the kernel in
ways this package does not model. Every student-editable code cell (answer cells and cells
the student added) is read, never run, after IPython's own input transformation (so
``%magic`` and ``!shell`` lines are seen as the calls they become), and any of these is
reported with the cell and line:

- IPython hooks and transformers (``events.register``, input and AST transformers, the
  display hook and publisher, custom exception handlers, updatable displays), the shell
  itself (``get_ipython``) beyond a short list of everyday magics;
- frames and interpreter internals (``sys._getframe``, ``inspect``, ``gc``, ``f_back``,
  ``__globals__``, ``__subclasses__`` ...), tracing and profiling (``sys.settrace``);
- rebinding a builtin or a name the tests use (``np``, ``pd``, ``checks``, the data tables:
  every name the setup cells define) at the top level of the notebook, and patching an
  attribute of a module or class (``np.isclose = ...``); importing the very same module under
  the same name again (``import pandas as pd``) is fine;
- code from strings (``exec``, ``eval``, ``compile``, ``__import__``), computed attribute
  names (``getattr(x, name)``), the namespace as a dictionary (``globals()``, ``vars()``);
- ``ctypes`` and other modules that reach below Python, and ``/proc`` paths.

A flag is not a verdict: honest code can trip one (``sum = 0`` rebinds a builtin), and the
reason says exactly what was seen.
"""

from __future__ import annotations

import ast
import builtins
import sys

BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("__")) | {"__import__", "__build_class__"}
# Magics a student may use without review; the code of %time/%timeit/%%capture is read too.
EVERYDAY_MAGICS = {"matplotlib", "time", "timeit", "pip", "conda", "who", "whos", "who_ls", "pwd",
                   "ls", "precision", "pprint", "capture", "xmode"}
MAGICS_WITH_CODE = {"time", "timeit", "capture"}
HOOKS = {"events", "input_transformers_cleanup", "input_transformers_post", "input_transformer_manager",
         "ast_transformers", "displayhook", "display_pub", "display_formatter", "set_custom_exc",
         "custom_exceptions", "showtraceback", "showsyntaxerror", "excepthook", "register_magic_function",
         "register_magics", "user_ns", "user_global_ns", "run_cell", "run_cell_async", "get_ipython",
         "update_display", "register_post_execute", "ipython_display_formatter"}
INTERNALS = {"_getframe", "_current_frames", "currentframe", "getouterframes", "getinnerframes", "f_back",
             "f_globals", "f_locals", "f_code", "f_builtins", "tb_frame", "tb_next", "gi_frame", "cr_frame",
             "ag_frame", "get_referrers", "get_referents", "get_objects", "settrace", "setprofile",
             "addaudithook", "monitoring", "import_module", "__globals__", "__code__", "__closure__",
             "__subclasses__", "__builtins__", "__dict__", "__bases__", "__base__", "__mro__",
             "__setattr__", "__delattr__", "__getattribute__", "__import__", "__loader__", "__spec__"}
LOW_LEVEL_MODULES = {"ctypes", "_ctypes", "cffi", "gc", "inspect", "builtins", "__builtin__", "importlib",
                     "dis", "marshal", "runpy", "code", "codeop", "_thread", "pdb", "bdb", "trace",
                     "faulthandler", "mmap", "IPython.core",
                     "ipykernel", "zmq", "jupyter_client", "traitlets"}
CODE_FROM_STRINGS = {"exec", "eval", "compile", "__import__", "execfile"}
NAMESPACE_CALLS = {"globals", "locals", "vars"}
MAX_REASONS = 8


def _transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _root(node: ast.AST) -> ast.Name | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "(...)"


class _Reader(ast.NodeVisitor):
    """Collects what one cell does, as (line, what) pairs."""

    def __init__(self, protected: dict, modules: dict[str, str]):
        self.protected, self.modules = protected, modules  # modules: alias -> module name
        self.found: list[tuple[int, str]] = []
        self.depth = 0  # 0 at the notebook's top level
        self.declared_global: list[set[str]] = [set()]
        self.exempt: set[int] = set()

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    # --- names bound at the top level --------------------------------------------------------

    def _binds(self, node: ast.AST, name: str, module_object=None, has_object: bool = False) -> None:
        top_level = self.depth == 0 or name in self.declared_global[-1]
        if not top_level:
            return
        if name in self.protected:
            if has_object and module_object is not None and module_object is self.protected[name]:
                return  # the same module or object under the same name again
            self.flag(node, f"rebinds `{name}`, a name the tests use")
        elif name in BUILTIN_NAMES:
            self.flag(node, f"rebinds the builtin `{name}`")

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._binds(node, node.id)
        elif id(node) not in self.exempt:
            if node.id == "get_ipython":
                self.flag(node, "reaches IPython's shell (`get_ipython`)")
            elif node.id == "update_display":
                self.flag(node, "updates a display shown earlier (`update_display`)")
            elif node.id == "__builtins__":
                self.flag(node, "reaches the builtins (`__builtins__`)")

    def _inside(self, node: ast.AST, children: list) -> None:
        """Visit ``children`` (the body of a function, class, lambda or comprehension) as
        a scope of their own: names they bind are not the notebook's, unless declared global."""
        declared = {n for child in children for sub in ast.walk(child) if isinstance(sub, ast.Global)
                    for n in sub.names}
        for name in sorted(declared & (set(self.protected) | BUILTIN_NAMES)):
            self.flag(node, f"declares `{name}` global in a function")
        self.depth += 1
        self.declared_global.append(declared)
        for child in children:
            self.visit(child)
        self.declared_global.pop()
        self.depth -= 1

    def visit_FunctionDef(self, node) -> None:
        outer = [*node.decorator_list, *node.args.defaults, *[d for d in node.args.kw_defaults if d]]
        for child in outer:
            self.visit(child)
        self._binds(node, node.name)
        self._inside(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        self._binds(node, node.name)
        self._inside(node, node.body)

    def visit_Lambda(self, node) -> None:
        for child in [*node.args.defaults, *[d for d in node.args.kw_defaults if d]]:
            self.visit(child)
        self._inside(node, [node.body])

    def _comprehension(self, node) -> None:
        self._inside(node, [child for child in ast.iter_child_nodes(node)])

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module_used(node, alias.name)
            bound = alias.asname or alias.name.split(".")[0]
            module = alias.name if alias.asname else alias.name.split(".")[0]
            self._binds(node, bound, sys.modules.get(module), has_object=module in sys.modules)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._module_used(node, module)
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, f"imports every name of `{module}` (`import *`), which can rebind names the tests use")
                continue
            self._module_used(node, f"{module}.{alias.name}")
            if alias.name in HOOKS or alias.name in INTERNALS:
                self.flag(node, f"imports `{alias.name}` from `{module}`")
            bound = alias.asname or alias.name
            parent = sys.modules.get(module)
            obj = sys.modules.get(f"{module}.{alias.name}", getattr(parent, alias.name, None))
            self._binds(node, bound, obj, has_object=obj is not None and node.level == 0)

    def _module_used(self, node, name: str) -> None:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            if ".".join(parts[:end]) in LOW_LEVEL_MODULES:
                self.flag(node, f"imports `{'.'.join(parts[:end])}`")
                return

    # --- attributes, calls, strings -----------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in HOOKS:
            self.flag(node, f"uses IPython's hooks or shell (`{_dotted(node)}`)")
        elif node.attr in INTERNALS:
            self.flag(node, f"reaches interpreter internals (`{_dotted(node)}`)")
        root = _root(node)
        if root is not None and self.modules.get(root.id) == "sys" and node.attr == "modules":
            self.flag(node, "reaches loaded modules (`sys.modules`)")
        if isinstance(node.ctx, (ast.Store, ast.Del)) and root is not None and self._patchable(root.id) \
                and ".options." not in f"{_dotted(node)}.":  # pd.options.display.max_rows = 10 is fine
            self.flag(node, f"patches `{_dotted(node)}`")
        self.generic_visit(node)

    def _patchable(self, name: str) -> bool:
        """A module, class or function the tests or the notebook rely on (not a data table)."""
        if name in self.modules or name in BUILTIN_NAMES:
            return True
        if name in self.protected:
            value = self.protected[name]
            return callable(value) or type(value).__name__ == "module"
        return False

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        magic = self._magic(node)
        if magic is not None:
            kind, name = magic
            if kind in ("run_line_magic", "run_cell_magic"):
                if name not in EVERYDAY_MAGICS:
                    self.flag(node, f"uses the magic `%{name}`")
                elif name in MAGICS_WITH_CODE:
                    code = node.args[2] if kind == "run_cell_magic" and len(node.args) > 2 else \
                        (node.args[1] if len(node.args) > 1 else None)
                    if isinstance(code, ast.Constant) and isinstance(code.value, str):
                        self._read_nested(node, code.value)
            for arg in node.args[1:]:
                if not isinstance(arg, ast.Constant):
                    self.visit(arg)
            return
        if isinstance(func, ast.Name):
            if func.id in CODE_FROM_STRINGS:
                self.flag(node, f"runs code from a string (`{func.id}`)")
            elif func.id in NAMESPACE_CALLS:
                self.flag(node, f"reads or changes the namespace as a dictionary (`{func.id}()`)")
            elif func.id in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) >= 2:
                attribute = node.args[1]
                if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                    self.flag(node, f"uses a computed attribute name (`{func.id}`)")
                else:
                    if attribute.value in HOOKS or attribute.value in INTERNALS:
                        self.flag(node, f"reaches `{attribute.value}` (`{func.id}`)")
                    root = _root(node.args[0])
                    if func.id != "getattr" and func.id != "hasattr" and root is not None \
                            and self._patchable(root.id):
                        self.flag(node, f"patches `{_dotted(node.args[0])}.{attribute.value}` (`{func.id}`)")
        for keyword in node.keywords:
            if keyword.arg in ("display_id", "transient"):
                self.flag(node, "makes a display that can be updated later (`display_id`)")
        self.generic_visit(node)

    def _magic(self, node: ast.Call) -> tuple[str, str] | None:
        """For IPython's own translation of ``%name ...`` or ``!cmd`` lines: (method, name)."""
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython" \
                and not func.value.args and func.attr in ("run_line_magic", "run_cell_magic", "system", "getoutput") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            self.exempt.add(id(func.value.func))
            return func.attr, node.args[0].value
        return None

    def _read_nested(self, node, source: str) -> None:
        try:
            tree = ast.parse(_transform(source))
        except (SyntaxError, ValueError):
            return
        inner = _Reader(self.protected, self.modules)
        inner.depth, inner.declared_global = self.depth, self.declared_global
        inner.visit(tree)
        self.found += [(node.lineno, what) for _, what in inner.found]

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "/proc/" in node.value:
            self.flag(node, "names a `/proc` path (process internals)")


def _module_aliases(trees: list[ast.AST]) -> dict[str, str]:
    aliases = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname \
                        else alias.name.split(".")[0]
    return aliases


def review(cells: list[tuple[str, str]], protected: dict) -> list[str]:
    """Reasons to review a submission: ``cells`` are (label, source) of every student-editable
    code cell; ``protected`` maps each name the setup cells define to its value."""
    trees = []
    for label, source in cells:
        try:
            trees.append((label, ast.parse(_transform(source))))
        except (SyntaxError, ValueError):  # it cannot run either; nothing to review
            continue
    modules = {alias: module for alias, module in _module_aliases([t for _, t in trees]).items()}
    modules.update({name: value.__name__ for name, value in protected.items()
                    if type(value).__name__ == "module"})
    places: dict[str, list[str]] = {}  # what was seen -> where
    for label, tree in trees:
        reader = _Reader(protected, modules)
        reader.visit(tree)
        shell_lines = {line for line, what in reader.found if what.startswith("uses IPython's hooks")}
        for line, what in reader.found:
            if what.startswith("reaches IPython's shell") and line in shell_lines:
                continue  # said more precisely by the hook on the same line
            where = f"{label} line {line}" if line else label
            if where not in places.setdefault(what, []):
                places[what].append(where)
    reasons = []
    for what, where in places.items():
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        reasons.append(f"{what} ({shown})")
    if len(reasons) > MAX_REASONS:
        reasons = reasons[:MAX_REASONS] + [f"and {len(reasons) - MAX_REASONS} more findings"]
    return reasons
