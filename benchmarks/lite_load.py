"""Benchmark: the first load of an exercise in the book's in-browser site (``lite/``).

    python benchmarks/lite_load.py [--book _build/html] [--module module1] [--runs 3]

Serves the built book (``python3 course.py book`` first) on localhost and opens the module's
exercise as a student's link does, in headless Chromium with an empty cache and every other host
blocked. For each run it prints what the server sent until the kernel was ready (bytes as sent,
and gzipped as a web server would send them, gzip level 6), the seconds from the click to a ready
kernel (the first code the kernel runs has run) and then to the end of the setup cells, and
compares the first two with the targets: at most 25 MB gzipped and 15 s on this machine.
A script to run by hand (CI times nothing).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, FLAGS  # noqa: E402
from lite_driver import kernel_ready, open_exercise, run_code, setup_cells  # noqa: E402

TARGET_MB, TARGET_SECONDS = 25, 15


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the book and records the path of every file it sends."""

    sent: list[str] = []

    def log_message(self, *args):
        pass

    def send_head(self):
        result = super().send_head()
        if result is not None:
            self.sent.append(unquote(urlparse(self.path).path))
        return result


@functools.cache
def sizes(file: Path) -> tuple[int, int]:
    data = file.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=6))


def transferred(book: Path, paths: list[str]) -> tuple[int, int, int]:
    """Requests, bytes as sent and bytes gzipped, for the files in ``paths``."""
    raw = packed = 0
    for path in paths:
        file = book / path.lstrip("/")
        if file.is_dir():
            file = file / "index.html"
        if file.is_file():
            one_raw, one_packed = sizes(file)
            raw, packed = raw + one_raw, packed + one_packed
    return len(paths), raw, packed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--book", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--module", default="module1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=0, help="list the N largest files of the first load")
    args = parser.parse_args()
    if not (args.book / "lite" / "jupyter-lite.json").is_file():
        sys.exit(f"No in-browser site in {args.book}: run `python3 course.py book` first.")
    handler = functools.partial(CountingHandler, directory=str(args.book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://localhost:{server.server_address[1]}/"

    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for run in range(1, args.runs + 1):
            context = browser.new_context()  # an empty cache and no stored notebooks
            page = context.new_page()
            CountingHandler.sent.clear()
            start = time.perf_counter()
            notebook = open_exercise(page, base, args.module)
            kernel_ready(page)
            ready = time.perf_counter() - start
            requests, raw, packed = transferred(args.book, list(CountingHandler.sent))
            if run == 1 and args.top:
                largest = sorted(set(CountingHandler.sent), key=lambda p: -transferred(args.book, [p])[2])
                for path in largest[:args.top]:
                    print(f"  {transferred(args.book, [path])[2] / 1e6:6.2f} MB gzipped  {path}")
            for code in setup_cells(notebook):
                reply = run_code(page, code)
                assert reply["status"] == "ok", reply
            setup = time.perf_counter() - start
            _, setup_raw, setup_packed = transferred(args.book, list(CountingHandler.sent))
            results.append((ready, setup, raw, packed, setup_raw, setup_packed))
            print(f"run {run}: {requests} requests, {raw / 1e6:.1f} MB sent ({packed / 1e6:.1f} MB gzipped) "
                  f"and a ready kernel after {ready:.1f} s; setup cells done after {setup:.1f} s "
                  f"({setup_packed / 1e6:.1f} MB gzipped in all)")
            context.close()
        browser.close()
    server.shutdown()
    ready = statistics.median(r[0] for r in results)
    setup = statistics.median(r[1] for r in results)
    raw, packed = results[0][2], results[0][3]
    print(f"\nFirst load of {args.module} until the kernel is ready (median of {args.runs} runs):")
    print(f"  bytes gzipped   {packed / 1e6:6.1f} MB   target {TARGET_MB} MB   ratio {packed / 1e6 / TARGET_MB:.2f}"
          f"   ({raw / 1e6:.1f} MB as sent)")
    print(f"  ready kernel    {ready:6.1f} s    target {TARGET_SECONDS} s    ratio {ready / TARGET_SECONDS:.2f}")
    print(f"  setup cells run {setup:6.1f} s    (after {results[0][5] / 1e6:.1f} MB gzipped in all)")


if __name__ == "__main__":
    main()
