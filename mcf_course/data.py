"""Find and load the course datasets, wherever a notebook happens to run.

Where the data comes from, in order:

1. the folder or URL in the environment variable ``MCF_COURSE_DATA`` (for a JupyterHub
   without internet access, point it at a copy of ``datasets/``);
2. a ``datasets/datapackage.json`` in the working directory or any folder above it
   (a clone of the course, including ``exercises/`` and nbgrader's course folders);
3. the ``datasets/`` folder inside this package (the wheel that the book's in-browser
   exercises load, built by book/_ext/course_lite.py, carries the data there);
4. the ``datasets/`` folder beside this package (an editable install from a clone);
5. the published raw files of the course repository (Colab, or a package installed
   with pip and no clone).

A location may be a URL; in the browser (Pyodide) it is read with ``pyodide.http.open_url``,
a plain request to the site's own server that needs no service worker.

Every table is checked against its schema as it loads, so a damaged file fails with a
message that names the file, the row and the field.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from functools import cache
from pathlib import Path

import pandas as pd

from mcf_course.validation import (
    BOOLEAN_VALUES,
    DatasetError,
    check_resource,
    primary_keys,
    read_rows,
)

# The one repository setting for the package. tests/test_config.py checks that it equals
# `repository.url` in _config.yml, which drives the book's launch buttons.
REPOSITORY_URL = "https://github.com/mcf-course/strategy-becomes-infrastructure"
BRANCH = "main"
DATA_ENV = "MCF_COURSE_DATA"
DESCRIPTOR = "datapackage.json"

__all__ = ["DataUnavailable", "DatasetError", "data_location", "list_datasets", "load_dataset"]


def raw_data_url(repository_url: str = REPOSITORY_URL, branch: str = BRANCH) -> str:
    """The URL of the published ``datasets/`` folder on GitHub's raw-file server."""
    owner_repo = repository_url.rstrip("/").removeprefix("https://github.com/")
    return f"https://raw.githubusercontent.com/{owner_repo}/{branch}/datasets/"


def data_location(start: Path | None = None) -> str:
    """Return the folder (or URL, ending in '/') that holds ``datapackage.json``."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return configured if "://" in configured else str(Path(configured).resolve())
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if _is_file(folder / "datasets" / DESCRIPTOR):
            return str(folder / "datasets")
    package = Path(__file__).resolve().parent
    for folder in (package / "datasets", package.parent / "datasets"):  # inside, then beside
        if _is_file(folder / DESCRIPTOR):
            return str(folder)
    return raw_data_url()


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a folder that cannot be read counts as not having it (in the
    browser, JupyterLite's shared folder fails with EINVAL when its service worker is missing)."""
    try:
        return path.is_file()
    except OSError:
        return False


class DataUnavailable(RuntimeError):
    """The datasets could not be found here nor downloaded. In a notebook it shows as its
    message alone, without a traceback, because the message says what to do."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        return [f"DataUnavailable: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


def _unavailable(url: str, reason: str) -> DataUnavailable:
    archive = f"{REPOSITORY_URL}/archive/refs/heads/{BRANCH}.zip"
    return DataUnavailable(
        f"The course datasets could not be downloaded ({reason}).\n"
        f"  Looked for: {url}\n"
        "  This notebook finds the data by itself when it sits inside a copy of the course.\n"
        f"  To work without internet access: download the course ({archive}), unzip it,\n"
        "  and open this notebook from its exercises/ folder; or put the datasets/ folder\n"
        f"  anywhere and set the environment variable {DATA_ENV} to it, e.g.\n"
        f"      import os; os.environ['{DATA_ENV}'] = '/path/to/datasets'\n"
        "  then run this cell again.")


@cache
def _download(url: str) -> str:
    if sys.platform == "emscripten":  # Pyodide, in a browser: no sockets
        return _browser_get(url)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode("utf-8")
    except OSError as exc:  # no network, DNS failure, HTTP error (HTTPError is an OSError)
        raise _unavailable(url, f"{type(exc).__name__}: {exc}") from None


def _browser_get(url: str) -> str:
    """GET ``url`` from Pyodide with a synchronous request, as ``pyodide.http.open_url`` does
    (which would not report an HTTP error): it needs no service worker, and reaches the site's
    own files even where JupyterLite cannot sync the kernel's files with its contents."""
    from js import XMLHttpRequest  # Pyodide's bridge to the browser

    request = XMLHttpRequest.new()
    request.open("GET", url, False)
    try:
        request.send()
    except Exception as exc:  # the browser's network error, whatever its type
        raise _unavailable(url, f"{type(exc).__name__}: {exc}") from None
    if request.status != 200:
        raise _unavailable(url, f"HTTP {request.status}")
    return request.responseText


