"""The exercises in the browser: the book's in-browser site (``lite/``, JupyterLite with Pyodide),
served on localhost and driven in Debian's Chromium with every other host blocked.

From one page load (the link on Module 1's page), in the one Pyodide kernel it starts:
- a student's first steps through the notebook app's own Run command: the setup cells run, the
  first blank answer and its test cell show the stub's message;
- for every module, the exercise as the site serves it: setup cells run, blank answers raise the
  stub's ``NotImplementedError`` (or leave a name undefined), and every visible test reports it;
  then the module's solution notebook (with the hidden tests) and its chapter's code (figures and
  explorers) run with zero errors;
- an explorer renders in the notebook and responds; the helpers read data from a URL.
Then, in a second window without a service worker, the setup cells still find the data.
What to run is derived from the notebooks' nbgrader metadata, not from their questions.
Any request to another host fails the test. Screenshots land in ``_build/screenshots/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from conftest import MODULES, ROOT
from lite_driver import STUB_MESSAGE, code, kernel_ready, kind, notebook_content, run_code, setup_cells

SCREENSHOTS = ROOT / "_build" / "screenshots"
LOCAL = ("localhost", "127.0.0.1")


def new_window(browser, **options):
    """A fresh browser window (empty cache and storage) that records requests to other hosts
    and failed requests to this one."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    problems: list[str] = []

    def check(request):
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and urlparse(request.url).hostname not in LOCAL:
            problems.append(f"request to another host: {request.url}")

    context.on("request", check)
    context.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})")
               if urlparse(r.url).hostname in LOCAL else None)
    return context, context.new_page(), problems


def exercise_link(built: Path, module: str) -> str:
    """The href of the "open in your browser" link on the module's page."""
    html = (built / "book" / f"{module}.html").read_text(encoding="utf-8")
    links = re.findall(r'class="[^"]*lite-exercise-link[^"]*"[^>]*href="([^"]+)"', html)
    assert len(links) == 1, f"{module}.html should have one link to its exercise in the browser, has {links}"
    return links[0].replace("&amp;", "&")


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def is_stub(reply: dict) -> bool:
    """The cell reports the stub: its error, or a test's failure that quotes it (a refusal test
    that expected a ValueError says what was raised instead)."""
    return any(name in reply["ename"] for name in ("NotImplementedError", "AssertionError")) \
        and STUB_MESSAGE in reply["evalue"]


def describe(cell: dict, reply: dict) -> str:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return f"{meta.get('grade_id', code(cell)[:40])}: {reply['status']} {reply['ename']} {reply['evalue'][:200]}"


# --- the build: what it takes, and what stops it ---------------------------------------------

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import course_lite  # noqa: E402


def test_the_helper_wheel_carries_the_datasets_and_finds_them_anywhere(tmp_path):
    wheel, depends = course_lite.helper_wheel(tmp_path)
    assert depends == ["pandas", "matplotlib", "ipywidgets"]
    with zipfile.ZipFile(tmp_path / wheel) as archive:
        archive.extractall(tmp_path / "site-packages")
        assert any(n.endswith(".dist-info/RECORD") for n in archive.namelist())
    elsewhere = tmp_path / "elsewhere"  # no datasets/ here nor above
    elsewhere.mkdir()
    script = ("from mcf_course.data import data_location, load_dataset; "
              "print(data_location()); print(len(load_dataset('actors')))")
    env = {k: v for k, v in os.environ.items() if k != "MCF_COURSE_DATA"}
    result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True,
                            env=dict(env, PYTHONPATH=str(tmp_path / "site-packages")), check=False)
    from mcf_course import load_dataset

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "site-packages" / "mcf_course" / "datasets"),
                                     str(len(load_dataset("actors")))]


