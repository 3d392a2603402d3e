"""Tables for the book: a DataFrame shown as a Markdown table, so that computed tables look
like the tables written in the text."""

from __future__ import annotations

import pandas as pd


def markdown_text(frame: pd.DataFrame) -> str:
    """The rows of ``frame`` as a Markdown (pipe) table; the index is left out."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def markdown_table(frame: pd.DataFrame):
    """``frame`` as a Markdown table for a notebook or book page to render."""
    from IPython.display import Markdown

    return Markdown(markdown_text(frame))
