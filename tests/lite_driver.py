"""Drive an exercise in the book's in-browser site (``lite/``) from Playwright: open it as a
student's link does, and run code in its Pyodide kernel. Used by tests/test_lite.py and
benchmarks/lite_load.py. The site exposes its app as ``window.jupyterapp`` for this."""

from __future__ import annotations

STUB_MESSAGE = "Replace this line with your answer"

# Run code in the open notebook's kernel; resolves to the reply and the outputs' text (images
# are reported by their MIME type only).
_EXECUTE = """async ([code, timeout]) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, stop_on_error: false, store_history: true});
  const outputs = [];
  future.onIOPub = (msg) => {
    const c = msg.content;
    if (msg.header.msg_type === "stream") outputs.push(c.text);
    else if (msg.header.msg_type === "error") outputs.push(`${c.ename}: ${c.evalue}`);
    else if (c.data) outputs.push(c.data["text/plain"] || Object.keys(c.data).join(" "));
  };
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), timeout));
  const reply = await Promise.race([future.done, late]);
  return {status: reply.content.status, ename: reply.content.ename || "",
          evalue: reply.content.evalue || "", outputs};
}"""


def lite_address(base: str, module: str) -> str:
    return f"{base}lite/notebooks/index.html?path={module}.ipynb"


def open_exercise(page, base: str, module: str, timeout: float = 60_000) -> dict:
    """Open ``module``'s exercise in the notebook app; returns the notebook as the site served
    it (nbformat JSON)."""
    page.goto(lite_address(base, module))
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=timeout)
    return notebook_content(page, f"{module}.ipynb")


def notebook_content(page, path: str) -> dict:
    return page.evaluate(
        "async (path) => (await window.jupyterapp.serviceManager.contents.get(path, {content: true})).content",
        path)


def kernel_ready(page, timeout: float = 120_000) -> None:
    """Wait until the notebook's kernel has started and runs code."""
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel", timeout=timeout)
    reply = run_code(page, "1 + 1", timeout)
    assert reply["status"] == "ok" and reply["outputs"] == ["2"], reply


def run_code(page, code: str, timeout: float = 120_000) -> dict:
    """Run ``code`` in the open notebook's kernel: {status, ename, evalue, outputs}."""
    return page.evaluate(_EXECUTE, [code, timeout])


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def code(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def setup_cells(notebook: dict) -> list[str]:
    """The locked code cells before the first answer cell."""
    cells = []
    for cell in notebook["cells"]:
        if _nbgrader(cell).get("solution"):
            break
        if cell["cell_type"] == "code" and _nbgrader(cell).get("locked"):
            cells.append(code(cell))
    return cells


def kind(cell: dict) -> str:
    """'setup' (locked, not graded), 'answer' (nbgrader solution), 'test' (nbgrader grade) or
    'other' (any other code cell)."""
    meta = _nbgrader(cell)
    if meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test"
    return "setup" if meta.get("locked") else "other"
