"""Module 2 — the policy trail: the cascade of documents from Party congress to sector guide."""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.lines import Line2D

from mcf_course.plotting import (
    OKABE_ITO,
    PRECISION_MARKERS,
    THEME_COLORS,
    THEME_ORDER,
    avoid_overlaps,
    new_axes,
    plot_dates,
    stagger,
)

__all__ = ["CASCADE_LEVELS", "interval_sentence", "plot_cascade"]

#: Tiers of the Chinese policy cascade (``policy_timeline.cascade_level``), top first.
CASCADE_LEVELS = {
    1: "1 Party congress,\nplenum or leader",
    2: "2 Central guidance\n(opinions, 5-year plans)",
    3: "3 Action and\nspecial plans",
    4: "4 Work plans, notices,\nplatform guides",
    5: "5 Sector guides",
}


def plot_cascade(
    events: pd.DataFrame,
    ax=None,
    themes: tuple[str, ...] = ("Industrial Internet", "both"),
    context_themes: tuple[str, ...] = ("MCF",),
    label: dict | None = None,
    wrap: int = 24,
    start: int | None = None,
    end: int | None = None,
):
    """Draw Chinese policy events by date (x) and tier of the policy cascade (y).

    One row per ``cascade_level`` (1, Party congress or leader, at the top; 5, sector
    guides, at the bottom). Events without a level (institutions, foreign measures) are
    left out. Events of ``themes`` are drawn in their theme colour; events of
    ``context_themes`` are drawn as small grey markers, for context. Marker shape gives
    the precision of the date. Low-confidence events are drawn hollow, and events whose
    date is disputed get a dashed ring. The figure shows sequence only: no lines join the
    events, because a later document's place below an earlier one does not show that the
    one caused the other.

    Parameters
    ----------
    events : DataFrame
        Rows of ``policy_timeline`` with ``cascade_level``, ``date``, ``date_precision``,
        ``theme``, ``confidence`` and ``disputed``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made if omitted.
    themes, context_themes : tuple of str
        Themes to highlight, and themes to show in grey behind them.
    label : dict, optional
        Short labels for selected markers, from ``event_id`` to text, or to a pair
        ``(text, (dx, dy))`` giving the label's offset from the marker in points (the
        default is to the upper right).
    wrap : int
        Width at which label text is wrapped.
    start, end : int, optional
        First and last year to show (by default, all years in the data).

    Returns
    -------
    matplotlib Axes
    """
    ax = new_axes(ax, (7, 7.5))
    year = events["date"].str[:4].astype(int)
    levelled = events[events["cascade_level"].notna()
                      & events["theme"].isin([*themes, *context_themes])
                      & year.between(start or year.min(), end or year.max())]
    levels = list(CASCADE_LEVELS)
    ax.set_yticks(levels, [CASCADE_LEVELS[level] for level in levels])
    ax.set_ylim(max(levels) + 0.6, min(levels) - 0.6)
    ax.grid(axis="y", visible=False)
    for level in levels:
        ax.axhline(level, color="0.88", linewidth=0.8, zorder=0)
    if levelled.empty:
        ax.text(0.5, 0.5, "No events match this selection", ha="center", va="center",
                transform=ax.transAxes)
        return ax

    dates = plot_dates(levelled)
    level = levelled["cascade_level"].astype(float)
    y = level + stagger(dates, level, window_days=200) * 0.8
    context = levelled["theme"].isin(context_themes) & ~levelled["theme"].isin(themes)
    low = (levelled["confidence"] == "low").to_numpy()
    for precision, marker in PRECISION_MARKERS.items():
        rows = (levelled["date_precision"] == precision).to_numpy()
        grey = rows & context.to_numpy()
        if grey.any():
            ax.scatter(dates[grey], y[grey], marker=marker, s=22, zorder=2,
                       facecolors=["white" if w else "0.6" for w in low[grey]],
                       edgecolors="0.6", linewidths=0.8)
        shown = rows & ~context.to_numpy()
        if shown.any():
            colors = [THEME_COLORS.get(t, OKABE_ITO["black"])
                      for t in levelled["theme"].to_numpy()[shown]]
            ax.scatter(dates[shown], y[shown], marker=marker, s=60, zorder=3,
                       facecolors=["white" if w else c for w, c in zip(low[shown], colors, strict=True)],
                       edgecolors=colors, linewidths=1.4)
    disputed = levelled["disputed"].fillna(False).astype(bool).to_numpy()
    if disputed.any():
        ax.scatter(dates[disputed], y[disputed], marker="o", s=240, zorder=1,
                   facecolors="none", edgecolors="0.25", linewidths=1.0, linestyles="--")

    if label:
        placed = []
        for index, item in levelled["event_id"].map(label).dropna().items():
            text, (dx, dy) = item if isinstance(item, tuple) else (item, (6, 4))
            placed.append(ax.annotate(textwrap.fill(str(text), wrap), (dates[index], y[index]),
                                      xytext=(dx, dy), textcoords="offset points", fontsize=8.5,
                                      va="bottom" if dy >= 0 else "top", ha="left" if dx >= 0 else "right",
                                      color="0.4" if context[index] else "black"))
    if start is not None or end is not None:
        first, last = start or int(year.min()), end or int(year.max())
        ax.set_xlim(pd.Timestamp(f"{first}-01-01"), pd.Timestamp(f"{last + 1}-01-01"))
    if label:
        avoid_overlaps(ax, placed)

    ax.set_xlabel("Date (year-only and month-only dates at the middle of the period)")
    handles = [Line2D([], [], marker="o", linestyle="", color=THEME_COLORS[t], label=t)
               for t in THEME_ORDER if t in themes and t in set(levelled["theme"])]
    if context.any():
        handles.append(Line2D([], [], marker="o", linestyle="", color="0.6", markersize=5,
                              label=", ".join(context_themes) + " (context)"))
    handles += [Line2D([], [], marker=m, linestyle="", color="0.35", label=f"dated to the {p}")
                for p, m in PRECISION_MARKERS.items()
                if p in set(levelled["date_precision"])]
    if low.any():
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white",
                              markeredgecolor="0.35", label="low confidence"))
    if disputed.any():
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=11,
                              markerfacecolor="none", markeredgecolor="0.25",
                              label="date disputed"))
    ax.legend(handles=handles, loc="upper left", fontsize=9, frameon=False, ncols=2,
              bbox_to_anchor=(0.0, -0.14))
    return ax


def interval_sentence(events: pd.DataFrame, start_id: str, end_id: str) -> str:
    """A sentence giving the time from one event to another as a range of days, from the earliest
    and latest day each (possibly partial) date can mean, for the chapter. Exercise 2, Question 1
    asks students to write the date arithmetic themselves, so this returns text, not the bounds.

    >>> import pandas as pd
    >>> interval_sentence(pd.DataFrame({"event_id": ["A", "B"], "date": ["2018-02", "2018-05-31"]}), "A", "B")
    'A (2018-02) to B (2018-05-31): between 92 and 119 days'
    """
    dates = events.set_index("event_id")["date"]
    start, end = pd.Period(dates[start_id]), pd.Period(dates[end_id])
    shortest = (end.start_time - start.end_time.normalize()).days
    longest = (end.end_time.normalize() - start.start_time).days
    return (f"{start_id} ({dates[start_id]}) to {end_id} ({dates[end_id]}): "
            f"between {shortest} and {longest} days")
