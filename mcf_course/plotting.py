"""One look for every figure in the course: a colour-blind-safe palette and a plain style.

The palette is Okabe and Ito's eight colours, which stay distinguishable under the common
forms of colour-vision deficiency. Categories that recur across modules get fixed colours,
so "MCF" is the same blue in every chapter and notebook.
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

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
