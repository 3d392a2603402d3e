"""The built book in a real browser, offline: Debian's Chromium, driven by Playwright, with every
host but this machine blocked.

Every page is opened at desktop and phone width and must show no page error, make no request
to another host, have no broken internal link or image, no page-wide sideways scrolling on a
phone, and no axe-core accessibility violation of impact serious or critical. Screenshots of
each module page land in ``_build/screenshots/`` for a person to look at.

Then what a reader on a phone or a slow connection meets (issue 18): the navigation drawers open
by tap and keyboard at 390 px; each module page weighs at most 1.5 MB gzipped with no script over
200 KB blocking its first paint; figures are readable (text at least 11 px at 1280 px) and fit a
phone, where a tap opens them full size; the explorers work, say which option is on, announce a
change of view, show their default chart once, and say what they are without JavaScript; the
explorer's summary keeps its contrast in dark mode; header buttons show focus; Chinese is set in
the web font the book serves; pinyin is found without tone marks.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import subprocess
import sys
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
        if tag == "img" and attrs.get("data-src"):  # an explorer's view, loaded when shown
            self.links.append(attrs["data-src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel") in ("stylesheet", "preload"):
            self.links.append(attrs["href"])


@functools.cache
def parsed(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="session")
def axe_script() -> str:
    return (fetch_npm_package("axe-core") / "axe.min.js").read_text(encoding="utf-8")


def pages(built: Path) -> list[str]:
    return sorted(str(p.relative_to(built)) for p in [*built.glob("*.html"), *built.glob("book/*.html")])


def visit(browser, url: str, width: int, **options):
    """Open ``url`` at ``width`` pixels (``options`` for the browser context, e.g. a colour
    scheme, touch, or no JavaScript); returns (page, problems list it appends to)."""
    context = browser.new_context(viewport={"width": width, "height": 844 if width < 500 else 900}, **options)
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
            "() => [...document.images].filter(i => i.getAttribute('src') && i.complete && i.naturalWidth === 0)"
            ".map(i => i.src.slice(0, 80))")
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


def load_every_image(page) -> None:
    """Scroll through the page so that lazily loaded images load, then back to the top."""
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += 500) {
            window.scrollTo(0, y); await new Promise((r) => setTimeout(r, 30)); }
        window.scrollTo(0, 0); }""")
    page.wait_for_load_state("networkidle")


# --- Explorers ---------------------------------------------------------------------------

def change_view(page, explorer) -> None:
    """Choose another option as a reader would: a radio button by keyboard, a slider by keyboard,
    or another entry of a drop-down list."""
    radios, sliders = explorer.get_by_role("radio"), explorer.get_by_role("slider")
    if radios.count():
        explorer.get_by_role("radio", checked=True).first.focus()
        page.keyboard.press("ArrowRight")
    elif sliders.count():
        sliders.first.focus()
        page.keyboard.press("ArrowRight")
    else:
        explorer.get_by_role("combobox").first.select_option(index=0)


def test_explorers_show_their_default_chart_once_and_announce_a_change(site, browser):
    base, built = site
    assert module_pages(built), "no module pages were built"
    for name in module_pages(built):
        page, problems = visit(browser, base + name, 1280)
        page.wait_for_selector(".course-explorer[data-ready]", timeout=10_000)
        explorer = page.locator(".course-explorer").first
        twin = explorer.get_attribute("data-twin")
        assert twin and page.locator(f".course-explorer #{twin}").count() == 1, (
            f"{name}: the static twin is the explorer's default view")
        assert explorer.locator("figure:visible").count() == 1, f"{name}: the default chart appears once"
        explorer.scroll_into_view_if_needed()  # its images load lazily
        page.locator(f"#{twin} img").evaluate("i => i.decode()")
        before = explorer.locator(".explorer-pane:visible").get_attribute("data-view")
        snapshot = explorer.locator("form").aria_snapshot()
        assert "[checked]" in snapshot or "slider" in snapshot or "combobox" in snapshot, snapshot
        for group in explorer.locator("fieldset").all():  # radio semantics: one option checked
            assert group.get_by_role("radio", checked=True).count() == 1, f"{name}: {group.inner_text()}"
        change_view(page, explorer)
        pane = explorer.locator(".explorer-pane:visible")
        page.wait_for_function("p => p.querySelector('img') ? p.querySelector('img').naturalWidth > 0 : true",
                               arg=pane.element_handle(), timeout=10_000)
        assert pane.get_attribute("data-view") != before, f"{name}: choosing another option did not change the view"
        assert page.locator(f"#{twin}").is_hidden(), f"{name}: the default chart is hidden with its view"
        status = explorer.locator("[aria-live=polite]")
        assert status.inner_text() == pane.get_attribute("data-summary"), f"{name}: the change is not announced"
        for slider in explorer.get_by_role("slider").all():  # a slider says the value it stands at
            labels = json.loads(slider.get_attribute("data-labels"))
            assert slider.get_attribute("aria-valuetext") == labels[int(slider.input_value())]
        assert not problems, f"{name}: {problems}"
        page.context.close()


