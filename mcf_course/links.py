"""Links from the book to the notebooks, all derived from the one repository setting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mcf_course.data import BRANCH, REPOSITORY_URL
from mcf_course.display import markdown_text

ROOT = Path(__file__).resolve().parents[1]
MODULE_TITLES = {
    "warmup": "Warm-up (optional, not graded): pandas with the course's datasets",
    "module1": "Module 1 — Not civil-military integration: what Military-Civil Fusion is",
    "module2": "Module 2 — The policy trail: how strategy cascades into plans",
    "module3": "Module 3 — The Industrial Internet as defense industry platform: mapping the layers",
    "module4": "Module 4 — A dual-use ecosystem: the shipbuilding case and the identifier system",
    "module5": "Module 5 — Strategy becomes infrastructure: political logic and the analyst's toolkit",
}


def exercise_links(root: Path = ROOT) -> str:
    """A Markdown table with, for each module, links to the student notebook and the worked
    solution on GitHub and in Colab. (Downloads from the book itself are listed in the page's
    own text, because Sphinx collects download files only from page sources.)"""
    owner_repo = REPOSITORY_URL.removeprefix("https://github.com/")

    def links(path: str) -> str:
        return (f"[GitHub]({REPOSITORY_URL}/blob/{BRANCH}/{path}) · "
                f"[Colab](https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{path})")

    modules = sorted((p.name for p in (root / "solutions").iterdir() if p.is_dir()),
                     key=lambda name: (name != "warmup", name))  # the warm-up first
    return markdown_text(pd.DataFrame({
        "module": [MODULE_TITLES.get(m, m) for m in modules],
        "student notebook": [links(f"exercises/{m}/{m}.ipynb") for m in modules],
        "worked solution": [links(f"solutions/{m}/{m}.ipynb") for m in modules],
    }))
