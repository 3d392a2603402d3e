"""Module 5 — strategy becomes infrastructure: targets against outcomes, and an indicator scorecard.

Two pairs of datasets. ``plan_targets`` and ``reported_outcomes`` hold what the plans aimed at
and what was later reported; an outcome counts towards its target only where it measures the
same thing in the same unit (``measure_matches``). ``indicators`` and ``case_scores`` make a
scorecard for the question "is MCF changing form inside the Industrial Internet?": each case
scores 0, 0.5 or 1 on twelve indicators, and its weighted score is

    S = sum(w_i * s_i) / sum(w_i),

with w_i the indicator's ``default_weight`` times the weight of its ``group`` (documented ties or
decisive evidence, 1 by default). A case supports the changing-form reading when S >= 0.5. The
real case's scores are the course authors' judgments of the evidence; Cases A, B and C are
fictional, for practice.

Here: the table and chart of targets against outcomes, the weighted scores, the weight at which
a verdict flips, the scorecard chart, and an explorer with two weight sliders (and its static
twin). Nothing here reads files or changes the global style; figures carry no Chinese.
"""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from mcf_course.plotting import LOW_GREY, OKABE_ITO, QUALIFIER_SIGNS, latin_text, new_axes, wrap_label

__all__ = [
    "GROUPS",
    "THRESHOLD",
    "WEIGHT_STEPS",
    "attainment_table",
    "plot_attainment",
    "plot_scorecard",
    "scorecard_explorer",
    "scorecard_explorer_figure",
    "scorecard_table",
]

#: The two groups of indicators, whose weights the explorer varies.
GROUPS = ("documented ties", "decisive evidence")
#: A case supports the changing-form reading at or above this weighted score.
THRESHOLD = 0.5
#: The group weights the explorer offers.
WEIGHT_STEPS = (0, 1, 2, 3, 4)

_SUPPORTS, _DOES_NOT = "supports the changing-form reading", "does not"


# --- targets against outcomes -----------------------------------------------------------------

def _amount(value, qualifier, unit) -> str:
    if pd.isna(value):
        return "qualitative"
    return f"{QUALIFIER_SIGNS.get(qualifier, '') if isinstance(qualifier, str) else ''}{value:,g} {unit}"


