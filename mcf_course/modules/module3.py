"""Module 3 — the Industrial Internet on two maps, the official architecture and the analytic lens.

The ``architecture_elements`` dataset places each programme element twice: in the official
functional system that Chinese documents use (``official_system``) and, where the placement
is unambiguous, in one layer of the course's analytic lens (``analytic_layer``). A blank
analytic layer is not missing data: it marks a judgment call left to discussion. The
functions here keep those blanks visible as a column of their own.

Also here: a growth plot for ``platform_stats`` that keeps reported figures, targets and
weak figures apart, and an explorer (with a static twin) that shows, for one layer or one
official system, the elements, the documents that name them and the actors tied to those
documents.

Like the other module files, nothing here reads files or changes the global style, and the
figures carry no Chinese characters (many build machines lack the fonts).
"""

from __future__ import annotations

import textwrap
from collections import Counter

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from mcf_course.plotting import (
    LOW_GREY,
    OKABE_ITO,
    QUALIFIER_SIGNS,
    figure_kind_handles,
    new_axes,
    partial_date_midpoint,
    wrap_label,
)

__all__ = [
    "ANALYTIC_LAYERS",
    "DOCUMENT_LABELS",
    "JUDGMENT_CALL",
    "OFFICIAL_SYSTEMS",
    "SUPPORT",
    "layer_explorer",
    "layer_explorer_figure",
    "layer_selection",
    "plot_layer_map",
    "plot_series",
    "series_legend_handles",
]

#: The five official functional systems, in the order MIIT lists them (2025 wording:
#: 网络、标识、平台、数据、安全). The 2017 Guiding Opinion had three: network, platform, security.
OFFICIAL_SYSTEMS = ("network", "identifier", "platform", "data", "security")
#: Value of ``official_system`` for support measures (organisation, standards, finance,
#: talent), which are not one of the five systems.
SUPPORT = "support"
#: The course's analytic lens, in the order the course introduces it.
ANALYTIC_LAYERS = ("data", "applications", "security", "coordination")
#: Column (and explorer choice) for elements whose analytic layer is left blank on purpose.
JUDGMENT_CALL = "judgment call"

#: Short labels for the documents (``policy_timeline.event_id``) that name elements.
DOCUMENT_LABELS = {
    "T021": "2017 Guiding Opinion (State Council)",
    "T025": "2018-2020 action plan and 2018 work plan",
    "T026": "2018 platform guide (MIIT)",
    "T028": "2019 '5G + II' 512 Project (MIIT)",
    "T048": "2019 work plan (Special Working Group)",
    "T031": "2020 notice (MIIT General Office)",
    "T036": "2021-2023 action plan",
    "T050": "2022 work plan (Special Working Group)",
    "T043": "2024-2026 'Guantong' identifier plan",
    "T045": "2024 upgraded 512 plan (MIIT)",
}

_BY = {"analytic_layer": "analytic layer", "official_system": "official system"}
_ELEMENT_COLUMNS = ["element_id", "element_en", "official_system", "analytic_layer",
                    "event_id", "target", "confidence"]
_DOCUMENT_COLUMNS = ["event_id", "date", "title_en", "issuer", "doc_type", "confidence"]
_ACTOR_COLUMNS = ["actor_id", "name_en", "abbrev", "actor_type", "defense_link",
                  "key_event_id"]


def _ramp(color: str) -> LinearSegmentedColormap:
    return LinearSegmentedColormap.from_list(f"white-{color}", ["#FFFFFF", color])


def _system_order(elements: pd.DataFrame) -> list[str]:
    present = set(elements["official_system"].dropna())
    rows = [*OFFICIAL_SYSTEMS, SUPPORT]
    return rows + sorted(present - set(rows))


def _layer_of(elements: pd.DataFrame) -> pd.Series:
    """The analytic layer of each element, with blanks named ``JUDGMENT_CALL``."""
    return elements["analytic_layer"].astype("object").where(
        elements["analytic_layer"].notna(), JUDGMENT_CALL)


