"""The policy timeline (``policy_timeline``), drawn and filtered: shared by Modules 1 and 2.

Every function takes DataFrames as ``load_dataset`` returns them, draws on a matplotlib Axes
(a new one unless ``ax`` is given) and returns it. Nothing here reads files or changes the
global style: call ``mcf_course.plotting.use_course_style()`` once first.
"""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.lines import Line2D

from mcf_course.plotting import (
    CONFIDENCE_COLORS,
    OKABE_ITO,
    PRECISION_MARKERS,
    THEME_COLORS,
    THEME_ORDER,
    new_axes,
    plot_dates,
    stagger,
    wrap_label,
)

__all__ = ["EXPLORER_CHOICES", "ISSUER_TYPES", "filter_events", "plot_counts_by_year", "plot_timeline",
           "timeline_explorer", "timeline_explorer_figure"]

#: Kinds of issuer (``policy_timeline.issuer_type``), from the Party down to foreign bodies.
ISSUER_TYPES = ["Party", "joint", "State", "military", "ministry", "enterprise",
                "industry body", "foreign government"]
_COLOR_SCHEMES = {"theme": THEME_COLORS, "confidence": CONFIDENCE_COLORS}


def filter_events(
    events: pd.DataFrame,
    themes=None,
    confidences=None,
    years: tuple[int, int] | None = None,
    issuer_types=None,
) -> pd.DataFrame:
    """Rows of ``events`` whose theme, confidence, year and issuer type are all selected.

    ``None`` for any argument means "no restriction". ``years`` is an inclusive pair
    (first, last), compared with the year of the (possibly partial) ``date``.
    ``issuer_types`` are values of the ``issuer_type`` column (see ``ISSUER_TYPES``).
    """
    keep = pd.Series(True, index=events.index)
    if themes is not None:
        keep &= events["theme"].isin(list(themes))
    if confidences is not None:
        keep &= events["confidence"].isin(list(confidences))
    if issuer_types is not None:
        keep &= events["issuer_type"].isin(list(issuer_types))
    if years is not None:
        year = events["date"].str[:4].astype(int)
        keep &= year.between(int(years[0]), int(years[1]))
    return events[keep]


def plot_timeline(
    events: pd.DataFrame,
    ax=None,
    color_by: str = "theme",
    label: str | dict | None = None,
    wrap: int = 28,
):
    """Draw policy-timeline events in one lane per theme.

    Parameters
    ----------
    events : DataFrame
        Rows of ``policy_timeline`` (any subset), with ``date``, ``date_precision`` and
        ``theme``, and ``confidence`` when ``color_by="confidence"``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made if omitted.
    color_by : {"theme", "confidence"}
        Which column sets the colour of each marker.
    label : str or dict, optional
        Text beside selected markers: a column name (every event is labelled), or a dict
        from ``event_id`` to a short label (only those events are labelled).
    wrap : int
        Width at which label text is wrapped.

    Returns
    -------
    matplotlib Axes
    """
    if color_by not in _COLOR_SCHEMES:
        raise ValueError(f"color_by must be one of {sorted(_COLOR_SCHEMES)}, not {color_by!r}")
    ax = new_axes(ax, (7, 4.6))
    colors = _COLOR_SCHEMES[color_by]
    lanes = [t for t in THEME_ORDER if t in set(events["theme"])]
    lane_of = {theme: len(lanes) - 1 - i for i, theme in enumerate(lanes)}
    if events.empty:
        ax.text(0.5, 0.5, "No events match this selection", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yticks([])
        return ax

    dates = plot_dates(events)
    y = events["theme"].map(lane_of) + stagger(dates, events["theme"])
    for precision, marker in PRECISION_MARKERS.items():
        rows = events["date_precision"] == precision
        if rows.any():
            ax.scatter(dates[rows], y[rows], marker=marker, s=46, zorder=3,
                       c=[colors.get(v, OKABE_ITO["black"]) for v in events.loc[rows, color_by]],
                       edgecolors="white", linewidths=0.6)

    if label is not None:
        texts = events[label] if isinstance(label, str) else events["event_id"].map(label)
        for index, text in texts.dropna().items():
            ax.annotate(textwrap.fill(str(text), wrap), (dates[index], y[index]),
                        xytext=(5, 5), textcoords="offset points", fontsize=8.5,
                        va="bottom", ha="left")

    ax.set_yticks(list(lane_of.values()), list(lane_of.keys()))
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Date (year-only and month-only dates at the middle of the period)")

    color_handles = [Line2D([], [], marker="o", linestyle="", color=c, label=name)
                     for name, c in colors.items() if name in set(events[color_by])]
    shape_handles = [Line2D([], [], marker=m, linestyle="", color="0.35",
                            label=f"dated to the {p}")
                     for p, m in PRECISION_MARKERS.items()
                     if p in set(events["date_precision"])]
    ax.legend(handles=color_handles + shape_handles, loc="upper left", fontsize=9, ncols=2,
              title=color_by, title_fontsize=9, frameon=False, bbox_to_anchor=(0.0, -0.2))
    return ax


def plot_counts_by_year(
    events: pd.DataFrame,
    by: str = "theme",
    ax=None,
    start: int | None = None,
    end: int | None = None,
):
    """Stacked bars of events per year, split by ``by`` ("theme" or "confidence").

    The year is read from the first four characters of ``date``, so events dated only to
    the year or month count too. Years with no events are shown as empty bars between
    ``start`` and ``end`` (by default the first and last year in the data).

    Returns
    -------
    matplotlib Axes
    """
    if by not in _COLOR_SCHEMES:
        raise ValueError(f"by must be one of {sorted(_COLOR_SCHEMES)}, not {by!r}")
    ax = new_axes(ax, (7, 4))
    years = events["date"].str[:4].astype(int)
    counts = pd.crosstab(years, events[by])
    first = start if start is not None else int(years.min())
    last = end if end is not None else int(years.max())
    counts = counts.reindex(range(first, last + 1), fill_value=0)
    colors = _COLOR_SCHEMES[by]
    order = [c for c in colors if c in counts.columns]
    counts[order].plot.bar(stacked=True, ax=ax, width=0.8, legend=False,
                           color=[colors[c] for c in order])
    ax.set_xlabel("Year")
    ax.set_ylabel("Events")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="x", visible=False)
    ax.tick_params(axis="x", labelrotation=90, labelsize=9)
    ax.legend(title=by, fontsize=9, title_fontsize=9, frameon=False, loc="upper left")
    return ax


