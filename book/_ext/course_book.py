"""The course's own Sphinx extension: what the book needs that Jupyter Book does not do itself.

- **Light explorers.** The explorers are plain HTML in the book, switched by the course's own
  small script (``_static/course.js``), not the 3.6 MB Jupyter widgets manager: the build sets
  ``MCF_EXPLORERS=static`` for the notebooks it runs (``mcf_course.explorer``). Their views'
  images, drawn as data URIs, are written out as image files that load when shown
  (``_data_uris_to_files``), and each explorer is told which figure after it is its static twin
  (``ExplorerTwins``). No page loads ipywidgets' JavaScript, so none is served.
- **Chinese marked as Chinese, in a font the book serves.** Every run of Chinese characters
  (chapters, glossary, tables, tables made by code cells, the explorers' tables, and the titles
  the theme reuses in the sidebar, the page contents and the previous/next links) is wrapped
  in ``<span lang="zh-Hans">``, so screen readers pronounce it as Chinese and the CSS gives it
  a Simplified Chinese font. That font is made at the end of the build: the glyphs the pages
  use, cut from Noto Sans SC (npm ``@fontsource-variable/noto-sans-sc``) into two small WOFF2
  files, regular and bold (``_chinese_font``).
- **Icons without the theme's 1.5 MB fontawesome.js**: the theme's CSS draws them with its
  Font Awesome fonts, which are cut to the glyphs the pages use (``_icons``).
- **Pages for phones and slow connections**: images load lazily; search scripts load
  deferred; no unrendered theme templates or source maps are published; a meta description;
  a ``favicon.ico``; pinyin found without its tone marks (``PinyinSearch``).
- **No Thebe.** The book has no live code cells (the launch buttons open notebooks instead),
  so sphinx-thebe's scripts, which load Thebe from a CDN, are not added.
- **Downloads with names that say what they are**: ``moduleN-student.ipynb`` (from
  ``exercises/``) and ``moduleN-solution.ipynb`` (from ``solutions/``), copied into
  ``book/downloads/`` (not in git) when the build starts.

Every file the build downloads comes from the npm registry at a pinned version, checked
against the registry's sha512 integrity, once, into a cache (``fetch_npm_package``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
import shutil
import tarfile
import unicodedata
import urllib.request
from pathlib import Path

from docutils import nodes
from sphinx.search.en import SearchEnglish
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "_build" / ".npm-cache"
# name: (version, sha512 integrity from the npm registry, files used (relative to package/))
NPM_PACKAGES = {
    "@fontsource-variable/noto-sans-sc": (
        "5.3.1", "UB96JJ17HyD5ehEU7Em0hDdh7fvTMB4B4Hzmq5c4QaNwwSLqTrdM2S+coySeBqCkXwh0DxqXT0b0wMrmzorFpQ==",
        ["index.css", "files"]),
}
# Used by the test suite, not served: the accessibility checker the browser test runs.
TEST_NPM_PACKAGES = {
    "axe-core": ("4.14.1", "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
                 ["axe.min.js"]),
}
CJK = re.compile(r"[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+"
                 r"(?:[\s·“”‘’（）《》、，。：；！？]*[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]+)*")
CJK_CHAR = re.compile(r"[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
SKIP = (nodes.literal, nodes.literal_block, nodes.raw, nodes.comment, nodes.FixedTextElement)
EXPLORER = 'class="course-explorer"'


def fetch_npm_package(name: str, cache: Path = CACHE) -> Path:
    """The unpacked ``package/`` folder of a pinned npm package, downloaded once and checked
    against its sha512 integrity. Raises ValueError if the download does not match."""
    version, integrity, _ = {**NPM_PACKAGES, **TEST_NPM_PACKAGES}[name]
    folder = cache / f"{name.replace('/', '__')}-{version}"
    if (folder / "package").is_dir():
        return folder / "package"
    url = f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise ValueError(f"{url} does not match its pinned sha512 integrity")
    staging = folder.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(staging, filter="data")
    staging.rename(folder)
    return folder / "package"


# --- Explorers ---------------------------------------------------------------------------

def _static_explorers(app, config) -> None:
    """Explorers as plain HTML in the pages, with no widget JavaScript (see the docstring)."""
    os.environ["MCF_EXPLORERS"] = "static"  # read by mcf_course.explorer in the kernels the build starts
    config.nb_ipywidgets_js = {}
    # A notebook cache from before explorers were static holds widgets: start it afresh, once.
    if config.nb_execution_mode == "cache":  # where MyST-NB keeps it (myst_nb.sphinx_ext)
        cache = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
        stamp = cache / "static-explorers"
        if cache.is_dir() and not stamp.exists():
            shutil.rmtree(cache)
            Path(app.doctreedir, "environment.pickle").unlink(missing_ok=True)  # so every page is read again
        cache.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    config.html_static_path += [str(ROOT / "book" / "_static")]


class ExplorerTwins(SphinxPostTransform):
    """Tell each explorer which figure is its static twin: the figure of the next cell, which
    its script shows as the default view. An explorer without one is a build warning."""

    default_priority = 880

    def run(self, **kwargs) -> None:
        for raw in list(self.document.findall(nodes.raw)):
            if EXPLORER not in raw.astext():
                continue
            cell = next((a for a in _ancestors(raw) if "cell" in a.get("classes", [])), None)
            following = cell.parent[cell.parent.index(cell) + 1:] if cell is not None and cell.parent else []
            twin = next((f for sibling in following[:1] for f in sibling.findall(nodes.figure) if f["ids"]), None)
            if twin is None:
                logger.warning("an explorer needs its static twin, a figure with a name, in the next cell",
                               location=raw)
                continue
            twin["classes"].append("explorer-twin")
            text = raw.astext().replace(EXPLORER, f'{EXPLORER} data-twin="{twin["ids"][0]}"', 1)
            raw.replace_self(nodes.raw(text, text, format="html"))


def _data_uris_to_files(app, pagename, templatename, context, doctree) -> None:
    """Inline images (the explorers' views) become image files in ``_images``; every image
    in a page loads lazily. Adds the page's meta description."""
    if "body" in context:
        images = Path(app.outdir) / "_images"

        def write(match):
            data = base64.b64decode(match.group(2))
            name = f"view-{hashlib.sha256(data).hexdigest()[:20]}.{match.group(1)}"
            if not (images / name).exists():
                images.mkdir(exist_ok=True)
                (images / name).write_bytes(data)
            return context["pathto"](f"_images/{name}", 1)

        body = re.sub(r"data:image/(png|jpeg|webp);base64,([A-Za-z0-9+/=]+)", write, context["body"])
        context["body"] = re.sub(r"<img (?![^>]*\bloading=)", '<img loading="lazy" decoding="async" ', body)
    if doctree is not None:
        title = re.sub(r"<[^>]+>", "", context.get("title", ""))
        description = _description(doctree) or (
            f"{html.unescape(title)}: a page of {app.config.project}, an open course on China's "
            "Military-Civil Fusion and Industrial Internet.")
        context["metatags"] = context.get("metatags", "") + (
            f'\n<meta name="description" content="{html.escape(description, quote=True)}" />')


def _mark_print_title(app, pagename, templatename, context, doctree) -> None:
    """sphinx-book-theme prints the page title (``pagetitle``) as plain text: mark its Chinese."""
    if context.get("pagetitle"):
        context["pagetitle"] = CJK.sub(r'<span lang="zh-Hans">\g<0></span>', html.escape(context["pagetitle"]))


def _description(doctree) -> str:
    """The first sentences of a page's first paragraph of running text (up to about 160 characters)."""
    boxed = (nodes.Admonition, nodes.topic, nodes.sidebar, nodes.table, nodes.container, nodes.figure)
    for paragraph in doctree.findall(nodes.paragraph):
        if any(isinstance(a, boxed) for a in _ancestors(paragraph)):
            continue
        text = re.sub(r"\s*\[[^\]]*\]", "", paragraph.astext())  # citations, "[Author 2020]"
        text = re.sub(r"\s+", " ", text).strip()
        if len(text) < 40:
            continue
        sentences = re.split(r"(?<=[.!?])\s+", text)
        kept = sentences[0]
        for sentence in sentences[1:]:
            if len(kept) + len(sentence) > 160:
                break
            kept += " " + sentence
        return kept
    return ""


# --- Chinese -----------------------------------------------------------------------------

class chinese(nodes.inline):
    """A run of Chinese text."""


def _visit_chinese_html(self, node):
    self.body.append('<span lang="zh-Hans">')


def _depart_chinese_html(self, node):
    self.body.append("</span>")


def _pass(self, node):
    pass


def _mark_chinese(document) -> None:
    """Wrap every run of Chinese characters in a ``chinese`` node, and in the HTML of code
    cells' outputs (the explorers' tables) in ``<span lang="zh-Hans">``."""
    for text in list(document.findall(nodes.Text)):
        parent = text.parent
        if parent is None or isinstance(parent, chinese) or any(isinstance(a, SKIP) for a in _ancestors(parent)):
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
    for raw in list(document.findall(nodes.raw)):
        if "html" in raw.get("format", "") and CJK.search(raw.astext()) and 'lang="zh-Hans"' not in raw.astext():
            parts = re.split(r"(<[^>]*>)", raw.astext())
            marked = "".join(p if p.startswith("<") else CJK.sub(r'<span lang="zh-Hans">\g<0></span>', p)
                             for p in parts)
            raw.replace_self(nodes.raw(marked, marked, format=raw["format"]))


class MarkChineseTitles(SphinxTransform):
    """At reading time, before Sphinx records the titles (``doctree-read``, priority 880) that the
    theme reuses in the sidebar, the page contents and the previous/next links."""

    default_priority = 850

    def apply(self, **kwargs) -> None:
        _mark_chinese(self.document)


class MarkChinese(SphinxPostTransform):
    """After references are resolved, for what was added since (bibliography, glossary links)."""

    default_priority = 900

    def run(self, **kwargs) -> None:
        _mark_chinese(self.document)


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


def _chinese_font(app, exception) -> None:
    """``_static/fonts/course-zh-{400,700}.woff2``: the Chinese glyphs the pages use, from Noto
    Sans SC, regular and bold. Made once per set of characters (cached)."""
    if exception or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    chars = set()
    for page in outdir.rglob("*.html"):
        chars |= set(CJK_CHAR.findall(page.read_text(encoding="utf-8")))
    key = hashlib.sha256("".join(sorted(chars)).encode()).hexdigest()[:16]
    fonts = outdir / "_static" / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    for weight in (400, 700):
        cached = CACHE / "fonts" / f"course-zh-{key}-{weight}.woff2"
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(_subset_noto_sans_sc({ord(c) for c in chars}, weight))
        shutil.copy(cached, fonts / f"course-zh-{weight}.woff2")
    package = fetch_npm_package("@fontsource-variable/noto-sans-sc")
    shutil.copy(package / "LICENSE", fonts / "course-zh-LICENSE.txt")


def _subset_noto_sans_sc(codepoints: set[int], weight: int) -> bytes:
    """One WOFF2 font, family "Course Noto Sans SC", with the glyphs of ``codepoints`` at
    ``weight``, merged from the package's slices (each covers a range of characters)."""
    from fontTools import subset
    from fontTools.merge import Merger
    from fontTools.ttLib import TTFont
    from fontTools.varLib import instancer

    package = fetch_npm_package("@fontsource-variable/noto-sans-sc")
    css = (package / "index.css").read_text(encoding="utf-8")
    parts = []
    for file, ranges in re.findall(r"url\(\./files/([^)]+\.woff2)\).*?unicode-range: ([^;]+);", css, re.S):
        covered = set()
        for item in ranges.split(","):
            first, _, last = item.strip()[2:].partition("-")
            covered.update(range(int(first, 16), int(last or first, 16) + 1))
        wanted = codepoints & covered
        if not wanted:
            continue
        font = TTFont(package / "files" / file)
        options = subset.Options(layout_features=[], notdef_outline=True, name_IDs=[0, 1, 2, 3, 4, 5, 6, 13, 14])
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=wanted)
        subsetter.subset(font)
        font = instancer.instantiateVariableFont(font, {"wght": weight})
        buffer = io.BytesIO()
        font.flavor = None
        font.save(buffer)
        buffer.seek(0)
        parts.append(TTFont(buffer))
    merged = Merger().merge(parts) if len(parts) > 1 else parts[0]
    for record in merged["name"].names:  # a name of its own, so a browser never takes it for a system font
        if record.nameID in (1, 4, 16):
            record.string = "Course Noto Sans SC"
        elif record.nameID == 6:
            record.string = f"CourseNotoSansSC-{weight}"
    merged.flavor = "woff2"
    out = io.BytesIO()
    merged.save(out)
    return out.getvalue()