def test_a_file_that_does_not_match_the_official_lock_stops_the_build(tmp_path, monkeypatch):
    dist = tmp_path / "pyodide"
    dist.mkdir()
    good, bad = b"the official file", b"a file someone changed"
    (dist / "good-1.0-py3-none-any.whl").write_bytes(good)
    (dist / "bad-1.0-py3-none-any.whl").write_bytes(bad)
    lock = {"packages": {
        "good": {"file_name": "good-1.0-py3-none-any.whl", "sha256": hashlib.sha256(good).hexdigest()},
        "bad": {"file_name": "bad-1.0-py3-none-any.whl", "sha256": hashlib.sha256(good).hexdigest()}}}
    monkeypatch.setenv(course_lite.PYODIDE_DIST_ENV, str(dist))
    course_lite.pyodide_packages(lock, ["good"], tmp_path / "site")
    assert (tmp_path / "site" / "good-1.0-py3-none-any.whl").read_bytes() == good
    with pytest.raises(ValueError, match="does not match the sha256"):
        course_lite.pyodide_packages(lock, ["good", "bad"], tmp_path / "site")
    assert not (tmp_path / "site" / "bad-1.0-py3-none-any.whl").exists()
    with pytest.raises(ValueError, match="has no"):
        course_lite.pyodide_packages({"packages": {"gone": {"file_name": "gone.whl", "sha256": "0"}}}, ["gone"],
                                     tmp_path / "site")


def official_lock() -> dict:
    from course_book import fetch_npm_package

    return json.loads((fetch_npm_package("pyodide") / "pyodide-lock.json").read_text(encoding="utf-8"))


def test_the_slimmed_wheels_are_their_checked_originals_less_what_is_documented(built_book, tmp_path):
    site = built_book / "lite" / "static" / "pyodide"
    lock = json.loads((site / "pyodide-lock.json").read_text())
    derived = json.loads((site / course_lite.DERIVED_RECORD).read_text())
    by_file = {entry["file_name"]: name for name, entry in lock["packages"].items()}
    assert sorted(by_file[f] for f in derived) == sorted(course_lite.SLIMMED)
    published = {p["file_name"]: p["sha256"] for p in official_lock()["packages"].values()}
    for file_name, origin in derived.items():
        name = by_file[file_name]
        data = (site / file_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == lock["packages"][name]["sha256"], f"{file_name}: lock's sha256"
        assert f"-{course_lite.DERIVED_BUILD}-" in file_name and origin["left_out"] == course_lite.SLIMMED[name]
        if origin["derived_from"] in course_lite.PYPI_FILES:
            original = course_lite.fetch_pypi_file(origin["derived_from"])
            assert origin["original_sha256"] == course_lite.PYPI_FILES[origin["derived_from"]][1]
        else:
            original = course_lite.LITE_CACHE / "pyodide" / origin["derived_from"]
            assert origin["original_sha256"] == published[origin["derived_from"]]
        assert hashlib.sha256(original.read_bytes()).hexdigest() == origin["original_sha256"], file_name
        # The same bytes again from the original (reproducible); every file left in is the
        # original's, byte for byte, but the WHEEL, the RECORD and Pygments' lexer index.
        again, _ = course_lite.slimmed_wheel(original, course_lite.SLIMMED[name], tmp_path)
        assert (tmp_path / again).read_bytes() == data, f"{file_name} is not reproducible"
        with zipfile.ZipFile(original) as before, zipfile.ZipFile(site / file_name) as after:
            kept = {m for m in after.namelist() if not m.endswith("/")}
            gone = set(before.namelist()) - kept
            assert origin["files_left_out"] == len(gone) > 0, file_name
            assert all(course_lite.left_out(m, origin["left_out"]) for m in gone), file_name
            changed = {m for m in kept if after.read(m) != before.read(m)}
            assert {m.rsplit("/", 1)[1] for m in changed} <= {"WHEEL", "RECORD", "_mapping.py"}, changed
            info = next(m.split("/")[0] for m in kept if m.endswith(".dist-info/RECORD"))
            assert f"Build: {course_lite.DERIVED_BUILD}" in after.read(f"{info}/WHEEL").decode()
            record = {line.split(",")[0] for line in after.read(f"{info}/RECORD").decode().splitlines()}
            assert record == kept, f"{file_name}: its RECORD does not list what it holds"
    pandas = zipfile.ZipFile(site / next(f for f in derived if f.startswith("pandas-"))).namelist()
    assert not any(m.startswith("pandas/tests/") for m in pandas) and "pandas/core/frame.py" in pandas
    fonts = {Path(m).name for m in zipfile.ZipFile(site / next(f for f in derived if f.startswith("matplotlib-")))
             .namelist() if "/mpl-data/fonts/" in m}
    assert {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
            "STIXGeneral.ttf", "cmr10.ttf"} <= fonts and "DejaVuSerif.ttf" not in fonts


def test_the_slimmed_lexer_index_names_only_lexers_that_load(built_book):
    site = built_book / "lite" / "static" / "pyodide"
    wheel = next(site.glob(f"pygments-*-{course_lite.DERIVED_BUILD}-*.whl"))
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import pygments.lexers as lexers\n"
              "names = list(lexers.LEXERS); [getattr(lexers, n) for n in names]; print(len(names))\n"
              "from pygments.lexers import BashLexer, HtmlLexer, JavascriptLexer, RubyLexer, PerlLexer, "
              "PythonLexer, Python3Lexer, TexLexer  # what IPython.lib.lexers imports\n"
              "print(lexers.guess_lexer('import os').name, lexers.get_lexer_by_name('sql').name)")
    # -S: no site-packages, so only the slimmed wheel's Pygments (and no other package's plugins)
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(wheel)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    count, names = result.stdout.splitlines()
    assert 50 < int(count) < 200 and names == "Python SQL", result.stdout