def _cell_counts(elements: pd.DataFrame) -> Counter:
    """Number of elements per (official system, analytic layer) pair, blanks under ``JUDGMENT_CALL``.

    A plain count for the map. (The table of these counts is Question 1 of the Module 3
    exercise, so the course's helpers do not offer it.)
    """
    return Counter(zip(elements["official_system"], _layer_of(elements), strict=True))


def _check_choice(elements: pd.DataFrame, by: str, value: str) -> None:
    if by not in _BY:
        raise ValueError(f"by must be one of {sorted(_BY)}, not {by!r}")
    allowed = ([*ANALYTIC_LAYERS, JUDGMENT_CALL] if by == "analytic_layer"
               else _system_order(elements))
    if value not in allowed:
        raise ValueError(f"{value!r} is not a value of {by}; choose from {allowed}")


def layer_selection(
    elements: pd.DataFrame,
    events: pd.DataFrame,
    actors: pd.DataFrame,
    by: str = "analytic_layer",
    value: str = "coordination",
) -> dict[str, pd.DataFrame]:
    """The elements of one analytic layer or official system, their documents and actors.

    Parameters
    ----------
    elements, events, actors : DataFrame
        ``architecture_elements``, ``policy_timeline`` and ``actors``.
    by : {"analytic_layer", "official_system"}
        Which map to pick from.
    value : str
        A layer (or ``JUDGMENT_CALL`` for the blanks) or an official system (or ``SUPPORT``).

    Returns
    -------
    dict with three DataFrames:
        ``"elements"``, the selected elements; ``"documents"``, the ``policy_timeline``
        events that name them (joined on ``event_id``), with the number of selected
        elements each names; ``"actors"``, the actors whose ``key_event_id`` is one of
        those documents. An actor tied to the programme through another event (SASTIND's
        is the Special Working Group's formation) does not appear: the join shows only
        what the keys encode.
    """
    _check_choice(elements, by, value)
    column = _layer_of(elements) if by == "analytic_layer" else elements["official_system"]
    chosen = elements[column == value]
    counts = chosen["event_id"].value_counts().rename("elements").rename_axis("event_id")
    documents = (events[events["event_id"].isin(counts.index)]
                 .merge(counts.reset_index(), on="event_id")
                 .sort_values(["date", "event_id"]))
    documents = documents[[*_DOCUMENT_COLUMNS, "elements"]].reset_index(drop=True)
    tied = actors[actors["key_event_id"].isin(documents["event_id"])]
    return {
        "elements": chosen[_ELEMENT_COLUMNS].reset_index(drop=True),
        "documents": documents,
        "actors": tied[_ACTOR_COLUMNS].reset_index(drop=True),
    }