# --- Icons, and what the theme publishes -------------------------------------------------

FONT_AWESOME = Path("_static") / "vendor" / "fontawesome" / "webfonts"


def _icons(app, exception) -> None:
    """Drop the theme's fontawesome.js (1.5 MB, on every page, only redrawing as SVG the icons
    that the theme's CSS already draws with its Font Awesome fonts), and cut those fonts, and the
    theme's CSS rules for icons, to the icons the pages use. Also: search scripts load deferred,
    no unrendered theme templates or source maps are published, and a favicon.ico."""
    if exception or app.builder.format != "html":
        return
    from fontTools import subset
    from fontTools.ttLib import TTFont

    outdir = Path(app.outdir)
    static = outdir / "_static"
    pages = list(outdir.rglob("*.html"))
    used = set()
    for page in pages:
        for classes in re.findall(r'class="([^"]*\bfa-[^"]*)"', page.read_text(encoding="utf-8")):
            used |= {c for c in classes.split() if c.startswith("fa-")}
    for script in (static / "scripts").glob("*.js"):  # icons the theme's scripts add
        if script.name != "fontawesome.js":
            used |= set(re.findall(r"\b(fa-[a-z0-9-]+)\b", script.read_text(encoding="utf-8")))
    glyphs = {ord(" ")}
    for css in static.rglob("*.css"):
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css.read_text(encoding="utf-8")):
            codes = {int(c, 16) for c in re.findall(r'"\\([0-9a-f]{4,5})"', body)}
            icons = re.findall(r"\.(fa-[a-z0-9-]+):{1,2}before", selectors)
            if not icons or used.intersection(icons):  # an icon class in use, or the theme's own icons
                glyphs |= codes
    theme_css = static / "styles" / "pydata-sphinx-theme.css"  # ~1,900 icon rules, a few used
    if theme_css.exists():
        text = theme_css.read_text(encoding="utf-8")
        kept = re.sub(r'(?<=\})((?:\.fa-[a-z0-9-]+:{1,2}before,?)+)\{content:"\\[0-9a-f]{4,5}"\}',
                      lambda m: m.group(0) if used.intersection(re.findall(r"\.(fa-[a-z0-9-]+)", m.group(1))) else "",
                      text)
        if kept != text:
            theme_css.write_text(kept, encoding="utf-8")
    for font in (outdir / FONT_AWESOME).glob("*.*"):
        loaded = TTFont(font)
        if set(loaded.getBestCmap()) <= glyphs:
            continue  # already cut (an incremental build)
        subsetter = subset.Subsetter(subset.Options(layout_features=[], notdef_outline=True))
        subsetter.populate(unicodes=glyphs)
        subsetter.subset(loaded)
        loaded.flavor = "woff2" if font.suffix == ".woff2" else None
        loaded.save(font)
    (static / "scripts" / "fontawesome.js").unlink(missing_ok=True)
    for page in pages:  # the theme's templates name fontawesome.js, and load search scripts blocking
        text = page.read_text(encoding="utf-8")
        cleaned = re.sub(r'\s*<script defer src="[^"]*scripts/fontawesome\.js[^"]*"></script>', "", text)
        if page.name != "search.html":
            cleaned = re.sub(r'<script src="([^"]*(?:searchtools|language_data|searchindex)\.js)"></script>',
                             r'<script defer src="\1"></script>', cleaned)
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")
    for unwanted in ["webpack-macros.html", "sbt-webpack-macros.html", *static.rglob("*.map"),
                     "widget-assets.js", "vendor/html-manager", "vendor/requirejs"]:  # the last: earlier builds
        path = static / unwanted
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    _favicon_ico(outdir / "favicon.ico")