def test_a_site_whose_kernel_could_fall_back_to_a_cdn_or_pypi_stops_the_build(built_book, tmp_path):
    site = tmp_path / "lite"
    for relative in ("jupyter-lite.json", "static/pyodide/pyodide-lock.json", "api/contents/all.json",
                     f"static/pyodide/{course_lite.DERIVED_RECORD}"):
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built_book / "lite" / relative, site / relative)
    lock = json.loads((site / "static/pyodide/pyodide-lock.json").read_text())
    for entry in lock["packages"].values():
        shutil.copy(built_book / "lite/static/pyodide" / entry["file_name"], site / "static/pyodide")
    notebooks = [f"{m}.ipynb" for m in MODULES]
    course_lite.check_lite_site(site, sorted(lock["packages"]), notebooks)  # the site as built passes
    config = json.loads((site / "jupyter-lite.json").read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"][course_lite.KERNEL_PLUGIN]
    del kernel["pyodideUrl"]  # as a rebuild once left it: the kernel then loads Pyodide from a CDN
    kernel["disablePyPIFallback"] = False
    (site / "jupyter-lite.json").write_text(json.dumps(config))
    next((site / "static/pyodide").glob("numpy-*.whl")).write_bytes(b"tampered")
    # A file whose lock entry was made to match it, and a derived file said to come from another
    # original: neither is a published file nor derived from one.
    six = lock["packages"]["six"]
    (site / "static/pyodide" / six["file_name"]).write_bytes(b"not Pyodide's six")
    six["sha256"] = hashlib.sha256(b"not Pyodide's six").hexdigest()
    (site / "static/pyodide/pyodide-lock.json").write_text(json.dumps(lock))
    record = site / "static/pyodide" / course_lite.DERIVED_RECORD
    derived = json.loads(record.read_text())
    pandas = next(f for f in derived if f.startswith("pandas-"))
    derived[pandas]["original_sha256"] = "0" * 64
    record.write_text(json.dumps(derived))
    with pytest.raises(RuntimeError) as error:
        course_lite.check_lite_site(site, sorted(lock["packages"]), notebooks)
    for words in ("pyodideUrl is None", "PyPI fallback is not disabled", "numpy-2.0.2",
                  f"{six['file_name']} is not a published file", f"{pandas} is derived from"):
        assert words in str(error.value)


# --- the book's links, and the site in a browser ----------------------------------------------

def test_module_and_exercise_pages_link_to_the_exercises_in_the_browser(built_book):
    for module in MODULES:
        link = exercise_link(built_book, module)
        target = urlparse(urljoin(f"http://localhost/book/{module}.html", link))
        assert (built_book / target.path.lstrip("/")).is_file(), f"{module}: {link} leads nowhere"
        assert target.query == f"path={module}.ipynb", link
        assert (built_book / "lite" / "files" / f"{module}.ipynb").read_bytes() == \
            (ROOT / "exercises" / module / f"{module}.ipynb").read_bytes(), f"{module}: the site's notebook is stale"
        text = re.sub(r"<[^>]+>", " ", (built_book / "book" / f"{module}.html").read_text(encoding="utf-8"))
        for words in ("in your browser", "File → Download", "stays in this browser", "deletes your work"):
            assert words in text, f"{module}.html does not say {words!r}"
    exercises = (built_book / "book" / "exercises.html").read_text(encoding="utf-8")
    for module in MODULES:
        assert f'href="../lite/notebooks/index.html?path={module}.ipynb"' in exercises, module


def test_exercises_run_in_the_browser_offline(site, browser):
    base, built = site
    context, page, problems = new_window(browser)
    page.goto(urljoin(f"{base}book/module1.html", exercise_link(built, "module1")))
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=60_000)
    kernel_ready(page)
    failures: list[str] = []

    # A student's first steps, through the app's own Run command: what they see.
    first = load_notebook(built / "lite" / "files" / "module1.ipynb")
    first_test = next(i for i, c in enumerate(first["cells"]) if kind(c) == "test")
    page.evaluate("""async (count) => {
      const app = window.jupyterapp, notebook = app.shell.currentWidget.content;
      notebook.activeCellIndex = 0;
      for (let i = 0; i < count; i++) await app.commands.execute("notebook:run-cell-and-select-next");
    }""", first_test + 1)
    shown = page.evaluate("""async (index) => {  // the test cell's output, as the page shows it
      const notebook = window.jupyterapp.shell.currentWidget.content;
      await notebook.scrollToItem(index, "center");
      return notebook.widgets[index].node.querySelector(".jp-OutputArea").innerText;
    }""", first_test)
    assert "NotImplementedError" in shown and STUB_MESSAGE in shown, shown
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lite-module1.png"))

    for module in MODULES:
        # The exercise as the site serves it, run cell by cell in a fresh namespace.
        exercise = notebook_content(page, f"{module}.ipynb")
        assert exercise["cells"] == load_notebook(ROOT / "exercises" / module / f"{module}.ipynb")["cells"]
        run_code(page, "%reset -f")
        replies = [(cell, run_code(page, code(cell))) for cell in exercise["cells"] if cell["cell_type"] == "code"]
        setups = setup_cells(exercise)
        assert setups, f"{module}: no setup cells found"
        for cell, reply in replies:
            what = kind(cell)
            if what == "setup" and code(cell) in setups and reply["status"] != "ok":
                failures.append(f"{module} setup cell failed: {describe(cell, reply)}")
            if what in ("answer", "test") and not (is_stub(reply) or "NameError" in reply["ename"]):
                failures.append(f"{module} blank {what} did not report the stub: {describe(cell, reply)}")
        for what in ("answer", "test"):
            if not any(is_stub(r) for c, r in replies if kind(c) == what):
                failures.append(f"{module}: no {what} cell showed the stub's message")

        # The worked solution, hidden tests included, then the chapter's own code.
        for source in (ROOT / "solutions" / module / f"{module}.ipynb", ROOT / "book" / f"{module}.ipynb"):
            run_code(page, "%reset -f")
            for cell in load_notebook(source)["cells"]:
                if cell["cell_type"] == "code":
                    reply = run_code(page, code(cell))
                    if reply["status"] != "ok":
                        failures.append(f"{source.relative_to(ROOT)}: {describe(cell, reply)}")

    # An explorer from the last chapter run, rendered in the notebook by the widgets' front end.
    chapter = load_notebook(ROOT / "book" / f"{MODULES[-1]}.ipynb")
    explorer = next(code(c) for c in chapter["cells"]
                    if c["cell_type"] == "code" and re.search(r"_explorer\(", code(c)))
    page.evaluate("""async (source) => {
      const app = window.jupyterapp, notebook = app.shell.currentWidget.content;
      notebook.model.sharedModel.insertCell(notebook.model.cells.length, {cell_type: "code", source});
      notebook.activeCellIndex = notebook.model.cells.length - 1;
      await app.commands.execute("notebook:run-cell");
    }""", explorer)
    cell = page.locator(".jp-Cell").last
    cell.locator("figure.explorer-view").first.wait_for(timeout=60_000)
    cell.scroll_into_view_if_needed()
    before = cell.locator("figcaption:visible").first.inner_text()
    buttons = cell.locator(".widget-toggle-buttons button")
    sliders = cell.locator(".noUi-handle")
    if buttons.count() >= 2:
        buttons.nth(1).click()
    elif sliders.count():  # dragged: in the notebook, the arrow keys belong to the notebook
        box = sliders.first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
    else:
        cell.locator("select").first.select_option(index=1)
    page.wait_for_timeout(500)
    after = cell.locator("figcaption:visible").first.inner_text()
    if not after or after == before:
        failures.append(f"the explorer of {MODULES[-1]} did not change its view in the browser")

    # The helpers read a datasets/ folder from a URL with the browser's own request.
    reply = run_code(page, f"from mcf_course import load_dataset\nlen(load_dataset('actors', '{base}datasets/'))")
    from mcf_course import load_dataset

    if reply["status"] != "ok" or reply["outputs"] != [str(len(load_dataset("actors")))]:
        failures.append(f"load_dataset from a URL in the browser: {reply}")
    reply = run_code(page, f"load_dataset('actors', '{base}no-such-folder/')")
    if "DataUnavailable" not in reply["ename"] or "HTTP 404" not in reply["evalue"]:
        failures.append(f"a missing URL should raise DataUnavailable naming HTTP 404: {reply}")
    problems[:] = [p for p in problems if "no-such-folder" not in p]

    # The work is kept in the browser: saved, it is there after a reload; File → Download hands
    # over a notebook whose nbgrader metadata are intact.
    page.evaluate("async () => await window.jupyterapp.commands.execute('docmanager:save')")
    page.reload()
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=60_000)
    if explorer not in [code(c) for c in notebook_content(page, "module1.ipynb")["cells"]]:
        failures.append("the saved notebook did not survive a reload")
    page.get_by_text("File", exact=True).first.click()
    with page.expect_download() as download:
        page.locator(".lm-Menu-itemLabel", has_text="Download").click()
    handed_in = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    original = load_notebook(ROOT / "exercises" / "module1" / "module1.ipynb")
    metadata = [c["metadata"].get("nbgrader") for c in handed_in["cells"]][:len(original["cells"])]
    if metadata != [c["metadata"].get("nbgrader") for c in original["cells"]] or \
            code(handed_in["cells"][-1]) != explorer:
        failures.append("the downloaded notebook lost its nbgrader metadata or the student's work")
    context.close()
    assert not failures, "\n".join(failures[:40])
    assert not problems, "\n".join(problems[:20])


def test_setup_cells_find_the_data_without_a_service_worker(site, browser):
    """Some private windows have no service worker, so JupyterLite cannot share its files with
    the kernel (its shared folder fails to read): the data come from the helper package itself."""
    base, built = site
    context, page, problems = new_window(browser, service_workers="block")
    page.goto(urljoin(f"{base}book/module2.html", exercise_link(built, "module2")))
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=60_000)
    kernel_ready(page)
    shared = run_code(page, "import os\ntry:\n    print('readable' if os.getcwd() == '/drive' and os.listdir('.') "
                            "else 'no shared folder')\nexcept OSError:\n    print('unreadable')")
    assert "".join(shared["outputs"]).strip() in ("unreadable", "no shared folder"), \
        f"the kernel still reads the site's files, so this window does not test the case: {shared}"
    for source in setup_cells(notebook_content(page, "module2.ipynb")):
        reply = run_code(page, source)
        assert reply["status"] == "ok", reply
    context.close()
    assert not problems, "\n".join(problems[:20])
