"""The chapter's figures and explorer: drawn from the data, filtered correctly, reacting to input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from conftest import ROOT  # noqa: E402

from mcf_course import load_dataset  # noqa: E402
from mcf_course.plotting import CONFIDENCE_COLORS, OKABE_ITO, THEME_COLORS  # noqa: E402
from mcf_course.widgets import filter_events, timeline_explorer, timeline_explorer_figure  # noqa: E402


@pytest.fixture(scope="module")
def events():
    return load_dataset("policy_timeline", str(ROOT / "datasets"))


def test_filter_events_applies_every_criterion(events):
    high = filter_events(events, confidences=["high"])
    assert len(high) == (events["confidence"] == "high").sum()
    mcf_2015_2018 = filter_events(events, themes=["MCF"], years=(2015, 2018))
    years = mcf_2015_2018["date"].str[:4].astype(int)
    assert (mcf_2015_2018["theme"] == "MCF").all() and years.between(2015, 2018).all()
    assert 0 < len(mcf_2015_2018) < (events["theme"] == "MCF").sum()
    assert len(filter_events(events)) == len(events)
    assert filter_events(events, themes=[]).empty


def test_static_twin_shows_the_explorers_default_selection(events):
    fig = timeline_explorer_figure(events, themes=("foreign response",), years=(2020, 2021))
    expected = len(filter_events(events, themes=("foreign response",), years=(2020, 2021)))
    assert fig.axes[0].get_title(loc="left").startswith(f"{expected} events")
    plt.close(fig)


def test_explorer_reacts_to_each_control(events):
    explorer = timeline_explorer(events)
    controls = explorer.children[0]
    themes, confidences, (years, colour) = (controls.children[0], controls.children[1],
                                            controls.children[2].children)
    themes.value = ("Industrial Internet",)
    confidences.value = ("high",)
    years.value = (2016, 2020)
    colour.value = "confidence"
    themes.value = ()  # an empty selection must not break the callback
    assert set(themes.options) == set(events["theme"])
    plt.close("all")


def test_figure_colours_are_colour_blind_safe():
    palette = set(OKABE_ITO.values())
    assert set(THEME_COLORS.values()) <= palette and set(CONFIDENCE_COLORS.values()) <= palette