def _favicon_ico(path: Path) -> None:
    """The book's icon (``_static/favicon.svg``: three bars on blue) as ``favicon.ico``, which
    browsers ask for at the site's root."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 63, 63), radius=12, fill="#0072B2")
    for x, top in ((18, 24), (34, 16), (50, 32)):
        draw.rectangle((x - 4, top, x + 4, 44), fill="white")
    draw.rectangle((12, 44, 54, 48), fill="white")
    image.save(path, sizes=[(16, 16), (32, 32), (48, 48)])


# --- Search ------------------------------------------------------------------------------

class PinyinSearch(SearchEnglish):
    """English search that also finds pinyin typed without tone marks: "junmin ronghe" finds
    "jūnmín rónghé" (each word with diacritics is indexed a second time without them)."""

    def split(self, input: str) -> list[str]:
        words = super().split(input)
        bare = [unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode() for w in words]
        return words + [b for w, b in zip(words, bare, strict=True) if b and b != w]


# --- The rest ----------------------------------------------------------------------------

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


def setup(app):
    app.connect("config-inited", _static_explorers)
    app.connect("config-inited", _drop_thebe, priority=900)
    app.connect("builder-inited", _copy_downloads)
    app.connect("html-page-context", _data_uris_to_files)
    app.connect("html-page-context", _mark_print_title, priority=900)  # after sphinx-book-theme sets it
    app.connect("build-finished", _chinese_font)
    app.connect("build-finished", _icons)
    app.add_node(chinese, html=(_visit_chinese_html, _depart_chinese_html), latex=(_pass, _pass),
                 text=(_pass, _pass), man=(_pass, _pass), texinfo=(_pass, _pass))
    app.add_transform(MarkChineseTitles)
    app.add_post_transform(MarkChinese)
    app.add_post_transform(ExplorerTwins)
    app.add_search_language(PinyinSearch)
    app.add_css_file("course.css")
    app.add_js_file("course.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
