"""List, per module and answer, every dataset row an autograded answer depends on (issue #11).

    python scripts/graded_rows.py [module ...] [--markdown FILE]

Removes each row of the datasets a solution notebook loads, one at a time, reruns the notebook's
setup and answer cells, and reports which answers change. Ends with the violations: answers that
depend on a low-confidence, disputed or unquoted row. Exit status 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcf_course.graded_rows import DataSource, Notebook, analyse, format_markdown, format_text, solution_notebooks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module names, e.g. module1 or 1 (default: every module)")
    parser.add_argument("--markdown", metavar="FILE", type=Path, help="also write the report as Markdown")
    args = parser.parse_args(argv)
    notebooks = solution_notebooks()
    wanted = [m if m in notebooks else f"module{m}" for m in args.modules] or list(notebooks)
    unknown = [m for m in wanted if m not in notebooks]
    if unknown:
        parser.error(f"no solution notebook for {', '.join(unknown)}; known: {', '.join(notebooks)}")
    source = DataSource()
    reports = []
    for module in wanted:
        reports.append(analyse(Notebook(notebooks[module], source), lambda msg: print(msg, file=sys.stderr)))
        print(f"{module}: done in {reports[-1].seconds:.1f} s", file=sys.stderr)
    print(format_text(reports))
    if args.markdown:
        args.markdown.write_text(format_markdown(reports), encoding="utf-8")
    return 1 if any(r.violations or r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