def plot_layer_map(
    elements: pd.DataFrame,
    ax=None,
    highlight: tuple[str, str] | None = None,
):
    """Draw the elements as a grid of counts: official systems down, the lens across.

    Rows are the five ``OFFICIAL_SYSTEMS`` in official order, then ``SUPPORT``; columns are
    the ``ANALYTIC_LAYERS`` then ``JUDGMENT_CALL``, which counts the elements whose
    ``analytic_layer`` is blank. Every row and column is drawn, with zeros where no element
    falls.

    Mapped cells are shaded from white to blue by count; the ``JUDGMENT_CALL`` column is
    shaded in orange and hatched, so the deliberate blanks read as a category of their
    own rather than as missing data. Zero cells show a grey "0". Row and column totals
    are printed outside the grid. ``highlight`` outlines one row or column:
    ``("official_system", "identifier")`` or ``("analytic_layer", "coordination")``.

    Returns
    -------
    matplotlib Axes
    """
    ax = new_axes(ax, figsize=(7, 4.8))
    counts = _cell_counts(elements)
    rows, columns = _system_order(elements), [*ANALYTIC_LAYERS, JUDGMENT_CALL]
    grid = [[counts.get((system, layer), 0) for layer in columns] for system in rows]
    n_rows, n_cols = len(rows), len(columns)
    peak = max(max(max(row) for row in grid), 1)
    mapped, blank = _ramp(OKABE_ITO["blue"]), _ramp(OKABE_ITO["orange"])
    for i in range(n_rows):
        for j, layer in enumerate(columns):
            count = grid[i][j]
            judgment = layer == JUDGMENT_CALL
            share = 0.12 + 0.88 * count / peak if count else 0.0
            face = (blank if judgment else mapped)(share)
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="white",
                                   linewidth=2, hatch="//" if judgment and count else None))
            if count == 0:
                ax.text(j + 0.5, i + 0.5, "0", ha="center", va="center", color="0.6",
                        fontsize=10)
            else:
                dark = share > 0.6 and not judgment
                ax.text(j + 0.5, i + 0.5, str(count), ha="center", va="center",
                        fontsize=13, fontweight="bold", color="white" if dark else "black",
                        bbox=None if dark else {"boxstyle": "round,pad=0.15",
                                                "facecolor": "white", "edgecolor": "none",
                                                "alpha": 0.85})
    ax.vlines(len(ANALYTIC_LAYERS), 0, n_rows, color="0.25", linewidth=1.5)
    ax.hlines(len(OFFICIAL_SYSTEMS), 0, n_cols, color="0.25", linewidth=1.0, linestyle="--")
    for i, total in enumerate(sum(row) for row in grid):
        ax.text(n_cols + 0.15, i + 0.5, str(int(total)), ha="left", va="center",
                fontsize=10, color="0.25")
    column_totals = [sum(row[j] for row in grid) for j in range(n_cols)]
    for j, total in enumerate(column_totals):
        ax.text(j + 0.5, n_rows + 0.12, str(int(total)), ha="center", va="top",
                fontsize=10, color="0.25")
    ax.text(n_cols + 0.15, -0.12, "total", ha="left", va="bottom", fontsize=9, color="0.25")
    ax.text(-0.1, n_rows + 0.12, "total", ha="right", va="top", fontsize=9, color="0.25")

    row_labels = [f"{s} (not one of\nthe five systems)" if s == SUPPORT else s
                  for s in rows]
    column_labels = [c.replace(" ", "\n") + "\n(left blank)" if c == JUDGMENT_CALL else c
                     for c in columns]
    ax.set_xticks(np.arange(n_cols) + 0.5, column_labels, rotation=35, ha="left", rotation_mode="anchor")
    ax.set_yticks(np.arange(n_rows) + 0.5, row_labels)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(length=0)
    ax.set_xlim(0, n_cols + 0.6)
    ax.set_ylim(n_rows + 0.6, 0)
    ax.set_xlabel("The course's analytic lens (columns)", labelpad=8)
    ax.set_ylabel("Official functional system, 2025 wording (rows)")
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)

    if highlight is not None:
        by, value = highlight
        _check_choice(elements, by, value)
        if by == "official_system":
            box = (0, rows.index(value), n_cols, 1)
        else:
            box = (columns.index(value), 0, 1, n_rows)
        ax.add_patch(Rectangle(box[:2], box[2], box[3], facecolor="none",
                               edgecolor=OKABE_ITO["black"], linewidth=3, zorder=5))
    return ax


def _actor_names(actors: pd.DataFrame) -> pd.Series:
    return actors["abbrev"].astype("object").where(actors["abbrev"].notna(), actors["name_en"])


def _document_label(row) -> str:
    label = DOCUMENT_LABELS.get(row["event_id"]) or row["title_en"]
    return wrap_label(f"{row['date'][:7]}  {label}", 26)


