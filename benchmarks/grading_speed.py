"""Benchmark: grade 40 synthetic submissions of one module both ways, side by side.

    python benchmarks/grading_speed.py [--module module1] [--students 40] [--workers N]

1. plain sequential `nbgrader autograde <module>` in one copy of a course;
2. `mcf-grade <module>` (mcf_course.grading) in an identical copy.

Prints both wall-clock times, the ratio, and whether every score agrees; then where one
notebook's time goes under mcf-grade (the median over the complete submissions of each phase:
kernel start (the fork) and ready (until it answers), execution of the notebook's own cells in
the kernel, the tests in the worker,
nbgrader's bookkeeping, the sandbox reset, feedback, and recording in the course's gradebook).
The submissions are a fixed mix: a third complete, a third with some answers left out, a third
unanswered. This is a script to run by hand (CI does not time anything).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcf_course.grading import grade_class  # noqa: E402


def run(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run(["nbgrader", *args], cwd=course, env=env, check=True, capture_output=True)


def make_course(folder: Path, module: str, students: int) -> None:
    shutil.copytree(ROOT / "solutions", folder / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    run(folder, "generate_assignment", module, "--force")
    solution = nbformat.read(folder / "solutions" / module / f"{module}.ipynb", as_version=4)
    blank = nbformat.read(folder / "exercises" / module / f"{module}.ipynb", as_version=4)
    answers = [i for i, c in enumerate(solution.cells)
               if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    for n in range(students):
        kind = n % 3
        nb = solution if kind == 0 else blank
        if kind == 1:  # partly correct: a different subset of answers missing for each student
            nb = copy.deepcopy(solution)
            for i in answers[n % len(answers)::3]:
                nb.cells[i] = copy.deepcopy(blank.cells[i])
        target = folder / "submitted" / f"student{n:02d}" / module
        target.mkdir(parents=True)
        nbformat.write(nb, target / f"{module}.ipynb")


def scores(course: Path, module: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(s.student.id, g.name): g.score for s in gb.assignment_submissions(module)
                for nb in s.notebooks for g in nb.grades}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", default="module1",
                        choices=sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()))
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        make_course(base, args.module, args.students)
        sequential, parallel = Path(tmp) / "sequential", Path(tmp) / "parallel"
        shutil.copytree(base, sequential)
        shutil.copytree(base, parallel)

        start = time.perf_counter()
        run(sequential, "autograde", args.module)
        t_sequential = time.perf_counter() - start

        start = time.perf_counter()
        outcomes = grade_class(parallel, args.module, workers=args.workers, quiet=True)
        t_parallel = time.perf_counter() - start

        a, b = scores(sequential, args.module), scores(parallel, args.module)
        agree = a == b and len(a) > 0
        print(f"submissions:                 {args.students} of {args.module}")
        print(f"nbgrader autograde (serial): {t_sequential:7.1f} s")
        print(f"mcf-grade ({args.workers or os.cpu_count()} workers):       {t_parallel:7.1f} s")
        print(f"speed-up:                    {t_sequential / t_parallel:7.2f}x")
        print(f"scores identical:            {'yes' if agree else 'NO'} ({len(a)} grade cells compared)")
        if not agree:
            diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
            print("differences:", dict(list(diff.items())[:10]))
        print_breakdown(outcomes, t_sequential / args.students)


PHASES = ["kernel start", "kernel ready", "execution", "tests", "nbgrader bookkeeping", "sandbox reset", "feedback",
          "recording"]


def print_breakdown(outcomes, sequential_each: float) -> None:
    """The median time of each phase, over the complete submissions (every third student)."""
    complete = [o.timings for o in outcomes if int(o.student[-2:]) % 3 == 0 and o.timings]
    if not complete:
        return
    medians = {phase: statistics.median(t.get(phase, 0.0) for t in complete) for phase in PHASES}
    total = sum(medians.values())
    print(f"\none complete notebook under mcf-grade (median of {len(complete)}; nbgrader autograde "
          f"takes {sequential_each:.2f} s per notebook on average):")
    for phase, seconds in medians.items():
        print(f"  {phase:<22} {seconds:6.2f} s  {100 * seconds / total:4.0f} %")
    print(f"  {'total':<22} {total:6.2f} s  (the worker's phases run in parallel; recording in the coordinator)")


if __name__ == "__main__":
    main()
