"""Module 3's layer map, explorer and growth plot: counts match the data, every view is there."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcf_course.explorer import stack_views
from mcf_course.modules.module3 import (
    ANALYTIC_LAYERS,
    JUDGMENT_CALL,
    OFFICIAL_SYSTEMS,
    SUPPORT,
    _cell_counts,  # the counts behind the map (not public: they are Question 1 of the exercise)
    layer_explorer,
    layer_explorer_figure,
    layer_selection,
    plot_layer_map,
    plot_series,
)


@pytest.fixture(scope="module")
def elements(course_dataset):
    return course_dataset("architecture_elements")


@pytest.fixture(scope="module")
def events(course_dataset):
    return course_dataset("policy_timeline")


@pytest.fixture(scope="module")
def actors(course_dataset):
    return course_dataset("actors")


@pytest.fixture(scope="module")
def stats(course_dataset):
    return course_dataset("platform_stats")


def test_constants_follow_the_official_order_and_the_lens():
    assert OFFICIAL_SYSTEMS == ("network", "identifier", "platform", "data", "security")
    assert set(ANALYTIC_LAYERS) == {"data", "applications", "security", "coordination"}


def test_matrix_counts_match_the_rows(elements):
    # Count by hand, row by row, without pandas' crosstab.
    expected: dict[tuple[str, str], int] = {}
    for system, layer in zip(elements["official_system"], elements["analytic_layer"],
                             strict=True):
        key = (system, JUDGMENT_CALL if pd.isna(layer) else layer)
        expected[key] = expected.get(key, 0) + 1
    counts = _cell_counts(elements)
    assert dict(counts) == expected
    assert sum(counts.values()) == len(elements)
    blanks = sum(n for (_, layer), n in counts.items() if layer == JUDGMENT_CALL)
    assert blanks == elements["analytic_layer"].isna().sum()
    ax = plot_layer_map(elements)
    drawn = [int(t.get_text()) for t in ax.texts if t.get_text().isdigit()]
    cells = len(OFFICIAL_SYSTEMS + (SUPPORT,)) * len([*ANALYTIC_LAYERS, JUDGMENT_CALL])
    assert sum(drawn[:cells]) == len(elements)  # the cells, then the row and column totals


def test_map_of_a_fictional_table_draws_every_row_and_its_totals():
    fictional = pd.DataFrame({
        "official_system": ["network", "network", "data", "support"],
        "analytic_layer": [None, "applications", "data", None],
    })
    assert dict(_cell_counts(fictional)) == {("network", JUDGMENT_CALL): 1, ("network", "applications"): 1,
                                             ("data", "data"): 1, ("support", JUDGMENT_CALL): 1}
    ax = plot_layer_map(fictional)
    rows = [*OFFICIAL_SYSTEMS, SUPPORT]
    columns = [*ANALYTIC_LAYERS, JUDGMENT_CALL]
    drawn = [t.get_text() for t in ax.texts if t.get_text().isdigit()]
    cells, row_totals = drawn[:len(rows) * len(columns)], drawn[len(rows) * len(columns):][:len(rows)]
    assert cells.count("0") == len(rows) * len(columns) - 4  # a system with no elements still has a row
    assert row_totals == ["2", "0", "0", "1", "0", "1"]


def test_selection_joins_documents_and_actors(elements, events, actors):
    for layer in [*ANALYTIC_LAYERS, JUDGMENT_CALL]:
        chosen = layer_selection(elements, events, actors, "analytic_layer", layer)
        expected = (elements["analytic_layer"].isna() if layer == JUDGMENT_CALL
                    else elements["analytic_layer"] == layer)
        assert set(chosen["elements"]["element_id"]) == set(elements.loc[expected, "element_id"])
        assert set(chosen["documents"]["event_id"]) == set(elements.loc[expected, "event_id"])
        assert chosen["documents"]["elements"].sum() == expected.sum()
        keyed = actors[actors["key_event_id"].isin(chosen["documents"]["event_id"])]
        assert set(chosen["actors"]["actor_id"]) == set(keyed["actor_id"])
    support = layer_selection(elements, events, actors, "official_system", SUPPORT)
    assert len(support["elements"]) == (elements["official_system"] == SUPPORT).sum()
    with pytest.raises(ValueError):
        layer_selection(elements, events, actors, "analytic_layer", "network")
    with pytest.raises(ValueError):
        layer_selection(elements, events, actors, "sector", "data")


def test_explorer_has_one_view_per_choice_linked_to_its_control(elements, events, actors):
    explorer = layer_explorer(elements, events, actors)
    (show,) = explorer.children[0].children
    assert show.options[show.index] == "layer: coordination", "the first view is the chapter's figure"
    assert len(show.options) == len(ANALYTIC_LAYERS) + 1 + len(OFFICIAL_SYSTEMS) + 1
    found = stack_views(explorer)
    assert len(found) == len(show.options) and len(set(found.values())) == len(found), "views differ"
    for (i,), page in found.items():
        kind, value = show.options[i].split(": ")
        by = "analytic_layer" if kind == "layer" else "official_system"
        n = len(layer_selection(elements, events, actors, by, value)["elements"])
        assert f"{value}: {n} elements" in page and 'alt="' in page, show.options[i]
    assert explorer.children[1].selected_index == show.index
    plt.close("all")


def test_figures_return_axes_and_figures(elements, events, actors, stats):
    assert isinstance(plot_layer_map(elements), Axes)
    ax = plot_layer_map(elements, highlight=("official_system", "identifier"))
    assert isinstance(ax, Axes)
    fig = layer_explorer_figure(elements, events, actors, "analytic_layer", JUDGMENT_CALL)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for series in ("double-cross platforms", "influential platforms", "connected equipment"):
        ax = plot_series(stats, series, start=2018, end=2025)
        assert isinstance(ax, Axes)
        rows = stats[stats["series"] == series]
        assert sum(len(c.get_offsets()) for c in ax.collections
                   if c.get_offsets().shape[0]) >= len(rows)
    with pytest.raises(ValueError):
        plot_series(stats, "no such series")
