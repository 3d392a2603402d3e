"""The policy timeline shared by Modules 1 and 2: filtering, the explorer's views, the palette."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from mcf_course.explorer import stack_views
from mcf_course.plotting import CONFIDENCE_COLORS, OKABE_ITO, THEME_COLORS
from mcf_course.timeline import (
    EXPLORER_CHOICES,
    filter_events,
    timeline_explorer,
    timeline_explorer_figure,
)


@pytest.fixture(scope="module")
def events(course_dataset):
    return course_dataset("policy_timeline")


def test_filter_events_applies_every_criterion(events):
    high = filter_events(events, confidences=["high"])
    assert len(high) == (events["confidence"] == "high").sum()
    mcf_2015_2018 = filter_events(events, themes=["MCF"], years=(2015, 2018))
    years = mcf_2015_2018["date"].str[:4].astype(int)
    assert (mcf_2015_2018["theme"] == "MCF").all() and years.between(2015, 2018).all()
    assert 0 < len(mcf_2015_2018) < (events["theme"] == "MCF").sum()
    assert len(filter_events(events)) == len(events)
    assert filter_events(events, themes=[]).empty


def test_static_twin_is_the_explorers_first_view(events):
    fig = timeline_explorer_figure(events, themes=("foreign response",), years=(2020, 2021))
    expected = len(filter_events(events, themes=("foreign response",), years=(2020, 2021)))
    assert fig.axes[0].get_title(loc="left").startswith(f"{expected} events")
    plt.close(fig)
    explorer = timeline_explorer(events)
    first = stack_views(explorer)[(0, 0)]
    default = len(filter_events(events, themes=("MCF", "foreign response"), years=(2005, 2025)))
    assert f"{default} events, 2005-2025" in first


@pytest.mark.parametrize("controls", [("themes", "confidences"), ("issuer_types", "color_by")])
def test_explorer_has_every_view_and_each_matches_its_selection(events, controls):
    explorer = timeline_explorer(events, controls=controls, years=(2015, 2025))
    buttons = explorer.children[0].children
    assert [b.description for b in buttons] == [EXPLORER_CHOICES[c][0] for c in controls]
    found = stack_views(explorer)
    sizes = [len(EXPLORER_CHOICES[c][1]) for c in controls]
    assert len(found) == sizes[0] * sizes[1] and len(set(found.values())) == len(found)
    for (i, j), page in found.items():
        picked = dict(zip(controls, (EXPLORER_CHOICES[controls[0]][1][i][1], EXPLORER_CHOICES[controls[1]][1][j][1]),
                          strict=True))
        expected = filter_events(events, picked.get("themes"), picked.get("confidences"), (2015, 2025),
                                 picked.get("issuer_types"))
        assert f"{len(expected)} events, 2015-2025" in page and 'alt="' in page
        assert page.count("</tr>") == len(expected) + 1, "the table lists the view's events"
    plt.close("all")


def test_figure_colours_are_colour_blind_safe():
    palette = set(OKABE_ITO.values())
    assert set(THEME_COLORS.values()) <= palette and set(CONFIDENCE_COLORS.values()) <= palette


def test_the_books_form_of_the_explorer_is_plain_html_with_every_view(events, monkeypatch):
    from mcf_course.explorer import FORM_VARIABLE, StaticExplorer

    monkeypatch.setenv(FORM_VARIABLE, "static")
    explorer = timeline_explorer(events, controls=("themes", "confidences"))
    assert isinstance(explorer, StaticExplorer)
    page = explorer._repr_html_()
    assert page.count('type="radio"') == 3 + 3 and page.count(" checked>") == 2, "radio semantics, one checked"
    assert page.count('class="explorer-pane"') == 9 == len(stack_views(explorer)), "every view is in the page"
    assert page.count("data-src=\"data:image/png") == 9 and ' src="data:' not in page, "images load when shown"
    assert "<noscript>" in page and 'data-default="0,0"' in page and 'aria-live="polite"' in page
    assert "ipywidgets" not in type(explorer).__module__