def test_explorers_without_javascript_say_what_they_are(site, browser):
    base, built = site
    for name in module_pages(built):
        page, problems = visit(browser, base + name, 1280, java_script_enabled=False)
        explorer = page.locator(".course-explorer").first
        note = explorer.locator(".explorer-note")
        assert note.is_visible() and "the figure below shows its default view" in note.inner_text(), name
        assert explorer.locator("form").is_hidden() and explorer.locator("img:visible").count() == 0, name
        twin = page.locator("#" + explorer.get_attribute("data-twin"))
        assert twin.is_visible() and twin.locator("img").count() == 1, f"{name}: the default view is shown once"
        problems = [p for p in problems if not p.endswith("(csp)")]  # scripts, refused as JavaScript is off
        assert not problems, f"{name}: {problems}"
        page.context.close()


CONTRAST = """el => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b]
    .map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  let node = el, background;
  while (node) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length < 4 || c[3] > 0) { background = c; break; }
    node = node.parentElement;
  }
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background || [255, 255, 255])].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_explorer_text_keeps_its_contrast_in_dark_mode(site, browser):
    base, built = site
    for name in module_pages(built):
        page, problems = visit(browser, base + name, 1280, color_scheme="dark")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        explorer = page.locator(".course-explorer").first
        change_view(page, explorer)  # a view of the explorer's own, with its summary line
        lines = explorer.locator("figcaption:visible, legend, label:visible > span, .explorer-control > label")
        assert lines.count() >= 2, name
        for line in lines.all():
            ratio = line.evaluate(CONTRAST)
            assert ratio >= 4.5, f"{name}: {line.inner_text()[:60]!r} has contrast {ratio:.2f}:1 in dark mode"
        page.context.close()


def test_header_buttons_and_explorer_controls_show_focus(site, browser):
    base, built = site
    page, _ = visit(browser, base + "book/module4.html", 1280)
    page.keyboard.press("Tab")  # the reader is using the keyboard
    buttons = page.locator(".bd-header-article .btn:visible, .bd-header-article .theme-switch-button:visible")
    assert buttons.count() >= 4, "sidebar toggle, launch, repository, download (and more) buttons"
    explorer_controls = page.locator(".course-explorer input[type=radio]").all()[:2]
    for control in [*buttons.all(), *explorer_controls]:
        control.focus()
        drawn = control.evaluate("""el => {
            const s = getComputedStyle(el.type === 'radio' ? el.nextElementSibling : el);
            return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }""")
        assert drawn, f"no visible focus on {control.evaluate('el => el.outerHTML.slice(0, 120)')}"
    page.context.close()


# --- Phones and slow connections ---------------------------------------------------------

@pytest.mark.parametrize("side", ["primary", "secondary"])
def test_navigation_drawers_open_by_tap_and_keyboard_on_a_phone(site, browser, side):
    base, _ = site
    page, problems = visit(browser, base + "book/module4.html", 390, has_touch=True, is_mobile=True)
    dialog = page.locator(f"#pst-{side}-sidebar-modal")
    toggle = page.locator(f".{side}-toggle:visible").first
    for how in ("tap", "Enter", "Space", "click"):
        if how == "tap":
            toggle.tap()
        elif how == "click":
            toggle.click()
        else:
            toggle.focus()
            page.keyboard.press(how)
        page.wait_for_function(f"document.getElementById('pst-{side}-sidebar-modal').open", timeout=5_000)
        assert dialog.locator("a:visible").count() >= 3, f"the {side} drawer opened empty ({how})"
        page.keyboard.press("Escape")
        page.wait_for_function(f"!document.getElementById('pst-{side}-sidebar-modal').open", timeout=5_000)
    assert not problems, problems
    page.context.close()


MAX_GZIPPED = 1.5e6
MAX_BLOCKING_SCRIPT = 200e3


def page_weight(browser, url: str, width: int = 390) -> tuple[int, int, list[tuple[str, int]]]:
    """(raw bytes, gzipped bytes, [(script, bytes)] of scripts that block the first paint) of
    everything the page loads when read to the end."""
    sizes: dict[str, bytes] = {}
    page, problems = visit(browser, url, width, has_touch=True, is_mobile=True)
    page.on("response", lambda r: sizes.__setitem__(r.url, r.body()) if r.ok else None)
    page.reload(wait_until="networkidle")
    load_every_image(page)
    blocking = page.evaluate("""() => [...document.querySelectorAll('head script[src]')]
        .filter((s) => !s.defer && !s.async && s.type !== 'module').map((s) => s.src)""")
    page.context.close()
    assert not problems, problems
    raw = sum(len(b) for b in sizes.values())
    gzipped = sum(len(gzip.compress(b, 9)) for b in sizes.values())
    return raw, gzipped, [(src, len(sizes.get(src, b""))) for src in blocking]


def test_module_pages_are_light_and_nothing_heavy_blocks_the_first_paint(site, browser):
    base, built = site
    for name in module_pages(built):
        raw, gzipped, blocking = page_weight(browser, base + name)
        assert gzipped <= MAX_GZIPPED, f"{name} weighs {gzipped / 1e6:.2f} MB gzipped ({raw / 1e6:.2f} MB raw)"
        heavy = [f"{src} ({size / 1e3:.0f} KB)" for src, size in blocking if size > MAX_BLOCKING_SCRIPT]
        assert not heavy, f"{name}: scripts over 200 KB block the first paint: {heavy}"
    assert not list(built.rglob("embed-amd.js")) and not list(built.rglob("fontawesome.js")), (
        "the widget manager and the theme's fontawesome.js are no longer served")


def test_figures_are_readable_at_1280_and_fit_a_phone(site, browser):
    from PIL import Image

    from mcf_course.plotting import MIN_FONT_KEY

    base, built = site
    smallest = []
    for name, scheme in [(n, s) for n in module_pages(built) for s in ("light", "dark")]:
        page, _ = visit(browser, base + name, 1280, color_scheme=scheme)
        load_every_image(page)
        shown = page.evaluate("""() => [...document.querySelectorAll('.bd-article img')].map((i) => {
            const pane = i.closest('.explorer-pane[hidden]');   // a view not shown yet: as it would be
            const column = i.closest('.course-explorer, .bd-article section').clientWidth;
            const box = getComputedStyle(i), inner = i.getBoundingClientRect().width - parseFloat(box.paddingLeft)
                - parseFloat(box.paddingRight) - parseFloat(box.borderLeftWidth) - parseFloat(box.borderRightWidth);
            const width = pane ? Math.min(+i.getAttribute('width'), column) : inner;  // the image itself
            return [i.dataset.src ? new URL(i.dataset.src, location.href).href : i.src, width,
                    i.closest('a') ? i.closest('a').href : null]; })""")
        assert len(shown) >= 3, name
        for src, width, link in shown:
            with Image.open(built / urlparse(src).path.lstrip("/")) as image:
                assert MIN_FONT_KEY in image.text, f"{name}: {src} was not saved by plotting.figure_png"
                px = float(image.text[MIN_FONT_KEY]) * width / image.width
            smallest.append((px, f"{name} ({scheme}) {Path(urlparse(src).path).name}"))
            assert link and link.endswith(".png"), f"{name}: {src} does not open full size when tapped"
        page.context.close()
        if scheme == "dark":
            continue
        page, _ = visit(browser, base + name, 390)
        load_every_image(page)
        wide = page.evaluate("""() => [...document.querySelectorAll('.bd-article img')]
            .filter((i) => i.getBoundingClientRect().width > 0)
            .filter((i) => i.getBoundingClientRect().right > 390 || i.getBoundingClientRect().width > 390)
            .map((i) => i.src.slice(-40))""")
        assert not wide, f"{name}: figures wider than a 390 px screen: {wide}"
        page.context.close()
    too_small = [f"{where}: {px:.1f} px" for px, where in smallest if px < 11]
    assert not too_small, "text under 11 px at 1280 px:\n" + "\n".join(too_small)


# --- Chinese -----------------------------------------------------------------------------

UNMARKED_CHINESE = r"""() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!/[\u3400-\u9fff]/.test(node.data) || el.closest('script, style, noscript, [hidden]')) continue;
    if (el.closest('[lang]').getAttribute('lang') !== 'zh-Hans') found.push(node.data.trim().slice(0, 30));
  }
  return found;
}"""


def test_chinese_is_marked_everywhere_and_set_in_the_books_web_font(site, browser):
    base, built = site
    system_cjk = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    page, problems = visit(browser, base + "book/module4.html", 1280)
    for where in ("#pst-primary-sidebar", ".course-explorer table"):  # a theme-built title; an explorer's table
        assert page.locator(f'{where} span[lang="zh-Hans"]').count(), f"no Chinese marked zh-Hans in {where}"
    page.wait_for_function("""document.fonts.check('16px "Course Noto Sans SC"', '中')""", timeout=10_000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    for n, where in enumerate(('.bd-article td span[lang="zh-Hans"]', '#pst-primary-sidebar span[lang="zh-Hans"]')):
        page.locator(where).filter(visible=True).first.evaluate(f"el => el.id = 'zh-{n}'")
        selector = f"#zh-{n}"
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        used = {f["familyName"] for f in fonts if f["glyphCount"]}
        # The font's own name, given it by the build: no system font is called that, so this proves
        # the served file drew the glyphs, whatever CJK fonts this machine has (now: {system_cjk!r}).
        assert used == {"Course Noto Sans SC"}, f"{where} drawn with {fonts} (system CJK fonts: {system_cjk!r})"
    page.context.close()
    for name in pages(built):
        page, _ = visit(browser, base + name, 1280)
        page.wait_for_load_state("networkidle")
        unmarked = page.evaluate(UNMARKED_CHINESE)
        assert not unmarked, f"{name}: Chinese not marked lang=zh-Hans: {unmarked[:5]}"
        page.context.close()


def test_search_finds_pinyin_without_tone_marks(site, browser):
    base, _ = site
    page, problems = visit(browser, base + "search.html?q=junmin+ronghe", 1280)
    page.wait_for_selector("#search-results ul li", timeout=15_000)
    found = page.locator("#search-results ul li a").all_inner_texts()
    assert any("Glossary" in f or "Module 1" in f for f in found), found
    assert not problems, problems
    page.context.close()


def test_module1_comparison_table_has_a_corner_header_and_row_headers(site, browser):
    # Module 1's table is being rewritten as a MyST list-table with a stub column (issue 16).
    base, _ = site
    page, _ = visit(browser, base + "book/module1.html", 1280)
    table = page.locator("table").filter(has_text="Who sets the goal")
    assert table.count() == 1
    assert table.locator("thead th").first.inner_text().strip(), "the corner header is empty"
    rows = table.locator("tbody tr")
    assert rows.count() >= 4 and all(
        r.evaluate("r => r.firstElementChild.tagName") == "TH" for r in rows.all()), "row labels are not th cells"
    page.context.close()
