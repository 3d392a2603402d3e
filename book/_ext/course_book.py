"""The course's own Sphinx extension: what the book needs that Jupyter Book does not do itself.

- **Widgets offline.** The explorers' JavaScript (require.js and the Jupyter widgets HTML
  manager, with its fonts) is served from the book's own ``_static/vendor/``, not from two
  CDNs. The files come from the npm registry, at pinned versions checked against the
  registry's sha512 integrity, once, into a cache (``NPM_PACKAGES``, ``fetch_npm_package``).
- **No Thebe.** The book has no live code cells (the launch buttons open notebooks instead),
  so sphinx-thebe's scripts, which load Thebe from a CDN and declared ``THEBE_JS_URL`` twice on
  every page, are not added.
- **Chinese marked as Chinese.** Every run of Chinese characters in the text (chapters,
  glossary, tables, tables made by code cells) is wrapped in ``<span lang="zh-Hans">``, so
  screen readers pronounce it as Chinese and the CSS can give it a CJK font.
- **Downloads with names that say what they are**: ``moduleN-student.ipynb`` (from
  ``exercises/``) and ``moduleN-solution.ipynb`` (from ``solutions/``), copied into
  ``book/downloads/`` (not in git) when the build starts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "_build" / ".npm-cache"
# name: (version, sha512 integrity from the npm registry, files to serve (relative to package/))
NPM_PACKAGES = {
    "requirejs": ("2.3.8", "7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
                  ["require.js"]),
    "@jupyter-widgets/html-manager": (
        "1.0.15", "5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        ["dist"]),
}
CJK = re.compile(r"[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+"
                 r"(?:[\s·“”‘’（）《》、，。：；！？]*[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]+)*")
SKIP = (nodes.literal, nodes.literal_block, nodes.raw, nodes.comment, nodes.FixedTextElement)


# Used by the test suite, not served: the accessibility checker the browser test runs.
TEST_NPM_PACKAGES = {
    "axe-core": ("4.14.1", "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
                 ["axe.min.js"]),
}
# Used by the in-browser exercises (course_lite.py), not served as they are: Pyodide's core.
LITE_NPM_PACKAGES = {
    "pyodide": ("0.27.7", "RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWUBdulEgO26qpSRA==",
                []),
}


def download_checked(url: str, algorithm: str, expected: str) -> bytes:
    """The bytes at ``url``, if their digest equals ``expected`` (hex, or base64 as in npm's
    integrity field); otherwise ValueError, and nothing is kept."""
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    digest = hashlib.new(algorithm, data).digest()
    if expected not in (digest.hex(), base64.b64encode(digest).decode()):
        raise ValueError(f"{url} does not match its pinned {algorithm}")
    return data


def fetch_npm_package(name: str, cache: Path = CACHE) -> Path:
    """The unpacked ``package/`` folder of a pinned npm package, downloaded once and checked
    against its sha512 integrity. Raises ValueError if the download does not match."""
    version, integrity, _ = {**NPM_PACKAGES, **TEST_NPM_PACKAGES, **LITE_NPM_PACKAGES}[name]
    folder = cache / f"{name.replace('/', '__')}-{version}"
    if (folder / "package").is_dir():
        return folder / "package"
    url = f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    data = download_checked(url, "sha512", integrity.removeprefix("sha512-"))
    staging = folder.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(staging, filter="data")
    staging.rename(folder)
    return folder / "package"


def _vendor_widget_js(app, config) -> None:
    """Serve the widget JavaScript from the book, and tell MyST-NB to load it from there."""
    vendor = CACHE / "_static"
    for name, (_, _, files) in NPM_PACKAGES.items():
        package = fetch_npm_package(name)
        for relative in files:
            source, target = package / relative, vendor / "vendor" / name.split("/")[-1] / relative
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.map", "embed.js*", "libembed*"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    config.html_static_path += [str(vendor), str(ROOT / "book" / "_static")]
    config.nb_ipywidgets_js = {
        "widget-assets.js": {},  # where the manager is (book/_static/widget-assets.js)
        "vendor/requirejs/require.js": {},
        # No CDN: every widget the book uses is in the HTML manager's own bundle.
        "vendor/html-manager/dist/embed-amd.js": {"data-jupyter-widgets-cdn": "vendor/none/"},
    }


def _drop_thebe(app, config) -> None:
    app.registry.css_files = [(f, a) for f, a in app.registry.css_files if "thebe" not in f]
    app.registry.js_files = [(f, a) for f, a in app.registry.js_files if "thebe" not in (f or "")]
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)


def _copy_downloads(app) -> None:
    """moduleN-student.ipynb and moduleN-solution.ipynb, for the exercises page."""
    downloads = ROOT / "book" / "downloads"
    downloads.mkdir(exist_ok=True)
    for kind, folder in (("student", "exercises"), ("solution", "solutions")):
        for notebook in sorted((ROOT / folder).glob("*/*.ipynb")):
            target = downloads / f"{notebook.stem}-{kind}.ipynb"
            if not target.exists() or target.read_bytes() != notebook.read_bytes():
                shutil.copy(notebook, target)


class chinese(nodes.inline):
    """A run of Chinese text."""


def _visit_chinese_html(self, node):
    self.body.append('<span lang="zh-Hans">')


def _depart_chinese_html(self, node):
    self.body.append("</span>")


def _pass(self, node):
    pass


class MarkChinese(SphinxPostTransform):
    """Wrap every run of Chinese characters in a ``chinese`` node (``lang="zh-Hans"``)."""

    default_priority = 900

    def run(self, **kwargs) -> None:
        for text in list(self.document.findall(nodes.Text)):
            parent = text.parent
            if parent is None or isinstance(parent, chinese) or any(
                    isinstance(a, SKIP) for a in _ancestors(parent)):
                continue
            value = str(text)
            pieces, last = [], 0
            for match in CJK.finditer(value):
                if match.start() > last:
                    pieces.append(nodes.Text(value[last:match.start()]))
                pieces.append(chinese("", match.group(0)))
                last = match.end()
            if not pieces:
                continue
            if last < len(value):
                pieces.append(nodes.Text(value[last:]))
            parent.replace(text, pieces)


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


def setup(app):
    app.connect("config-inited", _vendor_widget_js)
    app.connect("config-inited", _drop_thebe, priority=900)
    app.connect("builder-inited", _copy_downloads)
    app.add_node(chinese, html=(_visit_chinese_html, _depart_chinese_html), latex=(_pass, _pass),
                 text=(_pass, _pass), man=(_pass, _pass), texinfo=(_pass, _pass))
    app.add_post_transform(MarkChinese)
    app.add_css_file("course.css")
    app.add_js_file("course.js")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
