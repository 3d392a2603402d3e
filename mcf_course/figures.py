"""Figures drawn from the course datasets, shared by chapters, widgets and notebooks.

Every function takes DataFrames as ``load_dataset`` returns them, draws on a matplotlib
Axes (a new one unless ``ax`` is given) and returns that Axes. Nothing here reads files
or changes the global style: call ``mcf_course.plotting.use_course_style()`` once first.

Figures carry no Chinese characters, because the fonts on many build machines lack the
glyphs; English renderings are used on the axes and the Chinese stays in the text and
tables around the figure.

Dates in ``policy_timeline`` have mixed precision (``YYYY``, ``YYYY-MM`` or
``YYYY-MM-DD``). To place such a date on a time axis, ``partial_date_midpoint`` uses the
middle of the period it can mean, and the marker shape shows the precision, so a
year-only event is never drawn as if it were known to the day.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from mcf_course.plotting import CONFIDENCE_COLORS, OKABE_ITO, THEME_COLORS

__all__ = [
    "CASCADE_LEVELS",
    "PRECISION_MARKERS",
    "STAGE_COLORS",
    "THEME_ORDER",
    "partial_date_midpoint",
    "plot_actor_counts",
    "plot_cascade",
    "plot_counts_by_year",
    "plot_timeline",
    "plot_vocabulary_timeline",
]

#: Lanes of the timeline, top to bottom.
THEME_ORDER = ["MCF", "both", "Industrial Internet", "foreign response"]
#: Marker shape for each value of ``date_precision``.
PRECISION_MARKERS = {"day": "o", "month": "s", "year": "D"}
#: Stages of the official vocabulary (``terms.stage``), in historical order, with colours.
STAGE_COLORS = {
    "combination": OKABE_ITO["sky blue"],
    "fusion": OKABE_ITO["blue"],
    "national strategy": OKABE_ITO["reddish purple"],
    "integrated system": OKABE_ITO["vermillion"],
}
_COLOR_SCHEMES = {"theme": THEME_COLORS, "confidence": CONFIDENCE_COLORS}
#: Tiers of the Chinese policy cascade (``policy_timeline.cascade_level``), top first.
CASCADE_LEVELS = {
    1: "1 Party congress,\nplenum or leader",
    2: "2 Central guidance\n(opinions, 5-year plans)",
    3: "3 Action and\nspecial plans",
    4: "4 Work plans, notices,\nplatform guides",
    5: "5 Sector guides",
}


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


def _plot_dates(events: pd.DataFrame) -> pd.Series:
    return events["date"].map(partial_date_midpoint)


def _new_axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _stagger(dates: pd.Series, lane: pd.Series, window_days: int = 240) -> pd.Series:
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
    ax = _new_axes(ax, (10, 4.5))
    colors = _COLOR_SCHEMES[color_by]
    lanes = [t for t in THEME_ORDER if t in set(events["theme"])]
    lane_of = {theme: len(lanes) - 1 - i for i, theme in enumerate(lanes)}
    if events.empty:
        ax.text(0.5, 0.5, "No events match this selection", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yticks([])
        return ax

    dates = _plot_dates(events)
    y = events["theme"].map(lane_of) + _stagger(dates, events["theme"])
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
                        xytext=(5, 5), textcoords="offset points", fontsize=7.5,
                        va="bottom", ha="left")

    ax.set_yticks(list(lane_of.values()), list(lane_of.keys()))
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Date (year-only and month-only dates drawn at the middle of the period)")

    color_handles = [Line2D([], [], marker="o", linestyle="", color=c, label=name)
                     for name, c in colors.items() if name in set(events[color_by])]
    shape_handles = [Line2D([], [], marker=m, linestyle="", color="0.35",
                            label=f"dated to the {p}")
                     for p, m in PRECISION_MARKERS.items()
                     if p in set(events["date_precision"])]
    ax.legend(handles=color_handles + shape_handles, loc="upper left", fontsize=8,
              title=color_by, title_fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_vocabulary_timeline(
    terms: pd.DataFrame,
    events: pd.DataFrame,
    ax=None,
    wrap: int = 30,
    rug_themes: tuple[str, ...] = ("MCF", "foreign response"),
):
    """Draw the official vocabulary as a staircase in time, joined to the policy timeline.

    Each row of ``terms`` is placed at the date of its ``event_id`` in ``events``, on the
    step of its ``stage``, and labelled with its English rendering and year; terms anchored to
    the same event share a marker. Low-confidence anchors are drawn hollow and marked in the
    label. Labels alternate above and below the markers of each step. Below the staircase, a
    rug shows the events of ``rug_themes`` (by default all MCF events and the foreign
    responses), so the vocabulary can be read against what happened around it.

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax, (10, 5.5))
    stages = [s for s in STAGE_COLORS if s in set(terms["stage"])]
    step_of = {stage: i + 1 for i, stage in enumerate(stages)}
    joined = terms.merge(events[["event_id", "date", "date_precision", "confidence"]],
                         on="event_id", how="left", suffixes=("", "_event"))
    joined = joined.dropna(subset=["date"]).assign(
        when=lambda d: _plot_dates(d),
        low=lambda d: (d["confidence"] == "low") | (d["confidence_event"] == "low"))
    # Terms anchored to the same event on the same step share one marker and one label.
    joined = (joined.groupby(["event_id", "stage"], as_index=False, sort=False)
              .agg(term_en=("term_en", "; ".join), date=("date", "first"),
                   date_precision=("date_precision", "first"), when=("when", "first"),
                   low=("low", "any"))
              .sort_values("when"))

    seen_on_step: dict[str, int] = {}
    for _, row in joined.iterrows():
        i = seen_on_step[row["stage"]] = seen_on_step.get(row["stage"], -1) + 1
        color = STAGE_COLORS[row["stage"]]
        low = bool(row["low"])
        ax.scatter(row["when"], step_of[row["stage"]], s=70, zorder=3,
                   marker=PRECISION_MARKERS.get(row["date_precision"], "o"),
                   facecolors="white" if low else color, edgecolors=color, linewidths=1.8)
        text = f"{row['term_en']} ({row['date'][:4]})"
        if low:
            text += " [low confidence]"
        ax.annotate(textwrap.fill(text, wrap), (row["when"], step_of[row["stage"]]),
                    xytext=(0, 10 if i % 2 == 0 else -12), textcoords="offset points",
                    ha="center", va="bottom" if i % 2 == 0 else "top", fontsize=7.5)

    rug = events[events["theme"].isin(rug_themes)]
    for theme, group in rug.groupby("theme"):
        ax.vlines(_plot_dates(group), 0.05, 0.35, color=THEME_COLORS.get(theme, "0.5"),
                  linewidth=1.2, label=f"{theme} events (policy timeline)")

    ax.set_yticks([0.2, *step_of.values()], ["events", *step_of.keys()])
    ax.set_ylim(-0.1, len(stages) + 0.8)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Year")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
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
    ax = _new_axes(ax, (10, 4))
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
    ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    ax.legend(title=by, fontsize=8, title_fontsize=8, frameon=False, loc="upper left")
    return ax


