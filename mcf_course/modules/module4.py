"""Module 4 — a dual-use ecosystem: the shipbuilding case and the identifier system.

Three datasets: ``identifier_nodes`` (the tiers and named nodes of the identifier resolution
system), ``identifier_stats`` (reported figures and targets, with ``figure`` and ``counting``
keeping targets, cumulative totals, annual additions and daily rates apart) and
``shipbuilding_ecosystem`` (the ties of the shipbuilding case, each graded by the kind of
evidence it is, and marked where it is only planned).

Here: a diagram of the tiers, a growth chart that plots only comparable figures, the table of
ties by evidence kind and level, a two-column network of the ties, and an explorer (with a
static twin) that filters the network by evidence kind and by planned ties.

Like the other module files, nothing here reads files or changes the global style, and the
figures carry no Chinese characters.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch

from mcf_course.plotting import (
    FIGURE_KIND_STYLES,
    LOW_GREY,
    OKABE_ITO,
    QUALIFIER_SIGNS,
    figure_kind_handles,
    latin_text,
    new_axes,
    partial_date_midpoint,
)

__all__ = [
    "EVIDENCE_KINDS",
    "LEVELS",
    "NO_LEVEL",
    "comparable_rows",
    "ecosystem_explorer",
    "ecosystem_explorer_figure",
    "evidence_table",
    "plot_ecosystem",
    "plot_identifier_growth",
    "plot_identifier_tiers",
]

#: The kinds of evidence a tie can be, in rising order of what they would show.
EVIDENCE_KINDS = ("institutional overlap", "data flow", "operational use")
#: Shown for ties whose counterpart has no level (ties between companies).
NO_LEVEL = "no level"
#: Levels of a tie's counterpart, in the order tables and figures use.
LEVELS = ("national", "provincial", "district", "sector", NO_LEVEL)

_EVIDENCE_STYLE = {
    "institutional overlap": {"color": OKABE_ITO["blue"], "linestyle": "-"},
    "data flow": {"color": OKABE_ITO["orange"], "linestyle": "--"},
    "operational use": {"color": OKABE_ITO["vermillion"], "linestyle": ":"},
}


def _levels(ties: pd.DataFrame) -> pd.Series:
    return ties["level"].fillna(NO_LEVEL)


def evidence_table(ties: pd.DataFrame) -> pd.DataFrame:
    """Ties counted by evidence kind (rows) and level of the counterpart (columns), for display.

    Every kind in ``EVIDENCE_KINDS`` and every level in ``LEVELS`` appears, with 0 where there
    is no tie, so an empty row (no operational use) stays visible. The last column, ``total``,
    is text: the number of ties and, where some are only planned, how many ("10, 4 planned").
    (Done and planned ties by kind, as numbers, are Question 2 of the Module 4 exercise, so the
    course's helpers do not offer them.) The evidence kind is the first column (not the index),
    so that the table prints as it reads.
    """
    counts = pd.crosstab(ties["evidence_kind"], _levels(ties))
    counts = counts.reindex(index=list(EVIDENCE_KINDS), columns=list(LEVELS), fill_value=0)
    counts = counts.astype(int)
    planned = ties["planned"].fillna(False).astype(bool)
    counts["total"] = [f"{total}, {n} planned" if n else str(total) for total, n in
                       zip(counts.sum(axis=1), (ties["evidence_kind"][planned].value_counts()
                                                .reindex(counts.index, fill_value=0)), strict=True)]
    return counts.rename_axis(index="evidence", columns=None).reset_index()


# --- the identifier system --------------------------------------------------------------------

def _box(ax, x, y, width, text, *, dashed=False, fill="white", edge="0.25", fontsize=8.5):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.32), width, 0.64, boxstyle="round,pad=0.02",
                                facecolor=fill, edgecolor=edge, linewidth=1.4,
                                linestyle="--" if dashed else "-"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def plot_identifier_tiers(nodes: pd.DataFrame, ax=None):
    """Draw the identifier resolution system as tiers, from ``identifier_nodes``.

    Top: the international root node. Below: the national top-level nodes by city, and the
    disaster-recovery nodes beside them, drawn dashed and marked "disputed" where the row is
    disputed. Below those, one band per tier recorded as a whole (secondary, enterprise,
    recursive), with any named node of that tier (the shipbuilding secondary node) inside its
    band. Each box shows the status date.

    Returns
    -------
    matplotlib Figure
    """
    ax = new_axes(ax, figsize=(7, 5.4))
    fig = ax.figure
    named = nodes[nodes["entry"] == "node"]
    tiers = nodes[nodes["entry"] == "tier"]
    root = named[named["kind"] == "international root node"]
    top = named[named["kind"] == "national top-level node"]
    backup = named[named["kind"] == "disaster-recovery node"]
    y_root, y_top = 4.6, 3.2
    for _, row in root.iterrows():
        _box(ax, 4.0, y_root, 3.6, f"International root node\n(in operation {row['status_date'][:4]})",
             fill="#e8f1f8")
    xs = [0.6 + 1.3 * i for i in range(len(top))]
    for x, (_, row) in zip(xs, top.iterrows(), strict=True):
        _box(ax, x, y_top, 1.2, f"{row['city']}\n{row['status_date'][:7]}")
        ax.plot([4.0, x], [y_root - 0.32, y_top + 0.32], color="0.6", linewidth=1, zorder=0)
    ax.text(xs[0] - 0.6, y_top + 0.55, "National top-level nodes", fontsize=9, fontweight="bold")
    bx = [7.6 + 1.35 * i for i in range(len(backup))]
    for x, (_, row) in zip(bx, backup.iterrows(), strict=True):
        disputed = bool(row["disputed"])
        label = f"{row['city']}\n{'disputed' if disputed else row['status_date'][:7]}"
        _box(ax, x, y_top, 1.25, label, dashed=disputed, edge=OKABE_ITO["vermillion"] if disputed else "0.25")
    if len(bx):
        ax.text(bx[0] - 0.62, y_top + 0.55, "Disaster-recovery nodes", fontsize=9, fontweight="bold")
    band_names = {"secondary node": "Secondary nodes (by industry or region)",
                  "enterprise node": "Enterprise nodes (one firm each)",
                  "recursive node": "Public recursive nodes (lookup and caching)"}
    y = 2.0
    for _, row in tiers.iterrows():
        ax.add_patch(FancyBboxPatch((0.0, y - 0.3), 10.6, 0.6, boxstyle="round,pad=0.02",
                                    facecolor="#f4f4f4", edgecolor="0.55", linewidth=1))
        ax.text(0.15, y, band_names.get(row["kind"], row["kind"]), va="center", fontsize=9)
        for j, (_, inner) in enumerate(named[named["kind"] == row["kind"]].iterrows()):
            _box(ax, 7.65 + 2.4 * j, y, 5.7, latin_text(inner["name_en"], 46), fill="#fff3d6")
        y -= 0.8
    ax.set_xlim(-0.2, 11.0)
    ax.set_ylim(y + 0.3, 5.2)
    ax.set_axis_off()
    ax.set_title("The identifier resolution system: tiers and named nodes", loc="left", fontsize=11)
    return fig


def comparable_rows(stats: pd.DataFrame, metric: str, scope: str = "China",
                    counting: str = "cumulative") -> pd.DataFrame:
    """The rows of ``identifier_stats`` that measure one thing: one metric, scope and counting.

    Raises ValueError, naming the choices, if there is no such row. Sorted by ``as_of``.
    """
    rows = stats[(stats["metric"] == metric) & (stats["scope"] == scope) & (stats["counting"] == counting)]
    if rows.empty:
        known = sorted(stats["metric"].unique())
        raise ValueError(f"no {counting} rows for {metric!r} in {scope!r}; metrics are {known}")
    return rows.sort_values(["as_of", "stat_id"])


def plot_identifier_growth(stats: pd.DataFrame, metric: str, ax=None, log: bool | None = None):
    """Plot one national, cumulative ``identifier_stats`` metric over time.

    Reported figures are filled blue circles, targets hollow orange diamonds placed at the end
    of the year they are for, and low-confidence figures hollow grey circles marked "(low)".
    Each point is labelled with its qualifier and value (">40"). Points are not joined: they
    come from different speakers and occasions. Provincial figures, additions within a year
    and daily rates are left out (``comparable_rows``). ``log`` chooses a logarithmic value
    axis; by default it is used when the values span more than a factor of 20.

    Returns
    -------
    matplotlib Figure
    """
    rows = comparable_rows(stats, metric)
    ax = new_axes(ax, figsize=(7, 3.8))
    fig = ax.figure
    placed = []  # (date, value) of the points labelled so far
    for _, row in rows.iterrows():
        if row["figure"] == "target":
            when, kind = pd.Timestamp(f"{row['target_for']}-12-31"), "target"
        else:
            when = partial_date_midpoint(row["as_of"])
            kind = "low" if row["confidence"] == "low" else "reported"
        style = FIGURE_KIND_STYLES[kind]
        ax.plot([when], [row["value"]], linestyle="", markersize=8, zorder=3, **style)
        text = f"{QUALIFIER_SIGNS.get(row['qualifier'], '')}{row['value']:g}"
        text += {"target": f" target for {row['target_for']}", "low": " (low)"}.get(kind, "")
        crowded = any(abs((when - d).days) < 120 and 0.6 < row["value"] / v < 1.6 for d, v in placed)
        ax.annotate(text, (when, row["value"]), xytext=(6, -9 if crowded else 0), textcoords="offset points",
                    va="center", fontsize=9, color="0.2")
        placed.append((when, row["value"]))
    if log is None:
        log = rows["value"].max() > 20 * rows["value"].min()
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    else:
        ax.set_ylim(0, rows["value"].max() * 1.15)
    ax.set_ylabel(rows["unit"].iloc[0])
    ax.xaxis.set_major_locator(mdates.YearLocator())  # year boundaries, unlabelled
    ax.xaxis.set_major_formatter(mticker.NullFormatter())
    ax.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=7, bymonthday=1))  # labels mid-year
    ax.xaxis.set_minor_formatter(mdates.DateFormatter("%Y"))
    ax.tick_params(axis="x", which="minor", length=0)
    ax.set_title(f"{metric[0].upper()}{metric[1:]}, China, cumulative", loc="left", fontsize=10)
    ax.legend(handles=figure_kind_handles(target="target (at its deadline)"), loc="best", fontsize=9,
              frameon=False)
    ax.margins(x=0.12)
    return fig


# --- the shipbuilding ecosystem ---------------------------------------------------------------

def _selected(ties: pd.DataFrame, evidence: str | None, planned: bool) -> pd.DataFrame:
    if evidence is not None and evidence not in EVIDENCE_KINDS:
        raise ValueError(f"evidence must be None (all kinds) or one of {EVIDENCE_KINDS}, not {evidence!r}")
    keep = pd.Series(True, index=ties.index)
    if evidence is not None:
        keep &= ties["evidence_kind"] == evidence
    if not planned:
        keep &= ~ties["planned"].fillna(False).astype(bool)
    return ties[keep]


def plot_ecosystem(ties: pd.DataFrame, evidence: str | None = None, planned: bool = True, ax=None):
    """Draw the ties as a two-column network: actors left, counterparts right by level.

    Every actor and counterpart is always placed (so that views can be compared); only the
    ties of the chosen ``evidence`` kind (None: all kinds) are drawn, without the planned ones
    if ``planned`` is False. Line style shows the evidence kind (solid: institutional overlap,
    dashed: data flow, dotted: operational use); planned ties are lighter, low-confidence
    ties grey. An empty selection says so on the figure.

    Returns
    -------
    matplotlib Figure
    """
    shown = _selected(ties, evidence, planned)
    actors = list(dict.fromkeys(ties["actor"]))
    ordered = ties.assign(_level=pd.Categorical(_levels(ties), categories=list(LEVELS), ordered=True))
    ordered = ordered.sort_values(["_level", "tie_id"])
    counterparts = list(dict.fromkeys(zip(ordered["_level"].astype(str), ordered["counterpart"], strict=True)))
    # Positions in inches from the top: each counterpart takes the lines its wrapped name needs.
    names = {name: latin_text(name, 40) for _, name in counterparts}
    y_counter, y_level, y, previous = {}, {}, 0.0, None
    for level, name in counterparts:
        if level != previous:
            y_level[level], y, previous = y, y - 0.3, level
        lines = names[name].count("\n") + 1
        y -= 0.08 * (lines - 1)
        y_counter[name] = y
        y -= 0.08 * (lines - 1) + 0.3
    bottom = y + 0.3
    y_actor = {a: -0.3 + i * (bottom + 0.3) / max(len(actors) - 1, 1) for i, a in enumerate(actors)}
    ax = new_axes(ax, figsize=(7, -bottom + 1.7))
    fig = ax.figure
    for level, yl in y_level.items():
        ax.text(5.35, yl, level.upper(), fontsize=8.5, fontweight="bold", color="0.35", va="center")
    for a, ya in y_actor.items():
        ax.text(3.0, ya, latin_text(a, 26), ha="right", va="center", fontsize=9)
    for name, yc in y_counter.items():
        ax.text(5.45, yc, names[name], ha="left", va="center", fontsize=9)
    for _, tie in shown.iterrows():
        style = dict(_EVIDENCE_STYLE[tie["evidence_kind"]])
        if tie["confidence"] == "low":
            style["color"] = LOW_GREY
        alpha = 0.35 if bool(tie["planned"]) else 0.95
        ax.plot([3.1, 5.3], [y_actor[tie["actor"]], y_counter[tie["counterpart"]]], linewidth=1.6,
                alpha=alpha, **style)
    if shown.empty:
        ax.text(4.2, bottom / 2, "No tie of this kind\nin the dataset", ha="center", va="center",
                fontsize=11, color=OKABE_ITO["vermillion"],
                bbox={"facecolor": "white", "edgecolor": OKABE_ITO["vermillion"]})
    ax.set_xlim(-0.2, 10.4)
    ax.set_ylim(bottom - 0.1, 0.25)
    ax.set_axis_off()
    what = "all kinds of evidence" if evidence is None else evidence
    ax.set_title(f"Ties of the shipbuilding case: {what},\n{'with' if planned else 'without'} planned ties "
                 f"({len(shown)} of {len(ties)})", loc="left", fontsize=10)
    handles = [Line2D([], [], linewidth=1.6, label=kind, **style) for kind, style in _EVIDENCE_STYLE.items()]
    handles += [Line2D([], [], color=OKABE_ITO["orange"], alpha=0.35, linewidth=1.6, linestyle="--",
                       label="planned (lighter)"),
                Line2D([], [], color=LOW_GREY, linewidth=1.6, label="low confidence (grey)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.0), ncols=2, fontsize=9, frameon=False)
    return fig


def _describe(ties: pd.DataFrame, evidence: str | None, planned: bool) -> str:
    shown = _selected(ties, evidence, planned)
    what = "All kinds of evidence" if evidence is None else evidence[0].upper() + evidence[1:]
    kinds = ", ".join(f"{(shown['evidence_kind'] == kind).sum()} {kind}" for kind in EVIDENCE_KINDS)
    planned_text = "planned ties shown" if planned else "planned ties hidden"
    low = int((shown["confidence"] == "low").sum())
    return (f"{what}, {planned_text}: {len(shown)} of {len(ties)} ties ({kinds}); "
            f"{low} of them low confidence.")


def ecosystem_explorer_figure(ties: pd.DataFrame, evidence: str | None = None, planned: bool = True):
    """The explorer's view as a static figure (its first view by default)."""
    return plot_ecosystem(ties, evidence, planned)


def ecosystem_explorer(ties: pd.DataFrame):
    """Filter the ties of the shipbuilding case by evidence kind and by planned ties.

    Two controls: "Evidence" (all kinds, or one of ``EVIDENCE_KINDS``) and "Planned ties"
    (shown or hidden). Each view is the network of ``plot_ecosystem``, a sentence that counts
    what it shows, and the table of its ties. Works in the static book and in a live notebook
    (see ``mcf_course.explorer``).
    """
    from mcf_course.explorer import choice_explorer, figure_html

    columns = ["tie_id", "actor", "counterpart", "level", "evidence_kind", "planned", "confidence"]

    def draw(evidence, planned):
        sentence = _describe(ties, evidence, planned)
        table = _selected(ties, evidence, planned)[columns].to_html(index=False, border=0, na_rep="")
        return (figure_html(plot_ecosystem(ties, evidence, planned),
                            f"Network of the shipbuilding case's ties. {sentence}", sentence)
                + f"<details><summary>The ties in this view</summary>{table}</details>")

    controls = {"Evidence": [("all kinds", None)] + [(kind, kind) for kind in EVIDENCE_KINDS],
                "Planned ties": [("shown", True), ("hidden", False)]}
    return choice_explorer(controls, draw, lambda evidence, planned: _describe(ties, evidence, planned))
