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

Every figure is saved by ``figure_png`` (the notebooks' and the book's figures too, once
``use_course_style`` has run): at twice the resolution it is shown at, 96 CSS pixels to the inch,
so that its labels (at least ``MIN_FONT_PT``) are at least 11 px on screen when the figure is no
wider than ``MAX_WIDTH_IN`` (the book's text column); long labels wrap (``wrap_label``), never
"…". The PNG records its smallest text in pixels (``MIN_FONT_KEY``), which the browser test reads.
"""

from __future__ import annotations

import io
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


#: Saved figures have this many pixels to the inch, twice the 96 CSS pixels they are shown at.
FIGURE_DPI = 192
#: The smallest text in a figure, in points: 8.5 pt shown at 96 px to the inch is 11.3 px.
MIN_FONT_PT = 8.5
#: The widest a figure is drawn, in inches: 7 in at 96 px is 672 px, the book's text column at 1280 px.
MAX_WIDTH_IN = 7.0
#: The PNG text field that records the smallest text of a figure, in pixels of the image.
MIN_FONT_KEY = "mcf:min-font-px"


def smallest_text_pt(fig) -> float:
    """The size in points of the smallest visible, non-empty text of ``fig``."""
    sizes = [t.get_fontsize() for t in fig.findobj(mpl.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is fig]
    return min(sizes, default=float("inf"))


def figure_png(fig, dpi: int = FIGURE_DPI) -> tuple[bytes, dict]:
    """``fig`` as a PNG (tight bounding box, at most 256 colours) and its display metadata:
    ``{"width": CSS pixels}``, half its pixel width at the default ``dpi``. The PNG records
    the size of its smallest text in image pixels under ``MIN_FONT_KEY``."""
    from PIL import Image, PngImagePlugin

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    image = Image.open(buffer).convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text(MIN_FONT_KEY, f"{smallest_text_pt(fig) * dpi / 72:.1f}")
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True, pnginfo=info, dpi=(dpi, dpi))
    return out.getvalue(), {"width": round(image.width * 96 / dpi)}


def _show_figures_with_figure_png() -> None:
    """In IPython (a notebook, the book's build), show figures through ``figure_png``."""
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.switch_backend(mpl.get_backend())  # load the backend now: the inline one registers its own formatter

    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def use_course_style() -> None:
    """Apply the course's matplotlib style (call once at the top of a notebook), and show the
    notebook's figures through ``figure_png``."""
    _show_figures_with_figure_png()
    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=[c for n, c in OKABE_ITO.items() if n != "yellow"]),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 100,
        "savefig.dpi": FIGURE_DPI,
        "font.size": 10,
        "figure.figsize": (MAX_WIDTH_IN, 4),
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


def avoid_overlaps(ax, labels, pad: float = 2.0) -> None:
    """Move annotations (``ax.annotate`` results) vertically until none overlaps another label or
    a marker: each moves past what it hits, up or down, whichever is the shorter way."""
    from matplotlib.transforms import Bbox

    fig = ax.get_figure(root=True)
    renderer = fig.canvas.get_renderer()
    placed = []
    for collection in ax.collections:  # the markers, as boxes of about their size
        size = max(6.0, float(collection.get_sizes().max()) ** 0.5 * fig.dpi / 72) / 2 if len(
            collection.get_sizes()) else 6.0
        for x, y in collection.get_offset_transform().transform(collection.get_offsets()):
            placed.append(Bbox([[x - size, y - size], [x + size, y + size]]))
    for label in sorted(labels, key=lambda t: t.xy[0]):
        start = label.xyann
        moves = []
        for up in (True, False):  # push it up past what it hits, or down; keep the shorter move
            label.xyann = start
            for _ in range(20):
                box = label.get_window_extent(renderer)
                hit = next((b for b in placed if box.overlaps(b)), None)
                if hit is None:
                    break
                shift = (hit.y1 - box.y0 + pad) if up else (hit.y0 - box.y1 - pad)
                label.xyann = (label.xyann[0], label.xyann[1] + shift * 72 / fig.dpi)
            moves.append(label.xyann)
        label.xyann = min(moves, key=lambda xy: abs(xy[1] - start[1]))
        placed.append(label.get_window_extent(renderer))


_CJK = re.compile(r"\s*[(（][^()（）]*[\u3400-\u9fff][^()（）]*[)）]|[\u3400-\u9fff]+")


def latin_text(name: str, width: int | None = None) -> str:
    """``name`` without Chinese (and the brackets around it), for figures; wrapped into lines of
    at most ``width`` characters if given (never shortened)."""
    latin = name
    while _CJK.search(latin):  # innermost brackets first: "(工业…节点(广州))"
        latin = _CJK.sub("", latin)
    latin = re.sub(r"\(\s*\)|（\s*）", "", latin)
    latin = re.sub(r"\s+", " ", latin).strip()
    return wrap_label(latin, width) if width else latin


def wrap_label(text: str, width: int) -> str:
    """``text`` wrapped into lines of at most ``width`` characters (a longer word stays whole)."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text