def plot_actor_counts(actors: pd.DataFrame, ax=None, by: str = "actor_type"):
    """Horizontal bars of actors per ``by`` category, split by ``defense_link``.

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax, (8, 4))
    link = actors["defense_link"].map({True: "defense-linked", False: "not defense-linked"})
    counts = pd.crosstab(actors[by], link)
    for column in ["defense-linked", "not defense-linked"]:
        if column not in counts.columns:
            counts[column] = 0
    counts = counts[["defense-linked", "not defense-linked"]]
    counts = counts.loc[counts.sum(axis=1).sort_values().index]
    counts.plot.barh(stacked=True, ax=ax, legend=False, width=0.7,
                     color=[OKABE_ITO["vermillion"], OKABE_ITO["sky blue"]])
    ax.set_xlabel("Number of actors")
    ax.set_ylabel("")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", visible=False)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return ax


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
    ax = _new_axes(ax, (10, 5.5))
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

    dates = _plot_dates(levelled)
    level = levelled["cascade_level"].astype(float)
    y = level + _stagger(dates, level, window_days=200) * 0.8
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
        for index, item in levelled["event_id"].map(label).dropna().items():
            text, (dx, dy) = item if isinstance(item, tuple) else (item, (6, 4))
            ax.annotate(textwrap.fill(str(text), wrap), (dates[index], y[index]),
                        xytext=(dx, dy), textcoords="offset points", fontsize=7.5,
                        va="bottom" if dy >= 0 else "top", ha="left" if dx >= 0 else "right",
                        color="0.4" if context[index] else "black")
    if start is not None or end is not None:
        first, last = start or int(year.min()), end or int(year.max())
        ax.set_xlim(pd.Timestamp(f"{first}-01-01"), pd.Timestamp(f"{last + 1}-01-01"))

    ax.set_xlabel("Date (year-only and month-only dates drawn at the middle of the period)")
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
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False,
              bbox_to_anchor=(1.0, 1.0))
    return ax