# --- the timeline explorer (Modules 1 and 2) ------------------------------------------------

#: The explorer's choices: (label, value) per control; ``None`` means no restriction.
EXPLORER_CHOICES = {
    "themes": ("Themes", [("MCF and foreign responses", ("MCF", "foreign response")),
                          ("Industrial Internet and both", ("Industrial Internet", "both")),
                          ("all four themes", tuple(THEME_ORDER))]),
    "confidences": ("Confidence", [("all", None), ("high and medium", ("high", "medium")),
                                   ("high only", ("high",))]),
    "issuer_types": ("Issuers", [("every kind", None), ("Party and joint", ("Party", "joint")),
                                 ("State and ministries", ("State", "ministry")),
                                 ("enterprises and industry bodies", ("enterprise", "industry body")),
                                 ("foreign governments", ("foreign government",))]),
    "color_by": ("Colour by", [("theme", "theme"), ("confidence", "confidence")]),
}
_TABLE_COLUMNS = ["event_id", "date", "title_en", "issuer_type", "theme", "confidence"]


def _selection_text(shown: pd.DataFrame, years, themes, confidences, issuer_types) -> str:
    parts = [f"{len(shown)} events, {years[0]}-{years[1]}",
             "themes: " + (", ".join(themes) if themes else "all")]
    if confidences:
        parts.append("confidence: " + ", ".join(confidences))
    if issuer_types:
        parts.append("issuers: " + ", ".join(issuer_types))
    return "; ".join(parts)


def timeline_explorer_figure(events: pd.DataFrame, themes=("MCF", "foreign response"),
                             confidences=None, issuer_types=None, years=(2005, 2025),
                             color_by: str = "theme"):
    """One view of the timeline explorer as a Figure: the events selected, in theme lanes.
    With its defaults it is the explorer's first view (the chapter's static twin)."""
    import matplotlib.pyplot as plt

    shown = filter_events(events, themes, confidences, years, issuer_types)
    fig, ax = plt.subplots(figsize=(7, 4.6), layout="constrained")
    plot_timeline(shown, ax=ax, color_by=color_by)
    ax.set_xlim(pd.Timestamp(f"{years[0]}-01-01"), pd.Timestamp(f"{years[1] + 1}-01-01"))
    ax.set_title(wrap_label(_selection_text(shown, years, themes, confidences, issuer_types), 60), loc="left",
                 fontsize=10)
    return fig


def timeline_explorer(events: pd.DataFrame, controls=("themes", "confidences"), years=(2005, 2025),
                      **fixed):
    """The policy timeline with a few controls (names from ``EXPLORER_CHOICES``): each view a
    figure, a sentence and a table of its events. ``fixed`` sets what has no control (for
    example ``color_by="confidence"``). Works in the static book and in a live notebook."""
    from mcf_course.explorer import choice_explorer, figure_html

    settings = {"themes": tuple(THEME_ORDER), "confidences": None, "issuer_types": None,
                "color_by": "theme", **fixed}

    def chosen(*values):
        return {**settings, **dict(zip(controls, values, strict=True))}

    def describe(*values):
        picked = chosen(*values)
        shown = filter_events(events, picked["themes"], picked["confidences"], years, picked["issuer_types"])
        return (_selection_text(shown, years, picked["themes"], picked["confidences"], picked["issuer_types"])
                + f"; coloured by {picked['color_by']}.")

    def draw(*values):
        picked = chosen(*values)
        shown = filter_events(events, picked["themes"], picked["confidences"], years, picked["issuer_types"])
        table = shown.sort_values(["date", "event_id"])[_TABLE_COLUMNS].to_html(index=False, border=0)
        sentence = describe(*values)
        return (figure_html(timeline_explorer_figure(events, years=years, **picked),
                            f"Timeline of the selected events: {sentence}", sentence)
                + f"<details><summary>The {len(shown)} events in this view</summary>{table}</details>")

    return choice_explorer({EXPLORER_CHOICES[c][0]: EXPLORER_CHOICES[c][1] for c in controls},
                           draw, describe)
