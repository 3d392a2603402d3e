"""One look for every figure in the course: a colour-blind-safe palette and a plain style.

The palette is Okabe and Ito's eight colours, which stay distinguishable under the common
forms of colour-vision deficiency. Categories that recur across modules get fixed colours,
so "MCF" is the same blue in every chapter and notebook.


Also here: drawing pieces every module uses. Dates in the course's tables have mixed
precision (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``); to place such a date on a time axis,
``partial_date_midpoint`` uses the middle of the period it can mean, and figures show the
precision by marker shape (``PRECISION_MARKERS``), so a year-only event is never drawn as if it
were known to the day. Figures carry no Chinese characters, because the fonts on many build
machines lack the glyphs; the Chinese stays in the text and tables around them.
"""

from __future__ import annotations

import re
import textwrap

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
from cycler import cycler
from matplotlib.lines import Line2D

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

THEME_COLORS = {
    "MCF": OKABE_ITO["blue"],
    "Industrial Internet": OKABE_ITO["orange"],
    "both": OKABE_ITO["reddish purple"],
    "foreign response": OKABE_ITO["bluish green"],
}

#: Lanes of the timeline, top to bottom.
THEME_ORDER = ["MCF", "both", "Industrial Internet", "foreign response"]
#: Marker shape for each value of a ``*_precision`` column.
PRECISION_MARKERS = {"day": "o", "month": "s", "year": "D"}

#: How a figure's ``qualifier`` is written beside it on a chart (">340", "~10", ">=120").
QUALIFIER_SIGNS = {"exact": "", "more than": ">", "about": "~", "nearly": "nearly ", "expected": "exp. ",
                   "at least": ">="}

#: Grey for low-confidence rows in the charts of Modules 3-5.
LOW_GREY = "0.55"
#: ``Axes.plot`` marker styles of the kinds of figure a growth chart keeps apart.
FIGURE_KIND_STYLES = {
    "reported": {"marker": "o", "color": OKABE_ITO["blue"]},
    "target": {"marker": "D", "color": OKABE_ITO["orange"], "markerfacecolor": "white", "markeredgewidth": 2},
    "low": {"marker": "o", "color": LOW_GREY, "markerfacecolor": "white", "markeredgewidth": 1.5},
}


def figure_kind_handles(reported: str = "reported", target: str = "target",
                        low: str = "low confidence") -> list[Line2D]:
    """Legend entries for ``FIGURE_KIND_STYLES``, with these labels."""
    labels = {"reported": reported, "target": target, "low": low}
    return [Line2D([], [], linestyle="", label=labels[kind], **style) for kind, style in FIGURE_KIND_STYLES.items()]


CONFIDENCE_COLORS = {
    "high": OKABE_ITO["blue"],
    "medium": OKABE_ITO["sky blue"],
    "low": OKABE_ITO["vermillion"],
}


def use_course_style() -> None:
    """Apply the course's matplotlib style (call once at the top of a notebook)."""
    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=[c for n, c in OKABE_ITO.items() if n != "yellow"]),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "font.size": 10,
        "figure.figsize": (8, 4.5),
    })


def partial_date_midpoint(value: str) -> pd.Timestamp:
    """Middle of the period that a ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` date can mean.

    >>> partial_date_midpoint("2018-02")
    Timestamp('2018-02-15 00:00:00')
    >>> partial_date_midpoint("2020")
    Timestamp('2020-07-02 00:00:00')
    """
    value = str(value).strip()
    if len(value) == 4:
        return pd.Timestamp(f"{value}-07-02")
    if len(value) == 7:
        return pd.Timestamp(f"{value}-15")
    return pd.Timestamp(value)


def plot_dates(events: pd.DataFrame, column: str = "date") -> pd.Series:
    return events[column].map(partial_date_midpoint)


def new_axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def stagger(dates: pd.Series, lane: pd.Series, window_days: int = 240) -> pd.Series:
    """Small vertical offsets so that events close in time in one lane do not overlap."""
    offsets = pd.Series(0.0, index=dates.index)
    pattern = [0.0, 0.22, -0.22, 0.11, -0.11, 0.33, -0.33]
    for _, group in dates.groupby(lane, sort=False):
        last, step = None, 0
        for index, when in group.sort_values().items():
            step = step + 1 if last is not None and (when - last).days < window_days else 0
            offsets[index] = pattern[step % len(pattern)]
            last = when
    return offsets


_CJK = re.compile(r"\s*[(（][^()（）]*[\u3400-\u9fff][^()（）]*[)）]|[\u3400-\u9fff]+")


def latin_text(name: str, width: int = 46) -> str:
    """``name`` without Chinese (and the brackets around it), cut to ``width`` characters, for figures."""
    latin = name
    while _CJK.search(latin):  # innermost brackets first: "(工业…节点(广州))"
        latin = _CJK.sub("", latin)
    latin = re.sub(r"\(\s*\)|（\s*）", "", latin)
    return textwrap.shorten(latin, width, placeholder="…")
