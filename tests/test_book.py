"""The book builds with zero warnings, and what it shows a reader is complete."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def test_book_builds_every_page_in_the_toc(built_book):
    toc = (ROOT / "_toc.yml").read_text()
    for page in re.findall(r"file: (\S+)", toc) + ["book/intro"]:
        assert (built_book / f"{page}.html").is_file(), f"{page} was not built"


def test_every_figure_has_alt_text(built_book):
    for page in built_book.glob("book/*.html"):
        parser = Images()
        parser.feed(page.read_text(encoding="utf-8"))
        for image in parser.images:
            if "logo" in image.get("class", ""):
                continue
            assert image.get("alt", "").strip(), f"{page.name}: image {image.get('src')} has no alt text"


def test_module_pages_have_figures_drawn_at_build(built_book):
    html = (built_book / "book" / "module1.html").read_text(encoding="utf-8")
    assert html.count("<img") >= 2, "Module 1 should show at least two figures made from the data"
    assert "Traceback" not in html, "a code cell printed a traceback into the page"


MODULE_PAGES = sorted(p.stem for p in (ROOT / "book").glob("module*.md"))


@pytest.mark.parametrize("page", MODULE_PAGES)
def test_module_pages_have_objectives_key_terms_and_self_checks(built_book, page):
    html = (built_book / "book" / f"{page}.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", html)
    assert "Learning objectives" in text and "Key terms" in text and "Key points" in text, (
        f"{page}: objectives, key terms and key points are part of every chapter")
    checks = [m.start() for m in re.finditer(r"Check yourself", html)]
    answers = [m.start() for m in re.finditer(r'<details class="[^"]*sd-dropdown', html)]
    assert len(checks) >= 3, f"{page}: at least three inline self-checks, found {len(checks)}"
    for where in checks:  # each question is followed by its answer, before the next question
        following = [a for a in answers if a > where]
        assert following, f"{page}: a self-check has no dropdown answer after it"
        later_checks = [c for c in checks if c > where]
        assert not later_checks or following[0] < later_checks[0], f"{page}: a self-check has no answer of its own"


def notebook_pages() -> list[Path]:
    return sorted(p for p in (ROOT / "book").glob("*.md") if "kernelspec:" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", [p.stem for p in notebook_pages()])
def test_launch_buttons_open_the_pages_notebook(built_book, page):
    html = (built_book / "book" / f"{page}.html").read_text(encoding="utf-8")
    # the theme's launch buttons open in a new tab; links in the page's own text do not
    colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)" target="_blank"', html)
    binder = re.findall(r'href="(https://mybinder\.org/[^"]+)" target="_blank"', html)
    assert colab and binder, f"no Colab or Binder button on {page}"
    assert all(url.endswith(f"book/{page}.ipynb") for url in colab), colab
    assert all(f"book/{page}.ipynb" in url for url in binder), binder
    assert "hub.example.edu" not in html and "logo_jupyterhub" not in html, "no hub until one is configured"


@pytest.mark.parametrize("page", notebook_pages(), ids=lambda p: p.stem)
def test_page_notebooks_are_the_pages(page):
    import jupytext

    published = page.with_suffix(".ipynb")
    assert published.is_file(), f"{published.name} is missing: run `python3 course.py release`"
    expected = [(c.cell_type, c.source) for c in jupytext.read(page).cells]
    got = [(c.cell_type, c.source) for c in jupytext.read(published).cells]
    assert got == expected, f"{published.name} is older than {page.name}: run `python3 course.py release`"


def test_exercise_page_offers_downloads_that_say_what_they_are(built_book):
    names = sorted(p.name for p in built_book.glob("_downloads/*/*.ipynb"))
    modules = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    assert names == sorted(f"{m}-{kind}.ipynb" for m in modules for kind in ("solution", "student"))
    for module in modules:
        student = next(built_book.glob(f"_downloads/*/{module}-student.ipynb")).read_bytes()
        assert student == (ROOT / "exercises" / module / f"{module}.ipynb").read_bytes()
    html = (built_book / "book" / "exercises.html").read_text(encoding="utf-8")
    assert html.count("_downloads/") >= 2 * len(modules) and "colab.research.google.com/github/" in html


def test_what_is_published_is_what_a_reader_needs(built_book):
    static = built_book / "_static"
    unrendered = [p.name for p in static.glob("*.html")]
    assert not unrendered, f"unrendered theme templates are published: {unrendered}"
    assert not list(static.rglob("*.map")), "source maps are published"
    assert not list(static.rglob("embed-amd.js")) and not (static / "scripts" / "fontawesome.js").exists()
    assert (built_book / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00", "favicon.ico is an icon"
    for name in ("course-zh-400.woff2", "course-zh-700.woff2", "course-zh-LICENSE.txt"):
        assert (static / "fonts" / name).is_file(), name
    for page in [*built_book.glob("*.html"), *built_book.glob("book/*.html")]:
        html = page.read_text(encoding="utf-8")
        if "http-equiv=\"Refresh\"" in html or page.name in ("search.html", "genindex.html"):
            continue  # a redirect, and pages made by Sphinx with no text of their own
        assert re.search(r'<meta name="description" content="[^"]{40,}"', html), f"{page.name}: no meta description"
        bare = re.findall(r'<a [^>]*href="http://([^"/]+)/?"[^>]*>\1</a>', html)
        assert not bare, f"{page.name}: bare domain names made into links: {bare}"
        assert "data:image/" not in html, f"{page.name}: an image is inlined as base64"


def test_search_index_holds_pinyin_without_tone_marks(built_book):
    index = (built_book / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(index[index.index("(") + 1:index.rindex(")")])["terms"]
    assert "junmin" in terms and "jūnmín" in terms, "pinyin is indexed with and without tone marks"
