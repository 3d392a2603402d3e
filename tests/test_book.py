"""The book builds with zero warnings, and what it shows a reader is complete."""

from __future__ import annotations

import re
import subprocess
import sys
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


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going",
                             "--path-output", str(out)], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL):", line)]
    assert result.returncode == 0 and not warnings, "book build failed:\n" + "\n".join(warnings or [log[-3000:]])
    return out / "_build" / "html"


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


def test_launch_buttons_and_repository_links_are_configured(built_book):
    html = (built_book / "book" / "module1.html").read_text(encoding="utf-8")
    for service in ("mybinder.org", "colab.research.google.com"):
        assert service in html, f"no {service} launch button on the module page"


def test_exercise_page_offers_notebook_downloads(built_book):
    downloads = {p.parent.parent.name + "/" + p.name for p in built_book.glob("_downloads/*/*.ipynb")}
    assert len(list(built_book.glob("_downloads/*/module1.ipynb"))) == 2, downloads
    html = (built_book / "book" / "exercises.html").read_text(encoding="utf-8")
    assert html.count("_downloads/") >= 2 and "colab.research.google.com/github/" in html
