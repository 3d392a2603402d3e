"""Benchmark: what the module pages cost a reader on a phone and a slow connection, side by side.

    python benchmarks/book_weight.py [--html _build/html] [--baseline-rev REV | --baseline-html DIR]

For each module page (opened at 390 px and read to the end, so that lazy images load): its
weight, raw and gzipped, and the scripts that block its first paint (in <head>, neither
deferred nor async). Then the first contentful paint of Module 4 under a slow connection
(1.6 Mbps down, 150 ms latency) and a 4x slower CPU, as Chromium reports it (median of 3).
With a baseline (a built book, or a git revision that is exported and built first), both
columns and their ratios. Uses Debian's Chromium, every host but localhost blocked. A script
to run by hand: the test suite asserts the budgets (tests/test_browser.py), not timings.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"]
SLOW = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 0.75e6 / 8}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://localhost:{server.server_address[1]}/", server


def weigh(browser, url: str) -> dict:
    bodies: dict[str, bytes] = {}
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.on("response", lambda r: bodies.__setitem__(r.url, r.body()) if r.ok else None)
    page.goto(url, wait_until="networkidle")
    page.evaluate("""async () => { for (let y = 0; y < document.body.scrollHeight; y += 500) {
        window.scrollTo(0, y); await new Promise((r) => setTimeout(r, 30)); } }""")
    page.wait_for_load_state("networkidle")
    blocking = page.evaluate("""() => [...document.querySelectorAll('head script[src]')]
        .filter((s) => !s.defer && !s.async && s.type !== 'module').map((s) => s.src)""")
    context.close()
    return {"raw": sum(map(len, bodies.values())), "gzip": sum(len(gzip.compress(b, 9)) for b in bodies.values()),
            "blocking": sum(len(bodies.get(s, b"")) for s in blocking),
            "largest blocking": max((len(bodies.get(s, b"")) for s in blocking), default=0)}


def first_paint(browser, url: str) -> float:
    """First contentful paint in seconds, throttled, with an empty cache."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", SLOW)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    page.goto(url, wait_until="load", timeout=300_000)
    paint = page.evaluate("""() => new Promise((done) => new PerformanceObserver((list) => {
        const fcp = list.getEntriesByName('first-contentful-paint')[0]; if (fcp) done(fcp.startTime); })
        .observe({type: 'paint', buffered: true}))""")
    context.close()
    return paint / 1000


def measure(browser, html: Path) -> dict:
    base, server = serve(html)
    pages = sorted(p.relative_to(html).as_posix() for p in (html / "book").glob("module*.html"))
    result = {name: weigh(browser, base + name) for name in pages}
    result["fcp"] = statistics.median(first_paint(browser, base + "book/module4.html") for _ in range(3))
    server.shutdown()
    return result


def build_revision(rev: str, folder: Path) -> Path:
    """Export ``rev`` of this repository into ``folder`` and build its book with this environment."""
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", ".", "--keep-going"], cwd=folder, check=True, capture_output=True)
    return folder / "_build" / "html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--baseline-html", type=Path)
    group.add_argument("--baseline-rev", help="a git revision to export and build as the baseline")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        baseline = args.baseline_html or (build_revision(args.baseline_rev, Path(tmp)) if args.baseline_rev else None)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        now = measure(browser, args.html)
        before = measure(browser, baseline) if baseline else None
        browser.close()

    def mb(n):
        return f"{n / 1e6:6.2f} MB"

    print("Module pages at 390 px, read to the end (gzipped as a server would send them)")
    head = f"{'page':18s} {'raw':>9s} {'gzipped':>9s} {'blocking':>9s} {'largest':>9s}"
    print(head + (f"   | before: {'raw':>9s} {'gzipped':>9s} {'blocking':>9s}  gzip ratio" if before else ""))
    for name, row in now.items():
        if name == "fcp":
            continue
        line = f"{name:18s} {mb(row['raw'])} {mb(row['gzip'])} {mb(row['blocking'])} {mb(row['largest blocking'])}"
        if before and name in before:
            old = before[name]
            line += (f"   |         {mb(old['raw'])} {mb(old['gzip'])} {mb(old['blocking'])}"
                     f"  {old['gzip'] / row['gzip']:5.1f}x lighter")
        print(line)
    print(f"\nFirst contentful paint, Module 4, 1.6 Mbps / 150 ms / 4x CPU (median of 3): {now['fcp']:.1f} s"
          + (f"; before: {before['fcp']:.1f} s ({before['fcp'] / now['fcp']:.1f}x faster)" if before else ""))
    print("Budgets (issue 18): at most 1.5 MB gzipped a page, no blocking script over 200 KB, "
          "first paint of Module 4 at most 10 s.")


if __name__ == "__main__":
    main()