def _draw_documents(selection: dict[str, pd.DataFrame], ax, title: str) -> None:
    documents = selection["documents"]
    ax.clear()
    if documents.empty:
        ax.text(0.5, 0.5, "No elements in this selection", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    actors = selection["actors"].assign(short=lambda d: _actor_names(d))
    tied = actors.groupby("key_event_id")["short"].agg(", ".join)
    y = np.arange(len(documents))
    ax.barh(y, documents["elements"], color=OKABE_ITO["sky blue"], height=0.6)
    ax.set_yticks(y, [_document_label(row) for _, row in documents.iterrows()], fontsize=8.5)
    ax.set_ylim(len(documents) - 0.4, -0.6)
    peak = int(documents["elements"].max())
    ax.set_xlim(0, peak + 2.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    for i, (_, row) in enumerate(documents.iterrows()):
        note = tied.get(row["event_id"])
        if note:
            ax.text(row["elements"] + 0.1, i, textwrap.fill("actor: " + note, 24),
                    va="center", fontsize=8.5, color="0.2")
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Elements named by the document")
    ax.set_title(title, loc="left", fontsize=10)


def layer_explorer_figure(
    elements: pd.DataFrame,
    events: pd.DataFrame,
    actors: pd.DataFrame,
    by: str = "analytic_layer",
    value: str = "coordination",
):
    """The explorer's view as a static figure, for the book page.

    Left: the layer map with the chosen row or column outlined. Right: the documents that
    name the selected elements (date and short title), a bar for how many elements each
    names, and the actors tied to each document through ``actors.key_event_id``.

    Returns
    -------
    matplotlib Figure
    """
    selection = layer_selection(elements, events, actors, by, value)
    n_docs = max(len(selection["documents"]), 1)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 5.2 + 0.6 * n_docs + 1.0), layout="constrained",
        gridspec_kw={"height_ratios": [5.2, 0.6 * n_docs + 1.0]})
    plot_layer_map(elements, ax=top, highlight=(by, value))
    n = len(selection["elements"])
    _draw_documents(selection, bottom,
                    f"Selected {_BY[by]}: {value} (outlined above)\n{n} element"
                    f"{'s' * (n != 1)}, named in {len(selection['documents'])} documents")
    return fig


def layer_explorer(
    elements: pd.DataFrame,
    events: pd.DataFrame,
    actors: pd.DataFrame,
    by: str = "analytic_layer",
    value: str = "coordination",
):
    """Pick an analytic layer or an official system; see its elements, documents and actors.

    One control lists every analytic layer (and the judgment calls) and every official
    system; each view is the figure of ``layer_explorer_figure`` for that choice, a sentence,
    and the table of its elements. Works in the static book and in a live notebook (see
    ``mcf_course.explorer``). ``by`` and ``value`` choose the view shown first.
    """
    from mcf_course.explorer import choice_explorer, figure_html

    _check_choice(elements, by, value)
    choices = [(f"layer: {layer}", ("analytic_layer", layer)) for layer in [*ANALYTIC_LAYERS, JUDGMENT_CALL]]
    choices += [(f"system: {system}", ("official_system", system)) for system in _system_order(elements)]

    def describe(choice):
        selection = layer_selection(elements, events, actors, *choice)
        return (f"{_BY[choice[0]]} {choice[1]}: {len(selection['elements'])} elements named in "
                f"{len(selection['documents'])} documents; {len(selection['actors'])} actors tied "
                "to those documents.")

    def draw(choice):
        selection = layer_selection(elements, events, actors, *choice)
        table = selection["elements"][["element_id", "element_en", "official_system", "analytic_layer",
                                       "event_id", "confidence"]].to_html(index=False, border=0, na_rep="")
        sentence = describe(choice)
        return (figure_html(layer_explorer_figure(elements, events, actors, *choice),
                            f"Layer map with {choice[1]} outlined, and the documents naming its "
                            f"elements: {sentence}", sentence)
                + f"<details><summary>The elements in this view</summary>{table}</details>")

    start = [c for _, c in choices].index((by, value))
    return choice_explorer({"Show": choices}, draw, describe, default={"Show": start})