def _read_text(location: str, relative: str) -> str:
    if "://" in location:
        return _download(location.rstrip("/") + "/" + relative)
    path = Path(location) / relative
    if not path.is_file():
        raise DataUnavailable(f"No course data at {path}.\n  {DATA_ENV} (or the folder this notebook "
                              "is in) should point at the course's datasets/ folder, the one "
                              "holding datapackage.json.")
    return path.read_text(encoding="utf-8")


def _descriptor(location: str) -> dict:
    return json.loads(_read_text(location, DESCRIPTOR))


def list_datasets(location: str | None = None) -> list[str]:
    """Names of the datasets that ``load_dataset`` can load."""
    return [r["name"] for r in _descriptor(location or data_location())["resources"]]


def _resource(descriptor: dict, name: str) -> dict:
    for resource in descriptor["resources"]:
        if resource["name"] == name:
            return resource
    known = ", ".join(r["name"] for r in descriptor["resources"])
    raise KeyError(f"No dataset called {name!r}. The course datasets are: {known}")


def _typed(frame: pd.DataFrame, fields: list[dict]) -> pd.DataFrame:
    """Convert raw strings to the types the schema declares; empty cells become missing."""
    for field in fields:
        name, kind = field["name"], field.get("type", "string")
        column = frame[name].str.strip().replace("", pd.NA)
        if kind == "date":
            frame[name] = pd.to_datetime(column, format="%Y-%m-%d")
        elif kind == "boolean":
            frame[name] = column.map(BOOLEAN_VALUES).astype("boolean")
        elif kind == "integer":
            frame[name] = pd.to_numeric(column).astype("Int64")
        elif kind == "number":
            frame[name] = pd.to_numeric(column).astype("float64")
        else:
            frame[name] = column.astype("str")
    return frame


def load_dataset(name: str, location: str | None = None) -> pd.DataFrame:
    """Load one course dataset as a DataFrame, checked against its schema.

    Types follow ``datapackage.json``: ``date`` fields become datetimes, ``boolean`` fields
    True/False, and empty cells missing values (NaN/NaT). Mixed-precision dates such as
    ``2018-02`` stay text, because turning them into a full date would invent precision.

    >>> timeline = load_dataset("policy_timeline")   # doctest: +SKIP
    """
    location = location or data_location()
    descriptor = _descriptor(location)
    resource = _resource(descriptor, name)
    text = _read_text(location, resource["path"])
    known_keys = {}
    for foreign in resource["schema"].get("foreignKeys", []):
        target = _resource(descriptor, foreign["reference"]["resource"])
        known_keys[target["name"]] = primary_keys(target, _read_text(location, target["path"]))
    problems = check_resource(resource, text, known_keys)
    if problems:
        raise DatasetError(problems)
    header, rows = read_rows(text)
    frame = pd.DataFrame(rows, columns=header, dtype="str")
    return _typed(frame, resource["schema"]["fields"])


def validate_all(location: str | None = None) -> list:
    """Check every dataset in the package (with foreign keys) and return all problems."""
    location = location or data_location()
    descriptor = _descriptor(location)
    texts = {r["name"]: _read_text(location, r["path"]) for r in descriptor["resources"]}
    keys = {r["name"]: primary_keys(r, texts[r["name"]]) for r in descriptor["resources"]}
    problems = []
    for resource in descriptor["resources"]:
        problems += check_resource(resource, texts[resource["name"]], keys)
    return problems
