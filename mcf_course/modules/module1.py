"""Module 1 — what Military-Civil Fusion is: the vocabulary over time and the actors."""

from __future__ import annotations

import textwrap

import pandas as pd

from mcf_course.plotting import OKABE_ITO, PRECISION_MARKERS, THEME_COLORS, new_axes, plot_dates

__all__ = ["STAGE_COLORS", "plot_actor_counts", "plot_vocabulary_timeline"]

#: Stages of the official vocabulary (``terms.stage``), in historical order, with colours.
STAGE_COLORS = {
    "combination": OKABE_ITO["sky blue"],
    "fusion": OKABE_ITO["blue"],
    "national strategy": OKABE_ITO["reddish purple"],
    "integrated system": OKABE_ITO["vermillion"],
}


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
    ax = new_axes(ax, (7, 6.2))
    stages = [s for s in STAGE_COLORS if s in set(terms["stage"])]
    step_of = {stage: i + 1 for i, stage in enumerate(stages)}
    joined = terms.merge(events[["event_id", "date", "date_precision", "confidence"]],
                         on="event_id", how="left", suffixes=("", "_event"))
    joined = joined.dropna(subset=["date"]).assign(
        when=lambda d: plot_dates(d),
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
                    ha="center", va="bottom" if i % 2 == 0 else "top", fontsize=8.5)

    rug = events[events["theme"].isin(rug_themes)]
    for theme, group in rug.groupby("theme"):
        ax.vlines(plot_dates(group), 0.05, 0.35, color=THEME_COLORS.get(theme, "0.5"),
                  linewidth=1.2, label=f"{theme} events (policy timeline)")

    ax.set_yticks([0.2, *step_of.values()], ["events", *step_of.keys()])
    ax.set_ylim(-0.1, len(stages) + 0.8)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Year")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    return ax


def plot_actor_counts(actors: pd.DataFrame, ax=None, by: str = "actor_type"):
    """Horizontal bars of actors per ``by`` category, split by ``defense_link``.

    Returns
    -------
    matplotlib Axes
    """
    ax = new_axes(ax, (7, 4))
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
    ax.legend(fontsize=9, frameon=False, loc="lower right")
    return ax