def _series_rows(stats: pd.DataFrame, series: str) -> pd.DataFrame:
    rows = stats[stats["series"] == series]
    if rows.empty:
        known = sorted(stats["series"].unique())
        raise ValueError(f"no rows for series {series!r}; choose from {known}")
    return rows.sort_values(["as_of", "stat_id"])


def _period(value: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    freq = {4: "Y", 7: "M", 10: "D"}[len(value)]
    period = pd.Period(value, freq=freq)
    return period.start_time, period.end_time


def plot_series(
    stats: pd.DataFrame,
    series: str,
    ax=None,
    label_points: bool = True,
    start: int | None = None,
    end: int | None = None,
):
    """Plot one ``platform_stats`` series over time, keeping kinds of figure apart.

    Reported figures (``measure_kind`` other than ``target``) are filled blue circles;
    targets are hollow orange diamonds labelled "target"; low-confidence figures are
    hollow grey circles labelled "low". Points are not joined by lines: figures from
    different speakers and dates are not one measured run. A figure dated only to a year
    gets a horizontal bar across that year (its date is not known more precisely); the
    marker sits at the middle. Each point is labelled with its qualifier and value
    (">340", "~10", "nearly 90"), below and to the right when a higher point is close by.
    ``start`` and ``end`` fix the first and last year shown.

    Returns
    -------
    matplotlib Axes
    """
    rows = _series_rows(stats, series)
    ax = new_axes(ax, figsize=(5, 3.6))
    styles = {
        "reported": {"marker": "o", "s": 55, "facecolors": OKABE_ITO["blue"],
                     "edgecolors": OKABE_ITO["blue"]},
        "target": {"marker": "D", "s": 60, "facecolors": "white",
                   "edgecolors": OKABE_ITO["orange"], "linewidths": 2},
        "low": {"marker": "o", "s": 55, "facecolors": "white", "edgecolors": LOW_GREY,
                "linewidths": 1.5},
    }
    top = rows["value"].max() * 1.25
    when = rows["as_of"].map(partial_date_midpoint)
    for index, row in rows.iterrows():
        kind = ("target" if row["measure_kind"] == "target"
                else "low" if row["confidence"] == "low" else "reported")
        if len(row["as_of"]) == 4:
            first, last = _period(row["as_of"])
            ax.hlines(row["value"], first, last, color=styles[kind]["edgecolors"],
                      linewidth=2, alpha=0.6, zorder=2)
        ax.scatter([when[index]], [row["value"]], zorder=3, **styles[kind])
        if label_points:
            sign = QUALIFIER_SIGNS.get(row["qualifier"], "")
            text = f"{sign}{row['value']:g}"
            text += {"target": " target", "low": " (low)"}.get(kind, "")
            near = (when - when[index]).abs().dt.days.lt(240)
            gap = rows["value"][near] - row["value"]
            below = bool(((gap > 0) & (gap < 0.15 * top)).any())
            ax.annotate(text, (when[index], row["value"]), xytext=(5, -6) if below else (0, 7),
                        textcoords="offset points", ha="left" if below else "center",
                        va="top" if below else "bottom", fontsize=9, color="0.2")
    ax.set_ylabel(rows["unit"].iloc[0])
    ax.set_ylim(0, top)
    if start is not None or end is not None:
        first_year = start if start is not None else int(when.min().year)
        last_year = end if end is not None else int(when.max().year)
        ax.set_xlim(pd.Timestamp(f"{first_year}-01-01"), pd.Timestamp(f"{last_year + 1}-01-01"))
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.tick_params(axis="x", labelrotation=90, labelsize=9)
    ax.set_title(series, loc="left", fontsize=10)
    return ax


def series_legend_handles() -> list[Line2D]:
    """Legend entries matching ``plot_series``: reported, target, low confidence, year bar."""
    return [
        *figure_kind_handles(reported="reported figure"),
        Line2D([], [], color="0.4", linewidth=2, alpha=0.6,
               label="dated to the year only (bar spans the year)"),
    ]
