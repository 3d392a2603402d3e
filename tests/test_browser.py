"""The built book in a real browser, offline: Debian's Chromium, driven by Playwright, with every
host but this machine blocked.

Every page is opened at desktop and phone width and must show no page error, make no request
to another host, have no broken internal link or image, no page-wide sideways scrolling on a
phone, and no axe-core accessibility violation of impact serious or critical. On the module
pages the explorers must render and respond: choosing another option shows another view.
Screenshots of each module page land in ``_build/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import re
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from conftest import ROOT  # and the browser fixture: Debian's Chromium, every other host blocked

sys.path.insert(0, str(ROOT / "book" / "_ext"))
from course_book import fetch_npm_package  # noqa: E402

SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}
BLOCKING = ("serious", "critical")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel") in ("stylesheet", "preload"):
            self.links.append(attrs["href"])


@functools.cache
def parsed(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="session")
def site(built_book):
    """The built book served by a real HTTP server on localhost."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/", built_book
    server.shutdown()


@pytest.fixture(scope="session")
def axe_script() -> str:
    return (fetch_npm_package("axe-core") / "axe.min.js").read_text(encoding="utf-8")


def pages(built: Path) -> list[str]:
    return sorted(str(p.relative_to(built)) for p in [*built.glob("*.html"), *built.glob("book/*.html")])


def visit(browser, url: str, width: int):
    """Open ``url`` at ``width`` pixels; returns (page, problems list it appends to)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console error: {m.text}") if m.type == "error" else None)

    def check(request):
        host = urlparse(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("localhost", "127.0.0.1"):
            problems.append(f"request to another host: {request.url}")

    page.on("request", check)
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})")
            if urlparse(r.url).hostname in ("localhost", "127.0.0.1") else None)
    page.goto(url, wait_until="networkidle")
    return page, problems


def axe_violations(page, axe_script: str) -> list[str]:
    page.add_script_tag(content=axe_script)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"axe {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
            for v in result["violations"] if v["impact"] in BLOCKING]


def test_internal_links_and_images_all_resolve(site):
    base, built = site
    broken = []
    for name in pages(built):
        path = built / name
        for link in parsed(path).links:
            target = urlparse(urljoin(f"{base}{name}", link))
            if target.hostname not in ("localhost", "127.0.0.1") or target.scheme not in ("http", "https"):
                continue
            file = built / target.path.lstrip("/")
            if file.is_dir():
                file = file / "index.html"
            if not file.is_file():
                broken.append(f"{name}: {link}")
            elif target.fragment and file.suffix == ".html" and target.fragment not in parsed(file).ids:
                broken.append(f"{name}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:30])


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_works_offline_and_passes_axe(site, browser, axe_script, width):
    base, built = site
    failures = []
    for name in pages(built):
        page, problems = visit(browser, base + name, WIDTHS[width])
        broken_images = page.evaluate(
            "() => [...document.images].filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.slice(0, 80))")
        problems += [f"broken image: {src}" for src in broken_images]
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 2:
            problems.append(f"the page scrolls sideways by {overflow} px")
        problems += axe_violations(page, axe_script)
        if name.startswith("book/module"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{Path(name).stem}-{WIDTHS[width]}.png"), full_page=True)
        failures += [f"{name} at {WIDTHS[width]} px: {p}" for p in problems]
        page.context.close()
    assert not failures, "\n".join(failures[:40])


def module_pages(built: Path) -> list[str]:
    return sorted(n for n in pages(built) if re.fullmatch(r"book/module\d+\.html", n))


def test_explorers_render_and_respond(site, browser):
    base, built = site
    assert module_pages(built), "no module pages were built"
    for name in module_pages(built):
        page, problems = visit(browser, base + name, 1280)
        page.wait_for_selector("figure.explorer-view", timeout=20_000)  # the widgets have rendered
        explorers = page.locator(".widget-vbox").filter(has=page.locator("figure.explorer-view"))
        assert explorers.count() >= 1, f"{name}: no explorer rendered"
        explorer = explorers.first

        def shown(explorer=explorer) -> str:  # the caption of the view now visible
            return explorer.locator("figcaption:visible").first.inner_text()

        before = shown()
        buttons = explorer.locator(".widget-toggle-buttons button")
        sliders = explorer.locator(".noUi-handle")  # a SelectionSlider's handle
        if buttons.count() >= 2:
            buttons.nth(1).click()
        elif sliders.count():
            sliders.first.focus()
            page.keyboard.press("ArrowRight")  # as a keyboard user moves it
        else:
            explorer.locator("select").first.select_option(index=1)
        page.wait_for_timeout(300)
        after = shown()
        assert after and after != before, f"{name}: choosing another option did not change the view"
        assert not problems, f"{name}: {problems}"
        page.context.close()