def attainment_table(targets: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per reported outcome beside its target, and whether the two can be compared.

    Columns: target, plan, metric, target amount (with its deadline), outcome, reported (date),
    comparable, multiple (outcome / target), met, in time and confidence. An outcome is
    *comparable* when ``measure_matches`` is true and the units are equal; only then are
    "multiple", "met" (value at least the target's) and "in time" (reported in or before the
    deadline year) filled in; otherwise they are blank or "—". ``confidence`` is the lower of the
    two rows' ratings.
    """
    rank = {"low": 0, "medium": 1, "high": 2}
    joined = outcomes.merge(targets, on="target_id", suffixes=("", "_target"), validate="many_to_one")
    comparable = joined["measure_matches"].fillna(False).astype(bool) & (joined["unit"] == joined["unit_target"])
    met = comparable & (joined["value"] >= joined["target_value"])
    in_time = comparable & (joined["as_of"].str[:4] <= joined["deadline"].fillna("9999"))
    lower = np.minimum(joined["confidence"].map(rank), joined["confidence_target"].map(rank))
    table = pd.DataFrame({
        "target": joined["target_id"],
        "plan": joined["plan"],
        "metric": joined["metric"],
        "target amount": [f"{_amount(v, q, u)} by {d}" if isinstance(d, str) else _amount(v, q, u)
                          for v, q, u, d in zip(joined["target_value"], joined["qualifier_target"],
                                                joined["unit_target"], joined["deadline"], strict=True)],
        "outcome": [_amount(v, q, u) for v, q, u in zip(joined["value"], joined["qualifier"], joined["unit"],
                                                         strict=True)],
        "reported": joined["as_of"],
        "comparable": np.where(comparable, "yes", "no"),
        "multiple": (joined["value"] / joined["target_value"]).where(comparable).round(3),
        "met": np.where(comparable, np.where(met, "yes", "no"), "—"),
        "in time": np.where(comparable, np.where(in_time, "yes", "no"), "—"),
        "confidence": lower.map({v: k for k, v in rank.items()}),
    })
    return table.sort_values(["target", "reported"], kind="stable").reset_index(drop=True)


def plot_attainment(targets: pd.DataFrame, outcomes: pd.DataFrame, ax=None):
    """Outcome as a multiple of its target, for the comparable pairs only (log scale).

    One row per comparable outcome, labelled with the target and the date; a line at 1 (the
    target). Filled markers were reported by the deadline, hollow ones after it; low-confidence
    pairs are grey. The pairs that cannot be compared are counted in the title, not drawn.

    Returns
    -------
    matplotlib Figure
    """
    table = attainment_table(targets, outcomes)
    rows = table[table["comparable"] == "yes"]
    ax = new_axes(ax, figsize=(7, 0.6 * len(rows) + 2.2))
    fig = ax.figure
    y = np.arange(len(rows))[::-1]
    for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
        color = LOW_GREY if row["confidence"] == "low" else OKABE_ITO["blue"]
        filled = row["in time"] == "yes"
        ax.plot([row["multiple"]], [yi], "o", markersize=8, color=color, markerfacecolor=color if filled else "white",
                markeredgewidth=1.8)
        ax.annotate(f"{row['multiple']:.3g}x", (row["multiple"], yi), xytext=(7, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.axvline(1, color=OKABE_ITO["vermillion"], linewidth=1.2)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    labels = [wrap_label(f"{t} {latin_text(m)}, {d}", 34) for t, m, d in zip(rows["target"], rows["metric"],
                                                                            rows["reported"], strict=True)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlabel("reported value as a multiple of the target (1 = met exactly)")
    left_out = int((table["comparable"] == "no").sum())
    ax.set_title(f"Targets against outcomes: {len(rows)} comparable pairs\n({left_out} pairs that cannot be "
                 "compared are not drawn)", loc="left", fontsize=10)
    ax.legend(handles=[
        Line2D([], [], marker="o", linestyle="", color=OKABE_ITO["blue"], label="reported by the deadline"),
        Line2D([], [], marker="o", linestyle="", color=OKABE_ITO["blue"], markerfacecolor="white",
               markeredgewidth=1.8, label="reported after the deadline"),
        Line2D([], [], marker="o", linestyle="", color=LOW_GREY, label="low confidence"),
        Line2D([], [], color=OKABE_ITO["vermillion"], label="target"),
    ], loc="upper left", bbox_to_anchor=(0.0, -0.12), ncols=2, fontsize=9, frameon=False)
    ax.margins(x=0.25)
    return fig


# --- the scorecard ----------------------------------------------------------------------------

def _weights(indicators: pd.DataFrame, group_weights: dict[str, float] | None) -> pd.Series:
    group_weights = group_weights or {}
    unknown = set(group_weights) - set(GROUPS)
    if unknown:
        raise ValueError(f"group weights are for {GROUPS}, not {sorted(unknown)}")
    factor = indicators["group"].map(lambda g: group_weights.get(g, 1.0)).astype(float)
    return (indicators["default_weight"].astype(float) * factor).set_axis(indicators["indicator_id"])


def _case_scores(scores: pd.DataFrame, indicators: pd.DataFrame,
                 group_weights: dict[str, float] | None = None) -> pd.DataFrame:
    """Each case's exact weighted score and verdict, in the order the cases first appear, for the
    chart and the explorer. ``group_weights`` multiplies the default weights of a group's
    indicators (1 if left out). The verdict comes from the exact score, never a rounded one. A
    case with no weight left at all gets a missing score.
    """
    weights = _weights(indicators, group_weights)
    rows = scores.assign(weight=scores["indicator_id"].map(weights))
    rows = rows.assign(weighted=rows["weight"] * rows["score"])
    per_case = rows.groupby("case_id", sort=False).agg(case=("case_name", "first"), fictional=("fictional", "first"),
                                                       weighted=("weighted", "sum"), weight=("weight", "sum"))
    score = per_case["weighted"] / per_case["weight"].replace(0, np.nan)
    return pd.DataFrame({
        "case": per_case["case"], "fictional": per_case["fictional"].astype(bool), "score": score,
        "verdict": np.where(score >= THRESHOLD, _SUPPORTS, _DOES_NOT),
    }).rename_axis("case_id").reset_index()


def scorecard_table(scores: pd.DataFrame, indicators: pd.DataFrame,
                    group_weights: dict[str, float] | None = None) -> pd.DataFrame:
    """The scorecard for the page: each case, its weighted score rounded to two places, and its
    verdict (from the exact score). The exact scores, the ranking and the weight at which a
    verdict flips are Questions 4 to 6 of the Module 5 exercise, so the course's helpers do not
    offer them.
    """
    return _case_scores(scores, indicators, group_weights).round({"score": 2})


def _label(row) -> str:
    """A tick label: "Real case: …" or "Case A (fictional):" and the case, wrapped."""
    if not row["fictional"]:
        return "Real case: the programme as documented"
    what = row["case"].split(":", 1)[-1].replace("(invented for practice)", "").strip()
    return f"Case {row['case_id']} (fictional):\n{latin_text(what, 34)}"


def plot_scorecard(scores: pd.DataFrame, indicators: pd.DataFrame,
                   group_weights: dict[str, float] | None = None, ax=None):
    """Each case's weighted score as a bar, with the 0.5 line; fictional cases hatched.

    Returns
    -------
    matplotlib Figure
    """
    table = _case_scores(scores, indicators, group_weights)
    ax = new_axes(ax, figsize=(7, 0.75 * len(table) + 1.6))
    fig = ax.figure
    y = np.arange(len(table))[::-1]
    for yi, (_, row) in zip(y, table.iterrows(), strict=True):
        value = 0.0 if pd.isna(row["score"]) else row["score"]
        supports = value >= THRESHOLD
        ax.barh(yi, value, color=OKABE_ITO["blue"] if supports else OKABE_ITO["sky blue"],
                hatch="//" if row["fictional"] else None, edgecolor="white")
        ax.text(value + 0.01, yi, "no weight" if pd.isna(row["score"]) else f"{value:.2f}", va="center", fontsize=9)
    ax.axvline(THRESHOLD, color=OKABE_ITO["vermillion"], linewidth=1.4)
    ax.set_yticks(y, [_label(row) for _, row in table.iterrows()], fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("weighted score\n(0.5 or more: supports the changing-form reading)")
    gw = {g: 1 for g in GROUPS} | dict(group_weights or {})
    ax.set_title(f"Scorecard: documented ties x{gw['documented ties']:g}, decisive evidence "
                 f"x{gw['decisive evidence']:g}", loc="left", fontsize=10)
    return fig


def _describe(scores, indicators, ties_weight, decisive_weight) -> str:
    table = _case_scores(scores, indicators, {"documented ties": ties_weight, "decisive evidence": decisive_weight})
    parts = [f"{'real case' if not r['fictional'] else 'case ' + r['case_id'] + ' (fictional)'} "
             f"{'no weight' if pd.isna(r['score']) else format(r['score'], '.2f')}"
             f"{' (supports)' if r['score'] >= THRESHOLD else ''}" for _, r in table.iterrows()]
    return (f"Documented ties weight {ties_weight}, decisive evidence weight {decisive_weight}: "
            + "; ".join(parts) + ".")


def scorecard_explorer_figure(scores: pd.DataFrame, indicators: pd.DataFrame,
                              ties_weight: float = 1, decisive_weight: float = 1):
    """The explorer's view as a static figure (its first view by default: both weights 1)."""
    return plot_scorecard(scores, indicators, {"documented ties": ties_weight, "decisive evidence": decisive_weight})


def scorecard_explorer(scores: pd.DataFrame, indicators: pd.DataFrame):
    """Two sliders, the weights of the documented ties and of the decisive evidence (0 to 4).

    Each view is the chart of ``plot_scorecard`` at those weights and a sentence giving every
    case's score. Works in the static book and in a live notebook (``mcf_course.explorer``).
    """
    from mcf_course.explorer import choice_explorer

    options = [(str(w), w) for w in WEIGHT_STEPS]
    controls = {"Documented ties": options, "Decisive evidence": options}
    start = WEIGHT_STEPS.index(1)
    return choice_explorer(
        controls, lambda t, d: scorecard_explorer_figure(scores, indicators, t, d),
        lambda t, d: _describe(scores, indicators, t, d),
        default={"Documented ties": start, "Decisive evidence": start}, sliders=list(controls))
