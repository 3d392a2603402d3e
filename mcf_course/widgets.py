"""Interactive explorers for the chapters (they need a running Jupyter kernel).

A published book page is static HTML: the widgets below work only when the page runs
live (the launch button, Binder, Colab or a local Jupyter). Each explorer therefore has a
``*_figure`` twin that draws its default view without widgets, for the static page.
ipywidgets is imported inside the functions, so the rest of the package works without it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from mcf_course.figures import THEME_ORDER, plot_timeline

__all__ = [
    "EXPLORER_DEFAULTS",
    "ISSUER_TYPES",
    "filter_events",
    "timeline_explorer",
    "timeline_explorer_figure",
]

#: The explorer's starting selection, shared with its static twin.
EXPLORER_DEFAULTS = {
    "themes": ("MCF", "foreign response"),
    "confidences": ("high", "medium", "low"),
    "years": (2005, 2025),
    "issuer_types": None,  # None: every kind of issuer
}
#: Kinds of issuer (``policy_timeline.issuer_type``), from the Party down to foreign bodies.
ISSUER_TYPES = ["Party", "joint", "State", "military", "ministry", "enterprise",
                "industry body", "foreign government"]
_TABLE_COLUMNS = ["event_id", "date", "title_en", "issuer", "issuer_type", "cascade_level",
                  "theme", "confidence"]


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


def _set_year_limits(ax, first: int, last: int) -> None:
    ax.set_xlim(pd.Timestamp(f"{first}-01-01"), pd.Timestamp(f"{last + 1}-01-01"))


def timeline_explorer_figure(events: pd.DataFrame, color_by: str = "theme", **selection):
    """The explorer's view as a static figure: its default selection unless overridden.

    Returns
    -------
    matplotlib Figure
    """
    chosen = {**EXPLORER_DEFAULTS, **selection}
    fig, ax = plt.subplots(figsize=(10, 3.8), layout="constrained")
    shown = filter_events(events, **chosen)
    plot_timeline(shown, ax=ax, color_by=color_by)
    first, last = chosen["years"]
    _set_year_limits(ax, first, last)
    title = f"{len(shown)} events, {first}-{last}"
    if chosen["issuer_types"] is not None:
        title += "; issuers: " + ", ".join(chosen["issuer_types"])
    ax.set_title(title, loc="left", fontsize=10)
    return fig


def timeline_explorer(events: pd.DataFrame, color_by: str = "theme", **selection):
    """Filter the policy timeline by theme, confidence, years and issuer type.

    The starting selection is ``EXPLORER_DEFAULTS``; ``color_by`` and keyword arguments
    (``themes``, ``confidences``, ``years``, ``issuer_types``) override it, as for
    ``timeline_explorer_figure``, so a chapter can open the explorer on the same view as
    its static figure. Returns an ipywidgets ``VBox``; display it in a live notebook (it is
    the last value of a cell, or pass it to ``IPython.display.display``).
    """
    import ipywidgets as widgets
    from IPython.display import display

    chosen = {**EXPLORER_DEFAULTS, **selection}
    themes = [t for t in THEME_ORDER if t in set(events["theme"])]
    present = set(events["issuer_type"].dropna())
    issuers = [t for t in ISSUER_TYPES if t in present] + sorted(present - set(ISSUER_TYPES))
    year_values = events["date"].str[:4].astype(int)
    theme_box = widgets.SelectMultiple(
        options=themes, value=tuple(t for t in chosen["themes"] if t in themes),
        description="Themes", rows=len(themes))
    confidence_box = widgets.SelectMultiple(
        options=["high", "medium", "low"], value=tuple(chosen["confidences"]),
        description="Confidence", rows=3)
    issuer_box = widgets.SelectMultiple(
        options=issuers, description="Issuers", rows=min(len(issuers), 8),
        value=tuple(issuers if chosen["issuer_types"] is None
                    else [t for t in chosen["issuer_types"] if t in issuers]))
    first, last = chosen["years"]
    year_slider = widgets.IntRangeSlider(
        value=(max(first, int(year_values.min())), min(last, int(year_values.max()))),
        min=int(year_values.min()), max=int(year_values.max()), step=1,
        description="Years", continuous_update=False,
        layout=widgets.Layout(width="420px"))
    color_choice = widgets.ToggleButtons(options=["theme", "confidence"], value=color_by,
                                         description="Colour by")
    plot_out, table_out = widgets.Output(), widgets.Output()

    def update(*_):
        shown = filter_events(events, theme_box.value, confidence_box.value, year_slider.value,
                              issuer_box.value)
        with plot_out:
            plot_out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(10, 3.8), layout="constrained")
            plot_timeline(shown, ax=ax, color_by=color_choice.value)
            _set_year_limits(ax, *year_slider.value)
            ax.set_title(f"{len(shown)} events", loc="left", fontsize=10)
            display(fig)
            plt.close(fig)
        with table_out:
            table_out.clear_output(wait=True)
            columns = [c for c in _TABLE_COLUMNS if c in shown.columns]
            display(shown.sort_values(["date", "event_id"])[columns].reset_index(drop=True))

    for control in (theme_box, confidence_box, year_slider, color_choice, issuer_box):
        control.observe(update, names="value")
    update()
    # The issuer box comes last, so the first three controls keep their places.
    controls = widgets.HBox([theme_box, confidence_box,
                             widgets.VBox([year_slider, color_choice]), issuer_box])
    return widgets.VBox([controls, plot_out, table_out])
